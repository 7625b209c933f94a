/* Pointwise (1x1) convolution and fully connected layer, float32 and quantized, as a blocked
 * GEMM over packed weights, split into (row block, column block) tasks by tm_gemm_partition.
 *
 * float32: the igemm ukernel with one tap (its row pointers are the rows of A); a lone last row
 * goes through the GEMV ukernel. Tables with a packed-A GEMM (ppmm: in-order aarch64 cores)
 * instead pack each task's row block once into its thread's scratch and run the ppmm over the
 * packed tiles for every panel (the same bits: only the loads differ). Quantized: each task widens its rows once into its thread's
 * scratch (int16 for the widening GEMMs; for the dot-product GEMMs uint8 padded to dot_kr plus
 * row sums, or, when k is a multiple of dot_kr, the input rows in place and their sums only if
 * a weight offset needs them), then runs the GEMM ukernel over them for every panel of its
 * column block. */
#include "internal.h"

#define TM_F32_L2_BUDGET_BYTES (256 * 1024)
/* The first tiles of each panel prefetch the next panel's weights as they stream their own, so
 * the next panel's first tile does not wait on DRAM (in a whole forward pass each layer's
 * weights have left the caches; 1.0_224 on a Zen 5 EPYC, in sequence: pw12 0.233 -> 0.202 ms,
 * pw13 0.450 -> 0.400 with every tile of their 7 prefetching; then the first 8 tiles of every
 * layer: the pass 5.41 -> 5.24 ms median). The later tiles find it in L2. */
#define TM_F32_PREFETCH_TILES 8
#define TM_QU8_L2_BUDGET_BYTES (128 * 1024)
/* Threads share a quantized layer's work by rows where its packed weights are at most this many
 * bytes, by columns otherwise. A task prepares the rows it covers (their sums, or widened or
 * padded copies) for every panel it runs, so a split by columns prepares each row once per
 * column block; split by rows, each task prepares only its own rows and reads all the weights,
 * which then must stay in L2. Coral 1.0_224, 2 threads, Zen 5 EPYC (1 MB L2), per-layer minima
 * against the columns: the 14x14 layers (130-270 KB of weights) 0.063 -> 0.057 ms each; the 7x7
 * ones (540 KB, 1.1 MB) 5-7 % slower by rows, so they stay by columns. */
#define TM_QU8_ROW_SPLIT_WEIGHT_BYTES (384 * 1024)

/* ---- float32 ----------------------------------------------------------------------------- */
typedef struct {
    const tm_f32_kernels* kern;
    tm_f32_igemm_ukernel_fn igemm; /* the table's main tile or its short one */
    size_t mr;
    size_t k, n;
    const float* a;
    const float* packed;
    float* c;
    tm_gemm_split split;
    tm_f32_minmax_params params;
    float* scratch;         /* ppmm: the packed row blocks, thread_floats per thread */
    size_t thread_floats;
} tm_f32_pointwise_ctx;

/* The ppmm path of a task: its rows [m0, m1) packed tile by tile into the thread's scratch,
 * then every panel of [p0, p1) over them. */
static void tm_f32_pointwise_ppmm(const tm_f32_pointwise_ctx* ctx, float* packed, size_t m0,
                                  size_t m1, size_t p0, size_t p1) {
    const tm_f32_kernels* kern = ctx->kern;
    const size_t mr = ctx->mr, nr = kern->gemm_nr, k = ctx->k;
    for (size_t i = m0; i < m1; i += mr)
        kern->ppmm_pack(TM_MIN(mr, m1 - i), k, ctx->a + i * k, k, packed + (i - m0) * k);
    for (size_t p = p0; p < p1; p++) {
        const float* w = ctx->packed + p * nr * (k + 1);
        const size_t nc = TM_MIN(nr, ctx->n - p * nr);
        for (size_t i = m0; i < m1; i += mr)
            kern->ppmm(TM_MIN(mr, m1 - i), nc, k, packed + (i - m0) * k, w,
                       ctx->c + i * ctx->n + p * nr, ctx->n, &ctx->params);
    }
}

