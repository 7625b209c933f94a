/* Full 3x3 convolution, float32 and quantized, as a GEMM over packed (9 * cin) x cout weights;
 * tasks of TM_CONV_TILES_PER_TASK tiles of gemm_mr output pixels.
 *
 * float32, an indirect GEMM (the XNNPACK way): at setup, every output pixel gets three pointers,
 * one per window row, each to the 3 * cin input floats of its three taps (or at a zero row
 * above or below the image; a row crossing the left or right edge points at an edge row of the
 * workspace that each run fills from the input, zeros off the image), kept in the step's
 * workspace; the igemm ukernel then reads its A rows through them as ks = 3 taps of
 * kc = 3 * cin channels: the same products in the same order as nine taps of cin, a third of
 * the pointer loads. Only the few edge rows are copied per call.
 *
 * Quantized, an implicit GEMM: each task gathers the 3x3 x cin patches of its tiles into its
 * thread's scratch rows (the input zero point where the window leaves the image) and runs the
 * GEMM ukernel against the packed weights. */
#include <string.h>

#include "internal.h"

#define TM_CONV_TILES_PER_TASK 8

/* ---- float32 ----------------------------------------------------------------------------- */
/* Pixels of one indirection group: the GEMM tile's gemm_mr, or the table's narrow tile's
 * conv_narrow_mr (a multiple of it) when it has one. The table is laid out in gemm_mr-row tiles
 * with the pixels rounded up to whole groups, so both tiles find valid rows everywhere. */
static size_t tm_f32_conv_group(const tm_f32_kernels* kern) {
    return kern->conv_narrow != NULL ? TM_MAX(kern->gemm_mr, kern->conv_narrow_mr) : kern->gemm_mr;
}

/* The window row (ky) of output row oy inside the image vertically; the window of output
 * column ox inside horizontally (its three taps then are 3 * cin contiguous input floats). */
static int tm_conv_iy_inside(const tm_step* s, size_t oy, size_t ky) {
    const ptrdiff_t iy = (ptrdiff_t)(oy * s->stride + ky) - (ptrdiff_t)s->pad_top;
    return iy >= 0 && iy < (ptrdiff_t)s->h;
}
static int tm_conv_ix_inside(const tm_step* s, size_t ox) {
    const ptrdiff_t ix0 = (ptrdiff_t)(ox * s->stride) - (ptrdiff_t)s->pad_left;
    return ix0 >= 0 && ix0 + 2 < (ptrdiff_t)s->w;
}

/* Edge rows: (pixel, ky) pairs whose window row is inside vertically but not horizontally.
 * Each gets a 3 * cin float row in the workspace, filled from the input (zeros off the image)
 * at the start of every run. */
static size_t tm_f32_conv_edge_rows(const tm_step* s) {
    size_t cols = 0, rows = 0;
    for (size_t ox = 0; ox < s->ow; ox++) cols += !tm_conv_ix_inside(s, ox);
    for (size_t oy = 0; oy < s->oh; oy++)
        for (size_t ky = 0; ky < 3; ky++) rows += tm_conv_iy_inside(s, oy, ky);
    return s->batch * cols * rows;
}

/* Workspace, each part 64-byte aligned: the indirection table (3 pointers per pixel, one per
 * window row, pixels rounded up to whole groups); a zero row of 3 * cin floats (window rows
 * above or below the image); the edge rows; the edge rows' (pixel * 3 + ky). */
typedef struct { size_t edge_rows, zero, edges, list, total; } tm_f32_conv_layout;

static tm_f32_conv_layout tm_f32_conv_workspace_layout(const tm_step* s) {
    const size_t pixels = s->batch * s->oh * s->ow, row = 3 * s->cin * sizeof(float);
    const size_t edges = tm_f32_conv_edge_rows(s);
    tm_f32_conv_layout l;
    l.edge_rows = edges;
    l.zero = TM_ROUND_UP(TM_ROUND_UP(pixels, tm_f32_conv_group(s->f32)) * 3 * sizeof(float*), 64);
    l.edges = l.zero + TM_ROUND_UP(row, 64);
    l.list = l.edges + TM_ROUND_UP(edges * row, 64);
    l.total = l.list + TM_ROUND_UP(edges * sizeof(size_t), 64);
    return l;
}

