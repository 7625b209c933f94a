#include "../internal.h"

/* Portable 4x4 indirect-GEMM tile: see tm_f32_igemm_ukernel_fn in tinymobile.h. */
void tm_f32_igemm_4x4__scalar(size_t mr, size_t nc, size_t kc, size_t ks, const float** a,
                              const float* w, float* c, size_t c_stride,
                              const tm_f32_minmax_params* params) {
    float acc[4][4];
    for (size_t i = 0; i < 4; i++)
        for (size_t j = 0; j < 4; j++) acc[i][j] = w[j];
    w += 4;
    for (size_t t = 0; t < ks; t++, a += 4) {
        for (size_t k = 0; k < kc; k++) {
            for (size_t i = 0; i < 4; i++) {
                const float x = a[i][k];
                for (size_t j = 0; j < 4; j++) acc[i][j] += x * w[j];
            }
            w += 4;
        }
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
