/* Kernel check for cross builds: runs every operator of every kernel table this build has (NEON
 * and scalar on ARM; AVX2 and scalar on x86) with 1 and several threads on the reference cases written by
 * tests/arm/make_cases.py, and checks the results against the NumPy reference.
 *
 *   kernel_check CASES.bin [LABEL]
 *
 * Every output buffer is prefilled with a NaN pattern and followed by a guard region of the same
 * pattern, so an output the kernel forgot to write and a write past the end both fail. Prints one
 * line per ISA and ends with "LABEL: N passed, N failed"; exit status 1 on any failure. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tinymobile.h"

enum { OP_CONV3X3 = 0, OP_DWCONV3X3 = 1, OP_POINTWISE = 2, OP_AVGPOOL = 3 };
#define GUARD 64
#define NAN_BITS 0x7fc0deadu
#define MAX_REPORTS 20

typedef struct { int32_t count; float* data; } array;

typedef struct {
    int32_t op;
    int32_t d[10];
    float min, max;
    char name[160];
    array in, w, b, expected, tol;
} test_case;

static int read_exact(FILE* f, void* dst, size_t bytes) { return fread(dst, 1, bytes, f) == bytes; }

static int read_array(FILE* f, array* a) {
    if (!read_exact(f, &a->count, 4) || a->count < 0) return 0;
    a->data = (float*)malloc(sizeof(float) * (size_t)(a->count + 1));
    return a->data != NULL && read_exact(f, a->data, sizeof(float) * (size_t)a->count);
}

static int read_case(FILE* f, test_case* c) {
    int32_t len;
    if (!read_exact(f, &c->op, 4) || !read_exact(f, c->d, sizeof(c->d)) ||
        !read_exact(f, &c->min, 4) || !read_exact(f, &c->max, 4) || !read_exact(f, &len, 4))
        return 0;
    if (len < 0 || len >= (int32_t)sizeof(c->name) || !read_exact(f, c->name, (size_t)len)) return 0;
    c->name[len] = '\0';
    return read_array(f, &c->in) && read_array(f, &c->w) && read_array(f, &c->b) &&
           read_array(f, &c->expected) && read_array(f, &c->tol);
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

/* Runs one case on one table and pool; returns 1 if every output is within tolerance and the
 * guard region is untouched. */
