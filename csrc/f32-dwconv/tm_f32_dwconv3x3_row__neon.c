#include "../internal.h"

#ifdef TM_ARCH_NEON
#include <arm_neon.h>

/* One output row of a depthwise 3x3 convolution, NEON (ARMv7 and aarch64), 4 channels per
 * vector: pixels outer, channels inner (see the AVX2 kernel for why); interior pixels run all
 * nine taps unchecked, border pixels only the columns inside the image; channels past the last
 * multiple of 4 are done one at a time. */
void tm_f32_dwconv3x3_row__neon(size_t channels, size_t in_width, size_t out_width,
                                size_t stride, size_t pad_left, const float** rows,
                                const float* w, float* out, const tm_f32_minmax_params* params) {
    const size_t cv = channels & ~(size_t)3;
    const float32x4_t lo = vdupq_n_f32(params->min), hi = vdupq_n_f32(params->max);
    const float* r0 = rows[0];
    const float* r1 = rows[1];
    const float* r2 = rows[2];

    for (size_t ox = 0; ox < out_width; ox++) {
        const ptrdiff_t ix0 = (ptrdiff_t)(ox * stride) - (ptrdiff_t)pad_left;
        const size_t kx_lo = ix0 < 0 ? (size_t)(-ix0) : 0;
        const ptrdiff_t room = (ptrdiff_t)in_width - ix0;
        const size_t kx_hi = room >= 3 ? 3 : (room > 0 ? (size_t)room : 0);
        float* o = out + ox * channels;
        if (kx_lo == 0 && kx_hi == 3) {
            const float* p0 = r0 + (size_t)ix0 * channels;
            const float* p1 = r1 + (size_t)ix0 * channels;
            const float* p2 = r2 + (size_t)ix0 * channels;
            const size_t c1 = channels, c2 = 2 * channels;
            for (size_t c = 0; c < cv; c += 4) {
                const float* wc = TM_DW_W(w, c, 0);
                float32x4_t a0 = vfmaq_f32(vld1q_f32(wc), vld1q_f32(p0 + c), vld1q_f32(wc + 8));
                float32x4_t a1 = vmulq_f32(vld1q_f32(p0 + c1 + c), vld1q_f32(wc + 16));
                a0 = vfmaq_f32(a0, vld1q_f32(p0 + c2 + c), vld1q_f32(wc + 24));
                a1 = vfmaq_f32(a1, vld1q_f32(p1 + c), vld1q_f32(wc + 32));
                a0 = vfmaq_f32(a0, vld1q_f32(p1 + c1 + c), vld1q_f32(wc + 40));
                a1 = vfmaq_f32(a1, vld1q_f32(p1 + c2 + c), vld1q_f32(wc + 48));
                a0 = vfmaq_f32(a0, vld1q_f32(p2 + c), vld1q_f32(wc + 56));
                a1 = vfmaq_f32(a1, vld1q_f32(p2 + c1 + c), vld1q_f32(wc + 64));
                a0 = vfmaq_f32(a0, vld1q_f32(p2 + c2 + c), vld1q_f32(wc + 72));
                vst1q_f32(o + c, vminq_f32(vmaxq_f32(vaddq_f32(a0, a1), lo), hi));
            }
        } else {
            for (size_t c = 0; c < cv; c += 4) {
                const float* wc = TM_DW_W(w, c, 0);
                float32x4_t acc = vld1q_f32(wc);
                for (size_t kx = kx_lo; kx < kx_hi; kx++) {
                    const size_t off = (size_t)(ix0 + (ptrdiff_t)kx) * channels + c;
                    acc = vfmaq_f32(acc, vld1q_f32(r0 + off), vld1q_f32(wc + 8 * (1 + kx)));
                    acc = vfmaq_f32(acc, vld1q_f32(r1 + off), vld1q_f32(wc + 8 * (4 + kx)));
                    acc = vfmaq_f32(acc, vld1q_f32(r2 + off), vld1q_f32(wc + 8 * (7 + kx)));
                }
                vst1q_f32(o + c, vminq_f32(vmaxq_f32(acc, lo), hi));
            }
        }
        for (size_t c = cv; c < channels; c++) {
            float acc = *TM_DW_W(w, c, 0);
            for (size_t kx = kx_lo; kx < kx_hi; kx++) {
                const size_t off = (size_t)(ix0 + (ptrdiff_t)kx) * channels + c;
                acc += r0[off] * *TM_DW_W(w, c, 1 + kx) + r1[off] * *TM_DW_W(w, c, 4 + kx) +
                       r2[off] * *TM_DW_W(w, c, 7 + kx);
            }
            acc = acc < params->min ? params->min : acc;
            o[c] = acc > params->max ? params->max : acc;
        }
    }
}
#endif
