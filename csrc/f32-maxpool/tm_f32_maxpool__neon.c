#include "../internal.h"

#ifdef TM_ARCH_NEON
TM_NEON_BEGIN
#include <arm_neon.h>

/* Global max pool, 16 channels per iteration in four vectors, then 4 per vector; scalar channel
 * tail. Max is exact: bit-identical to the scalar kernel. */
void tm_f32_maxpool__neon(size_t pixels, size_t channels, const float* in, float* out) {
    size_t c = 0;
    for (; c + 16 <= channels; c += 16) {
        const float* p0 = in + c;
        float32x4_t m0 = vld1q_f32(p0), m1 = vld1q_f32(p0 + 4);
        float32x4_t m2 = vld1q_f32(p0 + 8), m3 = vld1q_f32(p0 + 12);
        for (size_t p = 1; p < pixels; p++) {
            const float* q = in + p * channels + c;
            m0 = vmaxq_f32(m0, vld1q_f32(q));
            m1 = vmaxq_f32(m1, vld1q_f32(q + 4));
            m2 = vmaxq_f32(m2, vld1q_f32(q + 8));
            m3 = vmaxq_f32(m3, vld1q_f32(q + 12));
        }
        vst1q_f32(out + c, m0);
        vst1q_f32(out + c + 4, m1);
        vst1q_f32(out + c + 8, m2);
        vst1q_f32(out + c + 12, m3);
    }
    for (; c + 4 <= channels; c += 4) {
        float32x4_t m = vld1q_f32(in + c);
        for (size_t p = 1; p < pixels; p++) m = vmaxq_f32(m, vld1q_f32(in + p * channels + c));
        vst1q_f32(out + c, m);
    }
    for (; c < channels; c++) {
        float m = in[c];
        for (size_t p = 1; p < pixels; p++) {
            const float v = in[p * channels + c];
            m = v > m ? v : m;
        }
        out[c] = m;
    }
}
TM_NEON_END
#endif
