/* A chain of float32 layers run row by row (a FUSED step): the first layers of a MobileNet write
 * maps of 1.6-3.2 MB each that, in a whole forward pass, leave the caches before the next layer
 * reads them; here each output row of the last member is made as soon as the rows it needs
 * exist, and every intermediate row lives in a ring of a few rows per thread that stays in L2.
 *
 * Members: a 3x3 convolution (first only: it reads the network input through its own
 * indirection, re-laid out here one output row per group run), depthwise 3x3 layers and
 * pointwise layers over maps. Each row is made by the member's own kernels from the same inputs
 * in the same order, so the outputs are the members' bits (tests compare with the unfused
 * steps). Work is cut into horizontal bands of the last member's rows, one task each; a band
 * recomputes the few rows above it that its neighbour also makes. */
#include "internal.h"

#define TM_FUSED_NONE ((size_t)-1)

typedef struct {
    const tm_step* s;
    int kind;
    size_t in_h, in_w, in_c, out_h, out_w, out_c;
    size_t window;      /* input rows one output row reads: 3 (3x3 layers) or 1 (pointwise) */
    size_t ring_rows;   /* rows of its output a thread keeps (0: the last member, whole map) */
    size_t ring_offset; /* bytes from a thread's part of the workspace to its ring */
    size_t row_stride;  /* bytes between ring rows */
} tm_fused_member;

typedef struct {
    size_t count, batch, threads;
    size_t ring_bytes;     /* one thread's rings */
    size_t conv_row_group; /* indirection entries per output row of a first convolution */
    size_t indirection;    /* bytes of that table (0: the first member is not a convolution) */
    tm_fused_member m[TM_FUSED_MAX];
} tm_fused_plan;

/* The chain's geometry, or 0 when the members are not a chain this step can run. */
static int tm_fused_plan_of(const tm_step* s, tm_fused_plan* p) {
    if (s->dtype != TM_F32 || s->members == NULL || s->member_count < 2 ||
        s->member_count > TM_FUSED_MAX)
        return 0;
    p->count = s->member_count;
    p->batch = s->batch;
    p->threads = TM_MAX(tm_pool_threads(s->pool), 1);
    p->ring_bytes = 0;
    p->conv_row_group = 0;
    p->indirection = 0;
    for (size_t i = 0; i < p->count; i++) {
        const tm_step* ms = s->members[i];
        tm_fused_member* m = &p->m[i];
        if (ms == NULL || ms->dtype != TM_F32 || ms->f32 == NULL) return 0;
        m->s = ms;
        m->kind = ms->kind;
        if (ms->kind == TM_OP_CONV3X3 || ms->kind == TM_OP_DWCONV3X3) {
            if (ms->batch != s->batch || (ms->kind == TM_OP_CONV3X3 && i != 0)) return 0;
            if (ms->kind == TM_OP_DWCONV3X3 && ms->cout != ms->cin && ms->cout != 0) return 0;
            m->in_h = ms->h, m->in_w = ms->w, m->in_c = ms->cin;
            m->out_h = ms->oh, m->out_w = ms->ow;
            m->out_c = ms->kind == TM_OP_CONV3X3 ? ms->cout : ms->cin;
            m->window = 3;
            if (ms->stride < 1 || ms->stride > 2 || ms->pad_top > 2 || ms->oh == 0 || ms->ow == 0)
                return 0;
        } else if (ms->kind == TM_OP_POINTWISE && i > 0) {
            const tm_fused_member* prev = &p->m[i - 1];
            m->in_h = m->out_h = prev->out_h, m->in_w = m->out_w = prev->out_w;
            m->in_c = ms->cin, m->out_c = ms->cout;
            m->window = 1;
            if (ms->batch != s->batch * m->in_h * m->in_w) return 0;
        } else {
            return 0;
        }
        if (i > 0) {
            const tm_fused_member* prev = &p->m[i - 1];
            if (prev->out_h != m->in_h || prev->out_w != m->in_w || prev->out_c != m->in_c ||
                prev->s->out != ms->in)
                return 0;
        }
    }
    if (s->in != p->m[0].s->in || s->out != p->m[p->count - 1].s->out) return 0;
    for (size_t i = 0; i + 1 < p->count; i++) {
        tm_fused_member* m = &p->m[i];
        m->ring_rows = p->m[i + 1].window; /* rows its consumer reads at once */
        /* Slack after each row: the depthwise kernels may read a vector past a row's end. */
        m->row_stride = TM_ROUND_UP(m->out_w * m->out_c * sizeof(float) + 64, 64);
        m->ring_offset = p->ring_bytes;
        p->ring_bytes += m->ring_rows * m->row_stride;
    }
    p->m[p->count - 1].ring_rows = 0;
    if (p->m[0].kind == TM_OP_CONV3X3) {
        const tm_fused_member* c = &p->m[0];
        p->conv_row_group = TM_ROUND_UP(c->out_w, tm_f32_conv3x3_group(c->s->f32));
        p->indirection = TM_ROUND_UP(p->batch * c->out_h * p->conv_row_group * 3 * sizeof(float*), 64);
    }
    return 1;
}