size_t tm_f32_conv3x3_workspace(const tm_step* s) {
    return tm_f32_conv_workspace_layout(s).total;
}

void tm_f32_conv3x3_setup(const tm_step* s) {
    const size_t mr = s->f32->gemm_mr;
    const size_t h = s->h, w = s->w, cin = s->cin, oh = s->oh, ow = s->ow;
    const size_t pixels = s->batch * oh * ow;
    const size_t padded = TM_ROUND_UP(pixels, tm_f32_conv_group(s->f32));
    const tm_f32_conv_layout l = tm_f32_conv_workspace_layout(s);
    const float** indirection = (const float**)s->workspace;
    float* zero = (float*)((char*)s->workspace + l.zero);
    float* edges = (float*)((char*)s->workspace + l.edges);
    size_t* list = (size_t*)((char*)s->workspace + l.list);
    const float* in = (const float*)s->in;
    for (size_t i = 0; i < 3 * cin; i++) zero[i] = 0.0f;
    if (pixels == 0) return;
    size_t edge = 0;
    for (size_t q = 0; q < padded; q++) {
        /* Row q of tile q / mr; rows past the last pixel repeat it (computed, never stored). */
        const float** ind = indirection + (q / mr) * mr * 3 + q % mr;
        if (q >= pixels) {
            const float** last = indirection + ((pixels - 1) / mr) * mr * 3 + (pixels - 1) % mr;
            for (size_t ky = 0; ky < 3; ky++) ind[ky * mr] = last[ky * mr];
            continue;
        }
        const size_t b = q / (oh * ow), oy = (q % (oh * ow)) / ow, ox = q % ow;
        const ptrdiff_t ix0 = (ptrdiff_t)(ox * s->stride) - (ptrdiff_t)s->pad_left;
        for (size_t ky = 0; ky < 3; ky++) {
            const ptrdiff_t iy = (ptrdiff_t)(oy * s->stride + ky) - (ptrdiff_t)s->pad_top;
            if (!tm_conv_iy_inside(s, oy, ky)) {
                ind[ky * mr] = zero;
            } else if (tm_conv_ix_inside(s, ox)) {
                ind[ky * mr] = in + ((b * h + (size_t)iy) * w + (size_t)ix0) * cin;
            } else {
                list[edge] = q * 3 + ky;
                ind[ky * mr] = edges + edge++ * 3 * cin;
            }
        }
    }
}

/* The edge rows from this run's input: the three taps' cin floats, zeros off the image. */
void tm_f32_conv3x3_fill_edges(const tm_step* s) {
    const tm_f32_conv_layout l = tm_f32_conv_workspace_layout(s);
    const size_t cin = s->cin;
    float* edges = (float*)((char*)s->workspace + l.edges);
    const size_t* list = (const size_t*)((const char*)s->workspace + l.list);
    const float* in = (const float*)s->in;
    for (size_t e = 0; e < l.edge_rows; e++) {
        const size_t q = list[e] / 3, ky = list[e] % 3;
        const size_t b = q / (s->oh * s->ow), oy = (q % (s->oh * s->ow)) / s->ow, ox = q % s->ow;
        const size_t iy = oy * s->stride + ky - s->pad_top; /* inside: only such rows are listed */
        float* dst = edges + e * 3 * cin;
        for (size_t kx = 0; kx < 3; kx++, dst += cin) {
            const ptrdiff_t ix = (ptrdiff_t)(ox * s->stride + kx) - (ptrdiff_t)s->pad_left;
            if (ix >= 0 && ix < (ptrdiff_t)s->w)
                memcpy(dst, in + ((b * s->h + iy) * s->w + (size_t)ix) * cin, cin * sizeof(float));
            else
                for (size_t c = 0; c < cin; c++) dst[c] = 0.0f;
        }
    }
}

typedef struct {
    const tm_f32_kernels* kern;
    size_t pixels, cin, cout;
    size_t task_pixels;  /* a multiple of the indirection group */
    const float** indirection;
    const float* packed;
    float* out;
    tm_f32_minmax_params params;
} tm_f32_conv_ctx;

