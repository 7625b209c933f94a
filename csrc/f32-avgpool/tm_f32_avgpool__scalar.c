#include "../internal.h"

/* Global average pool of one image: out[c] = sum_p in[p * channels + c] / pixels. */
void tm_f32_avgpool__scalar(size_t pixels, size_t channels, const float* in, float* out) {
    const float scale = 1.0f / (float)pixels;
    for (size_t c = 0; c < channels; c++) {
        float acc = 0.0f;
        for (size_t p = 0; p < pixels; p++) acc += in[p * channels + c];
        out[c] = acc * scale;
    }
}
