#include <string.h>

#include "../qu8_requant.h"

#ifdef TM_ARCH_X86
/* 16x8 quantized GEMM tile for AVX-512 VNNI, for panels of at most 8 columns (the first layer's
 * 8 output channels at alpha 0.25), on the 8x32 tile's packing (tm_qu8_gemm_pack, nr = 32:
 * columns 0..7 of each k-quad are its first 32 bytes). An 8-column k-quad fills half a vector,
 * so each vpdpbusd takes two: lane 2j holds column j's k-quad q, lane 2j + 1 its quad q + 1
 * (one vpermt2d of two 32-byte loads per k-octet, shared by the 16 rows), times the row's eight
 * bytes k..k+7 broadcast to every 64-bit lane. kc a multiple of 4; an odd last quad pairs with
 * zero weights and its four bytes broadcast to every 32-bit lane (nothing past kc is read).
 * Integer sums in any order are exact (wrapping int32, bounded as for the 8x32 tile), so the
 * lane pairs are added at the end: even lanes take row 2i's sums, odd lanes row 2i + 1's, and one
 * requantization of 16 lanes (constants laid out in column pairs) serves both rows. row_sums
 * (or NULL when every z is 0): acc -= z * row_sum. Rows past mr alias the last valid row. */
#define TM_N8_ROW(r)                                                           \
    do {                                                                       \
        int64_t oct;                                                           \
        memcpy(&oct, a##r + k, 8);                                             \
        v##r = _mm512_dpbusd_epi32(v##r, _mm512_set1_epi64(oct), b);           \
    } while (0)
#define TM_N8_HALF(r)                                                          \
    do {                                                                       \
        int32_t quad;                                                          \
        memcpy(&quad, a##r + k, 4);                                            \
        v##r = _mm512_dpbusd_epi32(v##r, _mm512_set1_epi32(quad), b);          \
    } while (0)
#define TM_N8_ALL(M)                                                                         \
    M(0); M(1); M(2); M(3); M(4); M(5); M(6); M(7);                                          \
    M(8); M(9); M(10); M(11); M(12); M(13); M(14); M(15)

/* Lanes 2j and 2j + 1 both take element j of the first 8 int32 at p. */
static inline TM_TARGET_AVX512VNNI __m512i tm_qu8_n8_pairs(const int32_t* p) {
    const __m512i idx = _mm512_set_epi32(7, 7, 6, 6, 5, 5, 4, 4, 3, 3, 2, 2, 1, 1, 0, 0);
    return _mm512_permutexvar_epi32(idx, _mm512_castsi256_si512(_mm256_loadu_si256((const __m256i*)p)));
}

TM_TARGET_AVX512VNNI void tm_qu8_gemm_16x8__avx512vnni(size_t mr, size_t nc, size_t kc,
                                                       const uint8_t* a, size_t a_stride,
                                                       const int32_t* row_sums, const void* wv,
                                                       uint8_t* c, size_t c_stride,
                                                       const tm_qu8_requant_params* params) {
    const uint8_t* ar[16];
    uint8_t* cr[16];
    int32_t rs[16];
    for (size_t r = 0; r < 16; r++) {
        const size_t i = r < mr ? r : mr - 1;
        ar[r] = a + i * a_stride;
        cr[r] = c + i * c_stride;
        rs[r] = row_sums != NULL ? row_sums[i] : 0;
    }
    const uint8_t *a0 = ar[0], *a1 = ar[1], *a2 = ar[2], *a3 = ar[3];
    const uint8_t *a4 = ar[4], *a5 = ar[5], *a6 = ar[6], *a7 = ar[7];
    const uint8_t *a8 = ar[8], *a9 = ar[9], *a10 = ar[10], *a11 = ar[11];
    const uint8_t *a12 = ar[12], *a13 = ar[13], *a14 = ar[14], *a15 = ar[15];
    const int32_t* head = (const int32_t*)wv;
    /* the pair layout: lane 2j column j's quad q, lane 2j + 1 its quad q + 1 */
    const __m512i inter = _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    const __m512i zero = _mm512_setzero_si512();
    /* bias in the even lanes (added once per column), zeros in the odd ones */
    const __m512i bias = _mm512_permutex2var_epi32(
        _mm512_castsi256_si512(_mm256_loadu_si256((const __m256i*)head)), inter, zero);
    __m512i v0 = bias, v1 = bias, v2 = bias, v3 = bias, v4 = bias, v5 = bias, v6 = bias, v7 = bias;
    __m512i v8 = bias, v9 = bias, v10 = bias, v11 = bias, v12 = bias, v13 = bias, v14 = bias;
    __m512i v15 = bias;
    const uint8_t* w = (const uint8_t*)(head + TM_QU8_DOT_HEAD_FIELDS * 32);
    size_t k = 0;
    for (; k + 8 <= kc; k += 8) {
        const __m512i b = _mm512_permutex2var_epi32(
            _mm512_castsi256_si512(_mm256_loadu_si256((const __m256i*)w)), inter,
            _mm512_castsi256_si512(_mm256_loadu_si256((const __m256i*)(w + 128))));
        w += 256;
        TM_N8_ALL(TM_N8_ROW);
    }
    if (k < kc) { /* one k-quad left: its partner lanes get zero weights */
        const __m512i b = _mm512_permutex2var_epi32(
            _mm512_castsi256_si512(_mm256_loadu_si256((const __m256i*)w)), inter, zero);
        TM_N8_ALL(TM_N8_HALF);
    }
    const __m512i acc[16] = {v0, v1, v2, v3, v4, v5, v6, v7, v8, v9, v10, v11, v12, v13, v14, v15};
    /* requantization constants in column pairs (both lanes of pair j: column j; so the even and
     * the odd lanes' int64 constants are the same vector, column j in 64-bit lane j) */
    const __m512i mult = tm_qu8_n8_pairs(head + 32);
    const __m512i mult_odd = _mm512_srli_epi64(mult, 32);
    const __m512i left = tm_qu8_n8_pairs(head + 5 * 32);
    const __m512i z = tm_qu8_n8_pairs(head + 3 * 32);
    const __m512i e = _mm512_max_epi64(
        _mm512_sub_epi64(zero, _mm512_cvtepi32_epi64(_mm256_loadu_si256((const __m256i*)(head + 64)))),
        zero);
    const __mmask8 rounds = _mm512_cmpgt_epi64_mask(e, zero);
    const __m512i one = _mm512_set1_epi64(1);
    const __m512i kk = _mm512_mask_add_epi64(
        _mm512_set1_epi64((long long)1 << 30), rounds, _mm512_set1_epi64((long long)1 << 30),
        _mm512_sllv_epi64(one, _mm512_add_epi64(e, _mm512_set1_epi64(30))));
    const __m512i cc = _mm512_maskz_mov_epi64(rounds, _mm512_set1_epi64((long long)1 << 31));
    const __m512i ss = _mm512_add_epi64(e, _mm512_set1_epi64(31));
    const __m512i zp_out = _mm512_set1_epi32(params->output_zero_point);
    const __m512i vmin = _mm512_set1_epi32(params->min), vmax = _mm512_set1_epi32(params->max);
    /* vpmovdb gives row A's and row B's bytes interleaved; this puts A's first */
    const __m128i split = _mm_setr_epi8(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15);
    const __mmask16 m = (__mmask16)((1u << nc) - 1);
    for (size_t r = 0; r < 16; r += 2) {
        /* even lanes: row r's column sums; odd lanes: row r + 1's */
        const __m512i sa = _mm512_add_epi32(acc[r], _mm512_srli_epi64(acc[r], 32));
        const __m512i sb = _mm512_add_epi32(acc[r + 1], _mm512_slli_epi64(acc[r + 1], 32));
        __m512i s = _mm512_mask_blend_epi32((__mmask16)0xAAAA, sa, sb);
        if (row_sums != NULL) {
            const __m512i sums = _mm512_mask_blend_epi32((__mmask16)0xAAAA, _mm512_set1_epi32(rs[r]),
                                                         _mm512_set1_epi32(rs[r + 1]));
            s = _mm512_sub_epi32(s, _mm512_mullo_epi32(z, sums));
        }
        const __m512i y = tm_qu8_requant64_avx512(s, mult, mult_odd, left, kk, kk, cc, cc, ss, ss,
                                                  zp_out, vmin, vmax);
        __m128i bytes = _mm512_cvtepi32_epi8(y);
        __asm__("" : "+v"(bytes)); /* keep vpmovdb in a register (see tm_qu8_store16_avx512) */
        bytes = _mm_shuffle_epi8(bytes, split);
        if (nc == 8) {
            _mm_storel_epi64((__m128i*)cr[r], bytes);
            _mm_storel_epi64((__m128i*)cr[r + 1], _mm_unpackhi_epi64(bytes, bytes));
        } else {
            _mm_mask_storeu_epi8(cr[r], m, bytes);
            _mm_mask_storeu_epi8(cr[r + 1], m, _mm_unpackhi_epi64(bytes, bytes));
        }
    }
}
#endif
