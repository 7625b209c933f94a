#include <string.h>

#include "../qu8_requant.h"

#ifdef TM_ARCH_X86
/* 6x16 quantized GEMM tile for AVX2: activations are int16 (zero-extended uint8), weights int16
 * in k-pairs, so one vpmaddwd gives two exact products summed in int32 (|x * w'| <= 255 * 255).
 * 12 int32 accumulators; one 32-bit broadcast (two k's) per row per k-pair. Rows past mr alias
 * the last valid row (same input, same output: harmless duplicate work). */
TM_TARGET_AVX2 void tm_qu8_gemm_6x16__avx2(size_t mr, size_t nc, size_t kc, const int16_t* a,
                                           size_t a_stride, const void* wv, uint8_t* c,
                                           size_t c_stride, const tm_qu8_requant_params* params) {
    const int16_t* a0 = a;
    uint8_t* c0 = c;
    const int16_t* a1 = mr > 1 ? a0 + a_stride : a0;
    uint8_t* c1 = mr > 1 ? c0 + c_stride : c0;
    const int16_t* a2 = mr > 2 ? a1 + a_stride : a1;
    uint8_t* c2 = mr > 2 ? c1 + c_stride : c1;
    const int16_t* a3 = mr > 3 ? a2 + a_stride : a2;
    uint8_t* c3 = mr > 3 ? c2 + c_stride : c2;
    const int16_t* a4 = mr > 4 ? a3 + a_stride : a3;
    uint8_t* c4 = mr > 4 ? c3 + c_stride : c3;
    const int16_t* a5 = mr > 5 ? a4 + a_stride : a4;
    uint8_t* c5 = mr > 5 ? c4 + c_stride : c4;

    const int32_t* head = (const int32_t*)wv; /* bias[16], multiplier[16], shift[16] */
    __m256i v00 = _mm256_loadu_si256((const __m256i*)head);
    __m256i v01 = _mm256_loadu_si256((const __m256i*)(head + 8));
    __m256i v10 = v00, v11 = v01, v20 = v00, v21 = v01, v30 = v00, v31 = v01;
    __m256i v40 = v00, v41 = v01, v50 = v00, v51 = v01;
    const int16_t* w = (const int16_t*)(head + 48);
    for (size_t k = 0; k < kc; k += 2) {
        const __m256i b0 = _mm256_loadu_si256((const __m256i*)w);
        const __m256i b1 = _mm256_loadu_si256((const __m256i*)(w + 16));
        w += 32;
        int32_t pair;
        memcpy(&pair, a0 + k, 4);
        __m256i x = _mm256_set1_epi32(pair);
        v00 = _mm256_add_epi32(v00, _mm256_madd_epi16(x, b0));
        v01 = _mm256_add_epi32(v01, _mm256_madd_epi16(x, b1));
        memcpy(&pair, a1 + k, 4);
        x = _mm256_set1_epi32(pair);
        v10 = _mm256_add_epi32(v10, _mm256_madd_epi16(x, b0));
        v11 = _mm256_add_epi32(v11, _mm256_madd_epi16(x, b1));
        memcpy(&pair, a2 + k, 4);
        x = _mm256_set1_epi32(pair);
        v20 = _mm256_add_epi32(v20, _mm256_madd_epi16(x, b0));
        v21 = _mm256_add_epi32(v21, _mm256_madd_epi16(x, b1));
        memcpy(&pair, a3 + k, 4);
        x = _mm256_set1_epi32(pair);
        v30 = _mm256_add_epi32(v30, _mm256_madd_epi16(x, b0));
        v31 = _mm256_add_epi32(v31, _mm256_madd_epi16(x, b1));
        memcpy(&pair, a4 + k, 4);
        x = _mm256_set1_epi32(pair);
        v40 = _mm256_add_epi32(v40, _mm256_madd_epi16(x, b0));
        v41 = _mm256_add_epi32(v41, _mm256_madd_epi16(x, b1));
        memcpy(&pair, a5 + k, 4);
        x = _mm256_set1_epi32(pair);
        v50 = _mm256_add_epi32(v50, _mm256_madd_epi16(x, b0));
        v51 = _mm256_add_epi32(v51, _mm256_madd_epi16(x, b1));
    }
    const __m256i acc[6][2] = {{v00, v01}, {v10, v11}, {v20, v21}, {v30, v31}, {v40, v41}, {v50, v51}};
    uint8_t* const out[6] = {c0, c1, c2, c3, c4, c5};
    for (size_t r = 0; r < 6; r++) {
        const __m256i lo = tm_qu8_requant_avx2(acc[r][0], head + 16, head + 32, params);
        const __m256i hi = tm_qu8_requant_avx2(acc[r][1], head + 24, head + 40, params);
        const __m128i bytes = tm_qu8_pack16_avx2(lo, hi);
        if (nc == 16) {
            _mm_storeu_si128((__m128i*)out[r], bytes);
        } else {
            uint8_t tmp[16];
            _mm_storeu_si128((__m128i*)tmp, bytes);
            memcpy(out[r], tmp, nc);
        }
    }
}
#endif