size_t tm_f32_fused_workspace(const tm_step* s) {
    tm_fused_plan p;
    if (!tm_fused_plan_of(s, &p)) return (size_t)-1;
    return p.indirection + p.threads * p.ring_bytes;
}

/* A first convolution's indirection, one output row per run of conv_row_group entries (laid out
 * in gemm_mr-row tiles as the member's own table), copied from the member's table (which points
 * into its input, its zero row and its edge rows); entries past a row's last pixel repeat it. */
void tm_f32_fused_setup(const tm_step* s) {
    tm_fused_plan p;
    if (!tm_fused_plan_of(s, &p) || p.indirection == 0) return;
    const tm_step* conv = p.m[0].s;
    const size_t mr = conv->f32->gemm_mr, ow = conv->ow, group = p.conv_row_group;
    const float** ind = (const float**)s->workspace;
    for (size_t row = 0; row < p.batch * conv->oh; row++) {
        const float** r = ind + row * group * 3;
        for (size_t q = 0; q < group; q++) {
            const size_t pixel = row * ow + TM_MIN(q, ow - 1);
            for (size_t ky = 0; ky < 3; ky++)
                r[(q / mr) * mr * 3 + ky * mr + q % mr] = tm_f32_conv3x3_window_row(conv, pixel, ky);
        }
    }
}

typedef struct {
    const tm_step* s;
    const tm_fused_plan* p;
    size_t bands;
} tm_fused_ctx;

/* One task's state: the image, the next row each member makes, its rings. */
typedef struct {
    const tm_fused_ctx* ctx;
    size_t b;
    size_t next[TM_FUSED_MAX];
    char* rings;
} tm_fused_task_state;

/* Row y of member i's output (a ring row, or the last member's output map). */
static float* tm_fused_out_row(const tm_fused_task_state* t, size_t i, size_t y) {
    const tm_fused_member* m = &t->ctx->p->m[i];
    if (m->ring_rows == 0)
        return (float*)m->s->out + ((t->b * m->out_h + y) * m->out_w) * m->out_c;
    return (float*)(t->rings + m->ring_offset + (y % m->ring_rows) * m->row_stride);
}

/* Row y of member i's input (the previous member's output, or the chain's input). */
static const float* tm_fused_in_row(const tm_fused_task_state* t, size_t i, size_t y) {
    if (i > 0) return tm_fused_out_row(t, i - 1, y);
    const tm_fused_member* m = &t->ctx->p->m[0];
    return (const float*)m->s->in + ((t->b * m->in_h + y) * m->in_w) * m->in_c;
}

/* Input rows [*lo, *hi] that output row y of member i reads (0 when none: a window wholly in
 * the padding, which the geometry never makes). */
static int tm_fused_input_rows(const tm_fused_member* m, size_t y, size_t* lo, size_t* hi) {
    if (m->window == 1) {
        *lo = *hi = y;
        return 1;
    }
    const ptrdiff_t top = (ptrdiff_t)(y * m->s->stride) - (ptrdiff_t)m->s->pad_top;
    const ptrdiff_t first = TM_MAX(top, 0), last = TM_MIN(top + 2, (ptrdiff_t)m->in_h - 1);
    if (last < first) return 0;
    *lo = (size_t)first, *hi = (size_t)last;
    return 1;
}

