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

static void tm_gather_patch(const tm_conv_ctx* ctx, size_t pixel, float* dst) {
    const size_t b = pixel / (ctx->oh * ctx->ow), rem = pixel % (ctx->oh * ctx->ow);
    const size_t oy = rem / ctx->ow, ox = rem % ctx->ow;
    const float* image = ctx->in + b * ctx->h * ctx->w * ctx->cin;
    for (size_t ky = 0; ky < 3; ky++) {
        const ptrdiff_t iy = (ptrdiff_t)(oy * ctx->stride + ky) - (ptrdiff_t)ctx->pad_top;
        for (size_t kx = 0; kx < 3; kx++) {
            const ptrdiff_t ix = (ptrdiff_t)(ox * ctx->stride + kx) - (ptrdiff_t)ctx->pad_left;
            const int inside = iy >= 0 && iy < (ptrdiff_t)ctx->h && ix >= 0 && ix < (ptrdiff_t)ctx->w;
            const float* src = inside ? image + ((size_t)iy * ctx->w + (size_t)ix) * ctx->cin : ctx->zero;
            memcpy(dst, src, ctx->cin * sizeof(float));
            dst += ctx->cin;
        }
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
    for (size_t p0 = first; p0 < end; p0 += mr) {
        const size_t rows_here = TM_MIN(mr, end - p0);
        for (size_t r = 0; r < rows_here; r++) tm_gather_patch(ctx, p0 + r, rows + r * k);
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
