#include "../internal.h"

#ifdef TM_ARCH_NEON
TM_NEON_BEGIN
#include <arm_neon.h>

/* Global average pool, 4 channels per vector; scalar channel tail. */
void tm_f32_avgpool__neon(size_t pixels, size_t channels, const float* in, float* out) {
    const float scale = 1.0f / (float)pixels;
    size_t c = 0;
    for (; c + 4 <= channels; c += 4) {
        float32x4_t acc = vdupq_n_f32(0.0f);
        for (size_t p = 0; p < pixels; p++) acc = vaddq_f32(acc, vld1q_f32(in + p * channels + c));
        vst1q_f32(out + c, vmulq_n_f32(acc, scale));
    }
    for (; c < channels; c++) {
        float acc = 0.0f;
        for (size_t p = 0; p < pixels; p++) acc += in[p * channels + c];
        out[c] = acc * scale;
    }
}
TM_NEON_END
#endif
