#include "../internal.h"

/* Portable 4x4 GEMM tile: see tm_f32_gemm_ukernel_fn in tinymobile.h. */
void tm_f32_gemm_4x4__scalar(size_t mr, size_t nc, size_t kc, const float* a, size_t a_stride,
                             const float* w, float* c, size_t c_stride,
                             const tm_f32_minmax_params* params) {
    float acc[4][4];
    const float* ar[4];
    for (size_t i = 0; i < 4; i++) {
        ar[i] = a + TM_MIN(i, mr - 1) * a_stride;
        for (size_t j = 0; j < 4; j++) acc[i][j] = w[j];
    }
    w += 4;
    for (size_t k = 0; k < kc; k++) {
        for (size_t i = 0; i < 4; i++) {
            const float x = ar[i][k];
            for (size_t j = 0; j < 4; j++) acc[i][j] += x * w[j];
        }
        w += 4;
    }
    const float lo = params->min, hi = params->max;
    for (size_t i = 0; i < mr; i++) {
        float* ci = c + i * c_stride;
        for (size_t j = 0; j < nc; j++) {
            float v = acc[i][j];
            v = v < lo ? lo : v;
            v = v > hi ? hi : v;
            ci[j] = v;
        }
    }
}
