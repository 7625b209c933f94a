/* The body of the AVX-512F indirect-GEMM tiles of TM_IGEMM_MR rows x 32 columns (2 x TM_IGEMM_MR
 * accumulators of 16 floats, two weight vectors, one broadcast). A tile file defines
 * TM_IGEMM_MR and TM_IGEMM_FN, then includes this.
 *
 * Contract: tm_f32_igemm_ukernel_fn (csrc/tinymobile.h) with gemm_mr = TM_IGEMM_MR, gemm_nr = 32.
 * For each of ks taps, TM_IGEMM_MR row pointers (a[0..MR-1], then a[MR..2MR-1]...) each give kc
 * input channels; rows past mr repeat a valid row and alias its output. Every output is bias +
 * the products in tap and channel order, one FMA at a time, exactly as in the AVX2 and scalar
 * tiles — so any row count gives the same bits and the pointwise operator may pick the tile
 * that pads fewer rows. params->prefetch != 0: each weight row's twin that many floats on (the
 * next panel) is prefetched into L2 as the row is used. */
#ifndef TM_IGEMM_MR
#error "define TM_IGEMM_MR and TM_IGEMM_FN before including this file"
#endif

TM_TARGET_AVX512 void TM_IGEMM_FN(size_t mr, size_t nc, size_t kc, size_t ks, const float** a,
                                  const float* w, float* c, size_t c_stride,
                                  const tm_f32_minmax_params* params) {
    float* cr[TM_IGEMM_MR];
    cr[0] = c;
    for (size_t r = 1; r < TM_IGEMM_MR; r++) cr[r] = r < mr ? cr[r - 1] + c_stride : cr[r - 1];

    __m512 acc0[TM_IGEMM_MR], acc1[TM_IGEMM_MR]; /* columns 0..15 and 16..31 of each row */
    {
        const __m512 b0 = _mm512_loadu_ps(w), b1 = _mm512_loadu_ps(w + 16);
#pragma GCC unroll 16
        for (int r = 0; r < TM_IGEMM_MR; r++) {
            acc0[r] = b0;
            acc1[r] = b1;
        }
    }
    w += 32;
    const size_t prefetch = params->prefetch; /* 0, or floats to this row in the next panel */
    for (size_t t = 0; t < ks; t++, a += TM_IGEMM_MR) {
        const float* ar[TM_IGEMM_MR];
#pragma GCC unroll 16
        for (int r = 0; r < TM_IGEMM_MR; r++) ar[r] = a[r];
        for (size_t k = 0; k < kc; k++) {
            const __m512 b0 = _mm512_loadu_ps(w), b1 = _mm512_loadu_ps(w + 16);
            if (prefetch != 0) { /* two cache lines: this weight row's twin in the next panel */
                _mm_prefetch((const char*)(w + prefetch), _MM_HINT_T1);
                _mm_prefetch((const char*)(w + prefetch + 16), _MM_HINT_T1);
            }
            w += 32;
#pragma GCC unroll 16
            for (int r = 0; r < TM_IGEMM_MR; r++) {
                const __m512 x = _mm512_set1_ps(ar[r][k]);
                acc0[r] = _mm512_fmadd_ps(x, b0, acc0[r]);
                acc1[r] = _mm512_fmadd_ps(x, b1, acc1[r]);
            }
        }
    }
    const __m512 lo = _mm512_set1_ps(params->min), hi = _mm512_set1_ps(params->max);
    /* Column masks of the two halves (the panel may be narrower than 32). */
    const __mmask16 m0 = nc >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << nc) - 1u);
    const __mmask16 m1 = nc >= 32 ? (__mmask16)0xffff
                                  : (nc > 16 ? (__mmask16)((1u << (nc - 16)) - 1u) : (__mmask16)0);
#pragma GCC unroll 16
    for (int r = TM_IGEMM_MR - 1; r >= 0; r--) { /* last row first: an aliased row ends with its own value */
        _mm512_mask_storeu_ps(cr[r], m0, _mm512_min_ps(_mm512_max_ps(acc0[r], lo), hi));
        _mm512_mask_storeu_ps(cr[r] + 16, m1, _mm512_min_ps(_mm512_max_ps(acc1[r], lo), hi));
    }
}