/* Pixels [0, count) of every panel, their indirection from `ind` (a group boundary of a table
 * laid out as tm_f32_conv3x3_setup lays it), their outputs from `out` (cout floats each), as
 * ks = 3 window rows of kc = 3 * cin floats (taps kx 0..2 in order, channels in order within
 * each: the packed weight rows' order): a panel of at most conv_narrow_nr columns (the first
 * layer's 8 or 16 channels) on the table's narrow tile where it has one, the others on the GEMM
 * tile. Both read the same packed panel in the same order: the same bits either way. */
void tm_f32_conv3x3_pixels(const tm_f32_kernels* kern, size_t cin, size_t cout,
                           const float** ind, size_t count, const float* packed, float* out,
                           const tm_f32_minmax_params* params) {
    const size_t mr = kern->gemm_mr, nr = kern->gemm_nr;
    const size_t panel_floats = nr * (9 * cin + 1);
    for (size_t n0 = 0; n0 < cout; n0 += nr) {
        const size_t nc = TM_MIN(nr, cout - n0);
        const float* w = packed + (n0 / nr) * panel_floats;
        const int narrow = kern->conv_narrow != NULL && nc <= kern->conv_narrow_nr;
        const tm_f32_igemm_ukernel_fn tile = narrow ? kern->conv_narrow : kern->igemm;
        const size_t rows = narrow ? kern->conv_narrow_mr : mr;
        for (size_t p0 = 0; p0 < count; p0 += rows)
            tile(TM_MIN(rows, count - p0), nc, 3 * cin, 3, ind + p0 * 3, w, out + p0 * cout + n0,
                 cout, params);
    }
}

static void tm_f32_conv_task(void* p, size_t thread, size_t task) {
    (void)thread;
    const tm_f32_conv_ctx* ctx = (const tm_f32_conv_ctx*)p;
    const size_t first = task * ctx->task_pixels;
    const size_t end = TM_MIN(ctx->pixels, first + ctx->task_pixels);
    tm_f32_conv3x3_pixels(ctx->kern, ctx->cin, ctx->cout, ctx->indirection + first * 3,
                          end - first, ctx->packed, ctx->out + first * ctx->cout, &ctx->params);
}

size_t tm_f32_conv3x3_group(const tm_f32_kernels* kern) {
    return tm_f32_conv_group(kern);
}

const float* tm_f32_conv3x3_window_row(const tm_step* s, size_t pixel, size_t ky) {
    const size_t mr = s->f32->gemm_mr;
    return ((const float* const*)s->workspace)[(pixel / mr) * mr * 3 + ky * mr + pixel % mr];
}

void tm_f32_conv3x3_run(const tm_step* s) {
    const size_t pixels = s->batch * s->oh * s->ow;
    tm_f32_conv3x3_fill_edges(s);
    const size_t task_pixels =
        TM_ROUND_UP(TM_CONV_TILES_PER_TASK * s->f32->gemm_mr, tm_f32_conv_group(s->f32));
    tm_f32_conv_ctx ctx = {s->f32, pixels, s->cin, s->cout, task_pixels,
                           (const float**)s->workspace, (const float*)s->packed, (float*)s->out,
                           {s->f32_min, s->f32_max, 0}};
    tm_pool_parallelize(s->pool, tm_f32_conv_task, &ctx, tm_task_count(pixels, task_pixels));
}

/* ---- quantized --------------------------------------------------------------------------- */
typedef struct {
    const tm_qu8_kernels* kern;
    size_t h, w, cin, cout, stride, pad_top, pad_left, oh, ow, pixels, kp;
    const uint8_t* in;
    const uint8_t* packed;
    size_t panel_bytes;
    int16_t zp;
    int row_sums;           /* dot_gemm: some weight offset z != 0 */
    uint8_t* scratch;
    size_t thread_scratch;  /* bytes per thread */
    uint8_t* out;
    tm_qu8_requant_params params;
} tm_qu8_conv_ctx;

/* Rows gathered at a time: gemm_mr, or the narrow tile's conv_narrow_mr (a multiple of it) when
 * the table has one and the last panel is narrow enough for it (only the last can be). */
