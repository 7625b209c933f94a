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
/* Keeps a loaded vector in a register: without it GCC folds every use of a weight or input into
 * a memory operand and loads it twice, which made the pair loops load-bound. */
#define TM_IN_REGISTER(v) __asm__("" : "+x"(v))
static const int32_t tm_mask_table[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};

/* Few channels (at most TM_DW_AVX2_FEW_CHANNELS): per-pixel set-up would dominate, and pixel
 * strides are short, so hold one block's bias and nine taps in registers and walk the row. */
#define TM_DW_AVX2_FEW_CHANNELS 32
TM_TARGET_AVX2 static inline __m256 tm_dw_load(const float* p, int full, __m256i mask) {
    return full ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, mask);
}

TM_TARGET_AVX2 static void tm_dwconv_row_few_channels(size_t channels, size_t in_width,
                                                      size_t out_width, size_t stride,
                                                      size_t pad_left, const float* r0,
                                                      const float* r1, const float* r2,
                                                      const float* w, float* out, __m256 lo,
                                                      __m256 hi) {
    /* Interior pixels: all three columns inside the row (no checks). */
    size_t first = pad_left == 0 ? 0 : (pad_left + stride - 1) / stride;
    size_t last = in_width + pad_left >= 3 ? (in_width + pad_left - 3) / stride + 1 : 0;
    if (last > out_width) last = out_width;
    if (first > last) first = last;
    for (size_t c = 0; c < channels; c += 8, w += TM_DW_BLOCK_FLOATS) {
        const size_t n = TM_MIN(channels - c, 8);
        const int full = n == 8;
        const __m256i mask = _mm256_loadu_si256((const __m256i*)(tm_mask_table + 8 - n));
        const __m256 bias = _mm256_load_ps(w);
        const __m256 k[9] = {_mm256_load_ps(w + 8), _mm256_load_ps(w + 16), _mm256_load_ps(w + 24),
                             _mm256_load_ps(w + 32), _mm256_load_ps(w + 40), _mm256_load_ps(w + 48),
                             _mm256_load_ps(w + 56), _mm256_load_ps(w + 64), _mm256_load_ps(w + 72)};
        for (size_t ox = 0; ox < out_width; ox++) {
            const ptrdiff_t ix0 = (ptrdiff_t)(ox * stride) - (ptrdiff_t)pad_left;
            __m256 acc = bias;
            if (ox >= first && ox < last) {
                const size_t off = (size_t)ix0 * channels + c;
                for (size_t kx = 0; kx < 3; kx++) {
                    const size_t o = off + kx * channels;
                    acc = _mm256_fmadd_ps(tm_dw_load(r0 + o, full, mask), k[kx], acc);
                    acc = _mm256_fmadd_ps(tm_dw_load(r1 + o, full, mask), k[3 + kx], acc);
                    acc = _mm256_fmadd_ps(tm_dw_load(r2 + o, full, mask), k[6 + kx], acc);
                }
            } else {
                for (size_t kx = 0; kx < 3; kx++) {
                    const ptrdiff_t ix = ix0 + (ptrdiff_t)kx;
                    if (ix < 0 || ix >= (ptrdiff_t)in_width) continue;
                    const size_t o = (size_t)ix * channels + c;
                    acc = _mm256_fmadd_ps(tm_dw_load(r0 + o, full, mask), k[kx], acc);
                    acc = _mm256_fmadd_ps(tm_dw_load(r1 + o, full, mask), k[3 + kx], acc);
                    acc = _mm256_fmadd_ps(tm_dw_load(r2 + o, full, mask), k[6 + kx], acc);
                }
            }
            acc = _mm256_min_ps(_mm256_max_ps(acc, lo), hi);
            if (full) _mm256_storeu_ps(out + ox * channels + c, acc);
            else _mm256_maskstore_ps(out + ox * channels + c, mask, acc);
        }
    }
}

/* One kernel row (three taps, weights at k) for a pair of pixels: `a` starts at column 0 of p,
 * `b` at column `stride` (1 or 2, a constant after inlining, so for stride 1 the shared columns
 * are loaded once). */
TM_TARGET_AVX2 static inline __attribute__((always_inline)) void tm_dw_pair_row(
    const float* p, size_t channels, size_t stride, const float* k, __m256* a, __m256* b) {
    __m256 w0 = _mm256_load_ps(k), w1 = _mm256_load_ps(k + 8), w2 = _mm256_load_ps(k + 16);
    __m256 x0 = _mm256_loadu_ps(p), x1 = _mm256_loadu_ps(p + channels);
    __m256 x2 = _mm256_loadu_ps(p + 2 * channels), x3 = _mm256_loadu_ps(p + 3 * channels);
    __m256 x4 = stride == 1 ? x3 : _mm256_loadu_ps(p + 4 * channels);
    TM_IN_REGISTER(w0); TM_IN_REGISTER(w1); TM_IN_REGISTER(w2); TM_IN_REGISTER(x2);
    if (stride == 1) { TM_IN_REGISTER(x0); TM_IN_REGISTER(x1); TM_IN_REGISTER(x3); }
    const __m256 b0 = stride == 1 ? x1 : x2, b1 = stride == 1 ? x2 : x3, b2 = stride == 1 ? x3 : x4;
    *a = _mm256_fmadd_ps(x0, w0, *a); *b = _mm256_fmadd_ps(b0, w0, *b);
    *a = _mm256_fmadd_ps(x1, w1, *a); *b = _mm256_fmadd_ps(b1, w1, *b);
    *a = _mm256_fmadd_ps(x2, w2, *a); *b = _mm256_fmadd_ps(b2, w2, *b);
}

