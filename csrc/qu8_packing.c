/* Quantized weight packing, done once at load: per panel / channel tile the int32 biases (with
 * -x_zp * sum(w') folded in), the requantization multipliers and shifts, then the int16 taps in
 * the order the ukernels stream them. Padding lanes are zero. */
#include <string.h>

#include "internal.h"

/* int16 pair layout (gemm): nr int32 bias', multiplier, shift, then kp/2 groups of nr x 2 int16.
 * uint8 quad layout (dot_gemm): nr int32 bias', multiplier, shift, zero point z, then kp16/4
 * groups of nr x 4 uint8 w' + z, where z = -min_k w'[k][col] (so w' + z is in 0..255: the
 * weights of one channel span at most 255 values) and k is padded to a multiple of 16. */
static size_t tm_qu8_panel_bytes(const tm_qu8_kernels* kern, size_t k) {
    const size_t nr = kern->gemm_nr;
    if (kern->dot_gemm != NULL) return 4 * nr * sizeof(int32_t) + TM_ROUND_UP(k, 16) * nr;
    return 3 * nr * sizeof(int32_t) + TM_ROUND_UP(k, 2) * nr * sizeof(int16_t);
}

size_t tm_qu8_gemm_packed_size(const tm_qu8_kernels* kern, size_t k, size_t n) {
    return TM_ROUND_UP(n, kern->gemm_nr) / kern->gemm_nr * tm_qu8_panel_bytes(kern, k);
}

void tm_qu8_gemm_pack(const tm_qu8_kernels* kern, size_t k, size_t n, const int16_t* w,
                      const int32_t* b, int32_t input_zero_point, const int32_t* multiplier,
                      const int32_t* shift, void* packed) {
    const size_t nr = kern->gemm_nr, panel = tm_qu8_panel_bytes(kern, k);
    const int dot = kern->dot_gemm != NULL;
    uint8_t* out = (uint8_t*)packed;
    for (size_t n0 = 0; n0 < n; n0 += nr) {
        const size_t nc = TM_MIN(nr, n - n0);
        int32_t* head = (int32_t*)out;
        memset(out, 0, panel);
        for (size_t j = 0; j < nc; j++) {
            int64_t sum = 0;
            int32_t lowest = 0;
            for (size_t kk = 0; kk < k; kk++) {
                sum += w[kk * n + n0 + j];
                lowest = TM_MIN(lowest, (int32_t)w[kk * n + n0 + j]);
            }
            head[j] = (int32_t)((b != NULL ? b[n0 + j] : 0) - (int64_t)input_zero_point * sum);
            head[nr + j] = multiplier[n0 + j];
            head[2 * nr + j] = shift[n0 + j];
            if (dot) head[3 * nr + j] = -lowest;
        }
        if (dot) {
            uint8_t* taps = out + 4 * nr * sizeof(int32_t);
            for (size_t kk = 0; kk < k; kk++)
                for (size_t j = 0; j < nc; j++)
                    taps[(kk / 4) * 4 * nr + 4 * j + (kk % 4)] =
                        (uint8_t)(w[kk * n + n0 + j] + head[3 * nr + j]);
        } else {
            int16_t* taps = (int16_t*)(head + 3 * nr);
            for (size_t kk = 0; kk < k; kk++)
                for (size_t j = 0; j < nc; j++)
                    taps[(kk / 2) * 2 * nr + 2 * j + (kk % 2)] = w[kk * n + n0 + j];
        }
        out += panel;
    }
}

/* Depthwise: int32 bias'[cp], multiplier[cp], shift[cp], 9 taps x cp int32 weights (cp =
 * channels rounded up to 8), then a second copy for 16-channel AVX2 steps, per tile of 16
 * channels: bias', multiplier, shift as "lo" (channels 0-3, 8-11) and "hi" (4-7, 12-15) vectors
 * of 8 int32 (the order vpunpck gives), then per tap pair (0,1) (2,3) (4,5) (6,7) (8,-) a lo and
 * a hi vector of 8 int16 pairs: 512 bytes per tile. */
#define TM_QU8_DW_TILE16_INT16 (6 * 16 + 5 * 2 * 16)

size_t tm_qu8_dwconv3x3_packed_size(size_t channels) {
    return TM_ROUND_UP(channels, TM_CHANNEL_TILE) * 12 * sizeof(int32_t) +
           TM_ROUND_UP(channels, 16) / 16 * TM_QU8_DW_TILE16_INT16 * sizeof(int16_t);
}

void tm_qu8_dwconv3x3_pack(size_t channels, const int16_t* w, const int32_t* b,
                           int32_t input_zero_point, const int32_t* multiplier,
                           const int32_t* shift, void* packed) {
    const size_t cp = TM_ROUND_UP(channels, TM_CHANNEL_TILE);
    int32_t* out = (int32_t*)packed;
    memset(packed, 0, tm_qu8_dwconv3x3_packed_size(channels));
    for (size_t c = 0; c < channels; c++) {
        int32_t sum = 0;
        for (size_t t = 0; t < 9; t++) {
            sum += w[t * channels + c];
            out[(3 + t) * cp + c] = w[t * channels + c];
        }
        out[c] = (b != NULL ? b[c] : 0) - input_zero_point * sum;
        out[cp + c] = multiplier[c];
        out[2 * cp + c] = shift[c];
    }
    int16_t* tile = (int16_t*)(out + 12 * cp);
    for (size_t c0 = 0; c0 < channels; c0 += 16) {
        int32_t* head = (int32_t*)tile;
        int16_t* pairs = tile + 6 * 16;
        for (size_t half = 0; half < 2; half++) {          /* 0: lo vector, 1: hi vector */
            for (size_t slot = 0; slot < 8; slot++) {       /* int32 slot of the vector */
                const size_t c = c0 + (slot < 4 ? slot : slot + 4) + 4 * half;
                head[(0 + half) * 8 + slot] = c < channels ? out[c] : 0;
                head[(2 + half) * 8 + slot] = c < channels ? out[cp + c] : 0;
                head[(4 + half) * 8 + slot] = c < channels ? out[2 * cp + c] : 0;
                for (size_t pr = 0; pr < 5; pr++) {
                    for (size_t e = 0; e < 2; e++) {
                        const size_t t = 2 * pr + e;
                        pairs[((pr * 2 + half) * 8 + slot) * 2 + e] =
                            (c < channels && t < 9) ? w[t * channels + c] : 0;
                    }
                }
            }
        }
        tile += TM_QU8_DW_TILE16_INT16;
    }
}