static size_t tm_qu8_conv_group(const tm_qu8_kernels* kern, size_t cout) {
    const size_t last = cout == 0 ? 0 : (cout - 1) % kern->gemm_nr + 1;
    return kern->conv_narrow != NULL && last <= kern->conv_narrow_nr ? kern->conv_narrow_mr
                                                                      : kern->gemm_mr;
}

/* Bytes of one thread's scratch (a multiple of 16): a group of gathered rows, int16 for gemm, or
 * uint8 padded to dot_kr bytes plus the rows' int32 sums for dot_gemm. */
static size_t tm_qu8_conv_thread_scratch(const tm_qu8_kernels* kern, size_t cin, size_t cout) {
    if (kern->dot_gemm != NULL) {
        const size_t g = tm_qu8_conv_group(kern, cout);
        return TM_ROUND_UP(g * TM_ROUND_UP(9 * cin, kern->dot_kr), 16) +
               TM_ROUND_UP(g * sizeof(int32_t), 16);
    }
    return 2 * TM_ROUND_UP(kern->gemm_mr * TM_ROUND_UP(9 * cin, 2), 8);
}

size_t tm_qu8_conv3x3_workspace(const tm_step* s) {
    return TM_MAX(tm_pool_threads(s->pool), 1) * tm_qu8_conv_thread_scratch(s->qu8, s->cin, s->cout);
}

/* The 9 * cin patch of one output pixel as uint8 (input zero point outside the image), zero
 * padded to kp bytes (the table's dot_kr). A window inside the image is three runs of 3 * cin
 * contiguous bytes (9 for an RGB image: an 8- and a 1-byte copy). */
static void tm_qu8_gather_bytes(const uint8_t* image, size_t h, size_t w, size_t cin,
                                ptrdiff_t iy0, ptrdiff_t ix0, uint8_t zp, size_t kp,
                                uint8_t* dst) {
    if (iy0 >= 0 && iy0 + 2 < (ptrdiff_t)h && ix0 >= 0 && ix0 + 2 < (ptrdiff_t)w) {
        const uint8_t* src = image + ((size_t)iy0 * w + (size_t)ix0) * cin;
        if (cin == 3) {
            for (size_t ky = 0; ky < 3; ky++, src += w * 3) {
                memcpy(dst + 9 * ky, src, 8);
                dst[9 * ky + 8] = src[8];
            }
        } else {
            for (size_t ky = 0; ky < 3; ky++, src += w * cin) memcpy(dst + 3 * cin * ky, src, 3 * cin);
        }
    } else {
        size_t i = 0;
        for (ptrdiff_t iy = iy0; iy < iy0 + 3; iy++) {
            for (ptrdiff_t ix = ix0; ix < ix0 + 3; ix++) {
                const int inside = iy >= 0 && iy < (ptrdiff_t)h && ix >= 0 && ix < (ptrdiff_t)w;
                const uint8_t* src = image + ((size_t)iy * w + (size_t)ix) * cin;
                for (size_t c = 0; c < cin; c++, i++) dst[i] = inside ? src[c] : zp;
            }
        }
    }
    for (size_t i = 9 * cin; i < kp; i++) dst[i] = 0;
}

/* The 27 bytes of an RGB window inside the image (rows row_bytes apart) and zeros to kp (28
 * for vpdpbusd's 4, 32 for udot's 16): fixed-size copies, no library calls. */
static inline void tm_qu8_gather_rgb(const uint8_t* src, size_t row_bytes, size_t kp,
                                     uint8_t* dst) {
    static const uint8_t zeros[8] = {0};
    memcpy(dst + kp - 8, zeros, 8); /* the pad first: the window bytes overwrite the overlap */
    for (size_t ky = 0; ky < 3; ky++, src += row_bytes) {
        memcpy(dst + 9 * ky, src, 8);
        dst[9 * ky + 8] = src[8];
    }
}

