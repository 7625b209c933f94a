/* Quantized global average pool (TFLite AVERAGE_POOL_2D and int8 MEAN roundings). One plain C
 * loop for every ISA: it reads each activation once (< 0.1 % of a MobileNet's time). */
#include "qu8_requant.h"

static int32_t tm_div_round_half_away(int32_t s, int32_t n) {
    return s > 0 ? (s + n / 2) / n : (s - n / 2) / n;
}

void tm_qu8_avgpool_op(size_t batch, size_t pixels, size_t channels, const uint8_t* in,
                       uint8_t* out, int32_t mode, int32_t value_offset, int32_t input_zero_point,
                       int32_t multiplier, int32_t shift, int32_t output_zero_point, int32_t min,
                       int32_t max) {
    for (size_t b = 0; b < batch; b++) {
        const uint8_t* image = in + b * pixels * channels;
        for (size_t c = 0; c < channels; c++) {
            int32_t sum = 0;
            for (size_t p = 0; p < pixels; p++) sum += image[p * channels + c];
            int32_t y;
            if (mode == 0) {
                y = tm_div_round_half_away(sum - (int32_t)pixels * value_offset, (int32_t)pixels)
                    + value_offset;
            } else {
                y = tm_qu8_mbqm(sum - (int32_t)pixels * input_zero_point, multiplier, shift)
                    + output_zero_point;
            }
            y = y < min ? min : y;
            y = y > max ? max : y;
            out[b * channels + c] = (uint8_t)y;
        }
    }
}

void tm_qu8_requantize_scalar(size_t n, const int32_t* acc, int32_t multiplier, int32_t shift,
                              int32_t* out) {
    for (size_t i = 0; i < n; i++) out[i] = tm_qu8_mbqm(acc[i], multiplier, shift);
}
