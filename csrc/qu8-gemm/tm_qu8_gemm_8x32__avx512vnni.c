#include <string.h>

#include "../qu8_requant.h"

#ifdef TM_ARCH_X86
/* One k-quad of row r: four activation bytes broadcast to every 32-bit lane, times the two
 * weight vectors (16 columns x 4 signed bytes each). */
#define TM_VNNI_ROW(r)                                               \
    do {                                                             \
        int32_t quad;                                                \
        memcpy(&quad, a##r + k, 4);                                  \
        const __m512i x = _mm512_set1_epi32(quad);                   \
        v##r##0 = _mm512_dpbusd_epi32(v##r##0, x, b0);               \
        v##r##1 = _mm512_dpbusd_epi32(v##r##1, x, b1);               \
    } while (0)

/* 8x32 quantized GEMM tile for AVX-512 VNNI: uint8 activations times signed 8-bit weights
 * (w' + z, z per column, see tm_qu8_gemm_pack), four products a vpdpbusd into int32 lanes,
 * 16 accumulators of 16 columns, two weight vectors and one broadcast per row (19 of 32 zmm).
 * kc a multiple of 4 (weights past k are zero, so the activation bytes there only need to be
 * readable); row_sums (or NULL when every z is 0): acc -= z * row_sum. Integer arithmetic wraps
 * modulo 2^32 in every lane, so the sum is exact whenever the true accumulator fits int32
 * (tm_qu8_gemm_pack bounds k). Rows past mr alias the last valid row (same input, same output). */
TM_TARGET_AVX512VNNI void tm_qu8_gemm_8x32__avx512vnni(size_t mr, size_t nc, size_t kc,
                                                           const uint8_t* a, size_t a_stride,
                                                           const int32_t* row_sums, const void* wv,
                                                           uint8_t* c, size_t c_stride,
                                                           const tm_qu8_requant_params* params) {
    const uint8_t* ar[8];
    uint8_t* cr[8];
    for (size_t r = 0; r < 8; r++) {
        const size_t i = r < mr ? r : mr - 1;
        ar[r] = a + i * a_stride;
        cr[r] = c + i * c_stride;
    }
    const uint8_t *a0 = ar[0], *a1 = ar[1], *a2 = ar[2], *a3 = ar[3];
    const uint8_t *a4 = ar[4], *a5 = ar[5], *a6 = ar[6], *a7 = ar[7];
    /* bias[32], multiplier[32], shift[32], z[32], then the derived requantization constants
     * (odd multipliers, left, right, mask, half: 32 each) */
    const int32_t* head = (const int32_t*)wv;
    __m512i v00 = _mm512_loadu_si512((const void*)head);
    __m512i v01 = _mm512_loadu_si512((const void*)(head + 16));
    __m512i v10 = v00, v11 = v01, v20 = v00, v21 = v01, v30 = v00, v31 = v01;
    __m512i v40 = v00, v41 = v01, v50 = v00, v51 = v01, v60 = v00, v61 = v01;
    __m512i v70 = v00, v71 = v01;
    const int8_t* w = (const int8_t*)(head + 9 * 32);
    for (size_t k = 0; k < kc; k += 4) {
        const __m512i b0 = _mm512_loadu_si512((const void*)w);
        const __m512i b1 = _mm512_loadu_si512((const void*)(w + 64));
        w += 128;
        TM_VNNI_ROW(0);
        TM_VNNI_ROW(1);
        TM_VNNI_ROW(2);
        TM_VNNI_ROW(3);
        TM_VNNI_ROW(4);
        TM_VNNI_ROW(5);
        TM_VNNI_ROW(6);
        TM_VNNI_ROW(7);
    }
    const __m512i acc[8][2] = {{v00, v01}, {v10, v11}, {v20, v21}, {v30, v31},
                               {v40, v41}, {v50, v51}, {v60, v61}, {v70, v71}};
    const __m512i z0 = _mm512_loadu_si512((const void*)(head + 96));
    const __m512i z1 = _mm512_loadu_si512((const void*)(head + 112));
    const __mmask16 m0 = (__mmask16)(nc >= 16 ? 0xFFFF : (1u << nc) - 1);
    const __mmask16 m1 = (__mmask16)(nc >= 32 ? 0xFFFF : nc <= 16 ? 0 : (1u << (nc - 16)) - 1);
    for (size_t r = 0; r < 8; r++) {
        __m512i lo = acc[r][0], hi = acc[r][1];
        if (row_sums != NULL) {
            const __m512i s = _mm512_set1_epi32(row_sums[r < mr ? r : mr - 1]);
            lo = _mm512_sub_epi32(lo, _mm512_mullo_epi32(z0, s));
            hi = _mm512_sub_epi32(hi, _mm512_mullo_epi32(z1, s));
        }
        tm_qu8_store16_avx512(cr[r], tm_qu8_requant_pre_avx512(lo, head + 32, head + 128, 32, params), m0);
        if (nc > 16)
            tm_qu8_store16_avx512(cr[r] + 16, tm_qu8_requant_pre_avx512(hi, head + 48, head + 144, 32, params), m1);
    }
}
#endif
