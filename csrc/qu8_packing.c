/* Quantized weight packing, done once at load: per panel / channel tile the int32 biases (with
 * -x_zp * sum(w') folded in), the requantization multipliers and shifts, then the int16 taps in
 * the order the ukernels stream them. Padding lanes are zero. */
#include <string.h>

#include "internal.h"
#include "qu8_requant.h"

/* int16 pair layout (gemm): nr int32 bias', multiplier, shift, then kp/2 groups of nr x 2 int16.
 * Quad layout (dot_gemm): nr int32 bias', multiplier, shift, weight offset z (int8 weights:
 * then the requantization constants derived from them, nr int32 each: the multiplier of the odd
 * column of each 64-bit lane in its low half, left shift, then per 16 columns the int64 K, C
 * and 31 + e of tm_qu8_requant64_avx512 for the even columns, then for the odd ones, as
 * ke, ko, ce, co, se, so: TM_QU8_DOT_HEAD_FIELDS in all),
 * then kp/4 groups of nr x 4 bytes w' + z, k padded to the table's dot_kr. The weights of one channel span at most
 * 255 values (8-bit weights minus one zero point), so w' + z fits a byte:
 *   uint8 (udot):      z = -min_k w'[k][col], w' + z in 0..255;
 *   int8 (vpdpbusd):   z = 0 where w' already lies in -128..127 (every per-channel int8 column,
 *                      most uint8 ones), else z = -min_k w' - 128, w' + z in -128..127. */
static size_t tm_qu8_head_fields(const tm_qu8_kernels* kern) {
    return kern->dot_gemm == NULL ? 3 : kern->dot_signed ? TM_QU8_DOT_HEAD_FIELDS : 4;
}

static size_t tm_qu8_panel_bytes(const tm_qu8_kernels* kern, size_t k) {
    const size_t nr = kern->gemm_nr;
    if (kern->dot_gemm != NULL)
        return tm_qu8_head_fields(kern) * nr * sizeof(int32_t) + TM_ROUND_UP(k, kern->dot_kr) * nr;
    return 3 * nr * sizeof(int32_t) + TM_ROUND_UP(k, 2) * nr * sizeof(int16_t);
}

size_t tm_qu8_gemm_panel_bytes(const tm_qu8_kernels* kern, size_t k) {
    return tm_qu8_panel_bytes(kern, k);
}

/* The panels, then (dot-product tables) 64 bytes whose first int32 says whether some weight
 * offset z != 0 (the operators then sum activation rows), so no run scans the panels. */
size_t tm_qu8_gemm_packed_size(const tm_qu8_kernels* kern, size_t k, size_t n) {
    return TM_ROUND_UP(n, kern->gemm_nr) / kern->gemm_nr * tm_qu8_panel_bytes(kern, k) +
           (kern->dot_gemm != NULL ? 64 : 0);
}

