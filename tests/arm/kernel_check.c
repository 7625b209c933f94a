/* The C kernel check, one driver for every build (cross builds under qemu, and x86): runs every
 * float32 and quantized (qu8) operator step of every kernel table this build has (NEON and
 * scalar on ARM, and on aarch64 both quantized NEON GEMMs: udot and widening; AVX2, AVX-512 and
 * scalar on x86) with 1, 3 and 4 threads on the reference cases written by
 * tests/arm/make_cases.py, and checks them against the NumPy references: float within a
 * rigorous rounding bound, quantized bit for bit. Each quantized vector table is also compared
 * with the scalar one on random shapes and parameters (byte for byte).
 *
 *   kernel_check CASES.bin [LABEL]
 *
 * On ARM the environment variable TM_EXPECT_ISA (neon or scalar; neon if unset) names the ISA
 * the build must pick on the CPU it runs on: scalar where the CPU lacks NEON with FMA (ARMv6,
 * Cortex-A8), and then no NEON table may be offered.
 *
 * Float outputs are prefilled with a NaN pattern and followed by a guard band of it; quantized
 * outputs are run twice, prefilled with 0x00 and with 0xFF, each with a guard band. So an output
 * the kernel forgot to write and a write past the end both fail. Every step gets a workspace of
 * its own through tm_step_workspace_size / tm_step_setup, as the Python plans do. Prints one
 * line per table and ends with "LABEL: N passed, N failed"; exit status 1 on any failure. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__aarch64__)
#include <stddef.h>
#include <sys/mman.h>
#include <unistd.h>
#endif

#include "tinymobile.h"

enum { OP_CONV3X3 = 0, OP_DWCONV3X3 = 1, OP_POINTWISE = 2, OP_AVGPOOL = 3,
       OP_QU8_CONV3X3 = 4, OP_QU8_DWCONV3X3 = 5, OP_QU8_POINTWISE = 6, OP_QU8_AVGPOOL = 7,
       OP_MAXPOOL = 8, OP_COUNT = 9 };

static int is_qu8(int32_t op) { return op >= OP_QU8_CONV3X3 && op <= OP_QU8_AVGPOOL; }
#define GUARD 64
#define NAN_BITS 0x7fc0deadu
#define MAX_REPORTS 20
#define MAX_ARRAYS 8
#define TM_MAXZ(a, b) ((a) > (b) ? (a) : (b))
#define TM_MINZ(a, b) ((a) < (b) ? (a) : (b))

static const size_t DTYPE_SIZE[4] = {4, 1, 2, 4}; /* float32, uint8, int16, int32 */

typedef struct { int32_t dtype; int32_t count; void* data; } array;

typedef struct {
    int32_t op;
    int32_t d[10];
    float min, max;
    int32_t q[8];
    char name[160];
    int32_t n_arrays;
    array a[MAX_ARRAYS];
} test_case;

static int read_exact(FILE* f, void* dst, size_t bytes) { return fread(dst, 1, bytes, f) == bytes; }

static int read_array(FILE* f, array* a) {
    if (!read_exact(f, &a->dtype, 4) || !read_exact(f, &a->count, 4) || a->dtype < 0 ||
        a->dtype > 3 || a->count < 0)
        return 0;
    const size_t bytes = DTYPE_SIZE[a->dtype] * (size_t)a->count;
    a->data = malloc(bytes + 16);
    return a->data != NULL && read_exact(f, a->data, bytes);
}

static int read_case(FILE* f, test_case* c) {
    int32_t len;
    if (!read_exact(f, &c->op, 4) || !read_exact(f, c->d, sizeof(c->d)) ||
        !read_exact(f, &c->min, 4) || !read_exact(f, &c->max, 4) ||
        !read_exact(f, c->q, sizeof(c->q)) || !read_exact(f, &len, 4))
        return 0;
    if (len < 0 || len >= (int32_t)sizeof(c->name) || !read_exact(f, c->name, (size_t)len)) return 0;
    c->name[len] = '\0';
    if (!read_exact(f, &c->n_arrays, 4) || c->n_arrays < 0 || c->n_arrays > MAX_ARRAYS) return 0;
    for (int32_t i = 0; i < c->n_arrays; i++)
        if (!read_array(f, &c->a[i])) return 0;
    /* float32 ops carry 5 float arrays, quantized ones 6 (pools 2) of the documented types */
    static const int expect[OP_COUNT] = {5, 5, 5, 5, 6, 6, 6, 2, 5};
    return c->op >= 0 && c->op < OP_COUNT && c->n_arrays == expect[c->op];
}

static void* aligned(size_t bytes) {
    void* p = NULL;
    return posix_memalign(&p, 64, bytes + 64) == 0 ? p : NULL;
}

