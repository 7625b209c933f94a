#include "tm_qu8_dw16_avx512.h"

#ifdef TM_ARCH_X86
/* One output row of a quantized depthwise 3x3 convolution, AVX-512 (F, BW, VL): groups of 16
 * channels (see tm_qu8_dw16_avx512). */
TM_TARGET_AVX512BW void tm_qu8_dwconv3x3_row__avx512(size_t channels, size_t in_width,
                                                     size_t out_width, size_t stride,
                                                     size_t pad_left, const uint8_t** rows,
                                                     const uint8_t* zp_pixel, const int32_t* w,
                                                     uint8_t* out,
                                                     const tm_qu8_requant_params* params) {
    tm_qu8_dw16_avx512(0, channels, in_width, 0, out_width, 0, 0, stride, pad_left, rows, zp_pixel, w, out,
                       params);
}
#endif
