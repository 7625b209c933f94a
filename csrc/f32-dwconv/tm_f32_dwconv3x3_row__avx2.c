#include "../internal.h"

#ifdef TM_ARCH_X86
#include <immintrin.h>

/* One output row of a depthwise 3x3 convolution, 8 channels per vector. The 9 taps and the bias
 * of a channel block stay in registers while the block walks along the row; interior pixels run
 * without bounds checks, the (at most two) edge pixels check their columns. The channel tail
 * uses masked loads and stores, so nothing outside the buffers is touched. */
static const int32_t tm_mask_table[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};

TM_TARGET_AVX2 void tm_f32_dwconv3x3_row__avx2(size_t channels, size_t in_width,
                                               size_t out_width, size_t stride, size_t pad_left,
                                               const float** rows, const float* w, float* out,
                                               const tm_f32_minmax_params* params) {
    const size_t cp = TM_ROUND_UP(channels, TM_CHANNEL_TILE);
    const __m256 lo = _mm256_set1_ps(params->min), hi = _mm256_set1_ps(params->max);
    const float* r0 = rows[0];
    const float* r1 = rows[1];
    const float* r2 = rows[2];
    /* Interior: every column ox * stride - pad_left + {0,1,2} inside [0, in_width). */
    size_t first = pad_left == 0 ? 0 : (pad_left + stride - 1) / stride;
    size_t last = in_width + pad_left >= 3 ? (in_width + pad_left - 3) / stride + 1 : 0;
    if (last > out_width) last = out_width;
    if (first > last) first = last;
    const size_t step = stride * channels;

    for (size_t c = 0; c < channels; c += 8) {
        const size_t n = channels - c;
        const __m256i mask = _mm256_loadu_si256((const __m256i*)(tm_mask_table + 8 - TM_MIN(n, 8)));
        const float* wc = w + c;
        const __m256 bias = _mm256_loadu_ps(wc);
        const __m256 k00 = _mm256_loadu_ps(wc + 1 * cp), k01 = _mm256_loadu_ps(wc + 2 * cp);
        const __m256 k02 = _mm256_loadu_ps(wc + 3 * cp), k10 = _mm256_loadu_ps(wc + 4 * cp);
        const __m256 k11 = _mm256_loadu_ps(wc + 5 * cp), k12 = _mm256_loadu_ps(wc + 6 * cp);
        const __m256 k20 = _mm256_loadu_ps(wc + 7 * cp), k21 = _mm256_loadu_ps(wc + 8 * cp);
        const __m256 k22 = _mm256_loadu_ps(wc + 9 * cp);
        const __m256 taps[9] = {k00, k01, k02, k10, k11, k12, k20, k21, k22};
#define TM_EDGE_PIXEL(ox)                                                                       \
        {                                                                                       \
            const ptrdiff_t ix0 = (ptrdiff_t)((ox) * stride) - (ptrdiff_t)pad_left;            \
            __m256 acc = bias;                                                                  \
            for (size_t kx = 0; kx < 3; kx++) {                                                 \
                const ptrdiff_t ix = ix0 + (ptrdiff_t)kx;                                       \
                if (ix < 0 || ix >= (ptrdiff_t)in_width) continue;                              \
                const size_t off = (size_t)ix * channels + c;                                   \
                acc = _mm256_fmadd_ps(_mm256_maskload_ps(r0 + off, mask), taps[kx], acc);       \
                acc = _mm256_fmadd_ps(_mm256_maskload_ps(r1 + off, mask), taps[3 + kx], acc);   \
                acc = _mm256_fmadd_ps(_mm256_maskload_ps(r2 + off, mask), taps[6 + kx], acc);   \
            }                                                                                   \
            acc = _mm256_min_ps(_mm256_max_ps(acc, lo), hi);                                    \
            _mm256_maskstore_ps(out + (ox) * channels + c, mask, acc);                          \
        }
        for (size_t ox = 0; ox < first; ox++) TM_EDGE_PIXEL(ox)
        if (n >= 8) {
            const float* p0 = r0 + (first * stride - pad_left) * channels + c;
            const float* p1 = r1 + (first * stride - pad_left) * channels + c;
            const float* p2 = r2 + (first * stride - pad_left) * channels + c;
            float* o = out + first * channels + c;
            for (size_t ox = first; ox < last; ox++) {
                __m256 acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(p0), k00, bias);
                __m256 acc1 = _mm256_mul_ps(_mm256_loadu_ps(p0 + channels), k01);
                acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(p0 + 2 * channels), k02, acc0);
                acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(p1), k10, acc1);
                acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(p1 + channels), k11, acc0);
                acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(p1 + 2 * channels), k12, acc1);
                acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(p2), k20, acc0);
                acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(p2 + channels), k21, acc1);
                acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(p2 + 2 * channels), k22, acc0);
                acc0 = _mm256_add_ps(acc0, acc1);
                acc0 = _mm256_min_ps(_mm256_max_ps(acc0, lo), hi);
                _mm256_storeu_ps(o, acc0);
                p0 += step; p1 += step; p2 += step; o += channels;
            }
        } else {
            for (size_t ox = first; ox < last; ox++) TM_EDGE_PIXEL(ox)
        }
        for (size_t ox = last; ox < out_width; ox++) TM_EDGE_PIXEL(ox)
#undef TM_EDGE_PIXEL
    }
}
#endif
