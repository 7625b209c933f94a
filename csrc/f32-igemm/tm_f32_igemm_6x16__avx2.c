#include "../internal.h"

#ifdef TM_ARCH_X86
#include <immintrin.h>

/* 6x16 indirect-GEMM tile for AVX2 + FMA: 12 accumulators, two weight vectors, one broadcast
 * register. For each of ks taps, six row pointers (a[0..5], then a[6..11]...) each give kc input
 * channels. Rows past mr repeat a valid row and alias its output: harmless duplicate work. A
 * panel of 8 or fewer columns skips the all-zero right half of the weights. */
TM_TARGET_AVX2 void tm_f32_igemm_6x16__avx2(size_t mr, size_t nc, size_t kc, size_t ks,
                                            const float** a, const float* w, float* c,
                                            size_t c_stride, const tm_f32_minmax_params* params) {
    float* c0 = c;
    float* c1 = mr > 1 ? c0 + c_stride : c0;
    float* c2 = mr > 2 ? c1 + c_stride : c1;
    float* c3 = mr > 3 ? c2 + c_stride : c2;
    float* c4 = mr > 4 ? c3 + c_stride : c3;
    float* c5 = mr > 5 ? c4 + c_stride : c4;

    __m256 v00 = _mm256_loadu_ps(w), v01 = _mm256_loadu_ps(w + 8);
    __m256 v10 = v00, v11 = v01, v20 = v00, v21 = v01, v30 = v00, v31 = v01;
    __m256 v40 = v00, v41 = v01, v50 = v00, v51 = v01;
    w += 16;
    for (size_t t = 0; t < ks; t++, a += 6) {
    const float* a0 = a[0];
    const float* a1 = a[1];
    const float* a2 = a[2];
    const float* a3 = a[3];
    const float* a4 = a[4];
    const float* a5 = a[5];
    if (nc <= 8) {
        /* Narrow panel (few output channels): skip the all-zero right half. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC unroll 4
#endif
        for (size_t k = 0; k < kc; k++) {
            const __m256 b0 = _mm256_loadu_ps(w);
            w += 16;
            v00 = _mm256_fmadd_ps(_mm256_broadcast_ss(a0 + k), b0, v00);
            v10 = _mm256_fmadd_ps(_mm256_broadcast_ss(a1 + k), b0, v10);
            v20 = _mm256_fmadd_ps(_mm256_broadcast_ss(a2 + k), b0, v20);
            v30 = _mm256_fmadd_ps(_mm256_broadcast_ss(a3 + k), b0, v30);
            v40 = _mm256_fmadd_ps(_mm256_broadcast_ss(a4 + k), b0, v40);
            v50 = _mm256_fmadd_ps(_mm256_broadcast_ss(a5 + k), b0, v50);
        }
    } else {
#define TM_STEP16(k)                                                                          \
        {                                                                                     \
            const __m256 b0 = _mm256_loadu_ps(w), b1 = _mm256_loadu_ps(w + 8);                \
            w += 16;                                                                          \
            __m256 x = _mm256_broadcast_ss(a0 + (k));                                         \
            v00 = _mm256_fmadd_ps(x, b0, v00); v01 = _mm256_fmadd_ps(x, b1, v01);             \
            x = _mm256_broadcast_ss(a1 + (k));                                                \
            v10 = _mm256_fmadd_ps(x, b0, v10); v11 = _mm256_fmadd_ps(x, b1, v11);             \
            x = _mm256_broadcast_ss(a2 + (k));                                                \
            v20 = _mm256_fmadd_ps(x, b0, v20); v21 = _mm256_fmadd_ps(x, b1, v21);             \
            x = _mm256_broadcast_ss(a3 + (k));                                                \
            v30 = _mm256_fmadd_ps(x, b0, v30); v31 = _mm256_fmadd_ps(x, b1, v31);             \
            x = _mm256_broadcast_ss(a4 + (k));                                                \
            v40 = _mm256_fmadd_ps(x, b0, v40); v41 = _mm256_fmadd_ps(x, b1, v41);             \
            x = _mm256_broadcast_ss(a5 + (k));                                                \
            v50 = _mm256_fmadd_ps(x, b0, v50); v51 = _mm256_fmadd_ps(x, b1, v51);             \
        }
        if (kc == 3) {
            /* RGB taps of the first layer: straight-line, no loop per tap. */
            TM_STEP16(0) TM_STEP16(1) TM_STEP16(2)
        } else {
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC unroll 4
#endif
            for (size_t k = 0; k < kc; k++) TM_STEP16(k)
        }
#undef TM_STEP16
    }
    }
    const __m256 lo = _mm256_set1_ps(params->min), hi = _mm256_set1_ps(params->max);
