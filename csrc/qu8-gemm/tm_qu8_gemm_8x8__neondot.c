/* Everything in this file is compiled for armv8.2-a+dotprod; it runs only where the CPU reports
 * the dot-product extension (dispatch.c checks HWCAP_ASIMDDP). */
#include "../internal.h"

#ifdef TM_HAVE_NEONDOT
#pragma GCC push_options
#pragma GCC target("arch=armv8.2-a+dotprod")
#include <string.h>

#include "../qu8_requant.h"

/* One k-quad (lane q of the 16 activation bytes of each row) into the 16 accumulators. */
#define TM_DOT_QUAD(q)                                                          \
    do {                                                                        \
        const uint8x16_t b0 = vld1q_u8(w), b1 = vld1q_u8(w + 16);               \
        w += 32;                                                                \
        v00 = vdotq_laneq_u32(v00, b0, x0, q); v01 = vdotq_laneq_u32(v01, b1, x0, q); \
        v10 = vdotq_laneq_u32(v10, b0, x1, q); v11 = vdotq_laneq_u32(v11, b1, x1, q); \
        v20 = vdotq_laneq_u32(v20, b0, x2, q); v21 = vdotq_laneq_u32(v21, b1, x2, q); \
        v30 = vdotq_laneq_u32(v30, b0, x3, q); v31 = vdotq_laneq_u32(v31, b1, x3, q); \
        v40 = vdotq_laneq_u32(v40, b0, x4, q); v41 = vdotq_laneq_u32(v41, b1, x4, q); \
        v50 = vdotq_laneq_u32(v50, b0, x5, q); v51 = vdotq_laneq_u32(v51, b1, x5, q); \
        v60 = vdotq_laneq_u32(v60, b0, x6, q); v61 = vdotq_laneq_u32(v61, b1, x6, q); \
        v70 = vdotq_laneq_u32(v70, b0, x7, q); v71 = vdotq_laneq_u32(v71, b1, x7, q); \
    } while (0)

/* 8x8 quantized GEMM tile with udot: uint8 activations x uint8 weights (w' + z) summed four at a
 * time into uint32 (exact: at most kc * 255 * 255 < 2^31 for kc <= 33000), then
 * acc = bias' + dot - z * row_sum as int32 and TFLite's requantization. 16 accumulators, 8
 * activation registers, 2 weight registers. Rows past mr alias the last valid row. */
void tm_qu8_gemm_8x8__neondot(size_t mr, size_t nc, size_t kc, const uint8_t* a,
                              size_t a_stride, const int32_t* row_sums, const void* wv,
                              uint8_t* c, size_t c_stride, const tm_qu8_requant_params* params) {
    const uint8_t* ar[8];
    uint8_t* cr[8];
    int32_t rs[8];
    for (size_t r = 0; r < 8; r++) {
        const size_t i = r < mr ? r : mr - 1;
        ar[r] = a + i * a_stride;
        cr[r] = c + i * c_stride;
        rs[r] = row_sums[i];
    }
    const int32_t* head = (const int32_t*)wv; /* bias[8], multiplier[8], shift[8], zero point[8] */
    const uint8_t* w = (const uint8_t*)(head + 32);
    const uint32x4_t zero = vdupq_n_u32(0);
    uint32x4_t v00 = zero, v01 = zero, v10 = zero, v11 = zero, v20 = zero, v21 = zero;
    uint32x4_t v30 = zero, v31 = zero, v40 = zero, v41 = zero, v50 = zero, v51 = zero;
    uint32x4_t v60 = zero, v61 = zero, v70 = zero, v71 = zero;
    for (size_t k = 0; k < kc; k += 16) {
        const uint8x16_t x0 = vld1q_u8(ar[0] + k), x1 = vld1q_u8(ar[1] + k);
        const uint8x16_t x2 = vld1q_u8(ar[2] + k), x3 = vld1q_u8(ar[3] + k);
        const uint8x16_t x4 = vld1q_u8(ar[4] + k), x5 = vld1q_u8(ar[5] + k);
        const uint8x16_t x6 = vld1q_u8(ar[6] + k), x7 = vld1q_u8(ar[7] + k);
        TM_DOT_QUAD(0);
        TM_DOT_QUAD(1);
        TM_DOT_QUAD(2);
        TM_DOT_QUAD(3);
    }
    const uint32x4_t acc[8][2] = {{v00, v01}, {v10, v11}, {v20, v21}, {v30, v31},
                                  {v40, v41}, {v50, v51}, {v60, v61}, {v70, v71}};
    const int32x4_t b_lo = vld1q_s32(head), b_hi = vld1q_s32(head + 4);
    const int32x4_t z_lo = vld1q_s32(head + 24), z_hi = vld1q_s32(head + 28);
    for (size_t r = 0; r < 8; r++) {
        int32x4_t lo = vaddq_s32(b_lo, vreinterpretq_s32_u32(acc[r][0]));
        int32x4_t hi = vaddq_s32(b_hi, vreinterpretq_s32_u32(acc[r][1]));
        lo = vmlsq_n_s32(lo, z_lo, rs[r]);
        hi = vmlsq_n_s32(hi, z_hi, rs[r]);
        lo = tm_qu8_requant_neon(lo, head + 8, head + 16, params);
        hi = tm_qu8_requant_neon(hi, head + 12, head + 20, params);
        const uint8x8_t bytes = tm_qu8_pack8_neon(lo, hi);
        if (nc == 8) {
            vst1_u8(cr[r], bytes);
        } else {
            uint8_t tmp[8];
            vst1_u8(tmp, bytes);
            memcpy(cr[r], tmp, nc);
        }
    }
}

#pragma GCC pop_options
#endif
