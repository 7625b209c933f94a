/* Kernel check for cross builds: runs every float32 and quantized (qu8) operator of every kernel
 * table this build has (NEON and scalar on ARM, and on aarch64 both quantized NEON GEMMs: udot
 * and widening; AVX2 and scalar on x86) with 1, 3 and 4 threads on the reference cases written
 * by tests/arm/make_cases.py, and checks them against the NumPy references: float within a
 * rigorous rounding bound, quantized bit for bit.
 *
 *   kernel_check CASES.bin [LABEL]
 *
 * Float outputs are prefilled with a NaN pattern and followed by a guard band of it; quantized
 * outputs are run twice, prefilled with 0x00 and with 0xFF, each with a guard band. So an output
 * the kernel forgot to write and a write past the end both fail. Prints one line per table and
 * ends with "LABEL: N passed, N failed"; exit status 1 on any failure. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tinymobile.h"

enum { OP_CONV3X3 = 0, OP_DWCONV3X3 = 1, OP_POINTWISE = 2, OP_AVGPOOL = 3,
       OP_QU8_CONV3X3 = 4, OP_QU8_DWCONV3X3 = 5, OP_QU8_POINTWISE = 6, OP_QU8_AVGPOOL = 7 };
#define GUARD 64
#define NAN_BITS 0x7fc0deadu
#define MAX_REPORTS 20
#define MAX_ARRAYS 8

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
    static const int expect[8] = {5, 5, 5, 5, 6, 6, 6, 2};
    return c->op >= 0 && c->op < 8 && c->n_arrays == expect[c->op];
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

/* Runs one float32 case on one table and pool; returns 1 if every output is within tolerance and
 * the guard band is untouched. */
