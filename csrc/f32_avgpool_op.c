/* Global average pool over a batch (cheap: runs on the calling thread). */
#include "internal.h"

void tm_f32_avgpool_op(const tm_f32_kernels* kern, size_t batch, size_t pixels, size_t channels,
                       const float* in, float* out) {
    for (size_t b = 0; b < batch; b++)
        kern->avgpool(pixels, channels, in + b * pixels * channels, out + b * channels);
}
