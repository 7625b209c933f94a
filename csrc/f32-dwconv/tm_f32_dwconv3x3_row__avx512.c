#include "../internal.h"

#ifdef TM_ARCH_X86
#include <immintrin.h>

/* One output row of a depthwise 3x3 convolution, AVX-512F, 16 channels (two packed blocks of 8)
 * per vector, up to TM_DW512_PIXELS output pixels per step (independent dependency chains).
 *
 * Bit-identical to tm_f32_dwconv3x3_row__avx2: every output is summed in the order the AVX2
 * kernel sums it, which depends on where the pixel and channel fall:
 *  - SEQ: bias, then for each column kx inside the image rows 0, 1, 2 (the scalar kernel's
 *    order, with fused multiply-adds): rows of <= TM_DW512_FEW_CHANNELS channels, border
 *    pixels, and the channels past the last whole block of 8 (the AVX2 masked tail);
 *  - PAIR: (bias + row 0's three taps) + ((0 + row 1's taps) + (0 + row 2's taps)): interior
 *    pixels the AVX2 kernel runs as pairs, taken greedily from the first interior pixel;
 *  - SINGLE: (bias + taps 0, 2, 4, 6, 8) + (taps 1, 3, 5, 7): the interior pixel left over after
 *    the pairs, or every interior pixel where the AVX2 kernel runs no pairs (a pixel of C floats
 *    a multiple of 4 KiB).
 * The pixels of a class are independent, so any number of them can be computed at once.
 *
 * Interior pixels go in blocks of up to TM_DW512_PIXELS that slide along the row: each input
 * vector under the block is loaded once and fed to every pixel whose window holds it (stride 1:
 * 6 loads per row of a 4-pixel block, not 12), while each sum still receives its taps in its
 * class's order (tm_dw512_block). Measured on one Zen 5 core against loading every tap (whole
 * layers, data in L2, interleaved): 7x7x1024 0.58x the time (its 4 KiB pixels no longer load a
 * column three times from one L1 set), 14x14x512 and 56x56x128 ~0.88x, 28x28x256 ~0.92x.
 *
 * Two walks over a row, chosen by measurement on MobileNet v1's shapes (one Zen 5 core):
 *  - group-major: for each group of 16 channels the ten weight vectors are built once and held in
 *    registers over the whole row. Best for few channels (short pixel strides), where a pixel
 *    is a multiple of 4 KiB (C = 1024: pixel-major streams would all hit one L1 set) and for
 *    rows of fewer than TM_DW512_PIXEL_MAJOR_WIDTH output pixels (7x7: pixel-major rebuilds the
 *    weights for a block of 4, of 1 and for the borders, and ran 1.4x slower at 7x7x512 and
 *    7x7x768);
 *  - pixel-major (C >= TM_DW512_PIXEL_MAJOR_CHANNELS otherwise): tiles of TM_DW512_PM_TILE
 *    channels outer, then blocks of interior pixels, channel groups inner, weights rebuilt per
 *    block, so memory is walked contiguously as in the AVX2 kernel. Group-major there steps
 *    2-16 KiB per block in each of 27 streams and ran up to 1.25x slower (56x56x128, 28x28x256)
 *    than pixel-major, and at 14x14 ~7 % slower.
 * Partial vectors (the last block of 8, the channel tail) go group-major with masked loads and
 * stores: nothing outside the buffers is touched (masked-off lanes do not fault). */
#define TM_DW512_FEW_CHANNELS 32 /* = TM_DW_AVX2_FEW_CHANNELS: the AVX2 kernel's SEQ-only rows */
#define TM_DW512_PIXEL_MAJOR_CHANNELS 128
#define TM_DW512_PIXEL_MAJOR_WIDTH 8
/* Pixel-major walks the row once per tile of this many channels: a block of one tile reads
 * 6 (stride 1) input columns x 3 rows x 1 KiB plus the tile's 10 KiB of weights, which stay in
 * L1 from block to block; a whole 512-channel pixel's (36 + 20 KiB) did not. 14x14x512 stride 1,
 * interleaved on one Zen 5 core: 0.88-0.93x the untiled time hot, 0.90x with L2 flushed; tiles
 * of 128 and 192 measured the same, 64 slower (28x28x256, 56x56x128: 1.07x). */