/* Channels [c0, c1) (whole blocks) of two interior output pixels, o and o + channels, whose
 * input columns start at p0..p2 (rows 0..2). One sum per kernel row: three short dependency
 * chains per pixel instead of one of nine FMAs (which bounded this loop). */
TM_TARGET_AVX2 static inline __attribute__((always_inline)) void tm_dw_pairs(
    const float* p0, const float* p1, const float* p2, size_t channels, size_t c0, size_t c1,
    size_t stride, const float* wc, float* o, __m256 lo, __m256 hi) {
    for (size_t c = c0; c < c1; c += 8, wc += TM_DW_BLOCK_FLOATS) {
        __m256 a0 = _mm256_load_ps(wc), b0 = a0;
        __m256 a1 = _mm256_setzero_ps(), b1 = a1, a2 = a1, b2 = a1;
        tm_dw_pair_row(p0 + c, channels, stride, wc + 8, &a0, &b0);
        tm_dw_pair_row(p1 + c, channels, stride, wc + 32, &a1, &b1);
        tm_dw_pair_row(p2 + c, channels, stride, wc + 56, &a2, &b2);
        const __m256 a = _mm256_add_ps(a0, _mm256_add_ps(a1, a2));
        const __m256 b = _mm256_add_ps(b0, _mm256_add_ps(b1, b2));
        _mm256_storeu_ps(o + c, _mm256_min_ps(_mm256_max_ps(a, lo), hi));
        _mm256_storeu_ps(o + channels + c, _mm256_min_ps(_mm256_max_ps(b, lo), hi));
    }
}

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
    if (channels <= TM_DW_AVX2_FEW_CHANNELS) {
        tm_dwconv_row_few_channels(channels, in_width, out_width, stride, pad_left, r0, r1, r2, w,
                                   out, lo, hi);
        return;
    }

    /* Pixel pairs read 12 input streams; when a pixel is a multiple of 4 KiB (C = 1024) they all
     * fall in one L1 set, more than its 8 ways: then single pixels (9 streams) are faster. Pairs
     * only at strides 1 and 2 (tm_dw_pair_row's second pixel starts `stride` columns on, 1 or 2;
     * other strides, which no MobileNet file has, go pixel by pixel). */
    const int pairs = (channels * sizeof(float)) % 4096 != 0 && stride <= 2;
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
        if (pairs && ix0 >= 0 && ox + 1 < out_width && (size_t)ix0 + stride + 3 <= in_width) {
            /* Two interior pixels at once: weights loaded once, shared input columns once. */
            const float* p0 = r0 + (size_t)ix0 * channels;
            const float* p1 = r1 + (size_t)ix0 * channels;
            const float* p2 = r2 + (size_t)ix0 * channels;
            /* A constant stride at each call: the shared columns are loaded once. */
            if (stride == 1) tm_dw_pairs(p0, p1, p2, channels, ct, ct_end, 1, wt, o, lo, hi);
            else tm_dw_pairs(p0, p1, p2, channels, ct, ct_end, 2, wt, o, lo, hi);
            if (tile_has_tail) {
                for (size_t q = 0; q < 2; q++) {
                    const float* wc2 = w + (cv / 8) * TM_DW_BLOCK_FLOATS;
                    const size_t off0 = ((size_t)ix0 + q * stride) * channels + cv;
                    __m256 acc = _mm256_load_ps(wc2);
                    for (size_t kx = 0; kx < 3; kx++) {
                        const size_t off = off0 + kx * channels;
                        acc = _mm256_fmadd_ps(_mm256_maskload_ps(r0 + off, tail_mask), _mm256_load_ps(wc2 + 8 * (1 + kx)), acc);
                        acc = _mm256_fmadd_ps(_mm256_maskload_ps(r1 + off, tail_mask), _mm256_load_ps(wc2 + 8 * (4 + kx)), acc);
                        acc = _mm256_fmadd_ps(_mm256_maskload_ps(r2 + off, tail_mask), _mm256_load_ps(wc2 + 8 * (7 + kx)), acc);
                    }
                    _mm256_maskstore_ps(o + q * channels + cv, tail_mask, _mm256_min_ps(_mm256_max_ps(acc, lo), hi));
                }
            }
            ox++;
            continue;
        }
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
