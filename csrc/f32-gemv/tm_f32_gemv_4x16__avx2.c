#include <string.h>

#include "../internal.h"

#ifdef TM_ARCH_X86
#include <immintrin.h>

/* One row times up to four consecutive packed panels of 16 columns (a fully connected layer at
 * batch 1). The GEMM tile would run a single row with two accumulators, each a chain of kc
 * dependent FMAs (latency-bound at a quarter of the FMA rate); four panels give eight
 * independent chains. Every column is still bias + a[0] w[0] + a[1] w[1] + ... in that order,
 * one FMA at a time, exactly as the GEMM tile computes it: results are bit-identical to the
 * same row inside a batch. */
TM_TARGET_AVX2 void tm_f32_gemv_4x16__avx2(size_t panels, size_t nc, size_t kc, const float* a,
                                           const float* w, size_t panel_floats, float* c,
                                           const tm_f32_minmax_params* params) {
    const float* w0 = w;
    const float* w1 = panels > 1 ? w0 + panel_floats : w0;
    const float* w2 = panels > 2 ? w1 + panel_floats : w1;
    const float* w3 = panels > 3 ? w2 + panel_floats : w2;
    __m256 v00 = _mm256_loadu_ps(w0), v01 = _mm256_loadu_ps(w0 + 8);
    __m256 v10 = _mm256_loadu_ps(w1), v11 = _mm256_loadu_ps(w1 + 8);
    __m256 v20 = _mm256_loadu_ps(w2), v21 = _mm256_loadu_ps(w2 + 8);
    __m256 v30 = _mm256_loadu_ps(w3), v31 = _mm256_loadu_ps(w3 + 8);
    w0 += 16; w1 += 16; w2 += 16; w3 += 16;
    for (size_t k = 0; k < kc; k++, w0 += 16, w1 += 16, w2 += 16, w3 += 16) {
        const __m256 x = _mm256_broadcast_ss(a + k);
        v00 = _mm256_fmadd_ps(x, _mm256_loadu_ps(w0), v00);
        v01 = _mm256_fmadd_ps(x, _mm256_loadu_ps(w0 + 8), v01);
        v10 = _mm256_fmadd_ps(x, _mm256_loadu_ps(w1), v10);
        v11 = _mm256_fmadd_ps(x, _mm256_loadu_ps(w1 + 8), v11);
        v20 = _mm256_fmadd_ps(x, _mm256_loadu_ps(w2), v20);
        v21 = _mm256_fmadd_ps(x, _mm256_loadu_ps(w2 + 8), v21);
        v30 = _mm256_fmadd_ps(x, _mm256_loadu_ps(w3), v30);
        v31 = _mm256_fmadd_ps(x, _mm256_loadu_ps(w3 + 8), v31);
    }
    const __m256 lo = _mm256_set1_ps(params->min), hi = _mm256_set1_ps(params->max);
    __m256 v[8] = {v00, v01, v10, v11, v20, v21, v30, v31};
    for (size_t p = 0; p < panels; p++) {
        const __m256 r0 = _mm256_min_ps(_mm256_max_ps(v[2 * p], lo), hi);
        const __m256 r1 = _mm256_min_ps(_mm256_max_ps(v[2 * p + 1], lo), hi);
        float* out = c + 16 * p;
        if (p + 1 < panels || nc == 16) {
            _mm256_storeu_ps(out, r0);
            _mm256_storeu_ps(out + 8, r1);
        } else { /* the last panel's nc < 16 columns */
            float tmp[16];
            _mm256_storeu_ps(tmp, r0);
            _mm256_storeu_ps(tmp + 8, r1);
            memcpy(out, tmp, nc * sizeof(float));
        }
    }
}
#endif