#define TM_DW512_PM_TILE 256
#define TM_DW512_PIXELS 4

enum { TM_DW512_SEQ, TM_DW512_PAIR, TM_DW512_SINGLE };

typedef struct {
    const float* r0; /* input rows, at the group's first channel */
    const float* r1;
    const float* r2;
    float* out; /* output row, at the group's first channel */
    size_t channels;
    __mmask16 mask;
    __m512 lo, hi;
    __m512 k[10]; /* bias, taps 0..8 */
} tm_dw512_group;

#define TM_DW512_INLINE TM_TARGET_AVX512 static inline __attribute__((always_inline))

/* Vector width of a group (a constant after inlining): 16 channels, or fewer under a mask. */
enum { TM_DW512_MASKED, TM_DW512_FULL };

TM_DW512_INLINE __m512 tm_dw512_load(const float* p, int full, __mmask16 m) {
    return full == TM_DW512_FULL ? _mm512_loadu_ps(p) : _mm512_maskz_loadu_ps(m, p);
}

TM_DW512_INLINE void tm_dw512_store(float* p, __m512 v, const tm_dw512_group* g, int full) {
    v = _mm512_min_ps(_mm512_max_ps(v, g->lo), g->hi);
    if (full == TM_DW512_FULL) _mm512_storeu_ps(p, v);
    else _mm512_mask_storeu_ps(p, g->mask, v);
}

/* One pixel whose window is cut by the border: columns [kx_lo, kx_hi) only, SEQ order. */
TM_DW512_INLINE void tm_dw512_border(const tm_dw512_group* g, size_t ox, size_t stride,
                                     size_t pad_left, size_t in_width, int full) {
    const ptrdiff_t ix0 = (ptrdiff_t)(ox * stride) - (ptrdiff_t)pad_left;
    __m512 acc = g->k[0];
    for (size_t kx = 0; kx < 3; kx++) {
        const ptrdiff_t ix = ix0 + (ptrdiff_t)kx;
        if (ix < 0 || ix >= (ptrdiff_t)in_width) continue;
        const size_t o = (size_t)ix * g->channels;
        acc = _mm512_fmadd_ps(tm_dw512_load(g->r0 + o, full, g->mask), g->k[1 + kx], acc);
        acc = _mm512_fmadd_ps(tm_dw512_load(g->r1 + o, full, g->mask), g->k[4 + kx], acc);
        acc = _mm512_fmadd_ps(tm_dw512_load(g->r2 + o, full, g->mask), g->k[7 + kx], acc);
    }
    tm_dw512_store(g->out + ox * g->channels, acc, g, full);
}

/* Byte offsets of pixel columns 1, 3, 5, 7 (cb = channels * 4): with the addressing modes'
 * scales every column 0..8 is one register plus a scaled index (j = 2, 4, 6, 8: cb * 2, cb * 4,
 * cb3 * 2, cb * 8). Held opaque (TM_DW512_OPAQUE) so GCC does not make each of the 27 column
 * addresses its own induction variable, which spilled them in the stride-2 blocks. */
typedef struct {
    size_t cb, cb3, cb5, cb7;
} tm_dw512_offsets;
#define TM_DW512_OPAQUE(v) __asm__("" : "+r"(v))