static void tm_qu8_gather(const tm_qu8_conv_ctx* ctx, size_t pixel, int16_t* dst) {
    const size_t b = pixel / (ctx->oh * ctx->ow), rem = pixel % (ctx->oh * ctx->ow);
    const size_t oy = rem / ctx->ow, ox = rem % ctx->ow;
    const size_t cin = ctx->cin;
    const uint8_t* image = ctx->in + b * ctx->h * ctx->w * cin;
    const ptrdiff_t ix0 = (ptrdiff_t)(ox * ctx->stride) - (ptrdiff_t)ctx->pad_left;
    const int row_inside = ix0 >= 0 && ix0 + 2 < (ptrdiff_t)ctx->w;
    for (size_t ky = 0; ky < 3; ky++) {
        const ptrdiff_t iy = (ptrdiff_t)(oy * ctx->stride + ky) - (ptrdiff_t)ctx->pad_top;
        if (iy < 0 || iy >= (ptrdiff_t)ctx->h) {
            for (size_t i = 0; i < 3 * cin; i++) dst[i] = ctx->zp;
        } else if (row_inside) { /* the three taps are 3 * cin contiguous bytes */
            const uint8_t* src = image + ((size_t)iy * ctx->w + (size_t)ix0) * cin;
            for (size_t i = 0; i < 3 * cin; i++) dst[i] = src[i];
        } else {
            for (size_t kx = 0; kx < 3; kx++) {
                const ptrdiff_t ix = ix0 + (ptrdiff_t)kx;
                const uint8_t* src = image + ((size_t)iy * ctx->w + (size_t)ix) * cin;
                const int inside = ix >= 0 && ix < (ptrdiff_t)ctx->w;
                for (size_t c = 0; c < cin; c++) dst[kx * cin + c] = inside ? src[c] : ctx->zp;
            }
        }
        dst += 3 * cin;
    }
    if (ctx->kp != 9 * cin) *dst = 0;
}

