#include <string.h>

#include "../internal.h"

#ifdef TM_ARCH_NEON
TM_NEON_BEGIN
#include "../qu8_requant.h"

/* 4x8 quantized GEMM tile for NEON (ARMv7 and aarch64: only vmlal_n_s16, no aarch64-only
 * intrinsics): int16 x int16 -> int32 widening multiply-accumulate, 8 quad accumulators.
 * vld2q_s16 splits a k-pair group into the 8 weights of k and the 8 of k + 1. */
void tm_qu8_gemm_4x8__neon(size_t mr, size_t nc, size_t kc, const int16_t* a, size_t a_stride,
                           const void* wv, uint8_t* c, size_t c_stride,
                           const tm_qu8_requant_params* params) {
    const int16_t* a0 = a;
    uint8_t* c0 = c;
    const int16_t* a1 = mr > 1 ? a0 + a_stride : a0;
    uint8_t* c1 = mr > 1 ? c0 + c_stride : c0;
    const int16_t* a2 = mr > 2 ? a1 + a_stride : a1;
    uint8_t* c2 = mr > 2 ? c1 + c_stride : c1;
    const int16_t* a3 = mr > 3 ? a2 + a_stride : a2;
    uint8_t* c3 = mr > 3 ? c2 + c_stride : c2;

    const int32_t* head = (const int32_t*)wv; /* bias[8], multiplier[8], shift[8] */
    int32x4_t v00 = vld1q_s32(head), v01 = vld1q_s32(head + 4);
    int32x4_t v10 = v00, v11 = v01, v20 = v00, v21 = v01, v30 = v00, v31 = v01;
    const int16_t* w = (const int16_t*)(head + 24);
    for (size_t k = 0; k < kc; k += 2) {
        const int16x8x2_t b = vld2q_s16(w);
        w += 16;
        const int16x4_t e0 = vget_low_s16(b.val[0]), e1 = vget_high_s16(b.val[0]);
        const int16x4_t o0 = vget_low_s16(b.val[1]), o1 = vget_high_s16(b.val[1]);
        v00 = vmlal_n_s16(v00, e0, a0[k]); v01 = vmlal_n_s16(v01, e1, a0[k]);
        v00 = vmlal_n_s16(v00, o0, a0[k + 1]); v01 = vmlal_n_s16(v01, o1, a0[k + 1]);
        v10 = vmlal_n_s16(v10, e0, a1[k]); v11 = vmlal_n_s16(v11, e1, a1[k]);
        v10 = vmlal_n_s16(v10, o0, a1[k + 1]); v11 = vmlal_n_s16(v11, o1, a1[k + 1]);
        v20 = vmlal_n_s16(v20, e0, a2[k]); v21 = vmlal_n_s16(v21, e1, a2[k]);
        v20 = vmlal_n_s16(v20, o0, a2[k + 1]); v21 = vmlal_n_s16(v21, o1, a2[k + 1]);
        v30 = vmlal_n_s16(v30, e0, a3[k]); v31 = vmlal_n_s16(v31, e1, a3[k]);
        v30 = vmlal_n_s16(v30, o0, a3[k + 1]); v31 = vmlal_n_s16(v31, o1, a3[k + 1]);
    }
    const int32x4_t acc[4][2] = {{v00, v01}, {v10, v11}, {v20, v21}, {v30, v31}};
    uint8_t* const out[4] = {c0, c1, c2, c3};
    for (size_t r = 0; r < 4; r++) {
        const int32x4_t lo = tm_qu8_requant_neon(acc[r][0], head + 8, head + 16, params);
        const int32x4_t hi = tm_qu8_requant_neon(acc[r][1], head + 12, head + 20, params);
        const uint8x8_t bytes = tm_qu8_pack8_neon(lo, hi);
        if (nc == 8) {
            vst1_u8(out[r], bytes);
        } else {
            uint8_t tmp[8];
            vst1_u8(tmp, bytes);
            memcpy(out[r], tmp, nc);
        }
    }
}
TM_NEON_END
#endif
