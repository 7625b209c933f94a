/* The body of the avx512vnni integer GEMM tiles of MR (8 or 7) rows x 32 columns, one inline
 * function both tile files instantiate (the 7-row one for pointwise layers of 49 / 196 rows). */
#ifndef TINYMOBILE_QU8_GEMM_MRX32_AVX512VNNI_H
#define TINYMOBILE_QU8_GEMM_MRX32_AVX512VNNI_H

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

/* MRx32 quantized GEMM tile for AVX-512 VNNI (MR = 8 or 7): uint8 activations times signed
 * 8-bit weights (w' + z, z per column, see tm_qu8_gemm_pack), four products a vpdpbusd into int32 lanes,
 * 2 MR accumulators of 16 columns, two weight vectors and one broadcast per row (19 of 32 zmm).
 * kc a multiple of 4 (weights past k are zero, so the activation bytes there only need to be
 * readable); row_sums (or NULL when every z is 0): acc -= z * row_sum. Integer arithmetic wraps
 * modulo 2^32 in every lane, so the sum is exact whenever the true accumulator fits int32
 * (tm_qu8_gemm_pack bounds k). Rows past mr alias the last valid row (same input, same output). */
static inline __attribute__((always_inline)) TM_TARGET_AVX512VNNI void tm_qu8_gemm_mrx32_avx512vnni(
    size_t MR, size_t mr, size_t nc, size_t kc, const uint8_t* a, size_t a_stride,
    const int32_t* row_sums, const void* wv, uint8_t* c, size_t c_stride,
    const tm_qu8_requant_params* params) {
    const uint8_t* ar[8];
    uint8_t* cr[8];
    int32_t rs[8];
    ar[0] = a, cr[0] = c, rs[0] = row_sums != NULL ? row_sums[0] : 0;
    for (size_t r = 1; r < MR; r++) { /* rows past mr alias the last one */
        const int more = r < mr;
        ar[r] = more ? ar[r - 1] + a_stride : ar[r - 1];
        cr[r] = more ? cr[r - 1] + c_stride : cr[r - 1];
        rs[r] = more && row_sums != NULL ? row_sums[r] : rs[r - 1];
    }
    const uint8_t *a0 = ar[0], *a1 = ar[1], *a2 = ar[2], *a3 = ar[3];
    const uint8_t *a4 = ar[4], *a5 = ar[5], *a6 = ar[6], *a7 = ar[MR == 8 ? 7 : 6];
    /* bias[32], multiplier[32], shift[32], z[32], then the derived requantization constants
     * (tm_qu8_gemm_pack: odd multipliers, left shifts, ke, ko, ce, co, se, so: 32 each) */
    const int32_t* head = (const int32_t*)wv;
    __m512i v00 = _mm512_loadu_si512((const void*)head);
    __m512i v01 = _mm512_loadu_si512((const void*)(head + 16));
    __m512i v10 = v00, v11 = v01, v20 = v00, v21 = v01, v30 = v00, v31 = v01;
    __m512i v40 = v00, v41 = v01, v50 = v00, v51 = v01, v60 = v00, v61 = v01;
    __m512i v70 = v00, v71 = v01;
    const int8_t* w = (const int8_t*)(head + TM_QU8_DOT_HEAD_FIELDS * 32);
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
        if (MR == 8) TM_VNNI_ROW(7);
    }
    const __m512i z0 = _mm512_loadu_si512((const void*)(head + 96));
    const __m512i z1 = _mm512_loadu_si512((const void*)(head + 112));
    const __m512i zp16 = _mm512_set1_epi16((short)params->output_zero_point);
    const __m512i min8 = _mm512_set1_epi8((char)params->min);
    const __m512i max8 = _mm512_set1_epi8((char)params->max);
    /* rows a, b: the weight offsets' share off, requantized, packed to bytes, stored */
#define TM_VNNI_OUT(ra, rb)                                                                   \
    do {                                                                                      \
        __m512i alo = v##ra##0, ahi = v##ra##1, blo = v##rb##0, bhi = v##rb##1;               \
        if (row_sums != NULL) {                                                               \
            const __m512i sa = _mm512_set1_epi32(rs[ra]), sb = _mm512_set1_epi32(rs[rb]);     \
            alo = _mm512_sub_epi32(alo, _mm512_mullo_epi32(z0, sa));                          \
            ahi = _mm512_sub_epi32(ahi, _mm512_mullo_epi32(z1, sa));                          \
            blo = _mm512_sub_epi32(blo, _mm512_mullo_epi32(z0, sb));                          \
            bhi = _mm512_sub_epi32(bhi, _mm512_mullo_epi32(z1, sb));                          \
        }                                                                                     \
        alo = tm_qu8_mbqm64_pre_avx512(alo, head + 32, head + 128, 32, lefts);                       \
        blo = tm_qu8_mbqm64_pre_avx512(blo, head + 32, head + 128, 32, lefts);                       \
        if (nc > 16) {                                                                        \
            ahi = tm_qu8_mbqm64_pre_avx512(ahi, head + 48, head + 144, 32, lefts);                   \
            bhi = tm_qu8_mbqm64_pre_avx512(bhi, head + 48, head + 144, 32, lefts);                   \
        }                                                                                     \
        const __m512i u = tm_qu8_pack_rows32_avx512(alo, ahi, blo, bhi, zp16, min8, max8);    \
        if (nc == 32) {                                                                       \
            _mm256_storeu_si256((__m256i*)cr[ra], _mm512_castsi512_si256(u));                 \
            _mm256_storeu_si256((__m256i*)cr[rb], _mm512_extracti64x4_epi64(u, 1));           \
        } else {                                                                              \
            _mm256_mask_storeu_epi8(cr[ra], m, _mm512_castsi512_si256(u));                    \
            _mm256_mask_storeu_epi8(cr[rb], m, _mm512_extracti64x4_epi64(u, 1));              \
        }                                                                                     \
    } while (0)
    const __mmask32 m = (__mmask32)(nc >= 32 ? 0xFFFFFFFFu : (1u << nc) - 1);
    /* some column shifts left (rare: scales above 1); else the shift is left out */
    const __m512i any_left = _mm512_or_si512(_mm512_loadu_si512((const void*)(head + 160)),
                                             _mm512_loadu_si512((const void*)(head + 176)));
    const int lefts = _mm512_test_epi32_mask(any_left, any_left) != 0;
    if (lefts) { /* the same code twice: without left shifts the shift by zero folds away */
        TM_VNNI_OUT(0, 1);
        TM_VNNI_OUT(2, 3);
        TM_VNNI_OUT(4, 5);
        if (MR == 8) TM_VNNI_OUT(6, 7);
        else TM_VNNI_OUT(6, 6); /* row 6 twice: the same bytes */
    } else {
        const int lefts = 0;
        TM_VNNI_OUT(0, 1);
        TM_VNNI_OUT(2, 3);
        TM_VNNI_OUT(4, 5);
        if (MR == 8) TM_VNNI_OUT(6, 7);
        else TM_VNNI_OUT(6, 6); /* row 6 twice: the same bytes */
    }
#undef TM_VNNI_OUT
}
#endif

#endif
