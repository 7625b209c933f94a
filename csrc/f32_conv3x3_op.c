/* Full 3x3 convolution as an implicit GEMM: each task gathers the 3x3 x cin patches of a few
 * tiles of output pixels into its thread's scratch rows (zero where the window leaves the
 * image) and runs the GEMM ukernel on them against (9 * cin) x cout packed weights. */
#include <string.h>

#include "internal.h"

#define TM_CONV_TILES_PER_TASK 8

typedef struct {
    const tm_f32_kernels* kern;
    size_t batch, h, w, cin, cout, stride, pad_top, pad_left, oh, ow, pixels;
    const float* in;
    const float* packed;
    const float* zero;
    float* scratch;
    float* out;
    tm_f32_minmax_params params;
} tm_conv_ctx;

size_t tm_f32_conv3x3_scratch_size(const tm_f32_kernels* kern, size_t threads, size_t cin) {
    return TM_MAX(threads, 1) * kern->gemm_mr * 9 * cin;
}

/* Constant-size copies for the first layer (cin = 3) compile to a few vector moves. */
static inline void tm_copy(float* dst, const float* src, size_t n) {
    if (n == 9) memcpy(dst, src, 9 * sizeof(float));
    else if (n == 3) memcpy(dst, src, 3 * sizeof(float));
    else memcpy(dst, src, n * sizeof(float));
}

/* The (ky, kx, ci) patch of output pixel (oy, ox) of `image`, in the row order of the HWIO
 * weights. */
static void tm_gather_patch(const tm_conv_ctx* ctx, const float* image, size_t oy, size_t ox,
                            float* dst) {
    const size_t cin = ctx->cin;
    const ptrdiff_t ix0 = (ptrdiff_t)(ox * ctx->stride) - (ptrdiff_t)ctx->pad_left;
    const int columns_inside = ix0 >= 0 && ix0 + 3 <= (ptrdiff_t)ctx->w;
    for (size_t ky = 0; ky < 3; ky++) {
        const ptrdiff_t iy = (ptrdiff_t)(oy * ctx->stride + ky) - (ptrdiff_t)ctx->pad_top;
        if (iy < 0 || iy >= (ptrdiff_t)ctx->h) {
            memset(dst, 0, 3 * cin * sizeof(float));
        } else if (columns_inside) {
            /* NHWC: the three columns of a row are 3 * cin contiguous floats. */
            tm_copy(dst, image + ((size_t)iy * ctx->w + (size_t)ix0) * cin, 3 * cin);
        } else {
            for (size_t kx = 0; kx < 3; kx++) {
                const ptrdiff_t ix = ix0 + (ptrdiff_t)kx;
                if (ix < 0 || ix >= (ptrdiff_t)ctx->w) memset(dst + kx * cin, 0, cin * sizeof(float));
                else tm_copy(dst + kx * cin, image + ((size_t)iy * ctx->w + (size_t)ix) * cin, cin);
            }
        }
        dst += 3 * cin;
    }
}

static void tm_conv_task(void* p, size_t thread, size_t task) {
    const tm_conv_ctx* ctx = (const tm_conv_ctx*)p;
    const size_t mr = ctx->kern->gemm_mr, nr = ctx->kern->gemm_nr;
    const size_t k = 9 * ctx->cin;
    const size_t panel_floats = nr * (k + 1);
    float* rows = ctx->scratch + thread * mr * k;
    const size_t first = task * TM_CONV_TILES_PER_TASK * mr;
    const size_t end = TM_MIN(ctx->pixels, first + TM_CONV_TILES_PER_TASK * mr);
    /* Walk (image, oy, ox) incrementally: no division per pixel. */
    const size_t per_image = ctx->oh * ctx->ow;
    size_t b = first / per_image, oy = (first % per_image) / ctx->ow, ox = first % ctx->ow;
    for (size_t p0 = first; p0 < end; p0 += mr) {
        const size_t rows_here = TM_MIN(mr, end - p0);
        for (size_t r = 0; r < rows_here; r++) {
            tm_gather_patch(ctx, ctx->in + b * ctx->h * ctx->w * ctx->cin, oy, ox, rows + r * k);
            if (++ox == ctx->ow) {
                ox = 0;
                if (++oy == ctx->oh) { oy = 0; b++; }
            }
        }
        for (size_t n0 = 0; n0 < ctx->cout; n0 += nr) {
            ctx->kern->gemm(rows_here, TM_MIN(nr, ctx->cout - n0), k, rows, k,
                            ctx->packed + (n0 / nr) * panel_floats, ctx->out + p0 * ctx->cout + n0,
                            ctx->cout, &ctx->params);
        }
    }
}

void tm_f32_conv3x3_op(const tm_f32_kernels* kern, tm_pool* pool, size_t batch, size_t h,
                       size_t w, size_t cin, size_t cout, size_t stride, size_t pad_top,
                       size_t pad_left, size_t oh, size_t ow, const float* in,
                       const float* packed, const float* zero, float* scratch, float* out,
                       float min, float max) {
    const size_t pixels = batch * oh * ow;
    tm_conv_ctx ctx = {kern, batch, h, w, cin, cout, stride, pad_top, pad_left, oh, ow, pixels,
                       in, packed, zero, scratch, out, {min, max}};
    const size_t per_task = TM_CONV_TILES_PER_TASK * kern->gemm_mr;
    tm_pool_parallelize(pool, tm_conv_task, &ctx, (pixels + per_task - 1) / per_task);
}