#define TM_CLAMP(v) v = _mm256_min_ps(_mm256_max_ps(v, lo), hi)
    TM_CLAMP(v00); TM_CLAMP(v01); TM_CLAMP(v10); TM_CLAMP(v11); TM_CLAMP(v20); TM_CLAMP(v21);
    TM_CLAMP(v30); TM_CLAMP(v31); TM_CLAMP(v40); TM_CLAMP(v41); TM_CLAMP(v50); TM_CLAMP(v51);
#undef TM_CLAMP
    if (nc == 16) {
        _mm256_storeu_ps(c5, v50); _mm256_storeu_ps(c5 + 8, v51);
        _mm256_storeu_ps(c4, v40); _mm256_storeu_ps(c4 + 8, v41);
        _mm256_storeu_ps(c3, v30); _mm256_storeu_ps(c3 + 8, v31);
        _mm256_storeu_ps(c2, v20); _mm256_storeu_ps(c2 + 8, v21);
        _mm256_storeu_ps(c1, v10); _mm256_storeu_ps(c1 + 8, v11);
        _mm256_storeu_ps(c0, v00); _mm256_storeu_ps(c0 + 8, v01);
        return;
    }
    if (nc & 8) {
        _mm256_storeu_ps(c5, v50); _mm256_storeu_ps(c4, v40); _mm256_storeu_ps(c3, v30);
        _mm256_storeu_ps(c2, v20); _mm256_storeu_ps(c1, v10); _mm256_storeu_ps(c0, v00);
        v50 = v51; v40 = v41; v30 = v31; v20 = v21; v10 = v11; v00 = v01;
        c5 += 8; c4 += 8; c3 += 8; c2 += 8; c1 += 8; c0 += 8;
    }
    __m128 h5 = _mm256_castps256_ps128(v50), h4 = _mm256_castps256_ps128(v40);
    __m128 h3 = _mm256_castps256_ps128(v30), h2 = _mm256_castps256_ps128(v20);
    __m128 h1 = _mm256_castps256_ps128(v10), h0 = _mm256_castps256_ps128(v00);
    if (nc & 4) {
        _mm_storeu_ps(c5, h5); _mm_storeu_ps(c4, h4); _mm_storeu_ps(c3, h3);
        _mm_storeu_ps(c2, h2); _mm_storeu_ps(c1, h1); _mm_storeu_ps(c0, h0);
        h5 = _mm256_extractf128_ps(v50, 1); h4 = _mm256_extractf128_ps(v40, 1);
        h3 = _mm256_extractf128_ps(v30, 1); h2 = _mm256_extractf128_ps(v20, 1);
        h1 = _mm256_extractf128_ps(v10, 1); h0 = _mm256_extractf128_ps(v00, 1);
        c5 += 4; c4 += 4; c3 += 4; c2 += 4; c1 += 4; c0 += 4;
    }
    if (nc & 2) {
        _mm_storel_pi((__m64*)c5, h5); _mm_storel_pi((__m64*)c4, h4);
        _mm_storel_pi((__m64*)c3, h3); _mm_storel_pi((__m64*)c2, h2);
        _mm_storel_pi((__m64*)c1, h1); _mm_storel_pi((__m64*)c0, h0);
        h5 = _mm_movehl_ps(h5, h5); h4 = _mm_movehl_ps(h4, h4); h3 = _mm_movehl_ps(h3, h3);
        h2 = _mm_movehl_ps(h2, h2); h1 = _mm_movehl_ps(h1, h1); h0 = _mm_movehl_ps(h0, h0);
        c5 += 2; c4 += 2; c3 += 2; c2 += 2; c1 += 2; c0 += 2;
    }
    if (nc & 1) {
        _mm_store_ss(c5, h5); _mm_store_ss(c4, h4); _mm_store_ss(c3, h3);
        _mm_store_ss(c2, h2); _mm_store_ss(c1, h1); _mm_store_ss(c0, h0);
    }
}
#endif
