#include "../internal.h"

/* Global max pool of one image: out[c] = max_p in[p * channels + c] (pixels >= 1; the inputs are
 * finite: the engine checks the network input and clamps every activation). */
void tm_f32_maxpool__scalar(size_t pixels, size_t channels, const float* in, float* out) {
    for (size_t c = 0; c < channels; c++) {
        float m = in[c];
        for (size_t p = 1; p < pixels; p++) {
            const float v = in[p * channels + c];
            m = v > m ? v : m;
        }
        out[c] = m;
    }
}
