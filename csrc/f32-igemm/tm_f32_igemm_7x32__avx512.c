#include "../internal.h"

#ifdef TM_ARCH_X86
#include <immintrin.h>

/* 7x32 indirect-GEMM tile for AVX-512F: the 8x32 tile one row shorter, the avx512 table's short
 * tile. A 7x7 layer's 49 rows run as 7 full tiles instead of 6 of 8 and a lone row, a 14x14
 * layer's 196 as 28 (8 rows: 24 and a half-empty one). */
#define TM_IGEMM_MR 7
#define TM_IGEMM_FN tm_f32_igemm_7x32__avx512
#include "tm_f32_igemm_mrx32__avx512.h"
#endif
