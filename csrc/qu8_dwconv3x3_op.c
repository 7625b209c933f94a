/* Quantized depthwise 3x3 convolution over a batch: one task per output row. Rows above or below
 * the image point at a row of the input zero point. */
#include "internal.h"

typedef struct {
    const tm_qu8_kernels* kern;
    size_t h, w, channels, stride, pad_top, pad_left, oh, ow;
    const uint8_t* in;
    const int32_t* packed;
    const uint8_t* zp_row;
    uint8_t* out;
    tm_qu8_requant_params params;
} tm_qu8_dwconv_ctx;

static void tm_qu8_dwconv_task(void* p, size_t thread, size_t task) {
    (void)thread;
    const tm_qu8_dwconv_ctx* ctx = (const tm_qu8_dwconv_ctx*)p;
    const size_t b = task / ctx->oh, oy = task % ctx->oh;
    const size_t row_bytes = ctx->w * ctx->channels;
    const uint8_t* image = ctx->in + b * ctx->h * row_bytes;
    const uint8_t* rows[3];
    for (size_t ky = 0; ky < 3; ky++) {
        const ptrdiff_t iy = (ptrdiff_t)(oy * ctx->stride + ky) - (ptrdiff_t)ctx->pad_top;
        rows[ky] = (iy < 0 || iy >= (ptrdiff_t)ctx->h) ? ctx->zp_row : image + (size_t)iy * row_bytes;
    }
    uint8_t* out = ctx->out + (b * ctx->oh + oy) * ctx->ow * ctx->channels;
    ctx->kern->dwconv3x3_row(ctx->channels, ctx->w, ctx->ow, ctx->stride, ctx->pad_left, rows,
                             ctx->zp_row, ctx->packed, out, &ctx->params);
}

void tm_qu8_dwconv3x3_op(const tm_qu8_kernels* kern, tm_pool* pool, size_t batch, size_t h,
                         size_t w, size_t channels, size_t stride, size_t pad_top,
                         size_t pad_left, size_t oh, size_t ow, const uint8_t* in,
                         const int32_t* packed, const uint8_t* zp_row, uint8_t* out,
                         int32_t output_zero_point, int32_t min, int32_t max) {
    tm_qu8_dwconv_ctx ctx = {kern, h, w, channels, stride, pad_top, pad_left, oh, ow,
                             in, packed, zp_row, out, {output_zero_point, min, max}};
    tm_pool_parallelize(pool, tm_qu8_dwconv_task, &ctx, batch * oh);
}
