/* Sums of activation rows for the dot-product GEMMs (their weight offsets z times the row sum
 * come off the accumulators). SSE2 (every x86-64): psadbw adds 8 bytes into a 64-bit lane. */
#include "internal.h"

#if defined(TM_ARCH_X86) && defined(__SSE2__)
#include <emmintrin.h>
#include <string.h>

void tm_qu8_row_sums(const uint8_t* a, size_t rows, size_t k, size_t stride, int32_t* sums) {
    const __m128i zero = _mm_setzero_si128();
    for (size_t i = 0; i < rows; i++) {
        const uint8_t* src = a + i * stride;
        __m128i acc = zero;
        size_t kk = 0;
        for (; kk + 16 <= k; kk += 16)
            acc = _mm_add_epi64(acc, _mm_sad_epu8(_mm_loadu_si128((const __m128i*)(src + kk)), zero));
        if (kk + 8 <= k) {
            acc = _mm_add_epi64(acc, _mm_sad_epu8(_mm_loadl_epi64((const __m128i*)(src + kk)), zero));
            kk += 8;
        }
        if (kk + 4 <= k) {
            int32_t quad;
            memcpy(&quad, src + kk, 4);
            acc = _mm_add_epi64(acc, _mm_sad_epu8(_mm_cvtsi32_si128(quad), zero));
            kk += 4;
        }
        uint32_t sum = (uint32_t)_mm_cvtsi128_si32(_mm_add_epi64(acc, _mm_unpackhi_epi64(acc, acc)));
        for (; kk < k; kk++) sum += src[kk];
        sums[i] = (int32_t)sum;
    }
}
#else
void tm_qu8_row_sums(const uint8_t* a, size_t rows, size_t k, size_t stride, int32_t* sums) {
    for (size_t i = 0; i < rows; i++) {
        const uint8_t* src = a + i * stride;
        uint32_t sum = 0;
        for (size_t kk = 0; kk < k; kk++) sum += src[kk];
        sums[i] = (int32_t)sum;
    }
}
#endif