void tm_qu8_gemm_pack(const tm_qu8_kernels* kern, size_t k, size_t n, const int16_t* w,
                      const int32_t* b, int32_t input_zero_point, const int32_t* multiplier,
                      const int32_t* shift, void* packed) {
    const size_t nr = kern->gemm_nr, panel = tm_qu8_panel_bytes(kern, k);
    const int dot = kern->dot_gemm != NULL, sign = kern->dot_signed;
    uint8_t* out = (uint8_t*)packed;
    for (size_t n0 = 0; n0 < n; n0 += nr) {
        const size_t nc = TM_MIN(nr, n - n0);
        int32_t* head = (int32_t*)out;
        memset(out, 0, panel);
        for (size_t j = 0; j < nc; j++) {
            int64_t sum = 0;
            int32_t lowest = 0, highest = 0;
            for (size_t kk = 0; kk < k; kk++) {
                sum += w[kk * n + n0 + j];
                lowest = TM_MIN(lowest, (int32_t)w[kk * n + n0 + j]);
                highest = TM_MAX(highest, (int32_t)w[kk * n + n0 + j]);
            }
            head[j] = (int32_t)((b != NULL ? b[n0 + j] : 0) - (int64_t)input_zero_point * sum);
            head[nr + j] = multiplier[n0 + j];
            head[2 * nr + j] = shift[n0 + j];
            if (dot && !sign) head[3 * nr + j] = -lowest;
            if (dot && sign) {
                const int32_t sh = shift[n0 + j];
                head[3 * nr + j] = lowest >= -128 && highest <= 127 ? 0 : -lowest - 128;
                head[4 * nr + j] = j % 2 == 0 && n0 + j + 1 < n ? multiplier[n0 + j + 1] : 0;
                head[5 * nr + j] = sh > 0 ? sh : 0;
                /* column j: 64-bit lane (j % 16) / 2 of the even (j even) or odd constants of
                 * its 16-column block */
                int64_t kk, cc, ss;
                tm_qu8_requant64_consts(sh, &kk, &cc, &ss);
                const size_t at = (j / 16) * 16 + 2 * ((j % 16) / 2), odd = j % 2;
                const int64_t vals[3] = {kk, cc, ss};
                for (size_t f = 0; f < 3; f++) {
                    int32_t* lane = head + (6 + 2 * f + odd) * nr + at;
                    lane[0] = (int32_t)(uint32_t)((uint64_t)vals[f] & 0xFFFFFFFFu);
                    lane[1] = (int32_t)(uint32_t)((uint64_t)vals[f] >> 32);
                }
            }
        }
        if (dot) {
            uint8_t* taps = out + tm_qu8_head_fields(kern) * nr * sizeof(int32_t);
            for (size_t kk = 0; kk < k; kk++)
                for (size_t j = 0; j < nc; j++) /* two's complement bytes for int8 */
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
    if (dot) { /* the trailer: some z != 0 */
        int32_t flag = 0;
        memset(out, 0, 64);
        for (size_t p = 0; p < TM_ROUND_UP(n, nr) / nr; p++) {
            const int32_t* z = (const int32_t*)((const uint8_t*)packed + p * panel) + 3 * nr;
            for (size_t j = 0; j < nr; j++) flag |= z[j] != 0;
        }
        memcpy(out, &flag, sizeof(flag));
    }
}

int tm_qu8_gemm_packed_needs_row_sums(const tm_qu8_kernels* kern, size_t k, size_t n,
                                      const void* packed) {
    const size_t nr = kern->gemm_nr, panel = tm_qu8_panel_bytes(kern, k);
    if (kern->dot_gemm == NULL) return 1;
    int32_t flag;
    memcpy(&flag, (const uint8_t*)packed + TM_ROUND_UP(n, nr) / nr * panel, sizeof(flag));
    return flag != 0;
}

/* Depthwise: int32 bias'[cp], multiplier[cp], shift[cp], 9 taps x cp int32 weights (cp =
 * channels rounded up to 8), then a second copy for 16-channel AVX2 steps, per tile of 16
 * channels: bias', multiplier, shift as "lo" (channels 0-3, 8-11) and "hi" (4-7, 12-15) vectors
 * of 8 int32 (the order vpunpck gives), then per tap pair (0,1) (2,3) (4,5) (6,7) (8,-) a lo and
 * a hi vector of 8 int16 pairs: 512 bytes per tile. */
#define TM_QU8_DW_TILE16_INT16 (6 * 16 + 5 * 2 * 16)

size_t tm_qu8_dwconv3x3_packed_size(size_t channels) {
    return tm_qu8_dw_quad_offset(channels) + tm_qu8_dw_quad_blocks(channels) * TM_QU8_DW_QUAD_BLOCK_BYTES;
}

size_t tm_qu8_dw_quad_offset(size_t channels) {
    return TM_ROUND_UP(channels, TM_CHANNEL_TILE) * 12 * sizeof(int32_t) +
           TM_ROUND_UP(channels, 16) / 16 * TM_QU8_DW_TILE16_INT16 * sizeof(int16_t);
}

/* Lane p of vector j of a 64-lane quad block holds channel 16 * (p / 4) + 4 * j + p % 4 (of
 * block b: plus 64 b; with fewer than 64 channels, that modulo the channels: lane groups of the
 * block's other pixels): the order vpunpck{l,h}bw then vpunpck{l,h}wd give four tap rows of 64
 * bytes, which vpackssdw / vpackuswb undo. Per block: int32 flags[16] (flags[0]: some z != 0,
 * flags[1]: some shift left),
 * then per vector j (16 int32 each): bias', multiplier, the odd lanes' multipliers in the low
 * halves of the 64-bit lanes, left shift, then the int64 K, C and 31 + e of
 * tm_qu8_requant64_avx512 for the even lanes and for the odd ones (ke, ko, ce, co, se, so), z;
 * then three k-quads of 16 x 4 int8 weights w' + z (taps 0-3, 4-7, 8 and three zeros). z = 0
 * where a channel's w' fit int8, else -min w' - 128 (the acc then loses z * the sum of the nine
 * input bytes). */
static void tm_qu8_dw_quad_pack(size_t channels, const int16_t* w, const int32_t* bias,
                                const int32_t* multiplier, const int32_t* shift, uint8_t* out) {
    for (size_t b = 0; b < tm_qu8_dw_quad_blocks(channels); b++, out += TM_QU8_DW_QUAD_BLOCK_BYTES) {
        int32_t* flags = (int32_t*)out;
        for (size_t j = 0; j < 4; j++) {
            int32_t* v = (int32_t*)(out + 64 + j * TM_QU8_DW_QUAD_VECTOR_BYTES);
            int8_t* quads = (int8_t*)(v + 11 * 16);
            for (size_t p = 0; p < 16; p++) {
                const size_t c = (64 * b + 16 * (p / 4) + 4 * j + p % 4) % channels;
                const size_t partner = (64 * b + 16 * (p / 4) + 4 * j + p % 4 + 1) % channels;
                /* (with fewer than 64 channels the lanes past the last whole pixel repeat some
                 * channel too: computed, never stored) */
                int32_t lowest = 0, highest = 0;
                for (size_t t = 0; t < 9; t++) {
                    lowest = TM_MIN(lowest, (int32_t)w[t * channels + c]);
                    highest = TM_MAX(highest, (int32_t)w[t * channels + c]);
                }
                const int32_t z = lowest >= -128 && highest <= 127 ? 0 : -lowest - 128;
                int64_t k64, c64, s64;
                tm_qu8_requant64_consts(shift[c], &k64, &c64, &s64);
                const int64_t vals[3] = {k64, c64, s64};
                v[p] = bias[c];
                v[16 + p] = multiplier[c];
                v[32 + p] = p % 2 == 0 ? multiplier[partner] : 0; /* odd lane's, low half */
                v[48 + p] = shift[c] > 0 ? shift[c] : 0;
                if (shift[c] > 0) flags[1] = 1;
                for (size_t f = 0; f < 3; f++) { /* lane p: half p % 2 of 64-bit lane p / 2 */
                    int32_t* q = v + (4 + 2 * f + p % 2) * 16 + 2 * (p / 2);
                    q[0] = (int32_t)(uint32_t)((uint64_t)vals[f] & 0xFFFFFFFFu);
                    q[1] = (int32_t)(uint32_t)((uint64_t)vals[f] >> 32);
                }
                v[160 + p] = z;
                if (z != 0) flags[0] = 1;
                for (size_t t = 0; t < 12; t++)
                    quads[(t / 4) * 64 + 4 * p + t % 4] = (int8_t)(t < 9 ? w[t * channels + c] + z : 0);
            }
        }
    }
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
    tm_qu8_dw_quad_pack(channels, w, out, multiplier, shift,
                        (uint8_t*)packed + tm_qu8_dw_quad_offset(channels));
}
