/* Global max pool over a batch, float32 (Keras' GlobalMaxPooling2D, TFLite's REDUCE_MAX over H
 * and W). Cheap: runs on the calling thread. A quantized max pool is not part of the engine (the
 * converters refuse it by name). */
#include "internal.h"

size_t tm_f32_maxpool_workspace(const tm_step* s) {
    (void)s;
    return 0;
}

void tm_f32_maxpool_run(const tm_step* s) {
    const size_t pixels = s->h * s->w, channels = s->cin;
    const float* in = (const float*)s->in;
    float* out = (float*)s->out;
    for (size_t b = 0; b < s->batch; b++)
        s->f32->maxpool(pixels, channels, in + b * pixels * channels, out + b * channels);
}