static void tm_qu8_conv_task(void* p, size_t thread, size_t task) {
    const tm_qu8_conv_ctx* ctx = (const tm_qu8_conv_ctx*)p;
    const size_t mr = ctx->kern->gemm_mr, nr = ctx->kern->gemm_nr, kp = ctx->kp;
    uint8_t* scratch = ctx->scratch + thread * ctx->thread_scratch;
    const size_t first = task * TM_CONV_TILES_PER_TASK * mr;
    const size_t end = TM_MIN(ctx->pixels, first + TM_CONV_TILES_PER_TASK * mr);
    if (ctx->kern->dot_gemm != NULL) {
        /* Groups of g pixels gathered (coordinates stepped along, no divisions per pixel), then
         * every panel: the narrow tile on a panel of at most conv_narrow_nr columns, else the
         * GEMM tile on each mr rows of the group. */
        const tm_qu8_kernels* kern = ctx->kern;
        const size_t g = tm_qu8_conv_group(kern, ctx->cout);
        const size_t kp16 = TM_ROUND_UP(9 * ctx->cin, kern->dot_kr);
        uint8_t* bytes = scratch;
        int32_t* sums = (int32_t*)(bytes + TM_ROUND_UP(g * kp16, 16));
        /* the geometry in locals: the byte stores below may alias anything, ctx included */
        const size_t h = ctx->h, w = ctx->w, cin = ctx->cin, oh = ctx->oh, ow = ctx->ow;
        const size_t stride = ctx->stride;
        const ptrdiff_t pad_top = (ptrdiff_t)ctx->pad_top, pad_left = (ptrdiff_t)ctx->pad_left;
        const uint8_t zp = (uint8_t)ctx->zp;
        const uint8_t* in = ctx->in;
        size_t b = first / (oh * ow), oy = (first % (oh * ow)) / ow, ox = first % ow;
        for (size_t p0 = first; p0 < end; p0 += g) {
            const size_t rows_here = TM_MIN(g, end - p0);
            for (size_t r = 0; r < rows_here;) {
                /* the group's pixels in output row oy: [ox, ox + run) */
                const size_t run = TM_MIN(rows_here - r, ow - ox);
                const uint8_t* image = in + b * h * w * cin;
                const ptrdiff_t iy0 = (ptrdiff_t)(oy * stride) - pad_top;
                if (cin == 3 && kp16 >= 9 * 3 + 1 && iy0 >= 0 && iy0 + 2 < (ptrdiff_t)h) {
                    const uint8_t* rowp = image + (size_t)iy0 * w * 3;
                    for (size_t i = 0; i < run; i++) {
                        const ptrdiff_t ix0 = (ptrdiff_t)((ox + i) * stride) - pad_left;
                        uint8_t* dst = bytes + (r + i) * kp16;
                        if (ix0 >= 0 && ix0 + 2 < (ptrdiff_t)w)
                            tm_qu8_gather_rgb(rowp + (size_t)ix0 * 3, w * 3, kp16, dst);
                        else
                            tm_qu8_gather_bytes(image, h, w, cin, iy0, ix0, zp, kp16, dst);
                    }
                } else {
                    for (size_t i = 0; i < run; i++)
                        tm_qu8_gather_bytes(image, h, w, cin, iy0,
                                            (ptrdiff_t)((ox + i) * stride) - pad_left, zp, kp16,
                                            bytes + (r + i) * kp16);
                }
                r += run;
                ox += run;
                if (ox == ow) {
                    ox = 0;
                    if (++oy == oh) oy = 0, b++;
                }
            }
            if (ctx->row_sums) tm_qu8_row_sums(bytes, rows_here, 9 * ctx->cin, kp16, sums);
            for (size_t n0 = 0; n0 < ctx->cout; n0 += nr) {
                const size_t nc = TM_MIN(nr, ctx->cout - n0);
                const uint8_t* w = ctx->packed + (n0 / nr) * ctx->panel_bytes;
                uint8_t* out = ctx->out + p0 * ctx->cout + n0;
                if (kern->conv_narrow != NULL && nc <= kern->conv_narrow_nr) {
                    kern->conv_narrow(rows_here, nc, kp16, bytes, kp16, ctx->row_sums ? sums : NULL,
                                      w, out, ctx->cout, &ctx->params);
                    continue;
                }
                for (size_t r0 = 0; r0 < rows_here; r0 += mr) {
                    kern->dot_gemm(TM_MIN(mr, rows_here - r0), nc, kp16, bytes + r0 * kp16, kp16,
                                   ctx->row_sums ? sums + r0 : NULL, w, out + r0 * ctx->cout,
                                   ctx->cout, &ctx->params);
                }
            }
        }
        return;
    }
    int16_t* rows = (int16_t*)scratch;
    for (size_t p0 = first; p0 < end; p0 += mr) {
        const size_t rows_here = TM_MIN(mr, end - p0);
        for (size_t r = 0; r < rows_here; r++) tm_qu8_gather(ctx, p0 + r, rows + r * kp);
        for (size_t n0 = 0; n0 < ctx->cout; n0 += nr) {
            ctx->kern->gemm(rows_here, TM_MIN(nr, ctx->cout - n0), kp, rows, kp,
                            ctx->packed + (n0 / nr) * ctx->panel_bytes,
                            ctx->out + p0 * ctx->cout + n0, ctx->cout, &ctx->params);
        }
    }
}

void tm_qu8_conv3x3_run(const tm_step* s) {
    const tm_qu8_kernels* kern = s->qu8;
    const size_t pixels = s->batch * s->oh * s->ow;
    tm_qu8_conv_ctx ctx = {kern, s->h, s->w, s->cin, s->cout, s->stride, s->pad_top, s->pad_left,
                           s->oh, s->ow, pixels, TM_ROUND_UP(9 * s->cin, 2),
                           (const uint8_t*)s->in, (const uint8_t*)s->packed,
                           tm_qu8_gemm_panel_bytes(kern, 9 * s->cin),
                           (int16_t)s->quant.input_zero_point,
                           kern->dot_gemm == NULL || !kern->dot_signed ||
                               tm_qu8_gemm_packed_needs_row_sums(kern, 9 * s->cin, s->cout, s->packed),
                           (uint8_t*)s->workspace,
                           tm_qu8_conv_thread_scratch(kern, s->cin, s->cout), (uint8_t*)s->out,
                           {s->quant.output_zero_point, s->quant.min, s->quant.max}};
    tm_pool_parallelize(s->pool, tm_qu8_conv_task, &ctx,
                        tm_task_count(pixels, TM_CONV_TILES_PER_TASK * kern->gemm_mr));
}
