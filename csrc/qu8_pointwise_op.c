/* Quantized pointwise (1x1) convolution / fully connected layer as a blocked GEMM.
 *
 * Each task takes a block of rows (sized so its int16 copy stays in L2) and a range of weight
 * panels: it widens its rows from uint8 to int16 once into its thread's scratch, then runs the
 * GEMM ukernel over them for every panel. Tasks cut columns instead of rows when there are too
 * few row blocks for the threads (late layers: few pixels, large weights). */
#include "internal.h"

#define TM_QU8_L2_BUDGET_BYTES (128 * 1024)

typedef struct {
    const tm_qu8_kernels* kern;
    size_t m, k, kp, n;
    const uint8_t* a;
    const uint8_t* packed;
    size_t panel_bytes;
    int16_t* scratch;
    uint8_t* c;
    size_t mb, nb_panels, row_blocks;
    tm_qu8_requant_params params;
} tm_qu8_pointwise_ctx;

/* Bytes of one prepared row: int16 (gemm) or uint8 padded to 16 plus its int32 sum (dot_gemm). */
static size_t tm_qu8_row_bytes(const tm_qu8_kernels* kern, size_t k) {
    if (kern->dot_gemm != NULL) return TM_ROUND_UP(k, 16) + sizeof(int32_t);
    return TM_ROUND_UP(k, 2) * sizeof(int16_t);
}

static size_t tm_qu8_rows_per_block(const tm_qu8_kernels* kern, size_t k) {
    const size_t mr = kern->gemm_mr;
    return TM_MAX(mr, (TM_QU8_L2_BUDGET_BYTES / tm_qu8_row_bytes(kern, k)) / mr * mr);
}

/* int16 elements of one thread's scratch, a multiple of 8 (16 bytes) so every part stays aligned. */
static size_t tm_qu8_thread_scratch(const tm_qu8_kernels* kern, size_t k) {
    return TM_ROUND_UP(tm_qu8_rows_per_block(kern, k) * tm_qu8_row_bytes(kern, k) + 16, 16) / 2;
}

size_t tm_qu8_pointwise_scratch_size(const tm_qu8_kernels* kern, size_t threads, size_t k) {
    return TM_MAX(threads, 1) * tm_qu8_thread_scratch(kern, k);
}

/* uint8 rows padded with zeros to kp16 bytes, and their sums (the udot path). */
static void tm_qu8_prepare_dot_rows(const uint8_t* a, size_t rows, size_t k, size_t kp16,
                             uint8_t* dst, int32_t* sums) {
    for (size_t i = 0; i < rows; i++) {
        const uint8_t* src = a + i * k;
        uint8_t* d = dst + i * kp16;
        int32_t sum = 0;
        for (size_t kk = 0; kk < k; kk++) {
            d[kk] = src[kk];
            sum += src[kk];
        }
        for (size_t kk = k; kk < kp16; kk++) d[kk] = 0;
        sums[i] = sum;
    }
}

static void tm_qu8_pointwise_task(void* p, size_t thread, size_t task) {
    const tm_qu8_pointwise_ctx* ctx = (const tm_qu8_pointwise_ctx*)p;
    const size_t mr = ctx->kern->gemm_mr, nr = ctx->kern->gemm_nr;
    const size_t rb = task % ctx->row_blocks, cb = task / ctx->row_blocks;
    const size_t m0 = rb * ctx->mb, m1 = TM_MIN(ctx->m, m0 + ctx->mb);
    const size_t kp = ctx->kp;
    int16_t* rows = ctx->scratch + thread * tm_qu8_thread_scratch(ctx->kern, ctx->k);
    const size_t panels = TM_ROUND_UP(ctx->n, nr) / nr;
    const size_t p0 = cb * ctx->nb_panels, p1 = TM_MIN(panels, p0 + ctx->nb_panels);
    if (ctx->kern->dot_gemm != NULL) {
        const size_t kp16 = TM_ROUND_UP(ctx->k, 16);
        uint8_t* bytes = (uint8_t*)rows;
        int32_t* sums = (int32_t*)(bytes + TM_ROUND_UP(ctx->mb * kp16, 16));
        tm_qu8_prepare_dot_rows(ctx->a + m0 * ctx->k, m1 - m0, ctx->k, kp16, bytes, sums);
        for (size_t pi = p0; pi < p1; pi++) {
            const void* w = ctx->packed + pi * ctx->panel_bytes;
            const size_t n0 = pi * nr, nc = TM_MIN(nr, ctx->n - n0);
            for (size_t i = m0; i < m1; i += mr) {
                ctx->kern->dot_gemm(TM_MIN(mr, m1 - i), nc, kp16, bytes + (i - m0) * kp16, kp16,
                                    sums + (i - m0), w, ctx->c + i * ctx->n + n0, ctx->n,
                                    &ctx->params);
            }
        }
        return;
    }
    for (size_t i = m0; i < m1; i++) {
        const uint8_t* src = ctx->a + i * ctx->k;
        int16_t* dst = rows + (i - m0) * kp;
        for (size_t kk = 0; kk < ctx->k; kk++) dst[kk] = src[kk];
        if (kp != ctx->k) dst[ctx->k] = 0;
    }
    for (size_t pi = p0; pi < p1; pi++) {
        const void* w = ctx->packed + pi * ctx->panel_bytes;
        const size_t n0 = pi * nr, nc = TM_MIN(nr, ctx->n - n0);
        for (size_t i = m0; i < m1; i += mr) {
            ctx->kern->gemm(TM_MIN(mr, m1 - i), nc, kp, rows + (i - m0) * kp, kp, w,
                            ctx->c + i * ctx->n + n0, ctx->n, &ctx->params);
        }
    }
}

void tm_qu8_pointwise_op(const tm_qu8_kernels* kern, tm_pool* pool, size_t m, size_t k, size_t n,
                         const uint8_t* a, const void* packed, int16_t* scratch, uint8_t* c,
                         int32_t output_zero_point, int32_t min, int32_t max) {
    if (m == 0 || n == 0) return;
    const size_t mr = kern->gemm_mr, nr = kern->gemm_nr, kp = TM_ROUND_UP(k, 2);
    const size_t threads = tm_pool_threads(pool);
    const size_t panels = TM_ROUND_UP(n, nr) / nr;
    size_t mb = tm_qu8_rows_per_block(kern, k);
    size_t row_blocks = (m + mb - 1) / mb;
    size_t col_blocks = 1;
    if (threads > 1) {
        const size_t want = 4 * threads;
        if (row_blocks < want) {
            if (kp * n * sizeof(int16_t) <= TM_QU8_L2_BUDGET_BYTES || m >= want * mr * 4) {
                mb = TM_MAX(mr, TM_ROUND_UP((m + want - 1) / want, mr));
                row_blocks = (m + mb - 1) / mb;
            } else {
                col_blocks = TM_MIN(panels, (want + row_blocks - 1) / row_blocks);
            }
        }
    }
    tm_qu8_pointwise_ctx ctx = {kern, m, k, kp, n, a, (const uint8_t*)packed,
                                tm_qu8_gemm_packed_size(kern, k, nr), scratch, c, mb,
                                (panels + col_blocks - 1) / col_blocks, row_blocks,
                                {output_zero_point, min, max}};
    col_blocks = (panels + ctx.nb_panels - 1) / ctx.nb_panels;
    tm_pool_parallelize(pool, tm_qu8_pointwise_task, &ctx, row_blocks * col_blocks);
}
