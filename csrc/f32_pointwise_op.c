/* Pointwise (1x1) convolution and fully connected layer as a blocked GEMM over packed weights
 * (the igemm ukernel with one tap: its row pointers are the rows of A).
 *
 * The M rows are cut into blocks small enough that a block of A stays in L2 while every panel
 * of W streams past it; with several threads, tasks are (row block, column block) pairs, cutting
 * columns when there are too few row blocks (late layers: few pixels, large weights). */
#include "internal.h"

#define TM_L2_BUDGET_BYTES (256 * 1024)

typedef struct {
    const tm_f32_kernels* kern;
    size_t m, k, n;
    const float* a;
    const float* packed;
    float* c;
    size_t nb_panels, row_blocks;
    tm_f32_minmax_params params;
} tm_pointwise_ctx;

static void tm_pointwise_task(void* p, size_t thread, size_t task) {
    (void)thread;
    const tm_pointwise_ctx* ctx = (const tm_pointwise_ctx*)p;
    const size_t mr = ctx->kern->gemm_mr, nr = ctx->kern->gemm_nr;
    const size_t rb = task % ctx->row_blocks, cb = task / ctx->row_blocks;
    /* Row blocks are whole tiles of mr rows, as even in count as they can be. */
    const size_t tiles = (ctx->m + mr - 1) / mr;
    const size_t m0 = rb * tiles / ctx->row_blocks * mr;
    const size_t m1 = TM_MIN(ctx->m, (rb + 1) * tiles / ctx->row_blocks * mr);
    const size_t panel_floats = nr * (ctx->k + 1);
    const size_t p0 = cb * ctx->nb_panels;
    const size_t panels = TM_ROUND_UP(ctx->n, nr) / nr;
    const size_t p1 = TM_MIN(panels, p0 + ctx->nb_panels);
    /* A lone last row (M = 1, or 49 = 8 x 6 + 1 for a 7x7 layer) runs through the GEMV
     * ukernel four panels at a time: as one row of the GEMM tile its two FMA chains would
     * leave the FMA units three-quarters idle. */
    const int lone_row = ctx->kern->gemv != NULL && (m1 - m0) % mr == 1;
    const size_t m_tiles = lone_row ? m1 - 1 : m1;
    for (size_t p = p0; p < p1 && m0 < m_tiles; p++) {
        const float* w = ctx->packed + p * panel_floats;
        const size_t n0 = p * nr;
        const size_t nc = TM_MIN(nr, ctx->n - n0);
        for (size_t i = m0; i < m_tiles; i += mr) {
            const size_t rows = TM_MIN(mr, m_tiles - i);
            const float* a[TM_MAX_MR];
            for (size_t r = 0; r < mr; r++) a[r] = ctx->a + (i + TM_MIN(r, rows - 1)) * ctx->k;
            ctx->kern->igemm(rows, nc, ctx->k, 1, a, w, ctx->c + i * ctx->n + n0, ctx->n,
                             &ctx->params);
        }
    }
    if (lone_row) {
        const size_t row = m1 - 1;
        for (size_t p = p0; p < p1; p += 4) {
            const size_t np = TM_MIN(4, p1 - p);
            const size_t last = p + np - 1;
            ctx->kern->gemv(np, TM_MIN(nr, ctx->n - last * nr), ctx->k, ctx->a + row * ctx->k,
                            ctx->packed + p * panel_floats, panel_floats,
                            ctx->c + row * ctx->n + p * nr, &ctx->params);
        }
    }
}

void tm_f32_pointwise_op(const tm_f32_kernels* kern, tm_pool* pool, size_t m, size_t k, size_t n,
                         const float* a, const float* packed, float* c, float min, float max) {
    if (m == 0 || n == 0) return;
    const size_t mr = kern->gemm_mr, nr = kern->gemm_nr;
    const size_t threads = tm_pool_threads(pool);
    const size_t panels = TM_ROUND_UP(n, nr) / nr;
    const size_t mb = TM_MAX(mr, (TM_L2_BUDGET_BYTES / (sizeof(float) * TM_MAX(k, 1))) / mr * mr);
    size_t row_blocks = (m + mb - 1) / mb;
    size_t col_blocks = 1;
    if (threads > 1) {
        const size_t want = 4 * threads;
        if (row_blocks < want) {
            if ((k + 1) * n * sizeof(float) <= TM_L2_BUDGET_BYTES || m >= want * mr * 4) {
                /* Weights are small (or rows plentiful): cut rows finer. */
                row_blocks = TM_MIN(want, (m + mr - 1) / mr);
            } else {
                col_blocks = TM_MIN(panels, (want + row_blocks - 1) / row_blocks);
            }
        }
    }
    tm_pointwise_ctx ctx = {kern, m, k, n, a, packed, c, (panels + col_blocks - 1) / col_blocks,
                            row_blocks, {min, max}};
    col_blocks = (panels + ctx.nb_panels - 1) / ctx.nb_panels;
    tm_pool_parallelize(pool, tm_pointwise_task, &ctx, row_blocks * col_blocks);
}
