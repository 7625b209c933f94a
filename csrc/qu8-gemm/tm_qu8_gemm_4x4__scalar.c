#include <string.h>

#include "../qu8_requant.h"

/* 4x4 quantized GEMM tile, plain C: int32 accumulators over int16 activations and k-pair
 * interleaved int16 weights, TFLite requantization per column. */
void tm_qu8_gemm_4x4__scalar(size_t mr, size_t nc, size_t kc, const int16_t* a, size_t a_stride,
                             const void* wv, uint8_t* c, size_t c_stride,
                             const tm_qu8_requant_params* params) {
    const int32_t* head = (const int32_t*)wv; /* bias[4], multiplier[4], shift[4] */
    const int16_t* w = (const int16_t*)(head + 12);
    int32_t acc[4][4];
    for (size_t r = 0; r < 4; r++)
        for (size_t j = 0; j < 4; j++) acc[r][j] = head[j];
    for (size_t k = 0; k < kc; k += 2) {
        for (size_t r = 0; r < mr; r++) {
            const int32_t x0 = a[r * a_stride + k], x1 = a[r * a_stride + k + 1];
            for (size_t j = 0; j < 4; j++) acc[r][j] += x0 * w[2 * j] + x1 * w[2 * j + 1];
        }
        w += 8;
    }
    for (size_t r = 0; r < mr; r++)
        for (size_t j = 0; j < nc; j++)
            c[r * c_stride + j] = tm_qu8_output(acc[r][j], head[4 + j], head[8 + j], params);
}
