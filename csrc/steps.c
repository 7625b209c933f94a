/* The step list: workspace sizes, setup and running of any operator step by kind and dtype (one
 * table, so a new operator is one row), a forward pass as one call, and the checked input copy
 * that precedes it. */
#include <string.h>

#include "internal.h"

typedef struct {
    size_t (*workspace)(const tm_step* s);
    void (*setup)(const tm_step* s); /* NULL: nothing to initialise */
    void (*run)(const tm_step* s);
} tm_operator;

/* [kind][dtype]; kind 0 is no operator. */
static const tm_operator tm_operators[TM_OP_COUNT][TM_DTYPE_COUNT] = {
    [TM_OP_POINTWISE] = {
        [TM_F32] = {tm_f32_pointwise_workspace, NULL, tm_f32_pointwise_run},
        [TM_QU8] = {tm_qu8_pointwise_workspace, NULL, tm_qu8_pointwise_run},
    },
    [TM_OP_CONV3X3] = {
        [TM_F32] = {tm_f32_conv3x3_workspace, tm_f32_conv3x3_setup, tm_f32_conv3x3_run},
        [TM_QU8] = {tm_qu8_conv3x3_workspace, NULL, tm_qu8_conv3x3_run},
    },
    [TM_OP_DWCONV3X3] = {
        [TM_F32] = {tm_f32_dwconv3x3_workspace, tm_f32_dwconv3x3_setup, tm_f32_dwconv3x3_run},
        [TM_QU8] = {tm_qu8_dwconv3x3_workspace, tm_qu8_dwconv3x3_setup, tm_qu8_dwconv3x3_run},
    },
    [TM_OP_AVGPOOL] = {
        [TM_F32] = {tm_f32_avgpool_workspace, NULL, tm_f32_avgpool_run},
        [TM_QU8] = {tm_qu8_avgpool_workspace, NULL, tm_qu8_avgpool_run},
    },
    [TM_OP_MAXPOOL] = {
        [TM_F32] = {tm_f32_maxpool_workspace, NULL, tm_f32_maxpool_run},
    },
    [TM_OP_FUSED] = {
        [TM_F32] = {tm_f32_fused_workspace, tm_f32_fused_setup, tm_f32_fused_run},
    },
};

/* The operator of a step, or NULL for an unknown kind / dtype. */
static const tm_operator* tm_operator_of(const tm_step* s) {
    if (s->kind <= 0 || s->kind >= TM_OP_COUNT || s->dtype < 0 || s->dtype >= TM_DTYPE_COUNT)
        return NULL;
    const tm_operator* op = &tm_operators[s->kind][s->dtype];
    return op->run != NULL ? op : NULL;
}

static int tm_has_kernels(const tm_step* s) {
    return s->dtype == TM_F32 ? s->f32 != NULL : s->qu8 != NULL;
}

size_t tm_step_workspace_size(const tm_step* s) {
    const tm_operator* op = tm_operator_of(s);
    if (op == NULL || !tm_has_kernels(s)) return (size_t)-1;
    return op->workspace(s);
}

/* A fused step's members: each runnable on its own (set up), and a chain it can run (its
 * workspace function says so). */
static int tm_check_step(const tm_step* s, const tm_operator* op);
static int tm_check_members(const tm_step* s, const tm_operator* op) {
    if (s->kind != TM_OP_FUSED) return TM_OK;
    if (s->members == NULL || s->member_count > TM_FUSED_MAX) return TM_ERROR_BAD_MEMBERS;
    for (size_t i = 0; i < s->member_count; i++) {
        const tm_step* m = s->members[i];
        if (m == NULL || m->kind == TM_OP_FUSED) return TM_ERROR_BAD_MEMBERS;
        const int status = tm_check_step(m, tm_operator_of(m));
        if (status != TM_OK) return status;
    }
    return op->workspace(s) == (size_t)-1 ? TM_ERROR_BAD_MEMBERS : TM_OK;
}

int tm_step_setup(tm_step* s, void* workspace) {
    const tm_operator* op = tm_operator_of(s);
    if (op == NULL) return TM_ERROR_UNKNOWN_STEP;
    if (!tm_has_kernels(s)) return TM_ERROR_NO_KERNELS;
    const int members = tm_check_members(s, op);
    if (members != TM_OK) return members;
    if (workspace == NULL && op->workspace(s) != 0) return TM_ERROR_NO_WORKSPACE;
    s->workspace = workspace;
    if (op->setup != NULL) op->setup(s);
    return TM_OK;
}

/* Whether a step can run: known, with its table, and set up when it needs a workspace. */
static int tm_check_step(const tm_step* s, const tm_operator* op) {
    if (op == NULL) return TM_ERROR_UNKNOWN_STEP;
    if (!tm_has_kernels(s)) return TM_ERROR_NO_KERNELS;
    const int members = tm_check_members(s, op);
    if (members != TM_OK) return members;
    if (s->workspace == NULL && op->workspace(s) != 0) return TM_ERROR_NO_WORKSPACE;
    return TM_OK;
}

int tm_run_steps(const tm_step* const* steps, size_t count) {
    for (size_t i = 0; i < count; i++) {
        const int status = tm_check_step(steps[i], tm_operator_of(steps[i]));
        if (status != TM_OK) return status;
    }
    for (size_t i = 0; i < count; i++) tm_operator_of(steps[i])->run(steps[i]);
    return TM_OK;
}

const char* tm_status_string(int status) {
    switch (status) {
        case TM_OK: return "ok";
        case TM_ERROR_UNKNOWN_STEP: return "unknown operator kind or dtype in a step";
        case TM_ERROR_NO_KERNELS: return "a step has no kernel table for its dtype";
        case TM_ERROR_NO_WORKSPACE: return "a step that needs a workspace was not set up";
        case TM_ERROR_BAD_MEMBERS: return "a fused step's members are not a chain of set-up float32 layers it can run";
        default: return "unknown status";
    }
}

/* Blocks of 4096 values, counted in 32 bits: the loop vectorises (a size_t count would not). */
static inline __attribute__((always_inline)) size_t
tm_copy_count_nonfinite(size_t n, const float* src, float* dst) {
    size_t bad = 0;
    for (size_t i0 = 0; i0 < n; i0 += 4096) {
        const size_t end = n - i0 < 4096 ? n : i0 + 4096;
        uint32_t block = 0;
        for (size_t i = i0; i < end; i++) {
            uint32_t bits;
            memcpy(&bits, &src[i], sizeof bits);
            dst[i] = src[i];
            block += (bits & UINT32_C(0x7f800000)) == UINT32_C(0x7f800000); /* exponent all ones */
        }
        bad += block;
    }
    return bad;
}

#ifdef TM_ARCH_X86
/* The same loop in 256-bit vectors: half the time of the SSE2 build on a 224 x 224 image. */
TM_TARGET_AVX2 static size_t tm_copy_count_nonfinite_avx2(size_t n, const float* src, float* dst) {
    return tm_copy_count_nonfinite(n, src, dst);
}
#endif

size_t tm_f32_copy_count_nonfinite(size_t n, const float* src, float* dst) {
#ifdef TM_ARCH_X86
    if (__builtin_cpu_supports("avx2")) return tm_copy_count_nonfinite_avx2(n, src, dst);
#endif
    return tm_copy_count_nonfinite(n, src, dst);
}