static void tm_f32_pointwise_task(void* p, size_t thread, size_t task) {
    const tm_f32_pointwise_ctx* ctx = (const tm_f32_pointwise_ctx*)p;
    const size_t mr = ctx->mr, nr = ctx->kern->gemm_nr;
    size_t m0, m1, p0, p1;
    tm_gemm_task(&ctx->split, task, &m0, &m1, &p0, &p1);
    if (ctx->scratch != NULL) {
        tm_f32_pointwise_ppmm(ctx, ctx->scratch + thread * ctx->thread_floats, m0, m1, p0, p1);
        return;
    }
    const size_t panel_floats = nr * (ctx->k + 1);
    /* A lone last row (M = 1, or 49 = 8 x 6 + 1 for a 7x7 layer on an 8-row tile) runs
     * through the GEMV ukernel four panels at a time: as one row of the GEMM tile its two FMA
     * chains would leave the FMA units three-quarters idle. */
    const int lone_row = ctx->kern->gemv != NULL && (m1 - m0) % mr == 1;
    const size_t m_tiles = lone_row ? m1 - 1 : m1;
    for (size_t p = p0; p < p1 && m0 < m_tiles; p++) {
        const float* w = ctx->packed + p * panel_floats;
        const size_t n0 = p * nr;
        const size_t nc = TM_MIN(nr, ctx->n - n0);
        tm_f32_minmax_params params = ctx->params;
        if (p + 1 == p1) params.prefetch = 0; /* the task's last panel: nothing of ours follows */
        for (size_t i = m0; i < m_tiles; i += mr) {
            const size_t rows = TM_MIN(mr, m_tiles - i);
            if (i == m0 + TM_F32_PREFETCH_TILES * mr) params.prefetch = 0; /* it is on its way */
            const float* a[TM_MAX_MR];
            for (size_t r = 0; r < mr; r++) a[r] = ctx->a + (i + TM_MIN(r, rows - 1)) * ctx->k;
            ctx->igemm(rows, nc, ctx->k, 1, a, w, ctx->c + i * ctx->n + n0, ctx->n, &params);
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

/* The short tile where it pads no more of the m rows than the main one: 49 rows run as 7 tiles
 * of 7, not 7 of 8 of which the last has one row; where both fit exactly (112 x 112, 56 x 56,
 * 28 x 28 pixels) the 7x32 AVX-512 tile measured 1-2 % faster than the 8x32 one. */
static int tm_f32_pointwise_short_tile(const tm_f32_kernels* kern, size_t m) {
    return kern->igemm_short != NULL &&
           TM_ROUND_UP(m, kern->gemm_mr_short) <= TM_ROUND_UP(m, kern->gemm_mr);
}

const char* tm_f32_pointwise_igemm_name(const tm_f32_kernels* kern, size_t m) {
    if (kern->ppmm != NULL) return kern->ppmm_name;
    return tm_f32_pointwise_short_tile(kern, m) ? kern->igemm_short_name : kern->igemm_name;
}

/* Most rows of a row block: what fits the L2 budget, whole tiles. */
static size_t tm_f32_pointwise_block_rows(size_t k, size_t mr) {
    return TM_MAX(mr, (TM_F32_L2_BUDGET_BYTES / (sizeof(float) * TM_MAX(k, 1))) / mr * mr);
}

/* ppmm: floats of one thread's scratch, a row block of packed tiles and the 16 floats the
 * kernel may read past them, in whole 64-byte lines. */
static size_t tm_f32_pointwise_thread_floats(size_t k, size_t mr) {
    return TM_ROUND_UP(tm_f32_pointwise_block_rows(k, mr) * k + 16, 16);
}

size_t tm_f32_pointwise_workspace(const tm_step* s) {
    if (s->f32 == NULL || s->f32->ppmm == NULL) return 0;
    return TM_MAX(tm_pool_threads(s->pool), 1) * sizeof(float) *
           tm_f32_pointwise_thread_floats(s->cin, s->f32->gemm_mr);
}

void tm_f32_pointwise_run(const tm_step* s) {
    const tm_f32_kernels* kern = s->f32;
    const size_t m = s->batch, k = s->cin, n = s->cout;
    if (m == 0 || n == 0) return;
    const int short_tile = tm_f32_pointwise_short_tile(kern, m);
    const size_t mr = short_tile ? kern->gemm_mr_short : kern->gemm_mr, nr = kern->gemm_nr;
    const size_t mb = tm_f32_pointwise_block_rows(k, mr);
    /* Row blocks never exceed mb rows (the partition only cuts them finer): each fits the
     * thread's scratch. */
    tm_f32_pointwise_ctx ctx = {kern, short_tile ? kern->igemm_short : kern->igemm, mr, k, n,
                                (const float*)s->in, (const float*)s->packed,
                                (float*)s->out,
                                tm_gemm_partition(m, mr, tm_task_count(n, nr), mb,
                                                  (k + 1) * n * sizeof(float),
                                                  TM_F32_L2_BUDGET_BYTES, tm_pool_threads(s->pool)),
                                {s->f32_min, s->f32_max, 0}, NULL, 0};
    ctx.params.prefetch = nr * (k + 1);
    if (kern->ppmm != NULL && !short_tile) { /* (no table has both) */
        ctx.scratch = (float*)s->workspace;
        ctx.thread_floats = tm_f32_pointwise_thread_floats(k, mr);
    }
    tm_pool_parallelize(s->pool, tm_f32_pointwise_task, &ctx,
                        ctx.split.row_blocks * ctx.split.col_blocks);
}

/* Rows [0, m) of the layer of step s from a (m x cin) into c (m x cout), every panel, on the
 * calling thread (the fused step's rows: the same tiles and sums as a run of the step). */
void tm_f32_pointwise_rows(const tm_step* s, const float* a, size_t m, float* c) {
    const tm_f32_kernels* kern = s->f32;
    const size_t k = s->cin, n = s->cout;
    if (m == 0 || n == 0) return;
    const int short_tile = tm_f32_pointwise_short_tile(kern, m);
    const size_t mr = short_tile ? kern->gemm_mr_short : kern->gemm_mr, nr = kern->gemm_nr;
    const size_t panels = tm_task_count(n, nr);
    tm_f32_pointwise_ctx ctx = {kern, short_tile ? kern->igemm_short : kern->igemm, mr, k, n, a,
                                (const float*)s->packed, c,
                                {m, mr, tm_task_count(m, mr), 1, 1, panels, panels},
                                {s->f32_min, s->f32_max, nr * (k + 1)}, NULL, 0};
    tm_f32_pointwise_task(&ctx, 0, 0);
}

/* ---- quantized --------------------------------------------------------------------------- */
typedef struct {
    const tm_qu8_kernels* kern;
    tm_qu8_dot_gemm_fn dot; /* dot_gemm or its short tile (dot-product tables) */
    size_t mr;              /* the rows of the tile that runs */
    size_t m, k, kp, n;
    const uint8_t* a;
    const uint8_t* packed;
    size_t panel_bytes;
    uint8_t* scratch;
    size_t thread_scratch;  /* bytes per thread */
    uint8_t* c;
    size_t mb;              /* most rows of a block (the scratch holds that many) */
    tm_gemm_split split;
    int row_sums;           /* dot_gemm: some weight offset z != 0 */
    tm_qu8_requant_params params;
} tm_qu8_pointwise_ctx;

/* Bytes of one prepared row: int16 (gemm) or uint8 padded to dot_kr plus its int32 sum
 * (dot_gemm). */
static size_t tm_qu8_row_bytes(const tm_qu8_kernels* kern, size_t k) {
    if (kern->dot_gemm != NULL) return TM_ROUND_UP(k, kern->dot_kr) + sizeof(int32_t);
    return TM_ROUND_UP(k, 2) * sizeof(int16_t);
}

/* The short dot tile where it pads fewer of the m rows than the main one (49 rows: 7 tiles of
 * 7, not 7 of 8 of which the last has one row); the main tile where both fit exactly. */
static int tm_qu8_pointwise_short_tile(const tm_qu8_kernels* kern, size_t m) {
    return kern->dot_gemm != NULL && kern->dot_short != NULL &&
           TM_ROUND_UP(m, kern->dot_short_mr) < TM_ROUND_UP(m, kern->gemm_mr);
}

const char* tm_qu8_pointwise_gemm_name(const tm_qu8_kernels* kern, size_t m) {
#ifdef TM_ARCH_X86
    if (m == 1 && kern->dot_gemm != NULL && kern->dot_gemv == tm_qu8_gemv_4x32__avx512vnni)
        return "tm_qu8_gemv_4x32__avx512vnni";
#endif
    if (!tm_qu8_pointwise_short_tile(kern, m)) return tm_qu8_ukernel_name(kern, TM_UK_GEMM);
#ifdef TM_ARCH_X86
    if (kern->dot_short == tm_qu8_gemm_7x32__avx512vnni) return "tm_qu8_gemm_7x32__avx512vnni";
#endif
    return NULL;
}

static size_t tm_qu8_pointwise_mr(const tm_qu8_kernels* kern, size_t m) {
    return tm_qu8_pointwise_short_tile(kern, m) ? kern->dot_short_mr : kern->gemm_mr;
}

static size_t tm_qu8_rows_per_block(const tm_qu8_kernels* kern, size_t k, size_t mr) {
    return TM_MAX(mr, (TM_QU8_L2_BUDGET_BYTES / tm_qu8_row_bytes(kern, k)) / mr * mr);
}

/* Bytes of one thread's scratch, a multiple of 16 so every part stays aligned. */
static size_t tm_qu8_thread_scratch(const tm_qu8_kernels* kern, size_t k, size_t mr) {
    return TM_ROUND_UP(tm_qu8_rows_per_block(kern, k, mr) * tm_qu8_row_bytes(kern, k) + 16, 16);
}

size_t tm_qu8_pointwise_workspace(const tm_step* s) {
    return TM_MAX(tm_pool_threads(s->pool), 1) *
           tm_qu8_thread_scratch(s->qu8, s->cin, tm_qu8_pointwise_mr(s->qu8, s->batch));
}

/* uint8 rows padded with zeros to kp16 bytes, and their sums (the dot path). */
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
    const size_t mr = ctx->mr, nr = ctx->kern->gemm_nr;
    size_t m0, m1, p0, p1;
    tm_gemm_task(&ctx->split, task, &m0, &m1, &p0, &p1);
    const size_t kp = ctx->kp;
    uint8_t* scratch = ctx->scratch + thread * ctx->thread_scratch;
    if (ctx->kern->dot_gemm != NULL) {
        /* k a multiple of dot_kr: the kernel reads the input rows where they are (row sums
         * only when some z != 0); else padded copies. */
        const size_t kpd = TM_ROUND_UP(ctx->k, ctx->kern->dot_kr);
        const int direct = kpd == ctx->k;
        uint8_t* bytes = scratch;
        int32_t* sums = (int32_t*)(bytes + (direct ? 0 : TM_ROUND_UP(ctx->mb * kpd, 16)));
        const uint8_t* src = ctx->a + m0 * ctx->k;
        if (!direct) {
            tm_qu8_prepare_dot_rows(src, m1 - m0, ctx->k, kpd, bytes, sums);
            src = bytes;
        } else if (ctx->row_sums) {
            tm_qu8_row_sums(src, m1 - m0, ctx->k, ctx->k, sums);
        }
        if (m1 - m0 == 1 && ctx->m == 1 && ctx->kern->dot_gemv != NULL) {
            /* a lone row (batch 1 fully connected): four panels at a time */
            for (size_t pi = p0; pi < p1; pi += 4) {
                const size_t np = TM_MIN(4, p1 - pi), last = pi + np - 1;
                ctx->kern->dot_gemv(np, TM_MIN(nr, ctx->n - last * nr), kpd, src,
                                    ctx->row_sums ? sums : NULL, ctx->packed + pi * ctx->panel_bytes,
                                    ctx->panel_bytes, ctx->c + m0 * ctx->n + pi * nr, &ctx->params);
            }
            return;
        }
        for (size_t pi = p0; pi < p1; pi++) {
            const void* w = ctx->packed + pi * ctx->panel_bytes;
            const size_t n0 = pi * nr, nc = TM_MIN(nr, ctx->n - n0);
            for (size_t i = m0; i < m1; i += mr) {
                ctx->dot(TM_MIN(mr, m1 - i), nc, kpd, src + (i - m0) * kpd, kpd,
                         ctx->row_sums ? sums + (i - m0) : NULL, w, ctx->c + i * ctx->n + n0,
                         ctx->n, &ctx->params);
            }
        }
        return;
    }
    int16_t* rows = (int16_t*)scratch;
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

void tm_qu8_pointwise_run(const tm_step* s) {
    const tm_qu8_kernels* kern = s->qu8;
    const size_t m = s->batch, k = s->cin, n = s->cout;
    if (m == 0 || n == 0) return;
    const int short_tile = tm_qu8_pointwise_short_tile(kern, m);
    const size_t mr = tm_qu8_pointwise_mr(kern, m), nr = kern->gemm_nr, kp = TM_ROUND_UP(k, 2);
    const size_t mb = tm_qu8_rows_per_block(kern, k, mr);
    /* Row blocks never exceed mb rows (the partition only cuts them finer), so each fits the
     * thread's scratch. */
    tm_qu8_pointwise_ctx ctx = {kern, short_tile ? kern->dot_short : kern->dot_gemm, mr, m, k, kp, n,
                                (const uint8_t*)s->in, (const uint8_t*)s->packed,
                                tm_qu8_gemm_panel_bytes(kern, k), (uint8_t*)s->workspace,
                                tm_qu8_thread_scratch(kern, k, mr), (uint8_t*)s->out, mb,
                                tm_gemm_partition(m, mr, tm_task_count(n, nr), mb,
                                                  tm_qu8_gemm_packed_size(kern, k, n),
                                                  TM_QU8_ROW_SPLIT_WEIGHT_BYTES,
                                                  tm_pool_threads(s->pool)),
                                kern->dot_gemm == NULL || !kern->dot_signed ||
                                    tm_qu8_gemm_packed_needs_row_sums(kern, k, n, s->packed),
                                {s->quant.output_zero_point, s->quant.min, s->quant.max}};
    tm_pool_parallelize(s->pool, tm_qu8_pointwise_task, &ctx,
                        ctx.split.row_blocks * ctx.split.col_blocks);
}