static void tm_fused_make(tm_fused_task_state* t, size_t i, size_t y);

/* Member i has made rows [lo, hi] (rows below lo are not needed again). */
static void tm_fused_ensure(tm_fused_task_state* t, size_t i, size_t lo, size_t hi) {
    if (t->next[i] == TM_FUSED_NONE || t->next[i] < lo) t->next[i] = lo;
    for (; t->next[i] <= hi; t->next[i]++) tm_fused_make(t, i, t->next[i]);
}

/* Output row y of member i, after the rows of its input it reads. */
static void tm_fused_make(tm_fused_task_state* t, size_t i, size_t y) {
    const tm_fused_member* m = &t->ctx->p->m[i];
    const tm_step* s = m->s;
    const tm_f32_minmax_params params = {s->f32_min, s->f32_max, 0};
    size_t lo, hi;
    if (!tm_fused_input_rows(m, y, &lo, &hi)) lo = hi = TM_FUSED_NONE;
    if (i > 0 && lo != TM_FUSED_NONE) tm_fused_ensure(t, i - 1, lo, hi);
    float* out = tm_fused_out_row(t, i, y);
    if (m->kind == TM_OP_CONV3X3) {
        const tm_fused_plan* p = t->ctx->p;
        const float** ind = (const float**)t->ctx->s->workspace +
                            (t->b * m->out_h + y) * p->conv_row_group * 3;
        tm_f32_conv3x3_pixels(s->f32, s->cin, s->cout, ind, m->out_w, (const float*)s->packed,
                              out, &params);
    } else if (m->kind == TM_OP_DWCONV3X3) {
        const float* rows[3];
        for (size_t ky = 0; ky < 3; ky++) {
            const ptrdiff_t iy = (ptrdiff_t)(y * s->stride + ky) - (ptrdiff_t)s->pad_top;
            rows[ky] = (iy < 0 || iy >= (ptrdiff_t)m->in_h) ? (const float*)s->workspace
                                                             : tm_fused_in_row(t, i, (size_t)iy);
        }
        s->f32->dwconv3x3_row(s->cin, m->in_w, m->out_w, s->stride, s->pad_left, rows,
                              (const float*)s->packed, out, &params);
    } else {
        tm_f32_pointwise_rows(s, tm_fused_in_row(t, i, y), m->out_w, out);
    }
}

static void tm_fused_task(void* p, size_t thread, size_t task) {
    const tm_fused_ctx* ctx = (const tm_fused_ctx*)p;
    const tm_fused_plan* plan = ctx->p;
    const size_t last = plan->count - 1, rows = plan->m[last].out_h;
    tm_fused_task_state t;
    t.ctx = ctx;
    t.b = task / ctx->bands;
    t.rings = (char*)ctx->s->workspace + plan->indirection + thread * plan->ring_bytes;
    for (size_t i = 0; i < plan->count; i++) t.next[i] = TM_FUSED_NONE;
    const size_t band = task % ctx->bands;
    const size_t y0 = band * rows / ctx->bands, y1 = (band + 1) * rows / ctx->bands;
    tm_fused_ensure(&t, last, y0, y1 - 1); /* y1 > y0: bands <= rows */
}

static size_t tm_gcd(size_t a, size_t b) {
    while (b != 0) {
        const size_t r = a % b;
        a = b, b = r;
    }
    return a;
}

void tm_f32_fused_run(const tm_step* s) {
    tm_fused_plan p;
    if (!tm_fused_plan_of(s, &p) || p.batch == 0) return;
    if (p.m[0].kind == TM_OP_CONV3X3) tm_f32_conv3x3_fill_edges(p.m[0].s);
    /* Bands per image: the fewest that give every thread the same number of tasks. */
    size_t bands = p.threads / tm_gcd(p.batch, p.threads);
    bands = TM_MAX(TM_MIN(bands, p.m[p.count - 1].out_h), 1);
    tm_fused_ctx ctx = {s, &p, bands};
    tm_pool_parallelize(s->pool, tm_fused_task, &ctx, p.batch * bands);
}