static int run_case(const tm_f32_kernels* kern, tm_pool* pool, size_t threads,
                    const test_case* c, char* why, size_t why_len) {
    const size_t n_out = (size_t)c->expected.count;
    float* out = (float*)malloc(sizeof(float) * (n_out + GUARD));
    float* packed = NULL;
    float* zero = NULL;
    float* scratch = NULL;
    const float pattern = nan_pattern();
    int ok = 1;
    for (size_t i = 0; i < n_out + GUARD; i++) out[i] = pattern;
    const size_t batch = (size_t)c->d[0], h = (size_t)c->d[1], w = (size_t)c->d[2];
    const size_t cin = (size_t)c->d[3], cout = (size_t)c->d[4], stride = (size_t)c->d[5];
    const size_t top = (size_t)c->d[6], left = (size_t)c->d[7], oh = (size_t)c->d[8];
    const size_t ow = (size_t)c->d[9];
    switch (c->op) {
        case OP_CONV3X3: {
            packed = (float*)malloc(sizeof(float) * tm_f32_gemm_packed_size(kern, 9 * cin, cout));
            tm_f32_gemm_pack(kern, 9 * cin, cout, c->w.data, c->b.data, packed);
            zero = (float*)calloc(cin, sizeof(float));
            scratch = (float*)malloc(sizeof(float) * tm_f32_conv3x3_scratch_size(kern, threads, cin));
            tm_f32_conv3x3_op(kern, pool, batch, h, w, cin, cout, stride, top, left, oh, ow,
                              c->in.data, packed, zero, scratch, out, c->min, c->max);
            break;
        }
        case OP_DWCONV3X3: {
            packed = (float*)malloc(sizeof(float) * tm_f32_dwconv3x3_packed_size(cin));
            tm_f32_dwconv3x3_pack(cin, c->w.data, c->b.data, packed);
            zero = (float*)calloc(w * cin + 8, sizeof(float));
            tm_f32_dwconv3x3_op(kern, pool, batch, h, w, cin, stride, top, left, oh, ow,
                                c->in.data, packed, zero, out, c->min, c->max);
            break;
        }
        case OP_POINTWISE: {
            const size_t m = (size_t)c->d[0], k = (size_t)c->d[1], n = (size_t)c->d[2];
            packed = (float*)malloc(sizeof(float) * tm_f32_gemm_packed_size(kern, k, n));
            tm_f32_gemm_pack(kern, k, n, c->w.data, c->b.data, packed);
            tm_f32_pointwise_op(kern, pool, m, k, n, c->in.data, packed, out, c->min, c->max);
            break;
        }
        case OP_AVGPOOL:
            tm_f32_avgpool_op(kern, (size_t)c->d[0], (size_t)c->d[1], (size_t)c->d[2], c->in.data, out);
            break;
        default:
            snprintf(why, why_len, "unknown op %d", (int)c->op);
            ok = 0;
    }
    size_t bad = 0, first_bad = 0;
    for (size_t i = 0; ok && i < n_out; i++) {
        const float got = out[i], want = c->expected.data[i];
        const int good = got == want || fabsf(got - want) <= c->tol.data[i];
        if (!good && bad++ == 0) first_bad = i;
    }
    if (ok && bad) {
        snprintf(why, why_len, "%zu of %zu outputs off; first [%zu]: got %.9g, want %.9g (tol %.3g)",
                 bad, n_out, first_bad, (double)out[first_bad], (double)c->expected.data[first_bad],
                 (double)c->tol.data[first_bad]);
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
    free(scratch);
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
    if (f == NULL || !read_exact(f, magic, 8) || memcmp(magic, "TMCASES1", 8) != 0 ||
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

    const int isas[3] = {TM_ISA_NEON, TM_ISA_AVX2, TM_ISA_SCALAR};
    const size_t thread_counts[3] = {1, 3, 4};
    for (int t = 0; t < 3; t++) {
        const tm_f32_kernels* kern = tm_f32_kernels_for(isas[t]);
        if (kern == NULL) {
            if (isas[t] == TM_ISA_NEON && expect_default != -2) {
                printf("FAIL %s: no NEON table in an ARM build\n", label);
                failed++;
            }
            continue;
        }
        int isa_passed = 0, isa_failed = 0;
        for (size_t tc = 0; tc < 3; tc++) {
            const size_t threads = thread_counts[tc];
            tm_pool* pool = threads > 1 ? tm_pool_create(threads) : NULL;
            if (threads > 1 && pool == NULL) {
                printf("FAIL %s: tm_pool_create(%zu) failed\n", label, threads);
                failed++;
                continue;
            }
            for (int32_t i = 0; i < count; i++) {
                char what[256];
                snprintf(what, sizeof(what), "%s threads=%zu %s", kern->name, threads, cases[i].name);
                const int ok = run_case(kern, pool, threads, &cases[i], why, sizeof(why));
                report(&failed, label, what, ok, why);
                isa_passed += ok;
                isa_failed += !ok;
            }
            if (pool) tm_pool_destroy(pool);
        }
        passed += isa_passed;
        printf("%s %s (gemm %zux%zu), threads 1/3/4: %d cases ok, %d wrong\n", label, kern->name,
               kern->gemm_mr, kern->gemm_nr, isa_passed, isa_failed);
    }
    if (failed > MAX_REPORTS) printf("(%d more failures not shown)\n", failed - MAX_REPORTS);
    printf("%s: %d passed, %d failed\n", label, passed, failed);
    for (int32_t i = 0; i < count; i++) {
        free(cases[i].in.data); free(cases[i].w.data); free(cases[i].b.data);
        free(cases[i].expected.data); free(cases[i].tol.data);
    }
    free(cases);
    return failed ? 1 : 0;
}
