#include "../internal.h"

#ifdef TM_ARCH_X86
#include <immintrin.h>

/* 8x32 indirect-GEMM tile for AVX-512F: 16 accumulators of 16 floats, two weight vectors, one
 * broadcast (19 of the 32 zmm registers). Same contract as the 6x16 AVX2 tile: for each of ks
 * taps, eight row pointers (a[0..7], then a[8..15]...) each give kc input channels; rows past
 * mr repeat a valid row and alias its output. Every output is bias + the products in tap and
 * channel order, one FMA at a time, exactly as in the AVX2 tile. */
TM_TARGET_AVX512 void tm_f32_igemm_8x32__avx512(size_t mr, size_t nc, size_t kc, size_t ks,
                                                const float** a, const float* w, float* c,
                                                size_t c_stride,
                                                const tm_f32_minmax_params* params) {
    float* cr[8];
    cr[0] = c;
    for (size_t r = 1; r < 8; r++) cr[r] = r < mr ? cr[r - 1] + c_stride : cr[r - 1];

    __m512 v00 = _mm512_loadu_ps(w), v01 = _mm512_loadu_ps(w + 16);
    __m512 v10 = v00, v11 = v01, v20 = v00, v21 = v01, v30 = v00, v31 = v01;
    __m512 v40 = v00, v41 = v01, v50 = v00, v51 = v01, v60 = v00, v61 = v01;
    __m512 v70 = v00, v71 = v01;
    w += 32;
    for (size_t t = 0; t < ks; t++, a += 8) {
        const float* a0 = a[0];
        const float* a1 = a[1];
        const float* a2 = a[2];
        const float* a3 = a[3];
        const float* a4 = a[4];
        const float* a5 = a[5];
        const float* a6 = a[6];
        const float* a7 = a[7];
        for (size_t k = 0; k < kc; k++) {
            const __m512 b0 = _mm512_loadu_ps(w), b1 = _mm512_loadu_ps(w + 16);
            w += 32;
            __m512 x = _mm512_set1_ps(a0[k]);
            v00 = _mm512_fmadd_ps(x, b0, v00); v01 = _mm512_fmadd_ps(x, b1, v01);
            x = _mm512_set1_ps(a1[k]);
            v10 = _mm512_fmadd_ps(x, b0, v10); v11 = _mm512_fmadd_ps(x, b1, v11);
            x = _mm512_set1_ps(a2[k]);
            v20 = _mm512_fmadd_ps(x, b0, v20); v21 = _mm512_fmadd_ps(x, b1, v21);
            x = _mm512_set1_ps(a3[k]);
            v30 = _mm512_fmadd_ps(x, b0, v30); v31 = _mm512_fmadd_ps(x, b1, v31);
            x = _mm512_set1_ps(a4[k]);
            v40 = _mm512_fmadd_ps(x, b0, v40); v41 = _mm512_fmadd_ps(x, b1, v41);
            x = _mm512_set1_ps(a5[k]);
            v50 = _mm512_fmadd_ps(x, b0, v50); v51 = _mm512_fmadd_ps(x, b1, v51);
            x = _mm512_set1_ps(a6[k]);
            v60 = _mm512_fmadd_ps(x, b0, v60); v61 = _mm512_fmadd_ps(x, b1, v61);
            x = _mm512_set1_ps(a7[k]);
            v70 = _mm512_fmadd_ps(x, b0, v70); v71 = _mm512_fmadd_ps(x, b1, v71);
        }
    }
    const __m512 lo = _mm512_set1_ps(params->min), hi = _mm512_set1_ps(params->max);
    const __m512 out[16] = {v00, v01, v10, v11, v20, v21, v30, v31,
                            v40, v41, v50, v51, v60, v61, v70, v71};
    /* Column masks of the two halves (the panel may be narrower than 32). */
    const __mmask16 m0 = nc >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << nc) - 1u);
    const __mmask16 m1 = nc >= 32 ? (__mmask16)0xffff
                                  : (nc > 16 ? (__mmask16)((1u << (nc - 16)) - 1u) : (__mmask16)0);
    for (size_t r = 8; r-- > 0;) { /* last row first: an aliased row ends with its own value */
        const __m512 y0 = _mm512_min_ps(_mm512_max_ps(out[2 * r], lo), hi);
        const __m512 y1 = _mm512_min_ps(_mm512_max_ps(out[2 * r + 1], lo), hi);
        _mm512_mask_storeu_ps(cr[r], m0, y0);
        _mm512_mask_storeu_ps(cr[r] + 16, m1, y1);
    }
}
#endif
