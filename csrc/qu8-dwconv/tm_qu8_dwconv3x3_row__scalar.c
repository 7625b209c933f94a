#include "../qu8_requant.h"

/* The nine input pixels under output column ox: taps left or right of the image read zp_pixel. */
static void tm_qu8_taps(size_t ox, size_t channels, size_t in_width, size_t stride,
                        size_t pad_left, const uint8_t** rows, const uint8_t* zp_pixel,
                        const uint8_t* px[9]) {
    for (size_t kx = 0; kx < 3; kx++) {
        const ptrdiff_t ix = (ptrdiff_t)(ox * stride + kx) - (ptrdiff_t)pad_left;
        const int inside = ix >= 0 && ix < (ptrdiff_t)in_width;
        for (size_t ky = 0; ky < 3; ky++)
            px[ky * 3 + kx] = inside ? rows[ky] + (size_t)ix * channels : zp_pixel;
    }
}

/* One output row of a quantized depthwise 3x3 convolution, plain C. */
void tm_qu8_dwconv3x3_row__scalar(size_t channels, size_t in_width, size_t out_width,
                                  size_t stride, size_t pad_left, const uint8_t** rows,
                                  const uint8_t* zp_pixel, const int32_t* w, uint8_t* out,
                                  const tm_qu8_requant_params* params) {
    const size_t cp = TM_ROUND_UP(channels, TM_CHANNEL_TILE);
    const int32_t* bias = w;
    const int32_t* mult = w + cp;
    const int32_t* shift = w + 2 * cp;
    const int32_t* taps = w + 3 * cp;
    for (size_t ox = 0; ox < out_width; ox++) {
        const uint8_t* px[9];
        tm_qu8_taps(ox, channels, in_width, stride, pad_left, rows, zp_pixel, px);
        for (size_t c = 0; c < channels; c++) {
            int32_t acc = bias[c];
            for (size_t t = 0; t < 9; t++) acc += (int32_t)px[t][c] * taps[t * cp + c];
            out[c] = tm_qu8_output(acc, mult[c], shift[c], params);
        }
        out += channels;
    }
}
