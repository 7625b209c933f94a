/* A forward pass as one call: the runner binds every float operator's arguments once per plan
 * (tm_f32_step) and runs the list here, so a small model does not pay a Python-to-C call per
 * layer; the checked input copy that precedes it lives here too. */
#include <string.h>

#include "internal.h"

void tm_f32_run_steps(const tm_f32_step* const* steps, size_t count) {
    for (size_t i = 0; i < count; i++) {
        const tm_f32_step* s = steps[i];
        switch (s->kind) {
        case TM_STEP_POINTWISE:
            tm_f32_pointwise_op(s->kern, s->pool, s->batch, s->cin, s->cout, s->in, s->packed,
                                s->out, s->min, s->max);
            break;
        case TM_STEP_CONV3X3:
            tm_f32_conv3x3_op(s->kern, s->pool, s->batch, s->oh, s->ow, s->cin, s->cout,
                              s->indirection, s->packed, s->out, s->min, s->max);
            break;
        case TM_STEP_DWCONV3X3:
            tm_f32_dwconv3x3_op(s->kern, s->pool, s->batch, s->h, s->w, s->cin, s->stride,
                                s->pad_top, s->pad_left, s->oh, s->ow, s->in, s->packed, s->zero,
                                s->out, s->min, s->max);
            break;
        case TM_STEP_AVGPOOL:
            tm_f32_avgpool_op(s->kern, s->batch, s->h * s->w, s->cin, s->in, s->out);
            break;
        default:
            break; /* the Python side only builds the kinds above */
        }
    }
}

size_t tm_f32_copy_count_nonfinite(size_t n, const float* src, float* dst) {
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t bits;
        memcpy(&bits, &src[i], sizeof bits);
        dst[i] = src[i];
        bad += (bits & UINT32_C(0x7f800000)) == UINT32_C(0x7f800000); /* exponent all ones */
    }
    return bad;
}
