#include "../internal.h"

#ifdef TM_ARCH_X86
#include <immintrin.h>

/* Global max pool, 32 channels per iteration in four vectors (independent max chains), then 8 per
 * vector; the channel tail is done in scalar code. Max is exact, so every path gives the scalar
 * kernel's result bit for bit. */
TM_TARGET_AVX2 void tm_f32_maxpool__avx2(size_t pixels, size_t channels, const float* in,
                                         float* out) {
    size_t c = 0;
    for (; c + 32 <= channels; c += 32) {
        const float* p0 = in + c;
        __m256 m0 = _mm256_loadu_ps(p0), m1 = _mm256_loadu_ps(p0 + 8);
        __m256 m2 = _mm256_loadu_ps(p0 + 16), m3 = _mm256_loadu_ps(p0 + 24);
        for (size_t p = 1; p < pixels; p++) {
            const float* q = in + p * channels + c;
            m0 = _mm256_max_ps(m0, _mm256_loadu_ps(q));
            m1 = _mm256_max_ps(m1, _mm256_loadu_ps(q + 8));
            m2 = _mm256_max_ps(m2, _mm256_loadu_ps(q + 16));
            m3 = _mm256_max_ps(m3, _mm256_loadu_ps(q + 24));
        }
        _mm256_storeu_ps(out + c, m0);
        _mm256_storeu_ps(out + c + 8, m1);
        _mm256_storeu_ps(out + c + 16, m2);
        _mm256_storeu_ps(out + c + 24, m3);
    }
    for (; c + 8 <= channels; c += 8) {
        __m256 m = _mm256_loadu_ps(in + c);
        for (size_t p = 1; p < pixels; p++) m = _mm256_max_ps(m, _mm256_loadu_ps(in + p * channels + c));
        _mm256_storeu_ps(out + c, m);
    }
    for (; c < channels; c++) {
        float m = in[c];
        for (size_t p = 1; p < pixels; p++) {
            const float v = in[p * channels + c];
            m = v > m ? v : m;
        }
        out[c] = m;
    }
}
#endif
