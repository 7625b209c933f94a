/* Depthwise 3x3 convolution over a batch: one task per output row. Rows above or below the
 * image point at the zero buffer, so the row kernel never checks vertical bounds. */
#include "internal.h"

typedef struct {
    const tm_f32_kernels* kern;
    size_t h, w, channels, stride, pad_top, pad_left, oh, ow;
    const float* in;
    const float* packed;
    const float* zero;
    float* out;
    tm_f32_minmax_params params;
} tm_dwconv_ctx;

static void tm_dwconv_task(void* p, size_t thread, size_t task) {
    (void)thread;
    const tm_dwconv_ctx* ctx = (const tm_dwconv_ctx*)p;
    const size_t b = task / ctx->oh, oy = task % ctx->oh;
    const size_t row_floats = ctx->w * ctx->channels;
    const float* image = ctx->in + b * ctx->h * row_floats;
    const float* rows[3];
    for (size_t ky = 0; ky < 3; ky++) {
        const ptrdiff_t iy = (ptrdiff_t)(oy * ctx->stride + ky) - (ptrdiff_t)ctx->pad_top;
        rows[ky] = (iy < 0 || iy >= (ptrdiff_t)ctx->h) ? ctx->zero : image + (size_t)iy * row_floats;
    }
    float* out = ctx->out + (b * ctx->oh + oy) * ctx->ow * ctx->channels;
    ctx->kern->dwconv3x3_row(ctx->channels, ctx->w, ctx->ow, ctx->stride, ctx->pad_left, rows,
                             ctx->packed, out, &ctx->params);
}

void tm_f32_dwconv3x3_op(const tm_f32_kernels* kern, tm_pool* pool, size_t batch, size_t h,
                         size_t w, size_t channels, size_t stride, size_t pad_top,
                         size_t pad_left, size_t oh, size_t ow, const float* in,
                         const float* packed, const float* zero, float* out, float min,
                         float max) {
    tm_dwconv_ctx ctx = {kern, h, w, channels, stride, pad_top, pad_left, oh, ow,
                         in, packed, zero, out, {min, max}};
    tm_pool_parallelize(pool, tm_dwconv_task, &ctx, batch * oh);
}