TM_DW512_INLINE const float* tm_dw512_col(const float* q, size_t j, const tm_dw512_offsets* o,
                                          size_t stride) {
    const char* b = (const char*)q;
    if (stride > 2) return (const float*)(b + j * o->cb); /* generic strides (not in MobileNet) */
    switch (j) {
        case 0: return q;
        case 1: return (const float*)(b + o->cb);
        case 2: return (const float*)(b + o->cb * 2);
        case 3: return (const float*)(b + o->cb3);
        case 4: return (const float*)(b + o->cb * 4);
        case 5: return (const float*)(b + o->cb5);
        case 6: return (const float*)(b + o->cb3 * 2);
        case 7: return (const float*)(b + o->cb7);
        default: return (const float*)(b + o->cb * 8);
    }
}

/* The block loops below unroll completely (their bounds are constants after inlining; GCC's
 * heuristics otherwise keep the conditional tap loops rolled, with the sums in memory). */
#define TM_DW512_UNROLL _Pragma("GCC unroll 9")
/* Keeps a loaded input vector in a register: without it GCC folds each of its (up to three) uses
 * into a memory operand and loads it again. */
#define TM_DW512_REG(v) __asm__("" : "+v"(v))

/* Column j (<= 8) of row q, loaded once. */
TM_DW512_INLINE __m512 tm_dw512_x(const float* q, size_t j, const tm_dw512_offsets* o,
                                  size_t stride, int full, __mmask16 m) {
    __m512 x = tm_dw512_load(tm_dw512_col(q, j, o, stride), full, m);
    TM_DW512_REG(x);
    return x;
}

/* P interior pixels, all in one order class: q[ky] points at row ky's first input column, o at
 * the first output pixel. P, stride, order and full are constants after inlining (P = 1 where
 * the stride is not).
 *
 * Sliding: each input vector (row ky, column j) is loaded once and fed to every pixel p of the
 * block whose window holds it (tap kx = j - p * stride), not once per pixel and tap. The order
 * in which each sum receives its taps is the class's own: SEQ and PAIR walk the columns (j
 * outer; a pixel's columns arrive kx = 0, 1, 2; SEQ takes rows 0, 1, 2 of each column, PAIR
 * keeps one sum per row), SINGLE walks the rows (ky outer, then j: taps in order 0..8). */
