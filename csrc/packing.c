/* Weight packing, done once at load: bias first, then the taps, in the order the ukernels
 * stream them. Padding lanes are zero. */
#include <string.h>

#include "internal.h"

size_t tm_f32_gemm_packed_size(const tm_f32_kernels* kern, size_t k, size_t n) {
    const size_t nr = kern->gemm_nr;
    return TM_ROUND_UP(n, nr) * (k + 1);
}

void tm_f32_gemm_pack(const tm_f32_kernels* kern, size_t k, size_t n, const float* w,
                      const float* b, float* packed) {
    const size_t nr = kern->gemm_nr;
    for (size_t n0 = 0; n0 < n; n0 += nr) {
        const size_t nc = TM_MIN(nr, n - n0);
        memset(packed, 0, nr * (k + 1) * sizeof(float));
        if (b != NULL) memcpy(packed, b + n0, nc * sizeof(float));
        packed += nr;
        for (size_t kk = 0; kk < k; kk++) {
            memcpy(packed, w + kk * n + n0, nc * sizeof(float));
            packed += nr;
        }
    }
}

size_t tm_f32_dwconv3x3_packed_size(size_t channels) {
    return TM_ROUND_UP(channels, TM_CHANNEL_TILE) / TM_CHANNEL_TILE * TM_DW_BLOCK_FLOATS;
}

void tm_f32_dwconv3x3_pack(size_t channels, const float* w, const float* b, float* packed) {
    memset(packed, 0, tm_f32_dwconv3x3_packed_size(channels) * sizeof(float));
    for (size_t c = 0; c < channels; c++) {
        *TM_DW_W(packed, c, 0) = b != NULL ? b[c] : 0.0f;
        for (size_t t = 0; t < 9; t++) *TM_DW_W(packed, c, 1 + t) = w[t * channels + c];
    }
}
