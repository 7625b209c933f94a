#include "../internal.h"

#ifdef TM_ARCH_X86
#include <immintrin.h>

/* One output row of a depthwise 3x3 convolution, AVX2 + FMA, 8 channels per vector.
 *
 * Pixels outer, channels inner, weights packed per block of 8 channels: every stream walks memory
 * contiguously. (Channels outer with the taps held in registers looks cheaper, but strides of
 * C * 4 bytes (2 or 4 KiB for C = 512, 1024) between pixels map every load to the same few L1
 * sets and thrash.) Interior pixels run all nine taps unchecked; border pixels only the columns
 * inside the image. Channels go in tiles of TM_DW_AVX2_CHANNEL_TILE so that one tile's weights and
 * the input columns shared by neighbouring pixels stay in L1 (for C = 512 a whole pixel's worth
 * of weights and inputs does not). The channel tail uses masked loads and stores, so nothing
 * outside the buffers is touched. */
#define TM_DW_AVX2_CHANNEL_TILE 128
static const int32_t tm_mask_table[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};

TM_TARGET_AVX2 void tm_f32_dwconv3x3_row__avx2(size_t channels, size_t in_width,
                                               size_t out_width, size_t stride, size_t pad_left,
                                               const float** rows, const float* w, float* out,
                                               const tm_f32_minmax_params* params) {
    const size_t cv = channels & ~(size_t)7;
    const __m256i tail_mask =
        _mm256_loadu_si256((const __m256i*)(tm_mask_table + 8 - (channels - cv)));
    const __m256 lo = _mm256_set1_ps(params->min), hi = _mm256_set1_ps(params->max);
    const float* r0 = rows[0];
    const float* r1 = rows[1];
    const float* r2 = rows[2];

    for (size_t ct = 0; ct < channels; ct += TM_DW_AVX2_CHANNEL_TILE) {
    const size_t ct_end = TM_MIN(ct + TM_DW_AVX2_CHANNEL_TILE, cv);
    const int tile_has_tail = cv < channels && ct + TM_DW_AVX2_CHANNEL_TILE >= channels;
    const float* wt = w + (ct / 8) * TM_DW_BLOCK_FLOATS;
    for (size_t ox = 0; ox < out_width; ox++) {
        const ptrdiff_t ix0 = (ptrdiff_t)(ox * stride) - (ptrdiff_t)pad_left;
        const size_t kx_lo = ix0 < 0 ? (size_t)(-ix0) : 0;
        const ptrdiff_t room = (ptrdiff_t)in_width - ix0;
        const size_t kx_hi = room >= 3 ? 3 : (room > 0 ? (size_t)room : 0);
        float* o = out + ox * channels;
        if (kx_lo == 0 && kx_hi == 3) {
            const float* p0 = r0 + (size_t)ix0 * channels;
            const float* p1 = r1 + (size_t)ix0 * channels;
            const float* p2 = r2 + (size_t)ix0 * channels;
            const size_t c1 = channels, c2 = 2 * channels;
            const float* wc = wt;
            for (size_t c = ct; c < ct_end; c += 8, wc += TM_DW_BLOCK_FLOATS) {
                __m256 a0 = _mm256_fmadd_ps(_mm256_loadu_ps(p0 + c), _mm256_load_ps(wc + 8), _mm256_load_ps(wc));
                __m256 a1 = _mm256_mul_ps(_mm256_loadu_ps(p0 + c1 + c), _mm256_load_ps(wc + 16));
                a0 = _mm256_fmadd_ps(_mm256_loadu_ps(p0 + c2 + c), _mm256_load_ps(wc + 24), a0);
                a1 = _mm256_fmadd_ps(_mm256_loadu_ps(p1 + c), _mm256_load_ps(wc + 32), a1);
                a0 = _mm256_fmadd_ps(_mm256_loadu_ps(p1 + c1 + c), _mm256_load_ps(wc + 40), a0);
                a1 = _mm256_fmadd_ps(_mm256_loadu_ps(p1 + c2 + c), _mm256_load_ps(wc + 48), a1);
                a0 = _mm256_fmadd_ps(_mm256_loadu_ps(p2 + c), _mm256_load_ps(wc + 56), a0);
                a1 = _mm256_fmadd_ps(_mm256_loadu_ps(p2 + c1 + c), _mm256_load_ps(wc + 64), a1);
                a0 = _mm256_fmadd_ps(_mm256_loadu_ps(p2 + c2 + c), _mm256_load_ps(wc + 72), a0);
                a0 = _mm256_add_ps(a0, a1);
                _mm256_storeu_ps(o + c, _mm256_min_ps(_mm256_max_ps(a0, lo), hi));
            }
        } else {
            const float* wc = wt;
            for (size_t c = ct; c < ct_end; c += 8, wc += TM_DW_BLOCK_FLOATS) {
                __m256 acc = _mm256_load_ps(wc);
                for (size_t kx = kx_lo; kx < kx_hi; kx++) {
                    const size_t off = (size_t)(ix0 + (ptrdiff_t)kx) * channels + c;
                    acc = _mm256_fmadd_ps(_mm256_loadu_ps(r0 + off), _mm256_load_ps(wc + 8 * (1 + kx)), acc);
                    acc = _mm256_fmadd_ps(_mm256_loadu_ps(r1 + off), _mm256_load_ps(wc + 8 * (4 + kx)), acc);
                    acc = _mm256_fmadd_ps(_mm256_loadu_ps(r2 + off), _mm256_load_ps(wc + 8 * (7 + kx)), acc);
                }
                _mm256_storeu_ps(o + c, _mm256_min_ps(_mm256_max_ps(acc, lo), hi));
            }
        }
        if (tile_has_tail) {
            const float* wc = w + (cv / 8) * TM_DW_BLOCK_FLOATS; /* padded block: full loads */
            __m256 acc = _mm256_load_ps(wc);
            for (size_t kx = kx_lo; kx < kx_hi; kx++) {
                const size_t off = (size_t)(ix0 + (ptrdiff_t)kx) * channels + cv;
                acc = _mm256_fmadd_ps(_mm256_maskload_ps(r0 + off, tail_mask), _mm256_load_ps(wc + 8 * (1 + kx)), acc);
                acc = _mm256_fmadd_ps(_mm256_maskload_ps(r1 + off, tail_mask), _mm256_load_ps(wc + 8 * (4 + kx)), acc);
                acc = _mm256_fmadd_ps(_mm256_maskload_ps(r2 + off, tail_mask), _mm256_load_ps(wc + 8 * (7 + kx)), acc);
            }
            _mm256_maskstore_ps(o + cv, tail_mask, _mm256_min_ps(_mm256_max_ps(acc, lo), hi));
        }
    }
    }
}
#endif