TM_DW512_INLINE void tm_dw512_block(const tm_dw512_group* g, const float* const q[3], float* o,
                                    const tm_dw512_offsets* off, size_t P, size_t stride,
                                    int order, int full) {
    const __mmask16 m = g->mask;
    const size_t J = (P - 1) * stride + 3; /* input columns under the block */
#define TM_DW512_TAPS(p) TM_DW512_UNROLL for (size_t p = 0; p < P; p++) \
        if (j >= (p) * stride && j - (p) * stride < 3)
    __m512 res[TM_DW512_PIXELS];
    if (order == TM_DW512_SEQ) {
        __m512 acc[TM_DW512_PIXELS];
        TM_DW512_UNROLL for (size_t p = 0; p < P; p++) acc[p] = g->k[0];
        TM_DW512_UNROLL for (size_t j = 0; j < J; j++) {
            const __m512 x0 = tm_dw512_x(q[0], j, off, stride, full, m);
            const __m512 x1 = tm_dw512_x(q[1], j, off, stride, full, m);
            const __m512 x2 = tm_dw512_x(q[2], j, off, stride, full, m);
            TM_DW512_TAPS(p) {
                const size_t kx = j - p * stride;
                acc[p] = _mm512_fmadd_ps(x0, g->k[1 + kx], acc[p]);
                acc[p] = _mm512_fmadd_ps(x1, g->k[4 + kx], acc[p]);
                acc[p] = _mm512_fmadd_ps(x2, g->k[7 + kx], acc[p]);
            }
        }
        TM_DW512_UNROLL for (size_t p = 0; p < P; p++) res[p] = acc[p];
    } else if (order == TM_DW512_PAIR) {
        __m512 a[3][TM_DW512_PIXELS];
        TM_DW512_UNROLL for (size_t p = 0; p < P; p++) {
            a[0][p] = g->k[0];
            a[1][p] = _mm512_setzero_ps();
            a[2][p] = _mm512_setzero_ps();
        }
        TM_DW512_UNROLL for (size_t j = 0; j < J; j++)
            TM_DW512_UNROLL for (size_t ky = 0; ky < 3; ky++) {
                const __m512 x = tm_dw512_x(q[ky], j, off, stride, full, m);
                TM_DW512_TAPS(p) {
                    a[ky][p] = _mm512_fmadd_ps(x, g->k[1 + ky * 3 + j - p * stride], a[ky][p]);
                }
            }
        TM_DW512_UNROLL for (size_t p = 0; p < P; p++)
            res[p] = _mm512_add_ps(a[0][p], _mm512_add_ps(a[1][p], a[2][p]));
    } else {
        /* Taps in order 0..8 alternate between the two sums; the odd one starts with a product. */
        __m512 a0[TM_DW512_PIXELS], a1[TM_DW512_PIXELS];
        /* (set again at t = 0 and 1: this only tells the compiler they are never read unset) */
        TM_DW512_UNROLL for (size_t p = 0; p < P; p++) a0[p] = a1[p] = _mm512_setzero_ps();
        TM_DW512_UNROLL for (size_t ky = 0; ky < 3; ky++)
            TM_DW512_UNROLL for (size_t j = 0; j < J; j++) {
                const __m512 x = tm_dw512_x(q[ky], j, off, stride, full, m);
                TM_DW512_TAPS(p) {
                    const size_t t = ky * 3 + j - p * stride;
                    if (t == 0) a0[p] = _mm512_fmadd_ps(x, g->k[1], g->k[0]);
                    else if (t == 1) a1[p] = _mm512_mul_ps(x, g->k[2]);
                    else if (t % 2 == 0) a0[p] = _mm512_fmadd_ps(x, g->k[1 + t], a0[p]);
                    else a1[p] = _mm512_fmadd_ps(x, g->k[1 + t], a1[p]);
                }
            }
        TM_DW512_UNROLL for (size_t p = 0; p < P; p++) res[p] = _mm512_add_ps(a0[p], a1[p]);
    }
#undef TM_DW512_TAPS
    TM_DW512_UNROLL for (size_t p = 0; p < P; p++)
        tm_dw512_store((float*)((char*)o + p * off->cb), res[p], g, full);
}

/* Interior pixels [a, b) of one order class: blocks of P (TM_DW512_PIXELS, or 1 where the
 * stride is not a constant), then single pixels. */
TM_DW512_INLINE void tm_dw512_interior(const tm_dw512_group* g, size_t a, size_t b,
                                       size_t stride, size_t pad_left, int order, int full,
                                       size_t P) {
    tm_dw512_offsets off = {g->channels * sizeof(float), 3 * g->channels * sizeof(float),
                            5 * g->channels * sizeof(float), 7 * g->channels * sizeof(float)};
    TM_DW512_OPAQUE(off.cb);
    TM_DW512_OPAQUE(off.cb3);
    TM_DW512_OPAQUE(off.cb5);
    TM_DW512_OPAQUE(off.cb7);
    const size_t ix0 = a * stride - pad_left;
    const float* q[3] = {g->r0 + ix0 * g->channels, g->r1 + ix0 * g->channels,
                         g->r2 + ix0 * g->channels};
    float* o = g->out + a * g->channels;
    const size_t step_in = P * stride * g->channels;
    const size_t step_out = P * g->channels;
    size_t ox = a;
    for (; ox + P <= b; ox += P) {
        TM_DW512_OPAQUE(q[0]);
        TM_DW512_OPAQUE(q[1]);
        TM_DW512_OPAQUE(q[2]);
        TM_DW512_OPAQUE(o);
        tm_dw512_block(g, q, o, &off, P, stride, order, full);
        q[0] += step_in;
        q[1] += step_in;
        q[2] += step_in;
        o += step_out;
    }
    for (; ox < b; ox++) {
        tm_dw512_block(g, q, o, &off, 1, stride, order, full);
        q[0] += stride * g->channels;
        q[1] += stride * g->channels;
        q[2] += stride * g->channels;
        o += g->channels;
    }
}

