#include "../internal.h"

#ifdef TM_ARCH_NEON
#include <arm_neon.h>

/* 4x8 indirect-GEMM tile for NEON with FMA (ARMv7 and aarch64): ks taps of four row pointers,
 * kc channels each; 8 accumulators + 2 weight + 1 broadcast registers fit ARMv7's 16 quad registers; only
 * intrinsics ARMv7 has (vfmaq_f32 needs -mfpu=neon-vfpv4 there). */
void tm_f32_igemm_4x8__neonfma(size_t mr, size_t nc, size_t kc, size_t ks, const float** a,
                               const float* w, float* c, size_t c_stride,
                               const tm_f32_minmax_params* params) {
    float* c0 = c;
    float* c1 = mr > 1 ? c0 + c_stride : c0;
    float* c2 = mr > 2 ? c1 + c_stride : c1;
    float* c3 = mr > 3 ? c2 + c_stride : c2;

    float32x4_t v00 = vld1q_f32(w), v01 = vld1q_f32(w + 4);
    float32x4_t v10 = v00, v11 = v01, v20 = v00, v21 = v01, v30 = v00, v31 = v01;
    w += 8;
    for (size_t t = 0; t < ks; t++, a += 4) {
    const float* a0 = a[0];
    const float* a1 = a[1];
    const float* a2 = a[2];
    const float* a3 = a[3];
    for (size_t k = 0; k < kc; k++) {
        const float32x4_t b0 = vld1q_f32(w), b1 = vld1q_f32(w + 4);
        w += 8;
        float32x4_t x = vld1q_dup_f32(a0 + k);
        v00 = vfmaq_f32(v00, x, b0); v01 = vfmaq_f32(v01, x, b1);
        x = vld1q_dup_f32(a1 + k);
        v10 = vfmaq_f32(v10, x, b0); v11 = vfmaq_f32(v11, x, b1);
        x = vld1q_dup_f32(a2 + k);
        v20 = vfmaq_f32(v20, x, b0); v21 = vfmaq_f32(v21, x, b1);
        x = vld1q_dup_f32(a3 + k);
        v30 = vfmaq_f32(v30, x, b0); v31 = vfmaq_f32(v31, x, b1);
    }
    }
    const float32x4_t lo = vdupq_n_f32(params->min), hi = vdupq_n_f32(params->max);
#define TM_CLAMP(v) v = vminq_f32(vmaxq_f32(v, lo), hi)
    TM_CLAMP(v00); TM_CLAMP(v01); TM_CLAMP(v10); TM_CLAMP(v11);
    TM_CLAMP(v20); TM_CLAMP(v21); TM_CLAMP(v30); TM_CLAMP(v31);
#undef TM_CLAMP
    if (nc == 8) {
        vst1q_f32(c3, v30); vst1q_f32(c3 + 4, v31); vst1q_f32(c2, v20); vst1q_f32(c2 + 4, v21);
        vst1q_f32(c1, v10); vst1q_f32(c1 + 4, v11); vst1q_f32(c0, v00); vst1q_f32(c0 + 4, v01);
        return;
    }
    if (nc & 4) {
        vst1q_f32(c3, v30); vst1q_f32(c2, v20); vst1q_f32(c1, v10); vst1q_f32(c0, v00);
        v30 = v31; v20 = v21; v10 = v11; v00 = v01;
        c3 += 4; c2 += 4; c1 += 4; c0 += 4;
    }
    float32x2_t h3 = vget_low_f32(v30), h2 = vget_low_f32(v20);
    float32x2_t h1 = vget_low_f32(v10), h0 = vget_low_f32(v00);
    if (nc & 2) {
        vst1_f32(c3, h3); vst1_f32(c2, h2); vst1_f32(c1, h1); vst1_f32(c0, h0);
        h3 = vget_high_f32(v30); h2 = vget_high_f32(v20);
        h1 = vget_high_f32(v10); h0 = vget_high_f32(v00);
        c3 += 2; c2 += 2; c1 += 2; c0 += 2;
    }
    if (nc & 1) {
        vst1_lane_f32(c3, h3, 0); vst1_lane_f32(c2, h2, 0);
        vst1_lane_f32(c1, h1, 0); vst1_lane_f32(c0, h0, 0);
    }
}
#endif
