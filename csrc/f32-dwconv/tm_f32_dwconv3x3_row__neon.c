#include "../internal.h"

#ifdef TM_ARCH_NEON
#include <arm_neon.h>

/* One output row of a depthwise 3x3 convolution, 4 channels per vector (ARMv7 and aarch64).
 * Taps stay in registers per channel block; interior pixels skip the bounds checks; channels
 * past the last multiple of 4 go through the scalar kernel's loop. */
void tm_f32_dwconv3x3_row__neon(size_t channels, size_t in_width, size_t out_width,
                                size_t stride, size_t pad_left, const float** rows,
                                const float* w, float* out, const tm_f32_minmax_params* params) {
    const size_t cp = TM_ROUND_UP(channels, TM_CHANNEL_TILE);
    const float32x4_t lo = vdupq_n_f32(params->min), hi = vdupq_n_f32(params->max);
    const float* r0 = rows[0];
    const float* r1 = rows[1];
    const float* r2 = rows[2];
    size_t first = pad_left == 0 ? 0 : (pad_left + stride - 1) / stride;
    size_t last = in_width + pad_left >= 3 ? (in_width + pad_left - 3) / stride + 1 : 0;
    if (last > out_width) last = out_width;
    if (first > last) first = last;
    const size_t step = stride * channels;
    const size_t cv = channels & ~(size_t)3;

    for (size_t c = 0; c < cv; c += 4) {
        const float* wc = w + c;
        const float32x4_t bias = vld1q_f32(wc);
        float32x4_t k[9];
        for (size_t t = 0; t < 9; t++) k[t] = vld1q_f32(wc + (1 + t) * cp);
        for (size_t ox = 0; ox < out_width; ox++) {
            if (ox == first && first < last) {
                const float* p0 = r0 + (first * stride - pad_left) * channels + c;
                const float* p1 = r1 + (first * stride - pad_left) * channels + c;
                const float* p2 = r2 + (first * stride - pad_left) * channels + c;
                float* o = out + first * channels + c;
                for (; ox < last; ox++) {
                    float32x4_t a0 = vfmaq_f32(bias, vld1q_f32(p0), k[0]);
                    float32x4_t a1 = vmulq_f32(vld1q_f32(p0 + channels), k[1]);
                    a0 = vfmaq_f32(a0, vld1q_f32(p0 + 2 * channels), k[2]);
                    a1 = vfmaq_f32(a1, vld1q_f32(p1), k[3]);
                    a0 = vfmaq_f32(a0, vld1q_f32(p1 + channels), k[4]);
                    a1 = vfmaq_f32(a1, vld1q_f32(p1 + 2 * channels), k[5]);
                    a0 = vfmaq_f32(a0, vld1q_f32(p2), k[6]);
                    a1 = vfmaq_f32(a1, vld1q_f32(p2 + channels), k[7]);
                    a0 = vfmaq_f32(a0, vld1q_f32(p2 + 2 * channels), k[8]);
                    a0 = vminq_f32(vmaxq_f32(vaddq_f32(a0, a1), lo), hi);
                    vst1q_f32(o, a0);
                    p0 += step; p1 += step; p2 += step; o += channels;
                }
                ox--;
                continue;
            }
            const ptrdiff_t ix0 = (ptrdiff_t)(ox * stride) - (ptrdiff_t)pad_left;
            float32x4_t acc = bias;
            for (size_t kx = 0; kx < 3; kx++) {
                const ptrdiff_t ix = ix0 + (ptrdiff_t)kx;
                if (ix < 0 || ix >= (ptrdiff_t)in_width) continue;
                const size_t off = (size_t)ix * channels + c;
                acc = vfmaq_f32(acc, vld1q_f32(r0 + off), k[kx]);
                acc = vfmaq_f32(acc, vld1q_f32(r1 + off), k[3 + kx]);
                acc = vfmaq_f32(acc, vld1q_f32(r2 + off), k[6 + kx]);
            }
            vst1q_f32(out + ox * channels + c, vminq_f32(vmaxq_f32(acc, lo), hi));
        }
    }
    if (cv < channels) {
        const float lo_s = params->min, hi_s = params->max;
        for (size_t ox = 0; ox < out_width; ox++) {
            const ptrdiff_t ix0 = (ptrdiff_t)(ox * stride) - (ptrdiff_t)pad_left;
            for (size_t c = cv; c < channels; c++) {
                float acc = w[c];
                for (size_t kx = 0; kx < 3; kx++) {
                    const ptrdiff_t ix = ix0 + (ptrdiff_t)kx;
                    if (ix < 0 || ix >= (ptrdiff_t)in_width) continue;
                    for (size_t ky = 0; ky < 3; ky++)
                        acc += rows[ky][(size_t)ix * channels + c] * w[(1 + ky * 3 + kx) * cp + c];
                }
                acc = acc < lo_s ? lo_s : acc;
                out[ox * channels + c] = acc > hi_s ? hi_s : acc;
            }
        }
    }
}
#endif