/* Output pixels [x0, x1) of one channel group. Pixels [first, last) are interior; of those,
 * [first, pend) are PAIR and [pend, last) SINGLE unless the group is SEQ only. */
TM_DW512_INLINE void tm_dw512_run(const tm_dw512_group* g, size_t x0, size_t x1, size_t first,
                                  size_t pend, size_t last, size_t stride, size_t pad_left,
                                  size_t in_width, int seq_only, int full, size_t pmax) {
    size_t ox = x0;
    for (; ox < x1 && ox < first; ox++) tm_dw512_border(g, ox, stride, pad_left, in_width, full);
    if (seq_only) {
        const size_t b = TM_MIN(x1, last);
        if (ox < b) tm_dw512_interior(g, ox, b, stride, pad_left, TM_DW512_SEQ, full, pmax);
        ox = TM_MAX(ox, b);
    } else {
        size_t b = TM_MIN(x1, pend);
        if (ox < b) tm_dw512_interior(g, ox, b, stride, pad_left, TM_DW512_PAIR, full, pmax);
        ox = TM_MAX(ox, b);
        b = TM_MIN(x1, last);
        if (ox < b) tm_dw512_interior(g, ox, b, stride, pad_left, TM_DW512_SINGLE, full, pmax);
        ox = TM_MAX(ox, b);
    }
    for (; ox < x1; ox++) tm_dw512_border(g, ox, stride, pad_left, in_width, full);
}

/* Block b's 8 floats at row t (0 bias, 1 + tap) in the low half, block b + 1's in the high half
 * when `two`; zeros where there is no block. */
TM_DW512_INLINE __m512 tm_dw512_weights(const float* w, size_t block, size_t t, int two) {
    const __m256 lo = _mm256_load_ps(w + block * TM_DW_BLOCK_FLOATS + t * TM_CHANNEL_TILE);
    const __m256 hi =
        two ? _mm256_load_ps(w + (block + 1) * TM_DW_BLOCK_FLOATS + t * TM_CHANNEL_TILE)
            : _mm256_setzero_ps();
    return _mm512_castpd_ps(_mm512_insertf64x4(_mm512_castpd256_pd512(_mm256_castps_pd(lo)),
                                               _mm256_castps_pd(hi), 1));
}

/* What the row kernel was called with, and where each order class begins. */
typedef struct {
    const float* rows[3];
    const float* w;
    float* out;
    size_t channels, in_width, out_width, stride, pad_left;
    size_t first, pend, last; /* see tm_dw512_run */
    __m512 lo, hi;
} tm_dw512_row;

/* Pixel-major: interior pixels [a, a + n * P) of one order class in n blocks of P, the full
 * groups [c0, c1) inner, weights rebuilt per block and group. */
TM_DW512_INLINE void tm_dw512_pm_blocks(const tm_dw512_row* r, size_t c0, size_t c1, size_t a,
                                        size_t n, size_t P, size_t stride, int order) {
    const size_t C = r->channels;
    tm_dw512_offsets off = {C * sizeof(float), 3 * C * sizeof(float), 5 * C * sizeof(float),
                            7 * C * sizeof(float)};
    TM_DW512_OPAQUE(off.cb);
    TM_DW512_OPAQUE(off.cb3);
    TM_DW512_OPAQUE(off.cb5);
    TM_DW512_OPAQUE(off.cb7);
    tm_dw512_group g;
    g.channels = C;
    g.lo = r->lo;
    g.hi = r->hi;
    g.mask = (__mmask16)0xFFFF;
    for (size_t i = 0, ox = a; i < n; i++, ox += P) {
        const size_t ix0 = ox * stride - r->pad_left;
        const float* q0 = r->rows[0] + ix0 * C;
        const float* q1 = r->rows[1] + ix0 * C;
        const float* q2 = r->rows[2] + ix0 * C;
        float* o = r->out + ox * C;
        for (size_t c = c0; c < c1; c += 16) {
            for (size_t t = 0; t < 10; t++) g.k[t] = tm_dw512_weights(r->w, c / 8, t, 1);
            const float* const q[3] = {q0 + c, q1 + c, q2 + c};
            tm_dw512_block(&g, q, o + c, &off, P, stride, order, TM_DW512_FULL);
        }
    }
}

