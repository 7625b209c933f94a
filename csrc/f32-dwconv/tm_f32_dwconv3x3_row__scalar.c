#include "../internal.h"

/* One output row of a depthwise 3x3 convolution, one channel at a time. Input columns outside
 * [0, in_width) are zero padding and skipped. See tm_f32_dwconv3x3_row_fn in tinymobile.h. */
void tm_f32_dwconv3x3_row__scalar(size_t channels, size_t in_width, size_t out_width,
                                  size_t stride, size_t pad_left, const float** rows,
                                  const float* w, float* out,
                                  const tm_f32_minmax_params* params) {
    const float lo = params->min, hi = params->max;
    for (size_t ox = 0; ox < out_width; ox++) {
        const ptrdiff_t ix0 = (ptrdiff_t)(ox * stride) - (ptrdiff_t)pad_left;
        float* o = out + ox * channels;
        for (size_t c = 0; c < channels; c++) {
            float acc = *TM_DW_W(w, c, 0);
            for (size_t kx = 0; kx < 3; kx++) {
                const ptrdiff_t ix = ix0 + (ptrdiff_t)kx;
                if (ix < 0 || ix >= (ptrdiff_t)in_width) continue;
                for (size_t ky = 0; ky < 3; ky++)
                    acc += rows[ky][(size_t)ix * channels + c] * *TM_DW_W(w, c, 1 + ky * 3 + kx);
            }
            acc = acc < lo ? lo : acc;
            o[c] = acc > hi ? hi : acc;
        }
    }
}
