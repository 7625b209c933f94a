#include "tm_qu8_gemm_mrx32__avx512vnni.h"

#ifdef TM_ARCH_X86
/* 7x32 integer GEMM tile for AVX-512 VNNI (tm_qu8_gemm_mrx32_avx512vnni): pointwise layers
 * whose rows it pads less than the 8-row tile (49 = 7 x 7, 196 = 28 x 7). */
TM_TARGET_AVX512VNNI void tm_qu8_gemm_7x32__avx512vnni(size_t mr, size_t nc, size_t kc,
                                                       const uint8_t* a, size_t a_stride,
                                                       const int32_t* row_sums, const void* w,
                                                       uint8_t* c, size_t c_stride,
                                                       const tm_qu8_requant_params* params) {
    tm_qu8_gemm_mrx32_avx512vnni(7, mr, nc, kc, a, a_stride, row_sums, w, c, c_stride, params);
}
#endif