/* Pixel-major over interior pixels [a, b): blocks of 4, then of 2 and 1 (so a 7-pixel row
 * rebuilds the weights 3 times, not 4). */
TM_DW512_INLINE void tm_dw512_pm_interior(const tm_dw512_row* r, size_t c0, size_t c1, size_t a,
                                          size_t b, size_t stride, int order, size_t pmax) {
    if (pmax >= TM_DW512_PIXELS) {
        const size_t n4 = (b - a) / TM_DW512_PIXELS;
        tm_dw512_pm_blocks(r, c0, c1, a, n4, TM_DW512_PIXELS, stride, order);
        a += n4 * TM_DW512_PIXELS;
        tm_dw512_pm_blocks(r, c0, c1, a, (b - a) / 2, 2, stride, order);
        a += (b - a) / 2 * 2;
    }
    tm_dw512_pm_blocks(r, c0, c1, a, b - a, 1, stride, order);
}

/* Channels [c0, c1): groups of 16 when `full`, else one group of c1 - c0 < 16 channels. The
 * group lives in this function's locals, so its weights stay in registers (through a caller's
 * copy every output store could alias them and force a reload). With pixel_major, only the
 * border pixels go group by group. */
TM_DW512_INLINE void tm_dw512_groups(const tm_dw512_row* row, size_t c0, size_t c1, size_t stride,
                                     int seq_only, int full, int pixel_major, size_t pmax) {
    const tm_dw512_row r = *row;
    tm_dw512_group g;
    g.channels = r.channels;
    g.lo = r.lo;
    g.hi = r.hi;
    g.mask = full == TM_DW512_FULL ? (__mmask16)0xFFFF : (__mmask16)((1u << (c1 - c0)) - 1u);
    for (size_t c = c0; c < c1; c += 16) {
        for (size_t t = 0; t < 10; t++)
            g.k[t] = tm_dw512_weights(r.w, c / 8, t, c1 - c0 > 8);
        g.r0 = r.rows[0] + c;
        g.r1 = r.rows[1] + c;
        g.r2 = r.rows[2] + c;
        g.out = r.out + c;
        if (pixel_major) {
            tm_dw512_run(&g, 0, r.first, r.first, r.pend, r.last, stride, r.pad_left,
                         r.in_width, seq_only, full, pmax);
            tm_dw512_run(&g, r.last, r.out_width, r.first, r.pend, r.last, stride, r.pad_left,
                         r.in_width, seq_only, full, pmax);
        } else {
            tm_dw512_run(&g, 0, r.out_width, r.first, r.pend, r.last, stride, r.pad_left,
                         r.in_width, seq_only, full, pmax);
        }
    }
    if (pixel_major) {
        for (size_t ct = c0; ct < c1; ct += TM_DW512_PM_TILE) {
            const size_t ce = TM_MIN(ct + TM_DW512_PM_TILE, c1);
            tm_dw512_pm_interior(&r, ct, ce, r.first, r.pend, stride, TM_DW512_PAIR, pmax);
            tm_dw512_pm_interior(&r, ct, ce, r.pend, r.last, stride, TM_DW512_SINGLE, pmax);
        }
    }
}

/* Instances with a constant stride (1, 2; others at run time) and vector width; pmax: pixels per
 * block of the interior walks (TM_DW512_PIXELS, or 1 where the stride is a run-time value: a
 * block's columns depend on it). */
