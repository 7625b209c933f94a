#include "../qu8_requant.h"

/* One output row of a quantized depthwise 3x3 convolution, plain C. */
void tm_qu8_dwconv3x3_row__scalar(size_t channels, size_t in_width, size_t out_width,
                                  size_t stride, size_t pad_left, const uint8_t** rows,
                                  const uint8_t* zp_pixel, const int32_t* w, uint8_t* out,
                                  const tm_qu8_requant_params* params) {
    const size_t cp = TM_ROUND_UP(channels, TM_CHANNEL_TILE);
    for (size_t ox = 0; ox < out_width; ox++, out += channels) {
        const uint8_t* px[9];
        tm_qu8_taps(ox, channels, in_width, stride, pad_left, rows, zp_pixel, px);
        tm_qu8_dw_channels(0, channels, px, w, cp, out, params);
    }
}
