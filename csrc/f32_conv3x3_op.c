/* Full 3x3 convolution as an indirect GEMM (the XNNPACK way): at bind time, every output pixel
 * gets nine pointers, one per tap, into the input (or at a zero row where the window leaves the
 * image); the igemm ukernel then reads its A rows straight from the input through them. No
 * patch is copied per call, and padding costs no branch. */
#include "internal.h"

#define TM_CONV_TILES_PER_TASK 8

size_t tm_f32_conv3x3_indirection_size(const tm_f32_kernels* kern, size_t batch, size_t oh,
                                       size_t ow) {
    const size_t mr = kern->gemm_mr;
    return (batch * oh * ow + mr - 1) / mr * mr * 9;
}

void tm_f32_conv3x3_indirection_init(const tm_f32_kernels* kern, size_t batch, size_t h, size_t w,
                                     size_t cin, size_t stride, size_t pad_top, size_t pad_left,
                                     size_t oh, size_t ow, const float* in, const float* zero,
                                     const float** indirection) {
    const size_t mr = kern->gemm_mr;
    const size_t pixels = batch * oh * ow;
    const size_t tiles = (pixels + mr - 1) / mr;
    for (size_t tile = 0; tile < tiles; tile++) {
        const float** ind = indirection + tile * mr * 9;
        for (size_t r = 0; r < mr; r++) {
            /* Rows past the last pixel repeat it (the ukernel computes them, stores none). */
            const size_t p = TM_MIN(tile * mr + r, pixels - 1);
            const size_t b = p / (oh * ow), oy = (p % (oh * ow)) / ow, ox = p % ow;
            const float* image = in + b * h * w * cin;
            for (size_t ky = 0; ky < 3; ky++) {
                const ptrdiff_t iy = (ptrdiff_t)(oy * stride + ky) - (ptrdiff_t)pad_top;
                for (size_t kx = 0; kx < 3; kx++) {
                    const ptrdiff_t ix = (ptrdiff_t)(ox * stride + kx) - (ptrdiff_t)pad_left;
                    const int inside = iy >= 0 && iy < (ptrdiff_t)h && ix >= 0 && ix < (ptrdiff_t)w;
                    ind[(ky * 3 + kx) * mr + r] =
                        inside ? image + ((size_t)iy * w + (size_t)ix) * cin : zero;
                }
            }
        }
    }
}

typedef struct {
    const tm_f32_kernels* kern;
    size_t pixels, cin, cout;
    const float** indirection;
    const float* packed;
    float* out;
    tm_f32_minmax_params params;
} tm_conv_ctx;

static void tm_conv_task(void* p, size_t thread, size_t task) {
    (void)thread;
    const tm_conv_ctx* ctx = (const tm_conv_ctx*)p;
    const size_t mr = ctx->kern->gemm_mr, nr = ctx->kern->gemm_nr;
    const size_t panel_floats = nr * (9 * ctx->cin + 1);
    const size_t first = task * TM_CONV_TILES_PER_TASK * mr;
    const size_t end = TM_MIN(ctx->pixels, first + TM_CONV_TILES_PER_TASK * mr);
    for (size_t p0 = first; p0 < end; p0 += mr) {
        const float** ind = ctx->indirection + p0 * 9;
        for (size_t n0 = 0; n0 < ctx->cout; n0 += nr) {
            ctx->kern->igemm(TM_MIN(mr, end - p0), TM_MIN(nr, ctx->cout - n0), ctx->cin, 9, ind,
                             ctx->packed + (n0 / nr) * panel_floats, ctx->out + p0 * ctx->cout + n0,
                             ctx->cout, &ctx->params);
        }
    }
}

void tm_f32_conv3x3_op(const tm_f32_kernels* kern, tm_pool* pool, size_t batch, size_t oh,
                       size_t ow, size_t cin, size_t cout, const float** indirection,
                       const float* packed, float* out, float min, float max) {
    const size_t pixels = batch * oh * ow;
    tm_conv_ctx ctx = {kern, pixels, cin, cout, indirection, packed, out, {min, max}};
    const size_t per_task = TM_CONV_TILES_PER_TASK * kern->gemm_mr;
    tm_pool_parallelize(pool, tm_conv_task, &ctx, (pixels + per_task - 1) / per_task);
}