#define TM_DW512_INSTANCE(name, stride_expr, width, pmax)                                 \
    TM_TARGET_AVX512 __attribute__((noinline)) static void name(                           \
        const tm_dw512_row* r, size_t c0, size_t c1, int seq_only, int pixel_major) {      \
        tm_dw512_groups(r, c0, c1, stride_expr, seq_only, width,                           \
                        pixel_major && (width) == TM_DW512_FULL && !seq_only, pmax);       \
    }
TM_DW512_INSTANCE(tm_dw512_full_s1, 1, TM_DW512_FULL, TM_DW512_PIXELS)
TM_DW512_INSTANCE(tm_dw512_full_s2, 2, TM_DW512_FULL, TM_DW512_PIXELS)
TM_DW512_INSTANCE(tm_dw512_masked_s1, 1, TM_DW512_MASKED, TM_DW512_PIXELS)
TM_DW512_INSTANCE(tm_dw512_masked_s2, 2, TM_DW512_MASKED, TM_DW512_PIXELS)
/* Strides not in MobileNet: one pixel at a time. */
TM_DW512_INSTANCE(tm_dw512_full_any, r->stride, TM_DW512_FULL, 1)
TM_DW512_INSTANCE(tm_dw512_masked_any, r->stride, TM_DW512_MASKED, 1)

/* Exactly 8 channels, stride 1 (the first depthwise layer at width 0.25): neighbouring pixels
 * are adjacent in memory, so one vector holds two output pixels (and each input load the two
 * columns they need), the weights broadcast to both halves; SEQ order as the AVX2 kernel's
 * few-channel rows. Border pixels and an odd interior one go through the masked group path. */
TM_TARGET_AVX512 __attribute__((noinline)) static void tm_dw512_c8_s1(const tm_dw512_row* row) {
    const tm_dw512_row r = *row;
    __m512 k[10];
    for (size_t t = 0; t < 10; t++)
        k[t] = _mm512_castpd_ps(
            _mm512_broadcast_f64x4(_mm256_load_pd((const double*)(r.w + 8 * t))));
    const size_t n2 = (r.last - r.first) / 2, pe = r.first + 2 * n2;
    const size_t ix = r.first - r.pad_left;
    const float* q[3] = {r.rows[0] + ix * 8, r.rows[1] + ix * 8, r.rows[2] + ix * 8};
    float* o = r.out + r.first * 8;
    size_t i = 0;
    /* TM_DW512_PIXELS vectors (2 * TM_DW512_PIXELS pixels) per step, then one at a time. */
    for (; i + TM_DW512_PIXELS <= n2; i += TM_DW512_PIXELS, o += 16 * TM_DW512_PIXELS) {
        __m512 acc[TM_DW512_PIXELS];
        for (size_t p = 0; p < TM_DW512_PIXELS; p++) acc[p] = k[0];
        for (size_t kx = 0; kx < 3; kx++)
            for (size_t ky = 0; ky < 3; ky++)
                for (size_t p = 0; p < TM_DW512_PIXELS; p++)
                    acc[p] = _mm512_fmadd_ps(_mm512_loadu_ps(q[ky] + 16 * p + 8 * kx),
                                             k[1 + ky * 3 + kx], acc[p]);
        for (size_t p = 0; p < TM_DW512_PIXELS; p++)
            _mm512_storeu_ps(o + 16 * p, _mm512_min_ps(_mm512_max_ps(acc[p], r.lo), r.hi));
        q[0] += 16 * TM_DW512_PIXELS;
        q[1] += 16 * TM_DW512_PIXELS;
        q[2] += 16 * TM_DW512_PIXELS;
    }
    for (; i < n2; i++, o += 16) {
        __m512 acc = k[0];
        for (size_t kx = 0; kx < 3; kx++)
            for (size_t ky = 0; ky < 3; ky++)
                acc = _mm512_fmadd_ps(_mm512_loadu_ps(q[ky] + 8 * kx), k[1 + ky * 3 + kx], acc);
        _mm512_storeu_ps(o, _mm512_min_ps(_mm512_max_ps(acc, r.lo), r.hi));
        q[0] += 16;
        q[1] += 16;
        q[2] += 16;
    }
    tm_dw512_group g;
    g.channels = 8;
    g.lo = r.lo;
    g.hi = r.hi;
    g.mask = (__mmask16)0xFF;
    for (size_t t = 0; t < 10; t++) g.k[t] = tm_dw512_weights(r.w, 0, t, 0);
    g.r0 = r.rows[0];
    g.r1 = r.rows[1];
    g.r2 = r.rows[2];
    g.out = r.out;
    tm_dw512_run(&g, 0, r.first, r.first, r.first, r.last, 1, r.pad_left, r.in_width, 1,
                 TM_DW512_MASKED, 1);
    tm_dw512_run(&g, pe, r.out_width, r.first, r.first, r.last, 1, r.pad_left, r.in_width, 1,
                 TM_DW512_MASKED, 1);
}

