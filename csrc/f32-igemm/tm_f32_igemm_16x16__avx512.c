#include "../internal.h"

#ifdef TM_ARCH_X86
#include <immintrin.h>

/* 16x16 indirect-GEMM tile for AVX-512F, for the narrow panels of a full 3x3 convolution (the
 * first layer at alpha 0.25 / 0.5 has 8 / 16 output channels: the 8x32 tile would leave 3/4 or
 * 1/2 of its lanes idle). It reads the weights packed for the avx512 table's 8x32 tile: w is
 * the start of a 32-column panel, or 16 floats into it for the panel's upper half; bias at
 * w[0..16), then ks * kc rows of 16 weights, 32 floats apart. The rows come as two consecutive
 * groups of the 8x32 tile's indirection (rows 0..7: a[t * 8 + r], rows 8..15:
 * a[8 * ks + t * 8 + r - 8]); rows past mr repeat a valid row and alias its output. Sixteen
 * accumulators (sixteen independent FMA chains), up to four weight vectors, the A values
 * broadcast from memory. Every output is bias + the products in tap and channel order, one FMA
 * at a time, exactly as in the 8x32 tile: the same bits. (Rows paired in one zmm for panels of
 * <= 8 columns, the A values spread by vpermt2ps, measured no faster: the permutes take FMA
 * issue slots.) */
TM_TARGET_AVX512 void tm_f32_igemm_16x16__avx512(size_t mr, size_t nc, size_t kc, size_t ks,
                                                 const float** a, const float* w, float* c,
                                                 size_t c_stride,
                                                 const tm_f32_minmax_params* params) {
    float* cr[16];
    cr[0] = c;
    for (size_t r = 1; r < 16; r++) cr[r] = r < mr ? cr[r - 1] + c_stride : cr[r - 1];

    const __m512 bias = _mm512_loadu_ps(w);
    __m512 v0 = bias, v1 = bias, v2 = bias, v3 = bias, v4 = bias, v5 = bias, v6 = bias, v7 = bias;
    __m512 v8 = bias, v9 = bias, v10 = bias, v11 = bias, v12 = bias, v13 = bias, v14 = bias,
           v15 = bias;
    w += 32;
    const float** b = a + 8 * ks; /* the second group of eight rows */
    /* Per tap, the weights of up to four channels are held in registers and each row applies
     * them in channel order from one pointer: sixteen live row pointers would not fit the
     * general registers (the compiler parks them in vector registers and moves them back). */
#define TM_ROW16(v, p)                                                             \
    do {                                                                           \
        const float* ar = (p) + k0;                                                \
        v = _mm512_fmadd_ps(_mm512_set1_ps(ar[0]), w0, v);                         \
        if (kn > 1) v = _mm512_fmadd_ps(_mm512_set1_ps(ar[1]), w1, v);             \
        if (kn > 2) v = _mm512_fmadd_ps(_mm512_set1_ps(ar[2]), w2, v);             \
        if (kn > 3) v = _mm512_fmadd_ps(_mm512_set1_ps(ar[3]), w3, v);             \
    } while (0)
#define TM_CHUNK16(KN)                                                             \
    do {                                                                           \
        const size_t kn = (KN);                                                    \
        const __m512 w0 = _mm512_loadu_ps(w);                                      \
        const __m512 w1 = kn > 1 ? _mm512_loadu_ps(w + 32) : w0;                   \
        const __m512 w2 = kn > 2 ? _mm512_loadu_ps(w + 64) : w0;                   \
        const __m512 w3 = kn > 3 ? _mm512_loadu_ps(w + 96) : w0;                   \
        TM_ROW16(v0, a[0]); TM_ROW16(v1, a[1]); TM_ROW16(v2, a[2]);                \
        TM_ROW16(v3, a[3]); TM_ROW16(v4, a[4]); TM_ROW16(v5, a[5]);                \
        TM_ROW16(v6, a[6]); TM_ROW16(v7, a[7]); TM_ROW16(v8, b[0]);                \
        TM_ROW16(v9, b[1]); TM_ROW16(v10, b[2]); TM_ROW16(v11, b[3]);              \
        TM_ROW16(v12, b[4]); TM_ROW16(v13, b[5]); TM_ROW16(v14, b[6]);             \
        TM_ROW16(v15, b[7]);                                                       \
        w += 32 * kn;                                                              \
    } while (0)
    for (size_t t = 0; t < ks; t++, a += 8, b += 8) {
        for (size_t k0 = 0; k0 < kc; k0 += 4) {
            switch (TM_MIN(kc - k0, 4)) { /* constant chunk sizes: no branch per row */
                case 4: TM_CHUNK16(4); break;
                case 3: TM_CHUNK16(3); break;
                case 2: TM_CHUNK16(2); break;
                default: TM_CHUNK16(1); break;
            }
        }
    }
#undef TM_CHUNK16
#undef TM_ROW16
    const __m512 lo = _mm512_set1_ps(params->min), hi = _mm512_set1_ps(params->max);
    const __m512 out[16] = {v0, v1, v2, v3, v4, v5, v6, v7,
                            v8, v9, v10, v11, v12, v13, v14, v15};
    /* Partial-mask stores cost about ten cycles each on Zen 5: 16 and 8 columns (alpha 1/2
     * and 1/4) store whole zmm / ymm vectors, and 16 rows of exactly 8 contiguous columns (a
     * full tile of an 8-channel layer) go out as eight zmm pairs of rows. Rows one at a time go
     * last row first: an aliased row ends with its own value. */
    if (nc == 16) {
        for (size_t r = 16; r-- > 0;)
            _mm512_storeu_ps(cr[r], _mm512_min_ps(_mm512_max_ps(out[r], lo), hi));
    } else if (nc == 8 && mr == 16 && c_stride == 8) {
        for (size_t r = 0; r < 16; r += 2) {
            const __m512 pair = _mm512_shuffle_f32x4(out[r], out[r + 1], 0x44); /* r, r + 1 */
            _mm512_storeu_ps(c + r * 8, _mm512_min_ps(_mm512_max_ps(pair, lo), hi));
        }
    } else if (nc == 8) {
        for (size_t r = 16; r-- > 0;)
            _mm256_storeu_ps(cr[r], _mm512_castps512_ps256(
                                        _mm512_min_ps(_mm512_max_ps(out[r], lo), hi)));
    } else {
        const __mmask16 m = (__mmask16)((1u << nc) - 1u);
        for (size_t r = 16; r-- > 0;)
            _mm512_mask_storeu_ps(cr[r], m, _mm512_min_ps(_mm512_max_ps(out[r], lo), hi));
    }
}
#endif
