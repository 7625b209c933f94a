/* Depthwise 3x3 convolution over a batch, float32 and quantized: one task per output row. Rows
 * above or below the image point at a row in the step's workspace (zeros for float32, the input
 * zero point for quantized steps), so the row kernels never check vertical bounds. */
#include <string.h>

#include "internal.h"

/* The three input rows under output row `task` (b * oh + oy); `pad` for rows outside. */
static void tm_dw_rows(const tm_step* s, size_t task, size_t elem_bytes, const void* pad,
                       const void* rows[3]) {
    const size_t b = task / s->oh, oy = task % s->oh;
    const size_t row_bytes = s->w * s->cin * elem_bytes;
    const char* image = (const char*)s->in + b * s->h * row_bytes;
    for (size_t ky = 0; ky < 3; ky++) {
        const ptrdiff_t iy = (ptrdiff_t)(oy * s->stride + ky) - (ptrdiff_t)s->pad_top;
        rows[ky] = (iy < 0 || iy >= (ptrdiff_t)s->h) ? pad : image + (size_t)iy * row_bytes;
    }
}

/* ---- float32: workspace = w * channels + 8 zero floats ----------------------------------- */
size_t tm_f32_dwconv3x3_workspace(const tm_step* s) {
    return (s->w * s->cin + 8) * sizeof(float);
}

void tm_f32_dwconv3x3_setup(const tm_step* s) {
    memset(s->workspace, 0, tm_f32_dwconv3x3_workspace(s));
}

typedef struct {
    const tm_step* s;
    tm_f32_minmax_params params;
} tm_f32_dwconv_ctx;

static void tm_f32_dwconv_task(void* p, size_t thread, size_t task) {
    (void)thread;
    const tm_f32_dwconv_ctx* ctx = (const tm_f32_dwconv_ctx*)p;
    const tm_step* s = ctx->s;
    const void* rows[3];
    tm_dw_rows(s, task, sizeof(float), s->workspace, rows);
    const float* frows[3] = {(const float*)rows[0], (const float*)rows[1], (const float*)rows[2]};
    float* out = (float*)s->out + task * s->ow * s->cin;
    s->f32->dwconv3x3_row(s->cin, s->w, s->ow, s->stride, s->pad_left, frows,
                          (const float*)s->packed, out, &ctx->params);
}

void tm_f32_dwconv3x3_run(const tm_step* s) {
    tm_f32_dwconv_ctx ctx = {s, {s->f32_min, s->f32_max, 0}};
    tm_pool_parallelize(s->pool, tm_f32_dwconv_task, &ctx, s->batch * s->oh);
}

/* ---- quantized: workspace = w * channels bytes of the input zero point ------------------- */
size_t tm_qu8_dwconv3x3_workspace(const tm_step* s) {
    return s->w * s->cin;
}

void tm_qu8_dwconv3x3_setup(const tm_step* s) {
    memset(s->workspace, (int)(uint8_t)s->quant.input_zero_point, tm_qu8_dwconv3x3_workspace(s));
}

typedef struct {
    const tm_step* s;
    tm_qu8_requant_params params;
} tm_qu8_dwconv_ctx;

static void tm_qu8_dwconv_task(void* p, size_t thread, size_t task) {
    (void)thread;
    const tm_qu8_dwconv_ctx* ctx = (const tm_qu8_dwconv_ctx*)p;
    const tm_step* s = ctx->s;
    const void* rows[3];
    tm_dw_rows(s, task, 1, s->workspace, rows);
    const uint8_t* brows[3] = {(const uint8_t*)rows[0], (const uint8_t*)rows[1],
                               (const uint8_t*)rows[2]};
    uint8_t* out = (uint8_t*)s->out + task * s->ow * s->cin;
    s->qu8->dwconv3x3_row(s->cin, s->w, s->ow, s->stride, s->pad_left, brows,
                          (const uint8_t*)s->workspace, (const int32_t*)s->packed, out,
                          &ctx->params);
}

void tm_qu8_dwconv3x3_run(const tm_step* s) {
    tm_qu8_dwconv_ctx ctx = {s, {s->quant.output_zero_point, s->quant.min, s->quant.max}};
    tm_pool_parallelize(s->pool, tm_qu8_dwconv_task, &ctx, s->batch * s->oh);
}