TM_TARGET_AVX512 void tm_f32_dwconv3x3_row__avx512(size_t channels, size_t in_width,
                                                   size_t out_width, size_t stride,
                                                   size_t pad_left, const float** rows,
                                                   const float* w, float* out,
                                                   const tm_f32_minmax_params* params) {
    tm_dw512_row r;
    r.rows[0] = rows[0];
    r.rows[1] = rows[1];
    r.rows[2] = rows[2];
    r.w = w;
    r.out = out;
    r.channels = channels;
    r.in_width = in_width;
    r.out_width = out_width;
    r.stride = stride;
    r.pad_left = pad_left;
    r.lo = _mm512_set1_ps(params->min);
    r.hi = _mm512_set1_ps(params->max);
    /* Interior pixels [first, last): all three columns inside the row. */
    size_t first = pad_left == 0 ? 0 : (pad_left + stride - 1) / stride;
    size_t last = in_width + pad_left >= 3 ? (in_width + pad_left - 3) / stride + 1 : 0;
    if (last > out_width) last = out_width;
    if (first > last) first = last;
    /* The AVX2 kernel's pairs (see its comment: none when a pixel is a multiple of 4 KiB, nor at
     * strides other than 1 and 2). */
    const int pairs = (channels * sizeof(float)) % 4096 != 0 && stride <= 2;
    r.first = first;
    r.last = last;
    r.pend = pairs ? first + (last - first) / 2 * 2 : first;
    const int pixel_major = pairs && channels >= TM_DW512_PIXEL_MAJOR_CHANNELS &&
                            out_width >= TM_DW512_PIXEL_MAJOR_WIDTH;

    if (channels == 8 && stride == 1) {
        tm_dw512_c8_s1(&r);
        return;
    }
    /* Whole blocks of 8 ([0, cv)) in PAIR / SINGLE order, the rest (all of a few-channel row)
     * SEQ; full groups of 16 first, then at most one masked group in each part. */
    const size_t cv = channels <= TM_DW512_FEW_CHANNELS ? 0 : channels & ~(size_t)7;
    const size_t part[2][2] = {{0, cv}, {cv, channels}};
    for (int k = 0; k < 2; k++) {
        const size_t c0 = part[k][0], c1 = part[k][1];
        const size_t c16 = c0 + (c1 - c0) / 16 * 16;
        const int seq_only = k == 1;
        if (c16 > c0) {
            if (stride == 1) tm_dw512_full_s1(&r, c0, c16, seq_only, pixel_major);
            else if (stride == 2) tm_dw512_full_s2(&r, c0, c16, seq_only, pixel_major);
            else tm_dw512_full_any(&r, c0, c16, seq_only, pixel_major);
        }
        if (c1 > c16) {
            if (stride == 1) tm_dw512_masked_s1(&r, c16, c1, seq_only, 0);
            else if (stride == 2) tm_dw512_masked_s2(&r, c16, c1, seq_only, 0);
            else tm_dw512_masked_any(&r, c16, c1, seq_only, 0);
        }
    }
}
#endif
