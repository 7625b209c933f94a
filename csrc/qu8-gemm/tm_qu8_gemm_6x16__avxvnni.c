#include <string.h>

#include "../qu8_requant.h"

#ifdef TM_ARCH_X86
/* One k-quad of row r: four activation bytes broadcast to every 32-bit lane, times the two
 * weight vectors (8 columns x 4 signed bytes each). */
#define TM_AVXVNNI_ROW(r)                                            \
    do {                                                             \
        int32_t quad;                                                \
        memcpy(&quad, a##r + k, 4);                                  \
        const __m256i x = _mm256_set1_epi32(quad);                   \
        v##r##0 = _mm256_dpbusd_avx_epi32(v##r##0, x, b0);           \
        v##r##1 = _mm256_dpbusd_avx_epi32(v##r##1, x, b1);           \
    } while (0)

/* 6x16 quantized GEMM tile for AVX-VNNI (the VEX vpdpbusd of CPUs without AVX-512, e.g. Alder
 * Lake): the contract of tm_qu8_gemm_8x32__avx512vnni with 16-column panels, 12 ymm
 * accumulators, two weight vectors and one broadcast (15 of 16 registers). */
TM_TARGET_AVXVNNI void tm_qu8_gemm_6x16__avxvnni(size_t mr, size_t nc, size_t kc,
                                                     const uint8_t* a, size_t a_stride,
                                                     const int32_t* row_sums, const void* wv,
                                                     uint8_t* c, size_t c_stride,
                                                     const tm_qu8_requant_params* params) {
    const uint8_t* ar[6];
    uint8_t* cr[6];
    for (size_t r = 0; r < 6; r++) {
        const size_t i = r < mr ? r : mr - 1;
        ar[r] = a + i * a_stride;
        cr[r] = c + i * c_stride;
    }
    const uint8_t *a0 = ar[0], *a1 = ar[1], *a2 = ar[2], *a3 = ar[3], *a4 = ar[4], *a5 = ar[5];
    /* bias[16], multiplier[16], shift[16], z[16], then 5 x 16 derived constants (not used) */
    const int32_t* head = (const int32_t*)wv;
    __m256i v00 = _mm256_loadu_si256((const __m256i*)head);
    __m256i v01 = _mm256_loadu_si256((const __m256i*)(head + 8));
    __m256i v10 = v00, v11 = v01, v20 = v00, v21 = v01, v30 = v00, v31 = v01;
    __m256i v40 = v00, v41 = v01, v50 = v00, v51 = v01;
    const int8_t* w = (const int8_t*)(head + TM_QU8_DOT_HEAD_FIELDS * 16);
    for (size_t k = 0; k < kc; k += 4) {
        const __m256i b0 = _mm256_loadu_si256((const __m256i*)w);
        const __m256i b1 = _mm256_loadu_si256((const __m256i*)(w + 32));
        w += 64;
        TM_AVXVNNI_ROW(0);
        TM_AVXVNNI_ROW(1);
        TM_AVXVNNI_ROW(2);
        TM_AVXVNNI_ROW(3);
        TM_AVXVNNI_ROW(4);
        TM_AVXVNNI_ROW(5);
    }
    const __m256i acc[6][2] = {{v00, v01}, {v10, v11}, {v20, v21}, {v30, v31}, {v40, v41}, {v50, v51}};
    const __m256i z0 = _mm256_loadu_si256((const __m256i*)(head + 48));
    const __m256i z1 = _mm256_loadu_si256((const __m256i*)(head + 56));
    for (size_t r = 0; r < 6; r++) {
        __m256i lo = acc[r][0], hi = acc[r][1];
        if (row_sums != NULL) {
            const __m256i s = _mm256_set1_epi32(row_sums[r < mr ? r : mr - 1]);
            lo = _mm256_sub_epi32(lo, _mm256_mullo_epi32(z0, s));
            hi = _mm256_sub_epi32(hi, _mm256_mullo_epi32(z1, s));
        }
        lo = tm_qu8_requant_avx2(lo, head + 16, head + 32, params);
        hi = tm_qu8_requant_avx2(hi, head + 24, head + 40, params);
        const __m128i bytes = tm_qu8_pack16_avx2(lo, hi);
        if (nc == 16) {
            _mm_storeu_si128((__m128i*)cr[r], bytes);
        } else {
            uint8_t tmp[16];
            _mm_storeu_si128((__m128i*)tmp, bytes);
            memcpy(cr[r], tmp, nc);
        }
    }
}
#endif
