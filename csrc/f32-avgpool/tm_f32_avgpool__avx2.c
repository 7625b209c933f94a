#include "../internal.h"

#ifdef TM_ARCH_X86
#include <immintrin.h>

/* Global average pool, 8 channels per vector; the channel tail is summed in scalar code, in the
 * same order as the scalar kernel. */
TM_TARGET_AVX2 void tm_f32_avgpool__avx2(size_t pixels, size_t channels, const float* in,
                                         float* out) {
    const float scale = 1.0f / (float)pixels;
    const __m256 vscale = _mm256_set1_ps(scale);
    size_t c = 0;
    for (; c + 8 <= channels; c += 8) {
        __m256 acc = _mm256_setzero_ps();
        for (size_t p = 0; p < pixels; p++) acc = _mm256_add_ps(acc, _mm256_loadu_ps(in + p * channels + c));
        _mm256_storeu_ps(out + c, _mm256_mul_ps(acc, vscale));
    }
    for (; c < channels; c++) {
        float acc = 0.0f;
        for (size_t p = 0; p < pixels; p++) acc += in[p * channels + c];
        out[c] = acc * scale;
    }
}
#endif
