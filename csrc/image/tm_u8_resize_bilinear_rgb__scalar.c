/* Bilinear resize of a uint8 RGB image to float32, then (x - mean) / std: the image API's
 * preprocessing (tinymobile/preprocess.py), in the same float operations in the same order as
 * its NumPy version, so the results are bit-identical to it:
 *
 *   row(y, x)  = src[y0[y]][x] * (1 - wy[y]) + src[y1[y]][x] * wy[y]           (float32)
 *   v(y, x)    = row(y, x0[x]) * (1 - wx[x]) + row(y, x1[x]) * wx[x]          (float32)
 *   out        = (float)(((double)v - mean) / std)     when norm_f64 (float64 mean / std)
 *              = (v - (float)mean) / (float)std        otherwise (float32 mean / std)
 *
 * With q_out, each finished row is quantized into q_out (tm_f32_quantize__scalar) and `out` is
 * only a one-row scratch (out_w * 3 floats).
 *
 * Contracting a * b + c * d into fused multiply-adds would change the rounding, so it is off
 * for this file (aarch64 and ARMv7 with VFPv4 have FMA in their baseline). */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#include "../internal.h"

void tm_u8_resize_bilinear_rgb__scalar(size_t out_h, size_t out_w, const uint8_t* src,
                                       size_t src_row_bytes, size_t src_pixel_bytes,
                                       const int32_t* y0, const int32_t* y1, const float* wy,
                                       const int32_t* x0, const int32_t* x1, const float* wx,
                                       const double* mean, const double* std, int norm_f64,
                                       float* out, const tm_quantize_params* quant,
                                       uint8_t* q_out) {
    const float mean32[3] = {(float)mean[0], (float)mean[1], (float)mean[2]};
    const float std32[3] = {(float)std[0], (float)std[1], (float)std[2]};
    for (size_t y = 0; y < out_h; y++) {
        const uint8_t* r0 = src + (size_t)y0[y] * src_row_bytes;
        const uint8_t* r1 = src + (size_t)y1[y] * src_row_bytes;
        const float b = wy[y], a = 1.0f - b;
        float* o = q_out != NULL ? out : out + y * out_w * 3;
        for (size_t x = 0; x < out_w; x++) {
            const size_t c0 = (size_t)x0[x] * src_pixel_bytes, c1 = (size_t)x1[x] * src_pixel_bytes;
            const float d = wx[x], c = 1.0f - d;
            for (size_t ch = 0; ch < 3; ch++) {
                const float p0 = (float)r0[c0 + ch] * a;
                const float q0 = (float)r1[c0 + ch] * b;
                const float left = p0 + q0;
                const float p1 = (float)r0[c1 + ch] * a;
                const float q1 = (float)r1[c1 + ch] * b;
                const float right = p1 + q1;
                const float l = left * c;
                const float r = right * d;
                const float v = l + r;
                if (norm_f64) {
                    o[x * 3 + ch] = (float)(((double)v - mean[ch]) / std[ch]);
                } else {
                    const float t = v - mean32[ch];
                    o[x * 3 + ch] = t / std32[ch];
                }
            }
        }
        if (q_out != NULL) {
            tm_f32_quantize__scalar(out_w * 3, o, quant->scale, quant->zero_point, quant->min,
                                    quant->max, q_out + y * out_w * 3);
        }
    }
}
