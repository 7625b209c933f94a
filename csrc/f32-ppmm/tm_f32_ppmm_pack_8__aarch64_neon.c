#include "../internal.h"

#if defined(TM_ARCH_NEON) && defined(__aarch64__)
#include <arm_neon.h>

/* A tile for tm_f32_ppmm_8x8__aarch64_neonfma_cortex_a53: rows (1..8) rows of kc floats, row r
 * at a + r * a_stride, into packed[k * 8 + r] (rows past `rows` repeat the last one). Four
 * channels at a time: the 8 rows' 4 floats, two 4x4 transposes (zip), two 64-byte stores; the
 * channels left one at a time. Only moves floats: the GEMM sees the rows' own bits. */
void tm_f32_ppmm_pack_8__aarch64_neon(size_t rows, size_t kc, const float* a, size_t a_stride,
                                      float* packed) {
    const float* r[8];
    for (size_t i = 0; i < 8; i++) r[i] = a + TM_MIN(i, rows - 1) * a_stride;
    size_t k = 0;
    for (; k + 4 <= kc; k += 4, packed += 32) {
        const float32x4_t x0 = vld1q_f32(r[0] + k), x1 = vld1q_f32(r[1] + k);
        const float32x4_t x2 = vld1q_f32(r[2] + k), x3 = vld1q_f32(r[3] + k);
        const float32x4_t x4 = vld1q_f32(r[4] + k), x5 = vld1q_f32(r[5] + k);
        const float32x4_t x6 = vld1q_f32(r[6] + k), x7 = vld1q_f32(r[7] + k);
        /* t01l = r0k0 r1k0 r0k1 r1k1, t01h = r0k2 r1k2 r0k3 r1k3, ... */
        const float64x2_t t01l = vreinterpretq_f64_f32(vzip1q_f32(x0, x1));
        const float64x2_t t01h = vreinterpretq_f64_f32(vzip2q_f32(x0, x1));
        const float64x2_t t23l = vreinterpretq_f64_f32(vzip1q_f32(x2, x3));
        const float64x2_t t23h = vreinterpretq_f64_f32(vzip2q_f32(x2, x3));
        const float64x2_t t45l = vreinterpretq_f64_f32(vzip1q_f32(x4, x5));
        const float64x2_t t45h = vreinterpretq_f64_f32(vzip2q_f32(x4, x5));
        const float64x2_t t67l = vreinterpretq_f64_f32(vzip1q_f32(x6, x7));
        const float64x2_t t67h = vreinterpretq_f64_f32(vzip2q_f32(x6, x7));
        float32x4x4_t lo, hi;
        lo.val[0] = vreinterpretq_f32_f64(vzip1q_f64(t01l, t23l)); /* k0: rows 0-3 */
        lo.val[1] = vreinterpretq_f32_f64(vzip1q_f64(t45l, t67l)); /* k0: rows 4-7 */
        lo.val[2] = vreinterpretq_f32_f64(vzip2q_f64(t01l, t23l)); /* k1 */
        lo.val[3] = vreinterpretq_f32_f64(vzip2q_f64(t45l, t67l));
        hi.val[0] = vreinterpretq_f32_f64(vzip1q_f64(t01h, t23h)); /* k2 */
        hi.val[1] = vreinterpretq_f32_f64(vzip1q_f64(t45h, t67h));
        hi.val[2] = vreinterpretq_f32_f64(vzip2q_f64(t01h, t23h)); /* k3 */
        hi.val[3] = vreinterpretq_f32_f64(vzip2q_f64(t45h, t67h));
        vst1q_f32_x4(packed, lo);
        vst1q_f32_x4(packed + 16, hi);
    }
    for (; k < kc; k++, packed += 8)
        for (size_t i = 0; i < 8; i++) packed[i] = r[i][k];
}
#endif
