#include "../internal.h"

#ifdef TM_ARCH_X86
#include <immintrin.h>

/* 8x32 indirect-GEMM tile for AVX-512F: 16 accumulators, two weight vectors, one broadcast (19
 * of the 32 zmm registers). The avx512 table's main tile. */
#define TM_IGEMM_MR 8
#define TM_IGEMM_FN tm_f32_igemm_8x32__avx512
#include "tm_f32_igemm_mrx32__avx512.h"
#endif
