/* Global average pool over a batch, float32 and quantized (TFLite AVERAGE_POOL_2D and int8 MEAN
 * roundings). Cheap: runs on the calling thread. The quantized one is one plain C loop for every
 * ISA: it reads each activation once (< 0.1 % of a MobileNet's time). */
#include "qu8_requant.h"

size_t tm_f32_avgpool_workspace(const tm_step* s) {
    (void)s;
    return 0;
}

void tm_f32_avgpool_run(const tm_step* s) {
    const size_t pixels = s->h * s->w, channels = s->cin;
    const float* in = (const float*)s->in;
    float* out = (float*)s->out;
    for (size_t b = 0; b < s->batch; b++)
        s->f32->avgpool(pixels, channels, in + b * pixels * channels, out + b * channels);
}

size_t tm_qu8_avgpool_workspace(const tm_step* s) {
    (void)s;
    return 0;
}

static int32_t tm_div_round_half_away(int32_t s, int32_t n) {
    return s > 0 ? (s + n / 2) / n : (s - n / 2) / n;
}

void tm_qu8_avgpool_run(const tm_step* s) {
    const size_t pixels = s->h * s->w, channels = s->cin;
    const tm_qu8_step_params* q = &s->quant;
    const uint8_t* in = (const uint8_t*)s->in;
    uint8_t* out = (uint8_t*)s->out;
    for (size_t b = 0; b < s->batch; b++) {
        const uint8_t* image = in + b * pixels * channels;
        for (size_t c = 0; c < channels; c++) {
            int32_t sum = 0;
            for (size_t p = 0; p < pixels; p++) sum += image[p * channels + c];
            int32_t y;
            if (q->pool_mode == TM_POOL_AVERAGE_POOL_2D) {
                y = tm_div_round_half_away(sum - (int32_t)pixels * q->value_offset, (int32_t)pixels)
                    + q->value_offset;
            } else {
                y = tm_qu8_mbqm(sum - (int32_t)pixels * q->input_zero_point, q->multiplier, q->shift)
                    + q->output_zero_point;
            }
            y = y < q->min ? q->min : y;
            y = y > q->max ? q->max : y;
            out[b * channels + c] = (uint8_t)y;
        }
    }
}

void tm_qu8_requantize_scalar(size_t n, const int32_t* acc, int32_t multiplier, int32_t shift,
                              int32_t* out) {
    for (size_t i = 0; i < n; i++) out[i] = tm_qu8_mbqm(acc[i], multiplier, shift);
}