static int run_f32_case(const tm_f32_kernels* kern, tm_pool* pool, const test_case* c,
                        char* why, size_t why_len) {
    const float *in = F32(0), *wt = F32(1), *bias = F32(2), *expected = F32(3), *tol = F32(4);
    const size_t n_out = (size_t)c->a[3].count;
    float* out = (float*)malloc(sizeof(float) * (n_out + GUARD));
    float* packed = NULL;
    float* zero = NULL;
    const float** indirection = NULL;
    const float pattern = nan_pattern();
    int ok = 1;
    for (size_t i = 0; i < n_out + GUARD; i++) out[i] = pattern;
    const size_t batch = (size_t)c->d[0], h = (size_t)c->d[1], w = (size_t)c->d[2];
    const size_t cin = (size_t)c->d[3], cout = (size_t)c->d[4], stride = (size_t)c->d[5];
    const size_t top = (size_t)c->d[6], left = (size_t)c->d[7], oh = (size_t)c->d[8];
    const size_t ow = (size_t)c->d[9];
    switch (c->op) {
        case OP_CONV3X3: {
            packed = (float*)aligned(sizeof(float) * tm_f32_gemm_packed_size(kern, 9 * cin, cout));
            tm_f32_gemm_pack(kern, 9 * cin, cout, wt, bias, packed);
            zero = (float*)calloc(cin + 16, sizeof(float));
            indirection = (const float**)malloc(
                sizeof(float*) * tm_f32_conv3x3_indirection_size(kern, batch, oh, ow));
            tm_f32_conv3x3_indirection_init(kern, batch, h, w, cin, stride, top, left, oh, ow, in,
                                            zero, indirection);
            tm_f32_conv3x3_op(kern, pool, batch, oh, ow, cin, cout, indirection, packed, out,
                              c->min, c->max);
            break;
        }
        case OP_DWCONV3X3: {
            packed = (float*)aligned(sizeof(float) * tm_f32_dwconv3x3_packed_size(cin));
            tm_f32_dwconv3x3_pack(cin, wt, bias, packed);
            zero = (float*)calloc(w * cin + 8, sizeof(float));
            tm_f32_dwconv3x3_op(kern, pool, batch, h, w, cin, stride, top, left, oh, ow, in,
                                packed, zero, out, c->min, c->max);
            break;
        }
        case OP_POINTWISE: {
            const size_t m = (size_t)c->d[0], k = (size_t)c->d[1], n = (size_t)c->d[2];
            packed = (float*)aligned(sizeof(float) * tm_f32_gemm_packed_size(kern, k, n));
            tm_f32_gemm_pack(kern, k, n, wt, bias, packed);
            tm_f32_pointwise_op(kern, pool, m, k, n, in, packed, out, c->min, c->max);
            break;
        }
        default: /* OP_AVGPOOL */
            tm_f32_avgpool_op(kern, (size_t)c->d[0], (size_t)c->d[1], (size_t)c->d[2], in, out);
    }
    size_t bad = 0, first_bad = 0;
    for (size_t i = 0; i < n_out; i++) {
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
    free(zero);
    free((void*)indirection);
    return ok;
}

/* Runs one quantized case on one table and pool, twice (outputs prefilled with 0x00, then 0xFF);
 * returns 1 if both runs equal the reference bit for bit and leave the guard band alone. */
static int run_qu8_case(const tm_qu8_kernels* kern, tm_pool* pool, size_t threads,
                        const test_case* c, char* why, size_t why_len) {
    const array* expected = &c->a[c->n_arrays - 1];
    const size_t n_out = (size_t)expected->count;
    const uint8_t* in = (const uint8_t*)c->a[0].data;
    const int16_t* wt = c->op == OP_QU8_AVGPOOL ? NULL : (const int16_t*)c->a[1].data;
    const int32_t* bias = c->op == OP_QU8_AVGPOOL ? NULL : (const int32_t*)c->a[2].data;
    const int32_t* mult = c->op == OP_QU8_AVGPOOL ? NULL : (const int32_t*)c->a[3].data;
    const int32_t* shift = c->op == OP_QU8_AVGPOOL ? NULL : (const int32_t*)c->a[4].data;
    const int32_t in_zp = c->q[0], out_zp = c->q[1], lo = c->q[2], hi = c->q[3];
    const size_t batch = (size_t)c->d[0], h = (size_t)c->d[1], w = (size_t)c->d[2];
    const size_t cin = (size_t)c->d[3], cout = (size_t)c->d[4], stride = (size_t)c->d[5];
    const size_t top = (size_t)c->d[6], left = (size_t)c->d[7], oh = (size_t)c->d[8];
    const size_t ow = (size_t)c->d[9];
    void* packed = NULL;
    int16_t* scratch = NULL;
    uint8_t* zp_row = NULL;
    switch (c->op) {
        case OP_QU8_CONV3X3:
            packed = aligned(tm_qu8_gemm_packed_size(kern, 9 * cin, cout));
            tm_qu8_gemm_pack(kern, 9 * cin, cout, wt, bias, in_zp, mult, shift, packed);
            scratch = (int16_t*)aligned(sizeof(int16_t) * tm_qu8_conv3x3_scratch_size(kern, threads, cin));
            break;
        case OP_QU8_DWCONV3X3:
            packed = aligned(tm_qu8_dwconv3x3_packed_size(cin));
            tm_qu8_dwconv3x3_pack(cin, wt, bias, in_zp, mult, shift, packed);
            zp_row = (uint8_t*)malloc(w * cin + 16);
            memset(zp_row, (int)in_zp, w * cin + 16);
            break;
        case OP_QU8_POINTWISE: {
            const size_t k = (size_t)c->d[1], n = (size_t)c->d[2];
            packed = aligned(tm_qu8_gemm_packed_size(kern, k, n));
            tm_qu8_gemm_pack(kern, k, n, wt, bias, in_zp, mult, shift, packed);
            scratch = (int16_t*)aligned(sizeof(int16_t) * tm_qu8_pointwise_scratch_size(kern, threads, k));
            break;
        }
        default:
            break;
    }
    uint8_t* out = (uint8_t*)malloc(n_out + GUARD);
    int ok = 1;
    for (int fill = 0x00; ok && fill <= 0xFF; fill += 0xFF) {
        memset(out, fill, n_out + GUARD);
        switch (c->op) {
            case OP_QU8_CONV3X3:
                tm_qu8_conv3x3_op(kern, pool, batch, h, w, cin, cout, stride, top, left, oh, ow, in,
                                  packed, in_zp, scratch, out, out_zp, lo, hi);
                break;
            case OP_QU8_DWCONV3X3:
                tm_qu8_dwconv3x3_op(kern, pool, batch, h, w, cin, stride, top, left, oh, ow, in,
                                    (const int32_t*)packed, zp_row, out, out_zp, lo, hi);
                break;
            case OP_QU8_POINTWISE:
                tm_qu8_pointwise_op(kern, pool, (size_t)c->d[0], (size_t)c->d[1], (size_t)c->d[2],
                                    in, packed, scratch, out, out_zp, lo, hi);
                break;
            default: /* OP_QU8_AVGPOOL */
                tm_qu8_avgpool_op((size_t)c->d[0], (size_t)c->d[1], (size_t)c->d[2], in, out,
                                  c->q[4], c->q[5], in_zp, c->q[6], c->q[7], out_zp, lo, hi);
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
    free(scratch);
    free(zp_row);
    return ok;
}

static int report(int* failed, const char* label, const char* what, int ok, const char* why) {
    if (!ok) {
        if (*failed < MAX_REPORTS) printf("FAIL %s %s: %s\n", label, what, why);
        (*failed)++;
    }
    return ok;
}

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

    /* Dispatch: NEON is the default on ARM, TINYMOBILE_ISA can force scalar, AVX2 is absent. */
#if defined(__ARM_NEON) || defined(__ARM_NEON__)
    const int expect_default = TM_ISA_NEON;
#else
    const int expect_default = -2; /* only ARM builds are checked for their default */
#endif
    if (expect_default != -2) {
        snprintf(why, sizeof(why), "tm_default_isa() = %d", tm_default_isa());
        passed += report(&failed, label, "default ISA is NEON", tm_default_isa() == expect_default, why);
        passed += report(&failed, label, "AVX2 table absent", tm_f32_kernels_for(TM_ISA_AVX2) == NULL,
                         "AVX2 table present on ARM");
        setenv("TINYMOBILE_ISA", "scalar", 1);
        snprintf(why, sizeof(why), "tm_default_isa() = %d", tm_default_isa());
        passed += report(&failed, label, "TINYMOBILE_ISA=scalar", tm_default_isa() == TM_ISA_SCALAR, why);
        setenv("TINYMOBILE_ISA", "avx2", 1);
        snprintf(why, sizeof(why), "tm_default_isa() = %d", tm_default_isa());
        passed += report(&failed, label, "TINYMOBILE_ISA=avx2 refused", tm_default_isa() == -1, why);
        unsetenv("TINYMOBILE_ISA");
        const double gflops = tm_fma_peak_gflops(TM_ISA_NEON, 0.02);
        snprintf(why, sizeof(why), "%.3g GFLOP/s", gflops);
        passed += report(&failed, label, "NEON FMA probe runs", gflops > 0.0, why);
    }

    const size_t thread_counts[3] = {1, 3, 4};
    /* Tables to run: float32 NEON/AVX2/scalar, then quantized ones; on aarch64 CPUs with udot
     * (qemu's default CPU has it) the quantized NEON table is asked for twice, the second time
     * with TINYMOBILE_NO_DOTPROD=1, which gives the widening (vmlal) GEMM. */
    typedef struct { int quantized; int isa; int no_dotprod; } table_spec;
    const table_spec specs[6] = {{0, TM_ISA_NEON, 0}, {0, TM_ISA_AVX2, 0}, {0, TM_ISA_SCALAR, 0},
                                 {1, TM_ISA_NEON, 0}, {1, TM_ISA_NEON, 1}, {1, TM_ISA_AVX2, 0}};
    const void* seen[7] = {NULL};
    int n_seen = 0;
    for (int t = 0; t < 7; t++) {
        const table_spec spec = t < 6 ? specs[t] : (table_spec){1, TM_ISA_SCALAR, 0};
        if (spec.no_dotprod) setenv("TINYMOBILE_NO_DOTPROD", "1", 1);
        const tm_f32_kernels* fk = spec.quantized ? NULL : tm_f32_kernels_for(spec.isa);
        const tm_qu8_kernels* qk = spec.quantized ? tm_qu8_kernels_for(spec.isa) : NULL;
        unsetenv("TINYMOBILE_NO_DOTPROD");
        const void* table = spec.quantized ? (const void*)qk : (const void*)fk;
        if (table == NULL) {
            if (spec.isa == TM_ISA_NEON && expect_default != -2) {
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
                     qk->dot_gemm ? "udot" : "widening", qk->gemm_mr, qk->gemm_nr);
        else
            snprintf(title, sizeof(title), "f32 %s (GEMM %zux%zu)", fk->name, fk->gemm_mr, fk->gemm_nr);
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
                if ((cases[i].op >= OP_QU8_CONV3X3) != spec.quantized) continue;
                char what[300];
                snprintf(what, sizeof(what), "%s threads=%zu %s", title, threads, cases[i].name);
                const int ok = spec.quantized ? run_qu8_case(qk, pool, threads, &cases[i], why, sizeof(why))
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