static float nan_pattern(void) {
    const uint32_t bits = NAN_BITS;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

static int is_pattern(float f) {
    uint32_t bits;
    memcpy(&bits, &f, 4);
    return bits == NAN_BITS;
}

#define F32(i) ((float*)c->a[i].data)

/* A step of a case's geometry (d[0..9] = batch, h, w, cin, cout, stride, top, left, oh, ow; a
 * pointwise case: d[0..2] = m, k, n; a pool: d[0..2] = batch, pixels, channels). */
static tm_step case_step(const test_case* c, int kind, int dtype, tm_pool* pool) {
    tm_step s;
    memset(&s, 0, sizeof s);
    s.kind = kind;
    s.dtype = dtype;
    s.pool = pool;
    if (kind == TM_OP_POINTWISE) {
        s.batch = (size_t)c->d[0];
        s.cin = (size_t)c->d[1];
        s.cout = (size_t)c->d[2];
    } else if (kind == TM_OP_AVGPOOL || kind == TM_OP_MAXPOOL) {
        s.batch = (size_t)c->d[0];
        s.h = (size_t)c->d[1];
        s.w = 1;
        s.cin = (size_t)c->d[2];
    } else {
        s.batch = (size_t)c->d[0], s.h = (size_t)c->d[1], s.w = (size_t)c->d[2];
        s.cin = (size_t)c->d[3], s.cout = (size_t)c->d[4], s.stride = (size_t)c->d[5];
        s.pad_top = (size_t)c->d[6], s.pad_left = (size_t)c->d[7];
        s.oh = (size_t)c->d[8], s.ow = (size_t)c->d[9];
    }
    return s;
}

/* Gives the step a workspace of its own (as a plan would), runs it, frees the workspace. */
static int run_step(tm_step* s) {
    const size_t bytes = tm_step_workspace_size(s);
    if (bytes == (size_t)-1) return TM_ERROR_UNKNOWN_STEP;
    void* workspace = bytes ? aligned(bytes) : NULL;
    int status = tm_step_setup(s, workspace);
    const tm_step* list[1] = {s};
    if (status == TM_OK) status = tm_run_steps(list, 1);
    free(workspace);
    return status;
}

static const int CASE_KIND[OP_COUNT] = {TM_OP_CONV3X3, TM_OP_DWCONV3X3, TM_OP_POINTWISE,
                                        TM_OP_AVGPOOL, TM_OP_CONV3X3, TM_OP_DWCONV3X3,
                                        TM_OP_POINTWISE, TM_OP_AVGPOOL, TM_OP_MAXPOOL};

/* Runs one float32 case on one table and pool; returns 1 if every output is within tolerance and
 * the guard band is untouched. */
static int run_f32_case(const tm_f32_kernels* kern, tm_pool* pool, const test_case* c,
                        char* why, size_t why_len) {
    const float *in = F32(0), *wt = F32(1), *bias = F32(2), *expected = F32(3), *tol = F32(4);
    const size_t n_out = (size_t)c->a[3].count;
    float* out = (float*)malloc(sizeof(float) * (n_out + GUARD));
    float* packed = NULL;
    const float pattern = nan_pattern();
    int ok = 1;
    for (size_t i = 0; i < n_out + GUARD; i++) out[i] = pattern;
    tm_step s = case_step(c, CASE_KIND[c->op], TM_F32, pool);
    s.f32 = kern;
    s.in = in;
    s.out = out;
    s.f32_min = c->min;
    s.f32_max = c->max;
    switch (c->op) {
        case OP_CONV3X3:
            packed = (float*)aligned(sizeof(float) * tm_f32_gemm_packed_size(kern, 9 * s.cin, s.cout));
            tm_f32_gemm_pack(kern, 9 * s.cin, s.cout, wt, bias, packed);
            break;
        case OP_DWCONV3X3:
            packed = (float*)aligned(sizeof(float) * tm_f32_dwconv3x3_packed_size(s.cin));
            tm_f32_dwconv3x3_pack(s.cin, wt, bias, packed);
            break;
        case OP_POINTWISE:
            packed = (float*)aligned(sizeof(float) * tm_f32_gemm_packed_size(kern, s.cin, s.cout));
            tm_f32_gemm_pack(kern, s.cin, s.cout, wt, bias, packed);
            break;
        default: /* OP_AVGPOOL, OP_MAXPOOL */
            break;
    }
    s.packed = packed;
    const int status = run_step(&s);
    if (status != TM_OK) {
        snprintf(why, why_len, "step refused: %s", tm_status_string(status));
        ok = 0;
    }
    size_t bad = 0, first_bad = 0;
    for (size_t i = 0; ok && i < n_out; i++) {
        const int good = out[i] == expected[i] || fabsf(out[i] - expected[i]) <= tol[i];
        if (!good && bad++ == 0) first_bad = i;
    }
    if (bad) {
        snprintf(why, why_len, "%zu of %zu outputs off; first [%zu]: got %.9g, want %.9g (tol %.3g)",
                 bad, n_out, first_bad, (double)out[first_bad], (double)expected[first_bad],
                 (double)tol[first_bad]);
        ok = 0;
    }
    for (size_t i = n_out; ok && i < n_out + GUARD; i++) {
        if (!is_pattern(out[i])) {
            snprintf(why, why_len, "wrote past the output: guard float %zu changed", i - n_out);
            ok = 0;
        }
    }
    free(out);
    free(packed);
    return ok;
}

/* Runs one quantized case on one table and pool, twice (outputs prefilled with 0x00, then 0xFF);
 * returns 1 if both runs equal the reference bit for bit and leave the guard band alone. */
static int run_qu8_case(const tm_qu8_kernels* kern, tm_pool* pool, const test_case* c,
                        char* why, size_t why_len) {
    const array* expected = &c->a[c->n_arrays - 1];
    const size_t n_out = (size_t)expected->count;
    const int16_t* wt = c->op == OP_QU8_AVGPOOL ? NULL : (const int16_t*)c->a[1].data;
    const int32_t* bias = c->op == OP_QU8_AVGPOOL ? NULL : (const int32_t*)c->a[2].data;
    const int32_t* mult = c->op == OP_QU8_AVGPOOL ? NULL : (const int32_t*)c->a[3].data;
    const int32_t* shift = c->op == OP_QU8_AVGPOOL ? NULL : (const int32_t*)c->a[4].data;
    const int32_t in_zp = c->q[0];
    tm_step s = case_step(c, CASE_KIND[c->op], TM_QU8, pool);
    s.qu8 = kern;
    s.in = c->a[0].data;
    s.quant.input_zero_point = in_zp;
    s.quant.output_zero_point = c->q[1];
    s.quant.min = c->q[2];
    s.quant.max = c->q[3];
    s.quant.pool_mode = c->q[4];
    s.quant.value_offset = c->q[5];
    s.quant.multiplier = c->q[6];
    s.quant.shift = c->q[7];
    void* packed = NULL;
    switch (c->op) {
        case OP_QU8_CONV3X3:
            packed = aligned(tm_qu8_gemm_packed_size(kern, 9 * s.cin, s.cout));
            tm_qu8_gemm_pack(kern, 9 * s.cin, s.cout, wt, bias, in_zp, mult, shift, packed);
            break;
        case OP_QU8_DWCONV3X3:
            packed = aligned(tm_qu8_dwconv3x3_packed_size(s.cin));
            tm_qu8_dwconv3x3_pack(s.cin, wt, bias, in_zp, mult, shift, packed);
            break;
        case OP_QU8_POINTWISE:
            packed = aligned(tm_qu8_gemm_packed_size(kern, s.cin, s.cout));
            tm_qu8_gemm_pack(kern, s.cin, s.cout, wt, bias, in_zp, mult, shift, packed);
            break;
        default:
            break;
    }
    s.packed = packed;
    uint8_t* out = (uint8_t*)malloc(n_out + GUARD);
    s.out = out;
    int ok = 1;
    for (int fill = 0x00; ok && fill <= 0xFF; fill += 0xFF) {
        memset(out, fill, n_out + GUARD);
        const int status = run_step(&s);
        if (status != TM_OK) {
            snprintf(why, why_len, "step refused: %s", tm_status_string(status));
            ok = 0;
            break;
        }
        const uint8_t* want = (const uint8_t*)expected->data;
        size_t bad = 0, first_bad = 0;
        for (size_t i = 0; i < n_out; i++)
            if (out[i] != want[i] && bad++ == 0) first_bad = i;
        if (bad) {
            snprintf(why, why_len, "%zu of %zu outputs differ (prefill 0x%02X); first [%zu]: got %d, want %d",
                     bad, n_out, fill, first_bad, out[first_bad], want[first_bad]);
            ok = 0;
        }
        for (size_t i = n_out; ok && i < n_out + GUARD; i++) {
            if (out[i] != fill) {
                snprintf(why, why_len, "wrote past the output: guard byte %zu changed", i - n_out);
                ok = 0;
            }
        }
    }
    free(out);
    free(packed);
    return ok;
}

/* ---- quantized vector tables against the scalar one on random data ----------------------
 * (was tests/c/qu8_isa_vs_scalar.c) 300 trials of random shapes, weights, zero points,
 * multipliers and clamps through the pointwise, depthwise (both strides) and full 3x3 operators;
 * the outputs of `kv` must equal the scalar table's byte for byte. Returns the failures. */
static unsigned rnd_state = 12345;
static unsigned rnd(void) {
    rnd_state = rnd_state * 1103515245u + 12345u;
    return rnd_state >> 8;
}

/* Packs for `kern`, runs one step with a fresh workspace into out (prefilled with `fill`). */
static int run_random_step(tm_step s, const tm_qu8_kernels* kern, const int16_t* wt,
                           const int32_t* b, const int32_t* mu, const int32_t* sh, void* out,
                           size_t out_bytes, int fill) {
    void* packed;
    if (s.kind == TM_OP_DWCONV3X3) {
        packed = aligned(tm_qu8_dwconv3x3_packed_size(s.cin));
        tm_qu8_dwconv3x3_pack(s.cin, wt, b, s.quant.input_zero_point, mu, sh, packed);
    } else {
        const size_t k = s.kind == TM_OP_CONV3X3 ? 9 * s.cin : s.cin;
        packed = aligned(tm_qu8_gemm_packed_size(kern, k, s.cout));
        tm_qu8_gemm_pack(kern, k, s.cout, wt, b, s.quant.input_zero_point, mu, sh, packed);
    }
    s.qu8 = kern;
    s.packed = packed;
    s.out = out;
    memset(out, fill, out_bytes);
    const int status = run_step(&s);
    free(packed);
    return status;
}

static int compare_with_scalar(const tm_qu8_kernels* kv, const char* label) {
    const tm_qu8_kernels* ks = tm_qu8_kernels_for(TM_ISA_SCALAR);
    int fails = 0, cases = 0;
    rnd_state = 12345;
    for (int trial = 0; trial < 300; trial++) {
        const size_t m = 1 + rnd() % 40, k = trial % 50 == 0 ? 1000 + rnd() % 100 : 1 + rnd() % 70;
        const size_t n = 1 + rnd() % 45;
        const size_t h = 1 + rnd() % 12, w = 1 + rnd() % 12, c = 1 + rnd() % 37;
        const size_t stride = 1 + rnd() % 2;
        const int wzp = (int)(rnd() % 256);
        tm_step s;
        memset(&s, 0, sizeof s);
        s.dtype = TM_QU8;
        s.quant.input_zero_point = (int32_t)(rnd() % 256);
        s.quant.output_zero_point = (int32_t)(rnd() % 256);
        s.quant.min = (int32_t)(rnd() % 40);
        s.quant.max = 200 + (int32_t)(rnd() % 56);
        const size_t cin = 1 + rnd() % 4;
        const size_t maxn = TM_MAXZ(k * n, 9 * TM_MAXZ(c, cin) * n) + 9 * c;
        int16_t* wt = (int16_t*)malloc(sizeof(int16_t) * maxn);
        int32_t b[512], mu[512], sh[512];
        for (size_t i = 0; i < maxn; i++) wt[i] = (int16_t)((int)(rnd() % 256) - wzp);
        for (int i = 0; i < 512; i++) {
            b[i] = (int32_t)(rnd() % 80000) - 40000;
            mu[i] = (int32_t)((1u << 30) + rnd() % (1u << 30));
            sh[i] = -(int32_t)(rnd() % 15);
        }
        const size_t oh = (h + stride - 1) / stride, ow = (w + stride - 1) / stride;
        const size_t pt = ((oh - 1) * stride + 3 > h ? (oh - 1) * stride + 3 - h : 0) / 2;
        const size_t pl = ((ow - 1) * stride + 3 > w ? (ow - 1) * stride + 3 - w : 0) / 2;
        const size_t in_bytes = TM_MAXZ(m * k, h * w * TM_MAXZ(c, cin));
        uint8_t* in = (uint8_t*)malloc(in_bytes);
        for (size_t i = 0; i < in_bytes; i++) in[i] = (uint8_t)rnd();
        const size_t out_bytes = TM_MAXZ(m * n, oh * ow * TM_MAXZ(c, n));
        uint8_t* os = (uint8_t*)malloc(out_bytes);
        uint8_t* ov = (uint8_t*)malloc(out_bytes);
        static const char* names[3] = {"pointwise", "dwconv3x3", "conv3x3"};
        for (int op = 0; op < 3; op++) {
            tm_step t = s;
            t.in = in;
            size_t bytes;
            if (op == 0) {
                t.kind = TM_OP_POINTWISE, t.batch = m, t.cin = k, t.cout = n;
                bytes = m * n;
            } else {
                t.kind = op == 1 ? TM_OP_DWCONV3X3 : TM_OP_CONV3X3;
                t.batch = 1, t.h = h, t.w = w, t.stride = stride, t.pad_top = pt, t.pad_left = pl;
                t.oh = oh, t.ow = ow;
                t.cin = op == 1 ? c : cin;
                t.cout = op == 1 ? c : n;
                bytes = oh * ow * t.cout;
            }
            const int s1 = run_random_step(t, ks, wt, b, mu, sh, os, bytes, 0x00);
            const int s2 = run_random_step(t, kv, wt, b, mu, sh, ov, bytes, 0xAB);
            cases++;
            if (s1 != TM_OK || s2 != TM_OK || memcmp(os, ov, bytes) != 0) {
                if (fails < MAX_REPORTS)
                    printf("FAIL %s qu8 %s vs scalar: %s trial %d (m=%zu k=%zu n=%zu h=%zu w=%zu "
                           "c=%zu cin=%zu stride=%zu) differs\n", label, kv->name, names[op],
                           trial, m, k, n, h, w, c, cin, stride);
                fails++;
            }
        }
        free(wt);
        free(in);
        free(os);
        free(ov);
    }
    printf("%s qu8 %s (%s GEMM %zux%zu) vs scalar on random data: %d cases, %d differ\n", label,
           kv->name, kv->dot_gemm ? "dot-product" : "widening", kv->gemm_mr, kv->gemm_nr, cases,
           fails);
    return fails;
}

#if defined(__aarch64__)
/* The float depthwise row kernels of the in-order and out-of-order NEON tables (aarch64:
 * TINYMOBILE_CORE=a53 / a72) on random rows, bit for bit against each other (both compute every
 * output as the bias, then one FMA per tap inside the image in row-major order) and within the
 * rounding bound of a double-precision reference: channel counts with and without a multiple of
 * 8 (the in-order kernel's assembly takes only those), both strides and stride 3, 0-2 columns of
 * padding either side, the clamps, outputs prefilled with NaNs and followed by a guard band.
 * Returns the number of failures. */
static int compare_dwconv_cores(const char* label) {
    setenv("TINYMOBILE_CORE", "a53", 1);
    const tm_f32_kernels* ki = tm_f32_kernels_for(TM_ISA_NEON);
    setenv("TINYMOBILE_CORE", "a72", 1);
    const tm_f32_kernels* ko = tm_f32_kernels_for(TM_ISA_NEON);
    unsetenv("TINYMOBILE_CORE");
    if (ki == NULL || ko == NULL) return 0; /* no NEON here: checked elsewhere */
    const char* ni = tm_f32_ukernel_name(ki, TM_UK_DWCONV);
    const char* no = tm_f32_ukernel_name(ko, TM_UK_DWCONV);
    int fails = 0, cases = 0;
    if (ni == NULL || no == NULL ||
        strcmp(ni, "tm_f32_dwconv3x3_row__aarch64_neonfma_cortex_a53") != 0 ||
        strcmp(no, "tm_f32_dwconv3x3_row__neon") != 0) {
        printf("FAIL %s f32 depthwise per core: a53 %s, a72 %s\n", label, ni ? ni : "NULL",
               no ? no : "NULL");
        return 1;
    }
    static const size_t chans[] = {8, 16, 24, 32, 40, 64, 1, 3, 4, 5, 7, 9, 12, 13, 20, 33};
    static const float clamps[4][2] = {{-INFINITY, INFINITY}, {0.0f, 6.0f}, {-0.25f, 0.5f},
                                       {0.0f, INFINITY}};
    const float pattern = nan_pattern();
    rnd_state = 4242;
    for (int trial = 0; trial < 400; trial++) {
        const size_t c = chans[trial % (sizeof chans / sizeof *chans)];
        const size_t stride = trial % 7 == 6 ? 3 : 1 + (size_t)(trial % 2);
        const size_t in_w = 1 + rnd() % 45, pl = rnd() % 3, pr = rnd() % 3;
        if (in_w + pl + pr < 3) continue;
        const size_t ow = (in_w + pl + pr - 3) / stride + 1;
        tm_f32_minmax_params params = {clamps[trial % 4][0], clamps[trial % 4][1], 0};
        float* rows[3];
        for (int r = 0; r < 3; r++) {
            rows[r] = (float*)malloc(sizeof(float) * in_w * c);
            for (size_t i = 0; i < in_w * c; i++)
                rows[r][i] = (trial % 11 == 0 && r == 2) ? 0.0f : (float)((int)(rnd() % 2001) - 1000) / 997.0f;
        }
        float* wt = (float*)malloc(sizeof(float) * 9 * c);
        float* b = (float*)malloc(sizeof(float) * c);
        for (size_t i = 0; i < 9 * c; i++) wt[i] = (float)((int)(rnd() % 2001) - 1000) / 733.0f;
        for (size_t i = 0; i < c; i++) b[i] = (float)((int)(rnd() % 2001) - 1000) / 1000.0f;
        float* packed = (float*)aligned(sizeof(float) * tm_f32_dwconv3x3_packed_size(c));
        tm_f32_dwconv3x3_pack(c, wt, b, packed);
        const size_t n_out = ow * c;
        float* oi = (float*)malloc(sizeof(float) * (n_out + GUARD));
        float* oo = (float*)malloc(sizeof(float) * (n_out + GUARD));
        for (size_t i = 0; i < n_out + GUARD; i++) oi[i] = oo[i] = pattern;
        const float* crows[3] = {rows[0], rows[1], rows[2]};
        ki->dwconv3x3_row(c, in_w, ow, stride, pl, crows, packed, oi, &params);
        ko->dwconv3x3_row(c, in_w, ow, stride, pl, crows, packed, oo, &params);
        cases++;
        int bad = memcmp(oi, oo, sizeof(float) * (n_out + GUARD)) != 0;
        for (size_t i = n_out; i < n_out + GUARD; i++) bad |= !is_pattern(oi[i]);
        for (size_t ox = 0; ox < ow && !bad; ox++) {
            for (size_t ch = 0; ch < c && !bad; ch++) {
                double acc = b[ch], mag = fabs((double)b[ch]);
                for (size_t ky = 0; ky < 3; ky++)
                    for (size_t kx = 0; kx < 3; kx++) {
                        const ptrdiff_t ix = (ptrdiff_t)(ox * stride + kx) - (ptrdiff_t)pl;
                        if (ix < 0 || ix >= (ptrdiff_t)in_w) continue;
                        const double x = rows[ky][(size_t)ix * c + ch], k = wt[(ky * 3 + kx) * c + ch];
                        acc += x * k;
                        mag += fabs(x * k);
                    }
                acc = acc < params.min ? params.min : acc;
                acc = acc > params.max ? params.max : acc;
                const double got = oi[ox * c + ch];
                bad |= !(fabs(got - acc) <= 2.0 * 11 * 0x1p-23 * mag);
            }
        }
        if (bad) {
            if (fails < MAX_REPORTS)
                printf("FAIL %s f32 depthwise a53 vs a72 / reference: trial %d (c=%zu in_w=%zu "
                       "out_w=%zu stride=%zu pad_left=%zu min=%g max=%g)\n", label, trial, c, in_w,
                       ow, stride, pl, (double)params.min, (double)params.max);
            fails++;
        }
        for (int r = 0; r < 3; r++) free(rows[r]);
        free(wt);
        free(b);
        free(packed);
        free(oi);
        free(oo);
    }
    printf("%s f32 depthwise %s vs %s on random rows: %d cases, %d differ\n", label, ni, no,
           cases, fails);
    return fails;
}
#endif

static int report(int* failed, const char* label, const char* what, int ok, const char* why) {
    if (!ok) {
        if (*failed < MAX_REPORTS) printf("FAIL %s %s: %s\n", label, what, why);
        (*failed)++;
    }
    return ok;
}

#if defined(__aarch64__)
/* `bytes` of memory ending where an inaccessible page starts (reads past the end fault), inside
 * *region (free with guarded_free). NULL if it cannot be had. */
static void* guarded_end(size_t bytes, void** region, size_t* span) {
    const size_t page = (size_t)sysconf(_SC_PAGESIZE);
    *span = (bytes + page - 1) / page * page;
    if (posix_memalign(region, page, *span + page) != 0) return NULL;
    if (mprotect((char*)*region + *span, page, PROT_NONE) != 0) return NULL;
    return (char*)*region + *span - bytes;
}

static void guarded_free(void* region, size_t span) {
    mprotect((char*)region + span, (size_t)sysconf(_SC_PAGESIZE), PROT_READ | PROT_WRITE);
    free(region);
}

/* The two aarch64 float GEMMs (scheduled for in-order and for out-of-order cores) take each
 * accumulator's FMAs in the same order, so they must agree bit for bit: every mr and nc up to 8,
 * kc across the remainders of both kernels' channel loops (16, 4, 2 and 1 at a time), 1-3 taps,
 * with and without a clamp, on values of mixed magnitudes (an FMA order change shows), outputs
 * NaN-prefilled with a guard band (what a kernel must not write stays the pattern), and the
 * packed weights and the rows of A each ending where an inaccessible page starts (a load ahead
 * past them faults). The in-order table's packed-A GEMM (its pointwise layers) on the same rows
 * (one tap), packed by its ppmm_pack, must give the out-of-order igemm's bits too, its packed A
 * ending 16 floats before an inaccessible page. Returns the number of differing calls
 * (reported, up to MAX_REPORTS, through `failed`). */
static int compare_gemm_cores(int* failed, const char* label) {
    setenv("TINYMOBILE_CORE", "a53", 1);
    const tm_f32_kernels* in_order = tm_f32_kernels_for(TM_ISA_NEON);
    setenv("TINYMOBILE_CORE", "a72", 1);
    const tm_f32_kernels* out_of_order = tm_f32_kernels_for(TM_ISA_NEON);
    unsetenv("TINYMOBILE_CORE");
    if (in_order == NULL || out_of_order == NULL || in_order->gemm_mr != 8 ||
        out_of_order->gemm_mr != 8 || in_order->gemm_nr != 8 || out_of_order->gemm_nr != 8)
        return !report(failed, label, "in-order and out-of-order GEMMs 8x8", 0, "missing");
    enum { MAXK = 70, MAXT = 3, STRIDE = 8 + 5 };
    static const size_t kcs[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 13, 14, 15, 16, 17, 18, 19,
                                 20, 23, 28, 31, 32, 33, 34, 35, 36, 47, 48, 49, 63, 64, 65, 70};
    const size_t x_max = 8 * MAXT * MAXK, packed_max = tm_f32_gemm_packed_size(in_order, MAXT * MAXK, 8);
    /* The in-order table's packed-A GEMM (pointwise layers) is checked against the out-of-order
     * igemm on the same rows too, its packed A ending 16 floats (what it may read past) before
     * a guard page. */
    const size_t pa_max = 8 * MAXK + 16;
    void *x_region, *packed_region, *pa_region;
    size_t x_span, packed_span, pa_span;
    float* x_end = guarded_end(sizeof(float) * x_max, &x_region, &x_span);
    float* packed_end = guarded_end(sizeof(float) * packed_max, &packed_region, &packed_span);
    float* pa_end = guarded_end(sizeof(float) * pa_max, &pa_region, &pa_span);
    if (x_end == NULL || packed_end == NULL || pa_end == NULL)
        return !report(failed, label, "GEMM cores: guard pages", 0, "posix_memalign / mprotect failed");
    if (in_order->ppmm == NULL || in_order->ppmm_pack == NULL)
        return !report(failed, label, "in-order packed-A GEMM", 0, "missing");
    x_end += x_max;
    packed_end += packed_max;
    pa_end += pa_max;
    float* ppmm_out = aligned(sizeof(float) * 8 * STRIDE);
    float* wt = aligned(sizeof(float) * MAXT * MAXK * 8);
    float* bias = aligned(sizeof(float) * 8);
    float* out[2] = {aligned(sizeof(float) * 8 * STRIDE), aligned(sizeof(float) * 8 * STRIDE)};
    int differ = 0;
    for (size_t i = 0; i < x_max; i++) /* +-[0.5, 1) x 2^-6 .. 2^6 */
        x_end[-1 - (ptrdiff_t)i] = (rnd() & 1 ? -1.0f : 1.0f) *
                                   (0.5f + (float)(rnd() % 1024) / 2048.0f) *
                                   ldexpf(1.0f, (int)(rnd() % 13) - 6);
    for (size_t i = 0; i < MAXT * MAXK * 8; i++)
        wt[i] = (float)((int)(rnd() % 2001) - 1000) / 997.0f * ldexpf(1.0f, (int)(rnd() % 9) - 4);
    for (size_t j = 0; j < 8; j++) bias[j] = (float)((int)(rnd() % 201) - 100) / 50.0f;
    for (size_t ks = 1; ks <= MAXT; ks++) {
        for (size_t ki = 0; ki < sizeof kcs / sizeof *kcs; ki++) {
            const size_t kc = kcs[ki];
            float* packed = packed_end - tm_f32_gemm_packed_size(in_order, ks * kc, 8);
            const float* x = x_end - 8 * ks * kc;
            tm_f32_gemm_pack(in_order, ks * kc, 8, wt, bias, packed);
            for (size_t mr = 1; mr <= 8; mr++) {
                const float* a[8 * MAXT];
                for (size_t t = 0; t < ks; t++)
                    for (size_t r = 0; r < 8; r++) a[t * 8 + r] = x + (t * 8 + TM_MINZ(r, mr - 1)) * kc;
                for (size_t nc = 1; nc <= 8; nc++) {
                    const tm_f32_minmax_params params = (ks + kc + mr + nc) % 3 == 0
                        ? (tm_f32_minmax_params){-1.5f, 2.0f, 0}
                        : (tm_f32_minmax_params){-INFINITY, INFINITY, 0};
                    for (int v = 0; v < 2; v++) {
                        for (size_t i = 0; i < 8 * STRIDE; i++) out[v][i] = nan_pattern();
                        (v ? out_of_order : in_order)->igemm(mr, nc, kc, ks, a, packed, out[v],
                                                             STRIDE, &params);
                    }
                    int ok = memcmp(out[0], out[1], sizeof(float) * 8 * STRIDE) == 0;
                    for (size_t r = 0; r < 8; r++)
                        for (size_t j = 0; j < STRIDE; j++)
                            ok &= (r < mr && j < nc) != is_pattern(out[0][r * STRIDE + j]);
                    char what[128];
                    snprintf(what, sizeof what, "GEMM cores bit for bit mr=%zu nc=%zu kc=%zu ks=%zu", mr,
                             nc, kc, ks);
                    differ += !report(failed, label, what, ok, "in-order and out-of-order differ "
                                                             "(or a write outside the tile)");
                    if (ks != 1) continue;
                    /* the packed-A GEMM, its rows packed as pointwise_op.c packs them (rows
                     * past mr: the last one again) */
                    float* pa = pa_end - 16 - 8 * kc;
                    for (size_t i = 0; i < 16; i++) pa[8 * kc + i] = nan_pattern();
                    in_order->ppmm_pack(mr, kc, x, kc, pa);
                    for (size_t i = 0; i < 8 * STRIDE; i++) ppmm_out[i] = nan_pattern();
                    in_order->ppmm(mr, nc, kc, pa, packed, ppmm_out, STRIDE, &params);
                    ok = memcmp(ppmm_out, out[1], sizeof(float) * 8 * STRIDE) == 0;
                    snprintf(what, sizeof what, "packed-A GEMM bit for bit mr=%zu nc=%zu kc=%zu", mr,
                             nc, kc);
                    differ += !report(failed, label, what, ok, "packed-A and out-of-order differ");
                }
            }
        }
    }
    guarded_free(x_region, x_span);
    guarded_free(packed_region, packed_span);
    guarded_free(pa_region, pa_span);
    free(ppmm_out);
    free(wt);
    free(bias);
    free(out[0]);
    free(out[1]);
    return differ;
}
#endif

int main(int argc, char** argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s CASES.bin [LABEL]\n", argv[0]);
        return 2;
    }
    const char* label = argc > 2 ? argv[2] : "kernels";
    FILE* f = fopen(argv[1], "rb");
    char magic[8];
    int32_t count = 0;
    if (f == NULL || !read_exact(f, magic, 8) || memcmp(magic, "TMCASES2", 8) != 0 ||
        !read_exact(f, &count, 4) || count <= 0) {
        fprintf(stderr, "%s: not a case file from tests/arm/make_cases.py\n", argv[1]);
        return 2;
    }
    test_case* cases = (test_case*)calloc((size_t)count, sizeof(test_case));
    for (int32_t i = 0; i < count; i++) {
        if (!read_case(f, &cases[i])) {
            fprintf(stderr, "%s: truncated at case %d\n", argv[1], (int)i);
            return 2;
        }
    }
    fclose(f);

    int passed = 0, failed = 0;
    char why[256] = "";

    /* Dispatch: on ARM the default is TM_EXPECT_ISA's, TINYMOBILE_ISA can force scalar, AVX2 is
     * absent; where NEON is not expected, no NEON table is given and TINYMOBILE_ISA=neon is
     * refused. */
#if defined(__arm__) || defined(__aarch64__)
    const char* expect_name = getenv("TM_EXPECT_ISA");
    if (expect_name == NULL || expect_name[0] == '\0') expect_name = "neon";
    if (strcmp(expect_name, "neon") != 0 && strcmp(expect_name, "scalar") != 0) {
        fprintf(stderr, "TM_EXPECT_ISA must be neon or scalar, not '%s'\n", expect_name);
        return 2;
    }
    const int expect_default = strcmp(expect_name, "neon") == 0 ? TM_ISA_NEON : TM_ISA_SCALAR;
#else
    const int expect_default = -2; /* only ARM builds are checked for their default */
#endif
    if (expect_default != -2) {
        char title[64];
        snprintf(title, sizeof(title), "default ISA is %s", tm_isa_name(expect_default));
        snprintf(why, sizeof(why), "tm_default_isa() = %d", tm_default_isa());
        passed += report(&failed, label, title, tm_default_isa() == expect_default, why);
        passed += report(&failed, label, "AVX2 table absent", tm_f32_kernels_for(TM_ISA_AVX2) == NULL,
                         "AVX2 table present on ARM");
        setenv("TINYMOBILE_ISA", "scalar", 1);
        snprintf(why, sizeof(why), "tm_default_isa() = %d", tm_default_isa());
        passed += report(&failed, label, "TINYMOBILE_ISA=scalar", tm_default_isa() == TM_ISA_SCALAR, why);
        setenv("TINYMOBILE_ISA", "avx2", 1);
        snprintf(why, sizeof(why), "tm_default_isa() = %d", tm_default_isa());
        passed += report(&failed, label, "TINYMOBILE_ISA=avx2 refused", tm_default_isa() == -1, why);
        setenv("TINYMOBILE_ISA", "neon", 1);
        snprintf(why, sizeof(why), "tm_default_isa() = %d", tm_default_isa());
        passed += report(&failed, label,
                         expect_default == TM_ISA_NEON ? "TINYMOBILE_ISA=neon" : "TINYMOBILE_ISA=neon refused",
                         tm_default_isa() == (expect_default == TM_ISA_NEON ? TM_ISA_NEON : -1), why);
        unsetenv("TINYMOBILE_ISA");
        if (expect_default == TM_ISA_SCALAR) {
            passed += report(&failed, label, "no NEON tables",
                             tm_f32_kernels_for(TM_ISA_NEON) == NULL && tm_qu8_kernels_for(TM_ISA_NEON) == NULL,
                             "a NEON table on a CPU without NEON with FMA");
        }
        /* Cores: TINYMOBILE_CORE picks the GEMM on aarch64 (one table on ARMv7); a name that is
         * no core is refused, not ignored. */
        setenv("TINYMOBILE_CORE", "a53", 1);
        const tm_f32_kernels* in_order = tm_f32_kernels_for(TM_ISA_NEON);
        setenv("TINYMOBILE_CORE", "a72", 1);
        const tm_f32_kernels* out_of_order = tm_f32_kernels_for(TM_ISA_NEON);
#if defined(__aarch64__)
        const char* want_in_order = "tm_f32_igemm_8x8__aarch64_neonfma_cortex_a53";
        const char* want_out_of_order = "tm_f32_igemm_8x8__aarch64_neonfma";
#else
        const char* want_in_order = "tm_f32_igemm_4x12__neonfma";
        const char* want_out_of_order = "tm_f32_igemm_4x12__neonfma";
#endif
        snprintf(why, sizeof(why), "a53: %s, a72: %s", in_order ? in_order->igemm_name : "NULL",
                 out_of_order ? out_of_order->igemm_name : "NULL");
        if (expect_default == TM_ISA_NEON) /* else no NEON table (checked above) */
            passed += report(&failed, label, "TINYMOBILE_CORE=a53|a72 pick the GEMMs",
                             in_order != NULL && out_of_order != NULL &&
                                 strcmp(in_order->igemm_name, want_in_order) == 0 &&
                                 strcmp(out_of_order->igemm_name, want_out_of_order) == 0, why);
        setenv("TINYMOBILE_CORE", "a9000", 1);
        snprintf(why, sizeof(why), "tm_default_isa() = %d, tm_arm_core() = %d", tm_default_isa(),
                 tm_arm_core());
        passed += report(&failed, label, "TINYMOBILE_CORE=a9000 refused",
                         tm_default_isa() == -1 && tm_arm_core() == -1 &&
                             tm_f32_kernels_for(TM_ISA_NEON) == NULL, why);
        unsetenv("TINYMOBILE_CORE");
#if defined(__aarch64__)
        if (expect_default == TM_ISA_NEON) {
            const int differ = compare_gemm_cores(&failed, label);
            passed += differ == 0;
            printf("%s GEMM in-order vs out-of-order, bit for bit: %s\n", label,
                   differ ? "DIFFER" : "identical");
        }
#endif
        snprintf(why, sizeof(why), "tm_arm_core() = %d", tm_arm_core());
        passed += report(&failed, label, "core detected (or out-of-order when unknown)",
                         tm_arm_core() == TM_CORE_IN_ORDER || tm_arm_core() == TM_CORE_OUT_OF_ORDER,
                         why);
#if defined(__aarch64__)
        if (expect_default == TM_ISA_NEON) {
            const int differ = compare_dwconv_cores(label);
            failed += differ;
            passed += differ == 0;
        }
#endif
        const double gflops = tm_fma_peak_gflops(TM_ISA_NEON, 0.02);
        snprintf(why, sizeof(why), "%.3g GFLOP/s", gflops);
        if (expect_default == TM_ISA_NEON)
            passed += report(&failed, label, "NEON FMA probe runs", gflops > 0.0, why);
        else
            passed += report(&failed, label, "NEON FMA probe declines", gflops == 0.0, why);
    }

    const size_t thread_counts[3] = {1, 3, 4};
    /* Tables to run: float32 NEON/AVX2/scalar, then quantized ones; on aarch64 CPUs with udot
     * (qemu's default CPU has it) the quantized NEON table is asked for twice, the second time
     * with TINYMOBILE_NO_DOTPROD=1, which gives the widening (vmlal) GEMM. */
    /* The float NEON table is asked for with TINYMOBILE_CORE=a72 and =a53: on aarch64 these are
     * the GEMMs scheduled for out-of-order and for in-order cores (on ARMv7 one table). */
    typedef struct { int quantized; int isa; int no_dotprod; const char* core; } table_spec;
    enum { N_SPECS = 12 };
    const table_spec specs[N_SPECS] = {
        {0, TM_ISA_NEON, 0, "a72"}, {0, TM_ISA_NEON, 0, "a53"}, {0, TM_ISA_AVX2, 0, NULL},
        {0, TM_ISA_AVX512, 0, NULL}, {0, TM_ISA_SCALAR, 0, NULL}, {1, TM_ISA_NEON, 0, NULL},
        {1, TM_ISA_NEON, 1, NULL}, {1, TM_ISA_AVX2, 0, NULL}, {1, TM_ISA_AVX512, 0, NULL},
        {1, TM_ISA_AVXVNNI, 0, NULL}, {1, TM_ISA_AVX512VNNI, 0, NULL}, {1, TM_ISA_SCALAR, 0, NULL}};
    const void* seen[N_SPECS] = {NULL};
    int n_seen = 0;
    for (int t = 0; t < N_SPECS; t++) {
        const table_spec spec = specs[t];
        if (spec.no_dotprod) setenv("TINYMOBILE_NO_DOTPROD", "1", 1);
        if (spec.core) setenv("TINYMOBILE_CORE", spec.core, 1);
        const tm_f32_kernels* fk = spec.quantized ? NULL : tm_f32_kernels_for(spec.isa);
        const tm_qu8_kernels* qk = spec.quantized ? tm_qu8_kernels_for(spec.isa) : NULL;
        unsetenv("TINYMOBILE_NO_DOTPROD");
        unsetenv("TINYMOBILE_CORE");
        const void* table = spec.quantized ? (const void*)qk : (const void*)fk;
        if (table == NULL) {
            if (spec.isa == TM_ISA_NEON && expect_default == TM_ISA_NEON) {
                printf("FAIL %s: no %s NEON table in an ARM build\n", label,
                       spec.quantized ? "quantized" : "float32");
                failed++;
            }
            continue;
        }
        int dup = 0;
        for (int i = 0; i < n_seen; i++) dup |= seen[i] == table;
        if (dup) continue;
        seen[n_seen++] = table;
        char title[96];
        if (spec.quantized)
            snprintf(title, sizeof(title), "qu8 %s (%s GEMM %zux%zu)", qk->name,
                     qk->dot_gemm ? (qk->dot_signed ? "vpdpbusd" : "udot") : "widening",
                     qk->gemm_mr, qk->gemm_nr);
        else
            snprintf(title, sizeof(title), "f32 %s (GEMM %zux%zu %s)", fk->name, fk->gemm_mr,
                     fk->gemm_nr, fk->igemm_name);
        if (spec.quantized && spec.isa != TM_ISA_SCALAR) {
            const int differ = compare_with_scalar(qk, label);
            failed += differ;
            passed += differ == 0;
        }
        int table_passed = 0, table_failed = 0;
        for (size_t tc = 0; tc < 3; tc++) {
            const size_t threads = thread_counts[tc];
            tm_pool* pool = threads > 1 ? tm_pool_create(threads) : NULL;
            if (threads > 1 && pool == NULL) {
                printf("FAIL %s: tm_pool_create(%zu) failed\n", label, threads);
                failed++;
                continue;
            }
            for (int32_t i = 0; i < count; i++) {
                if (is_qu8(cases[i].op) != spec.quantized) continue;
                char what[300];
                snprintf(what, sizeof(what), "%s threads=%zu %s", title, threads, cases[i].name);
                const int ok = spec.quantized ? run_qu8_case(qk, pool, &cases[i], why, sizeof(why))
                                              : run_f32_case(fk, pool, &cases[i], why, sizeof(why));
                report(&failed, label, what, ok, why);
                table_passed += ok;
                table_failed += !ok;
            }
            if (pool) tm_pool_destroy(pool);
        }
        passed += table_passed;
        printf("%s %s, threads 1/3/4: %d cases ok, %d wrong\n", label, title, table_passed,
               table_failed);
    }
    if (failed > MAX_REPORTS) printf("(%d more failures not shown)\n", failed - MAX_REPORTS);
    printf("%s: %d passed, %d failed\n", label, passed, failed);
    for (int32_t i = 0; i < count; i++)
        for (int32_t j = 0; j < cases[i].n_arrays; j++) free(cases[i].a[j].data);
    free(cases);
    return failed ? 1 : 0;
}
