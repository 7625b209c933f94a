#include "../internal.h"

#if defined(TM_ARCH_NEON) && defined(__aarch64__)
#include <arm_neon.h>

/* 8x8 indirect-GEMM tile for aarch64 NEON (32 vector registers: 16 accumulators). For each tap it
 * reads the eight rows four channels at a time and multiplies by lanes (vfmaq_laneq_f32, aarch64
 * only), then finishes the tap's leftover channels one at a time. */
void tm_f32_igemm_8x8__aarch64_neonfma(size_t mr, size_t nc, size_t kc, size_t ks,
                                       const float** a, const float* w, float* c,
                                       size_t c_stride, const tm_f32_minmax_params* params) {
    float* cr[8];
    cr[0] = c;
    for (size_t i = 1; i < 8; i++) cr[i] = i < mr ? cr[i - 1] + c_stride : cr[i - 1];
    float32x4_t lo_acc[8], hi_acc[8];
    const float32x4_t bias_lo = vld1q_f32(w), bias_hi = vld1q_f32(w + 4);
    for (size_t i = 0; i < 8; i++) { lo_acc[i] = bias_lo; hi_acc[i] = bias_hi; }
    w += 8;
    for (size_t t = 0; t < ks; t++, a += 8) {
        size_t k = 0;
        for (; k + 4 <= kc; k += 4) {
            float32x4_t x[8];
            for (size_t i = 0; i < 8; i++) x[i] = vld1q_f32(a[i] + k);
#define TM_LANE(l)                                                                 \
            {                                                                      \
                const float32x4_t b0 = vld1q_f32(w), b1 = vld1q_f32(w + 4);        \
                w += 8;                                                            \
                for (size_t i = 0; i < 8; i++) {                                   \
                    lo_acc[i] = vfmaq_laneq_f32(lo_acc[i], b0, x[i], l);           \
                    hi_acc[i] = vfmaq_laneq_f32(hi_acc[i], b1, x[i], l);           \
                }                                                                  \
            }
            TM_LANE(0) TM_LANE(1) TM_LANE(2) TM_LANE(3)
#undef TM_LANE
        }
        for (; k < kc; k++) {
            const float32x4_t b0 = vld1q_f32(w), b1 = vld1q_f32(w + 4);
            w += 8;
            for (size_t i = 0; i < 8; i++) {
                const float32x4_t xi = vld1q_dup_f32(a[i] + k);
                lo_acc[i] = vfmaq_f32(lo_acc[i], xi, b0);
                hi_acc[i] = vfmaq_f32(hi_acc[i], xi, b1);
            }
        }
    }
    const float32x4_t lo = vdupq_n_f32(params->min), hi = vdupq_n_f32(params->max);
    for (size_t i = 8; i-- > 0;) {
        float32x4_t v0 = vminq_f32(vmaxq_f32(lo_acc[i], lo), hi);
        float32x4_t v1 = vminq_f32(vmaxq_f32(hi_acc[i], lo), hi);
        float* ci = cr[i];
        if (nc == 8) { vst1q_f32(ci, v0); vst1q_f32(ci + 4, v1); continue; }
        if (nc & 4) { vst1q_f32(ci, v0); v0 = v1; ci += 4; }
        float32x2_t h = vget_low_f32(v0);
        if (nc & 2) { vst1_f32(ci, h); h = vget_high_f32(v0); ci += 2; }
        if (nc & 1) vst1_lane_f32(ci, h, 0);
    }
}
#endif
