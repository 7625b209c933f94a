/* Real values -> quantized, as tinymobile's quantize() (and TFLite's QUANTIZE reference):
 * v = x / scale in float32, rounded half away from zero, plus the zero point, saturated to
 * [qmin, qmax]; stored as one byte (uint8, or int8's two's complement bits).
 *
 * floor(|v| + 0.5) is the truncation of the (exact) double |v| + 0.5, taken after capping it far
 * outside any quantized range (so the conversion to int32 is always defined; NaN saturates). */
#include <math.h>

#include "../internal.h"

void tm_f32_quantize__scalar(size_t n, const float* x, float scale, int32_t zero_point,
                             int32_t qmin, int32_t qmax, uint8_t* out) {
    for (size_t i = 0; i < n; i++) {
        const float v = x[i] / scale;
        double a = fabs((double)v) + 0.5;
        if (!(a <= 1e6)) a = 1e6;
        int32_t r = (int32_t)a;
        if (v < 0.0f) r = -r;
        r += zero_point;
        if (r < qmin) r = qmin;
        if (r > qmax) r = qmax;
        out[i] = (uint8_t)r;
    }
}
