/* Quantized full 3x3 convolution as an implicit GEMM: each task gathers the 3x3 x cin patches
 * of a few tiles of output pixels into its thread's int16 scratch rows (the input zero point
 * where the window leaves the image) and runs the GEMM ukernel against packed weights. */
#include "internal.h"

#define TM_QU8_CONV_TILES_PER_TASK 8

typedef struct {
    const tm_qu8_kernels* kern;
    size_t h, w, cin, cout, stride, pad_top, pad_left, oh, ow, pixels, kp;
    const uint8_t* in;
    const uint8_t* packed;
    size_t panel_bytes;
    int16_t zp;
    int16_t* scratch;
    uint8_t* out;
    tm_qu8_requant_params params;
} tm_qu8_conv_ctx;

/* int16 elements of one thread's scratch (a multiple of 8): mr gathered rows, int16 for gemm,
 * or uint8 padded to 16 bytes plus the rows' int32 sums for dot_gemm. */
static size_t tm_qu8_conv_thread_scratch(const tm_qu8_kernels* kern, size_t cin) {
    if (kern->dot_gemm != NULL)
        return TM_ROUND_UP(kern->gemm_mr * (TM_ROUND_UP(9 * cin, 16) + sizeof(int32_t)), 16) / 2;
    return TM_ROUND_UP(kern->gemm_mr * TM_ROUND_UP(9 * cin, 2), 8);
}

size_t tm_qu8_conv3x3_scratch_size(const tm_qu8_kernels* kern, size_t threads, size_t cin) {
    return TM_MAX(threads, 1) * tm_qu8_conv_thread_scratch(kern, cin);
}

/* The 9 * cin patch of one output pixel as uint8 (input zero point outside the image), zero
 * padded to kp16 bytes; returns its sum. */
static int32_t tm_qu8_gather_bytes(const uint8_t* image, size_t h, size_t w, size_t cin,
                                   ptrdiff_t iy0, ptrdiff_t ix0, uint8_t zp, size_t kp16,
                                   uint8_t* dst) {
    int32_t sum = 0;
    size_t i = 0;
    for (ptrdiff_t iy = iy0; iy < iy0 + 3; iy++) {
        for (ptrdiff_t ix = ix0; ix < ix0 + 3; ix++) {
            const int inside = iy >= 0 && iy < (ptrdiff_t)h && ix >= 0 && ix < (ptrdiff_t)w;
            const uint8_t* src = image + ((size_t)iy * w + (size_t)ix) * cin;
            for (size_t c = 0; c < cin; c++, i++) {
                dst[i] = inside ? src[c] : zp;
                sum += dst[i];
            }
        }
    }
    for (; i < kp16; i++) dst[i] = 0;
    return sum;
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
    int16_t* rows = ctx->scratch + thread * tm_qu8_conv_thread_scratch(ctx->kern, ctx->cin);
    const size_t first = task * TM_QU8_CONV_TILES_PER_TASK * mr;
    const size_t end = TM_MIN(ctx->pixels, first + TM_QU8_CONV_TILES_PER_TASK * mr);
    if (ctx->kern->dot_gemm != NULL) {
        const size_t kp16 = TM_ROUND_UP(9 * ctx->cin, 16);
        uint8_t* bytes = (uint8_t*)rows;
        int32_t* sums = (int32_t*)(bytes + TM_ROUND_UP(mr * kp16, 16));
        for (size_t p0 = first; p0 < end; p0 += mr) {
            const size_t rows_here = TM_MIN(mr, end - p0);
            for (size_t r = 0; r < rows_here; r++) {
                const size_t pixel = p0 + r;
                const size_t b = pixel / (ctx->oh * ctx->ow), rem = pixel % (ctx->oh * ctx->ow);
                const size_t oy = rem / ctx->ow, ox = rem % ctx->ow;
                sums[r] = tm_qu8_gather_bytes(
                    ctx->in + b * ctx->h * ctx->w * ctx->cin, ctx->h, ctx->w, ctx->cin,
                    (ptrdiff_t)(oy * ctx->stride) - (ptrdiff_t)ctx->pad_top,
                    (ptrdiff_t)(ox * ctx->stride) - (ptrdiff_t)ctx->pad_left, (uint8_t)ctx->zp,
                    kp16, bytes + r * kp16);
            }
            for (size_t n0 = 0; n0 < ctx->cout; n0 += nr) {
                ctx->kern->dot_gemm(rows_here, TM_MIN(nr, ctx->cout - n0), kp16, bytes, kp16, sums,
                                    ctx->packed + (n0 / nr) * ctx->panel_bytes,
                                    ctx->out + p0 * ctx->cout + n0, ctx->cout, &ctx->params);
            }
        }
        return;
    }
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

void tm_qu8_conv3x3_op(const tm_qu8_kernels* kern, tm_pool* pool, size_t batch, size_t h,
                       size_t w, size_t cin, size_t cout, size_t stride, size_t pad_top,
                       size_t pad_left, size_t oh, size_t ow, const uint8_t* in,
                       const void* packed, int32_t input_zero_point, int16_t* scratch,
                       uint8_t* out, int32_t output_zero_point, int32_t min, int32_t max) {
    const size_t pixels = batch * oh * ow;
    tm_qu8_conv_ctx ctx = {kern, h, w, cin, cout, stride, pad_top, pad_left, oh, ow, pixels,
                           TM_ROUND_UP(9 * cin, 2), in, (const uint8_t*)packed,
                           tm_qu8_gemm_packed_size(kern, 9 * cin, kern->gemm_nr),
                           (int16_t)input_zero_point, scratch, out,
                           {output_zero_point, min, max}};
    const size_t per_task = TM_QU8_CONV_TILES_PER_TASK * kern->gemm_mr;
    tm_pool_parallelize(pool, tm_qu8_conv_task, &ctx, (pixels + per_task - 1) / per_task);
}
