#include "../internal.h"

#if defined(TM_ARCH_NEON) && defined(__aarch64__)
#include <arm_neon.h>

#include "tm_f32_igemm_8x8_aarch64.h"

/* 8x8 indirect-GEMM tile for aarch64 NEON, scheduled for out-of-order cores (Cortex-A72/A76:
 * Pi 4, Pi 5). 16 accumulators + 8 rows + 2 weight vectors = 26 of the 32 vector registers. The
 * accumulators are named variables, not an array: GCC -O2 keeps an array of vectors in memory
 * and reloads/stores it around every FMLA. For each tap it reads the eight rows four channels at
 * a time and multiplies by lanes (vfmaq_laneq_f32, aarch64 only); the out-of-order core finds
 * the parallelism, so the order is plain. Leftover channels go one at a time. */
void tm_f32_igemm_8x8__aarch64_neonfma(size_t mr, size_t nc, size_t kc, size_t ks,
                                       const float** a, const float* w, float* c,
                                       size_t c_stride, const tm_f32_minmax_params* params) {
    TM_8X8_OUTPUT_ROWS(c, mr, c_stride)
#define TM_INIT(i) float32x4_t lo##i = vld1q_f32(w), hi##i = vld1q_f32(w + 4);
    TM_ROWS(TM_INIT)
#undef TM_INIT
    w += 8;
    for (size_t t = 0; t < ks; t++, a += 8) {
#define TM_PTR(i) const float* a##i = a[i];
        TM_ROWS(TM_PTR)
#undef TM_PTR
        size_t k = kc;
        for (; k >= 4; k -= 4) {
#define TM_LOAD(i) const float32x4_t x##i = vld1q_f32(a##i); a##i += 4;
            TM_ROWS(TM_LOAD)
#undef TM_LOAD
#define TM_FMA(i, l)                                   \
            lo##i = vfmaq_laneq_f32(lo##i, b0, x##i, l); \
            hi##i = vfmaq_laneq_f32(hi##i, b1, x##i, l);
#define TM_LANE(l)                                                           \
            {                                                                \
                const float32x4_t b0 = vld1q_f32(w), b1 = vld1q_f32(w + 4);  \
                w += 8;                                                      \
                TM_FMA(0, l) TM_FMA(1, l) TM_FMA(2, l) TM_FMA(3, l)          \
                TM_FMA(4, l) TM_FMA(5, l) TM_FMA(6, l) TM_FMA(7, l)          \
            }
            TM_LANE(0) TM_LANE(1) TM_LANE(2) TM_LANE(3)
#undef TM_LANE
#undef TM_FMA
        }
        for (; k > 0; k--) {
            const float32x4_t b0 = vld1q_f32(w), b1 = vld1q_f32(w + 4);
            w += 8;
#define TM_ONE(i)                                       \
            {                                           \
                const float32x4_t xi = vld1q_dup_f32(a##i); \
                a##i++;                                 \
                lo##i = vfmaq_f32(lo##i, xi, b0);       \
                hi##i = vfmaq_f32(hi##i, xi, b1);       \
            }
            TM_ROWS(TM_ONE)
#undef TM_ONE
        }
    }
    TM_8X8_CLAMP_STORE(params, nc);
}
#endif
