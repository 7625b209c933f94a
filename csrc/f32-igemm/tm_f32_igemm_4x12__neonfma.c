#include "../internal.h"

#ifdef TM_ARCH_NEON
TM_NEON_BEGIN
#include <arm_neon.h>

/* 4x12 indirect-GEMM tile for NEON with FMA, for ARMv7 (neon-vfpv4: 16 quad registers). ARMv7 has
 * no FMA by lane: each row's value is broadcast by its load (vld1q_dup_f32), and the broadcast
 * goes through the same two FP pipes as the FMAs, so the tile is as wide as the registers allow
 * to spread each broadcast over three FMAs: 12 accumulators + 3 weight vectors + 1 broadcast =
 * all 16 quad registers (the 4x8 tile spent one broadcast per two FMAs). */
#define TM_ROWS4(X) X(0) X(1) X(2) X(3)

/* Stores nc <= 12 floats of one row from three vectors. */
static inline void tm_store_row12(float* c, size_t nc, float32x4_t v0, float32x4_t v1,
                                  float32x4_t v2) {
    if (nc == 12) {
        vst1q_f32(c, v0);
        vst1q_f32(c + 4, v1);
        vst1q_f32(c + 8, v2);
        return;
    }
    if (nc >= 8) {
        vst1q_f32(c, v0);
        vst1q_f32(c + 4, v1);
        v0 = v2;
        c += 8;
        nc -= 8;
    } else if (nc >= 4) {
        vst1q_f32(c, v0);
        v0 = v1;
        c += 4;
        nc -= 4;
    }
    float32x2_t h = vget_low_f32(v0);
    if (nc & 2) {
        vst1_f32(c, h);
        h = vget_high_f32(v0);
        c += 2;
    }
    if (nc & 1) vst1_lane_f32(c, h, 0);
}

void tm_f32_igemm_4x12__neonfma(size_t mr, size_t nc, size_t kc, size_t ks, const float** a,
                                const float* w, float* c, size_t c_stride,
                                const tm_f32_minmax_params* params) {
    float* c0 = c;
    float* c1 = mr > 1 ? c0 + c_stride : c0;
    float* c2 = mr > 2 ? c1 + c_stride : c1;
    float* c3 = mr > 3 ? c2 + c_stride : c2;
#define TM_INIT(i) float32x4_t u##i = vld1q_f32(w), v##i = vld1q_f32(w + 4), x##i = vld1q_f32(w + 8);
    TM_ROWS4(TM_INIT)
#undef TM_INIT
    w += 12;
    for (size_t t = 0; t < ks; t++, a += 4) {
        const float* a0 = a[0];
        const float* a1 = a[1];
        const float* a2 = a[2];
        const float* a3 = a[3];
        for (size_t k = 0; k < kc; k++) {
            const float32x4_t b0 = vld1q_f32(w), b1 = vld1q_f32(w + 4), b2 = vld1q_f32(w + 8);
            w += 12;
#define TM_ONE(i)                                         \
            {                                             \
                const float32x4_t s = vld1q_dup_f32(a##i + k); \
                u##i = vfmaq_f32(u##i, s, b0);            \
                v##i = vfmaq_f32(v##i, s, b1);            \
                x##i = vfmaq_f32(x##i, s, b2);            \
            }
            TM_ROWS4(TM_ONE)
#undef TM_ONE
        }
    }
    const float32x4_t vmin = vdupq_n_f32(params->min), vmax = vdupq_n_f32(params->max);
#define TM_CLAMP(i)                                 \
    u##i = vminq_f32(vmaxq_f32(u##i, vmin), vmax);  \
    v##i = vminq_f32(vmaxq_f32(v##i, vmin), vmax);  \
    x##i = vminq_f32(vmaxq_f32(x##i, vmin), vmax);
    TM_ROWS4(TM_CLAMP)
#undef TM_CLAMP
#define TM_STORE(i) tm_store_row12(c##i, nc, u##i, v##i, x##i);
    TM_STORE(3) TM_STORE(2) TM_STORE(1) TM_STORE(0)
#undef TM_STORE
}
TM_NEON_END
#endif
