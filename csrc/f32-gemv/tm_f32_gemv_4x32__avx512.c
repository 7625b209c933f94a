#include "../internal.h"

#ifdef TM_ARCH_X86
#include <immintrin.h>

/* One row times up to four consecutive packed panels of 32 columns (a fully connected layer at
 * batch 1, or the lone last row of a pointwise layer) for the AVX-512 table. As one row of the
 * 8x32 GEMM tile it would run two accumulators, each a chain of kc dependent FMAs; four panels
 * give eight independent chains, enough to keep the loads streaming (the weights of a fully
 * connected layer, 4 MB for 1024 x 1001, come from L3 or memory; software prefetch 8 to 32 rows
 * ahead measured no faster than the hardware prefetchers on Zen 5). Every column is still
 * bias + a[0] w[0] + a[1] w[1] + ... in that order, one FMA at a time, exactly as the 8x32 tile
 * computes it: results are bit-identical to the same row inside a batch. */
TM_TARGET_AVX512 void tm_f32_gemv_4x32__avx512(size_t panels, size_t nc, size_t kc,
                                               const float* a, const float* w,
                                               size_t panel_floats, float* c,
                                               const tm_f32_minmax_params* params) {
    const float* w0 = w;
    const float* w1 = panels > 1 ? w0 + panel_floats : w0;
    const float* w2 = panels > 2 ? w1 + panel_floats : w1;
    const float* w3 = panels > 3 ? w2 + panel_floats : w2;
    __m512 v00 = _mm512_loadu_ps(w0), v01 = _mm512_loadu_ps(w0 + 16);
    __m512 v10 = _mm512_loadu_ps(w1), v11 = _mm512_loadu_ps(w1 + 16);
    __m512 v20 = _mm512_loadu_ps(w2), v21 = _mm512_loadu_ps(w2 + 16);
    __m512 v30 = _mm512_loadu_ps(w3), v31 = _mm512_loadu_ps(w3 + 16);
    w0 += 32; w1 += 32; w2 += 32; w3 += 32;
    for (size_t k = 0; k < kc; k++, w0 += 32, w1 += 32, w2 += 32, w3 += 32) {
        const __m512 x = _mm512_set1_ps(a[k]);
        v00 = _mm512_fmadd_ps(x, _mm512_loadu_ps(w0), v00);
        v01 = _mm512_fmadd_ps(x, _mm512_loadu_ps(w0 + 16), v01);
        v10 = _mm512_fmadd_ps(x, _mm512_loadu_ps(w1), v10);
        v11 = _mm512_fmadd_ps(x, _mm512_loadu_ps(w1 + 16), v11);
        v20 = _mm512_fmadd_ps(x, _mm512_loadu_ps(w2), v20);
        v21 = _mm512_fmadd_ps(x, _mm512_loadu_ps(w2 + 16), v21);
        v30 = _mm512_fmadd_ps(x, _mm512_loadu_ps(w3), v30);
        v31 = _mm512_fmadd_ps(x, _mm512_loadu_ps(w3 + 16), v31);
    }
    const __m512 lo = _mm512_set1_ps(params->min), hi = _mm512_set1_ps(params->max);
    const __m512 v[8] = {v00, v01, v10, v11, v20, v21, v30, v31};
    for (size_t p = 0; p < panels; p++) {
        /* Every panel but the last is 32 columns wide; the last one nc <= 32. */
        const size_t cols = p + 1 < panels ? 32 : nc;
        const __mmask16 m0 = cols >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << cols) - 1u);
        const __mmask16 m1 = cols >= 32 ? (__mmask16)0xffff
                                        : (cols > 16 ? (__mmask16)((1u << (cols - 16)) - 1u)
                                                     : (__mmask16)0);
        _mm512_mask_storeu_ps(c + 32 * p, m0, _mm512_min_ps(_mm512_max_ps(v[2 * p], lo), hi));
        _mm512_mask_storeu_ps(c + 32 * p + 16, m1,
                              _mm512_min_ps(_mm512_max_ps(v[2 * p + 1], lo), hi));
    }
}
#endif
