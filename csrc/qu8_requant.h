/* TFLite's requantization (MultiplyByQuantizedMultiplier), exact, as inline helpers for the
 * quantized ukernels: scalar, AVX2 (8 lanes) and NEON (4 lanes).
 *
 *   x' = x * 2^max(shift, 0)                     (int32, wrapping like TFLite's C++)
 *   h  = SaturatingRoundingDoublingHighMul(x', m) = floor((x' * m + 2^30) / 2^31)
 *        (m >= 0, so the one saturating case INT32_MIN * INT32_MIN never occurs)
 *   y  = RoundingDivideByPOT(h, max(-shift, 0))   (halves away from zero) */
#ifndef TINYMOBILE_QU8_REQUANT_H
#define TINYMOBILE_QU8_REQUANT_H

#include "internal.h"

/* The nine input pixels under output column ox of a depthwise row: taps left or right of the
 * image read zp_pixel (a row of input zero points). */
static inline void tm_qu8_taps(size_t ox, size_t channels, size_t in_width, size_t stride,
                               size_t pad_left, const uint8_t** rows, const uint8_t* zp_pixel,
                               const uint8_t* px[9]) {
    for (size_t kx = 0; kx < 3; kx++) {
        const ptrdiff_t ix = (ptrdiff_t)(ox * stride + kx) - (ptrdiff_t)pad_left;
        const int inside = ix >= 0 && ix < (ptrdiff_t)in_width;
        for (size_t ky = 0; ky < 3; ky++)
            px[ky * 3 + kx] = inside ? rows[ky] + (size_t)ix * channels : zp_pixel;
    }
}

static inline int32_t tm_qu8_mbqm(int32_t x, int32_t m, int32_t shift) {
    const int32_t left = shift > 0 ? shift : 0, right = shift > 0 ? 0 : -shift;
    const int32_t xs = (int32_t)((uint32_t)x << left);
    const int64_t ab = (int64_t)xs * (int64_t)m;
    /* floor division by 2^31: >> on a negative int64 is arithmetic with GCC and Clang. */
    const int32_t high = (int32_t)((ab + ((int64_t)1 << 30)) >> 31);
    const int32_t mask = (int32_t)(((int64_t)1 << right) - 1);
    const int32_t remainder = high & mask;
    const int32_t threshold = (mask >> 1) + (high < 0 ? 1 : 0);
    return (high >> right) + (remainder > threshold ? 1 : 0);
}

static inline uint8_t tm_qu8_output(int32_t acc, int32_t m, int32_t shift,
                                    const tm_qu8_requant_params* p) {
    int32_t y = tm_qu8_mbqm(acc, m, shift) + p->output_zero_point;
    y = y < p->min ? p->min : y;
    y = y > p->max ? p->max : y;
    return (uint8_t)y;
}

/* Channels [c0, c1) of one depthwise output pixel in plain C: every kernel's path for the
 * channels its vectors do not cover (and the whole scalar kernel). w: the packed depthwise
 * weights (cp = channels rounded up to TM_CHANNEL_TILE): biases, multipliers, shifts, then the
 * nine taps' int32 weights, cp each. */
static inline void tm_qu8_dw_channels(size_t c0, size_t c1, const uint8_t* const px[9],
                                      const int32_t* w, size_t cp, uint8_t* out,
                                      const tm_qu8_requant_params* params) {
    const int32_t* taps = w + 3 * cp;
    for (size_t c = c0; c < c1; c++) {
        int32_t acc = w[c];
        for (size_t t = 0; t < 9; t++) acc += (int32_t)px[t][c] * taps[t * cp + c];
        out[c] = tm_qu8_output(acc, w[cp + c], w[2 * cp + c], params);
    }
}

/* The int64 constants of tm_qu8_requant64_avx512 (below) for one lane of shift `shift`. */
static inline void tm_qu8_requant64_consts(int32_t shift, int64_t* k, int64_t* c, int64_t* s) {
    const int32_t e = shift > 0 ? 0 : -shift;
    *k = ((int64_t)1 << 30) + (e > 0 ? (int64_t)1 << (30 + e) : 0);
    *c = e > 0 ? (int64_t)1 << 31 : 0;
    *s = 31 + e;
}

#ifdef TM_ARCH_X86
#include <immintrin.h>

/* 8 lanes; shift as a vector of per-lane shifts. 21 operations:
 *   high = bits 31..62 of x * m + 2^30 (even and odd lanes by two 32x32->64 multiplies)
 *   RoundingDivideByPOT: (high >> r) + (remainder > (mask >> 1) + (high < 0)), the comparison
 *   masks being -1 / 0, so "+ (a > b)" is "- cmpgt(a, b)" and "+ (high < 0)" is "- (high >> 31)". */
static inline TM_TARGET_AVX2 __m256i tm_qu8_mbqm_avx2(__m256i x, __m256i m, __m256i shift) {
    const __m256i one = _mm256_set1_epi32(1);
    const __m256i left = _mm256_max_epi32(shift, _mm256_setzero_si256());
    const __m256i right = _mm256_sub_epi32(left, shift); /* max(-shift, 0) */
    x = _mm256_sllv_epi32(x, left);
    const __m256i rnd = _mm256_set1_epi64x((long long)1 << 30);
    const __m256i even = _mm256_add_epi64(_mm256_mul_epi32(x, m), rnd);
    const __m256i odd = _mm256_add_epi64(
        _mm256_mul_epi32(_mm256_srli_epi64(x, 32), _mm256_srli_epi64(m, 32)), rnd);
    const __m256i high = _mm256_blend_epi32(_mm256_srli_epi64(even, 31), _mm256_slli_epi64(odd, 1), 0xAA);
    const __m256i mask = _mm256_sub_epi32(_mm256_sllv_epi32(one, right), one);
    const __m256i remainder = _mm256_and_si256(high, mask);
    const __m256i threshold = _mm256_sub_epi32(_mm256_srli_epi32(mask, 1), _mm256_srai_epi32(high, 31));
    return _mm256_sub_epi32(_mm256_srav_epi32(high, right), _mm256_cmpgt_epi32(remainder, threshold));
}

/* requantize 8 accumulators, add the zero point, clamp: int32 lanes in [min, max]. */
static inline TM_TARGET_AVX2 __m256i tm_qu8_requant_avx2(__m256i acc, const int32_t* mult,
                                                         const int32_t* shift,
                                                         const tm_qu8_requant_params* p) {
    __m256i y = tm_qu8_mbqm_avx2(acc, _mm256_loadu_si256((const __m256i*)mult),
                                 _mm256_loadu_si256((const __m256i*)shift));
    y = _mm256_add_epi32(y, _mm256_set1_epi32(p->output_zero_point));
    y = _mm256_max_epi32(y, _mm256_set1_epi32(p->min));
    return _mm256_min_epi32(y, _mm256_set1_epi32(p->max));
}

/* 16 lanes, the same steps as tm_qu8_mbqm_avx2 (AVX-512 compares give masks: "+ (a > b)" is a
 * masked add of one). */
static inline TM_TARGET_AVX512 __m512i tm_qu8_mbqm_avx512(__m512i x, __m512i m, __m512i shift) {
    const __m512i one = _mm512_set1_epi32(1);
    const __m512i left = _mm512_max_epi32(shift, _mm512_setzero_si512());
    const __m512i right = _mm512_sub_epi32(left, shift); /* max(-shift, 0) */
    x = _mm512_sllv_epi32(x, left);
    const __m512i rnd = _mm512_set1_epi64((long long)1 << 30);
    const __m512i even = _mm512_add_epi64(_mm512_mul_epi32(x, m), rnd);
    const __m512i odd = _mm512_add_epi64(
        _mm512_mul_epi32(_mm512_srli_epi64(x, 32), _mm512_srli_epi64(m, 32)), rnd);
    const __m512i high = _mm512_mask_blend_epi32((__mmask16)0xAAAA, _mm512_srli_epi64(even, 31),
                                                 _mm512_slli_epi64(odd, 1));
    const __m512i mask = _mm512_sub_epi32(_mm512_sllv_epi32(one, right), one);
    const __m512i remainder = _mm512_and_si512(high, mask);
    const __m512i threshold = _mm512_sub_epi32(_mm512_srli_epi32(mask, 1), _mm512_srai_epi32(high, 31));
    const __m512i y = _mm512_srav_epi32(high, right);
    return _mm512_mask_add_epi32(y, _mm512_cmpgt_epi32_mask(remainder, threshold), y, one);
}

/* tm_qu8_mbqm_avx512 with the constants derived from the shifts already in registers (hoisted
 * out of a loop, or loaded from a packing): the odd columns' multipliers in the low halves of
 * the 64-bit lanes, left and right shifts, rounding mask and mask >> 1; then the output zero
 * point and the clamp. 6 operations fewer. */
static inline TM_TARGET_AVX512 __m512i tm_qu8_requant_derived_avx512(
    __m512i acc, __m512i mult, __m512i mult_odd, __m512i left, __m512i right, __m512i mask,
    __m512i half, __m512i zp_out, __m512i vmin, __m512i vmax) {
    const __m512i rnd = _mm512_set1_epi64((long long)1 << 30);
    const __m512i xs = _mm512_sllv_epi32(acc, left);
    const __m512i even = _mm512_add_epi64(_mm512_mul_epi32(xs, mult), rnd);
    const __m512i odd = _mm512_add_epi64(_mm512_mul_epi32(_mm512_srli_epi64(xs, 32), mult_odd), rnd);
    const __m512i high = _mm512_mask_blend_epi32((__mmask16)0xAAAA, _mm512_srli_epi64(even, 31),
                                                 _mm512_slli_epi64(odd, 1));
    const __m512i remainder = _mm512_and_si512(high, mask);
    const __m512i threshold = _mm512_sub_epi32(half, _mm512_srai_epi32(high, 31));
    __m512i y = _mm512_srav_epi32(high, right);
    y = _mm512_mask_add_epi32(y, _mm512_cmpgt_epi32_mask(remainder, threshold), y, _mm512_set1_epi32(1));
    return _mm512_min_epi32(_mm512_max_epi32(_mm512_add_epi32(y, zp_out), vmin), vmax);
}

/* The requantization in one rounding step of 64-bit lanes. With P = (x << left) * m (int64,
 * |P| < 2^62) and e = max(-shift, 0), SaturatingRoundingDoublingHighMul is h = floor((P + 2^30)
 * / 2^31) and RoundingDivideByPOT(h, e) is floor((h + c) / 2^e) with c = 2^(e-1) - [h < 0] (e >=
 * 1; h itself for e = 0). floor((floor(A / 2^31) + c) / 2^e) = floor((A + c * 2^31) / 2^(31 + e))
 * for integer c, so
 *   y = (P + K - [P < -2^30] * C) >> (31 + e),  K = 2^30 + 2^(30+e), C = 2^31   (e >= 1),
 *                                               K = 2^30,             C = 0      (e = 0),
 * exactly TFLite's result (h < 0 exactly when P + 2^30 < 0; P + K < 2^63). Per 16 lanes: the
 * even lanes' products from vpmuldq, the odd lanes' from the lanes shifted down; ke / ce / se
 * hold K, C, 31 + e of the even lanes as int64 (one per 64-bit lane), ko / co / so the odd
 * lanes'; mult_odd the odd lanes' multipliers in the low halves. Then the output zero point and
 * the clamp. 12 operations and the shift left (15 and it for tm_qu8_requant_derived_avx512). */
static inline TM_TARGET_AVX512 __m512i tm_qu8_mbqm64_avx512(__m512i acc, __m512i mult,
                                                            __m512i mult_odd, __m512i left,
                                                            __m512i ke, __m512i ko, __m512i ce,
                                                            __m512i co, __m512i se, __m512i so) {
    const __m512i xs = _mm512_sllv_epi32(acc, left);
    const __m512i limit = _mm512_set1_epi64(-((long long)1 << 30));
    const __m512i p0 = _mm512_mul_epi32(xs, mult);
    const __m512i p1 = _mm512_mul_epi32(_mm512_srli_epi64(xs, 32), mult_odd);
    __m512i t0 = _mm512_add_epi64(p0, ke), t1 = _mm512_add_epi64(p1, ko);
    t0 = _mm512_mask_sub_epi64(t0, _mm512_cmplt_epi64_mask(p0, limit), t0, ce);
    t1 = _mm512_mask_sub_epi64(t1, _mm512_cmplt_epi64_mask(p1, limit), t1, co);
    t0 = _mm512_srav_epi64(t0, se);
    t1 = _mm512_srav_epi64(t1, so);
    /* the odd lanes' results (low halves of t1) into the odd lanes of t0 */
    return _mm512_mask_shuffle_epi32(t0, (__mmask16)0xAAAA, t1, _MM_PERM_CCAA);
}

static inline TM_TARGET_AVX512 __m512i tm_qu8_requant64_avx512(
    __m512i acc, __m512i mult, __m512i mult_odd, __m512i left, __m512i ke, __m512i ko,
    __m512i ce, __m512i co, __m512i se, __m512i so, __m512i zp_out, __m512i vmin, __m512i vmax) {
    const __m512i y = tm_qu8_mbqm64_avx512(acc, mult, mult_odd, left, ke, ko, ce, co, se, so);
    return _mm512_min_epi32(_mm512_max_epi32(_mm512_add_epi32(y, zp_out), vmin), vmax);
}

/* tm_qu8_mbqm64_avx512 with its constants as tm_qu8_gemm_pack stores them for the int8 dot
 * layout: mult, then at derived + i * stride (i = 0..7) the odd multipliers, left shifts, and
 * ke, ko, ce, co, se, so (16 int32 = 8 int64 each). No zero point, no clamp. lefts: some lane's
 * left shift is not 0. */
static inline TM_TARGET_AVX512 __m512i tm_qu8_mbqm64_pre_avx512(__m512i acc, const int32_t* mult,
                                                                const int32_t* derived,
                                                                size_t stride, int lefts) {
#define TM_LD(ptr) _mm512_loadu_si512((const void*)(ptr))
    /* lefts == 0: no lane shifts left (x << 0 folded away) */
    return tm_qu8_mbqm64_avx512(
        acc, TM_LD(mult), TM_LD(derived),
        lefts ? TM_LD(derived + stride) : _mm512_setzero_si512(), TM_LD(derived + 2 * stride),
        TM_LD(derived + 3 * stride), TM_LD(derived + 4 * stride), TM_LD(derived + 5 * stride),
        TM_LD(derived + 6 * stride), TM_LD(derived + 7 * stride));
#undef TM_LD
}

/* Two rows of 32 requantized int32 (lo: columns 0..15, hi: 16..31, before the output zero
 * point) -> 64 bytes, row a's 32 then row b's, with the zero point and the clamp: vpackssdw
 * saturates to int16, the zero point adds with int16 saturation, vpackuswb saturates to 0..255,
 * and [min, max] (inside 0..255) clamps bytes: the same as clamping y + zp (int32) since every
 * saturation is monotone and fixes 0..255 (|zp| < 2^15 - 255). vpermd undoes the packs' lane
 * interleave. */
static inline TM_TARGET_AVX512BW __m512i tm_qu8_pack_rows32_avx512(__m512i a_lo, __m512i a_hi,
                                                                  __m512i b_lo, __m512i b_hi,
                                                                  __m512i zp16, __m512i min8,
                                                                  __m512i max8) {
    const __m512i a = _mm512_adds_epi16(_mm512_packs_epi32(a_lo, a_hi), zp16);
    const __m512i b = _mm512_adds_epi16(_mm512_packs_epi32(b_lo, b_hi), zp16);
    __m512i u = _mm512_packus_epi16(a, b);
    u = _mm512_min_epu8(_mm512_max_epu8(u, min8), max8);
    const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    return _mm512_permutexvar_epi32(order, u);
}

/* The same with the derived constants as tm_qu8_gemm_pack stores them for the int8 dot layout
 * (odd multipliers, left, right, mask, mask >> 1 at derived + 0, 1, 2, 3, 4 strides). */
static inline TM_TARGET_AVX512 __m512i tm_qu8_requant_pre_avx512(__m512i acc, const int32_t* mult,
                                                                 const int32_t* derived,
                                                                 size_t stride,
                                                                 const tm_qu8_requant_params* p) {
#define TM_LD(ptr) _mm512_loadu_si512((const void*)(ptr))
    const __m512i y = tm_qu8_requant_derived_avx512(
        acc, TM_LD(mult), TM_LD(derived), TM_LD(derived + stride), TM_LD(derived + 2 * stride),
        TM_LD(derived + 3 * stride), TM_LD(derived + 4 * stride),
        _mm512_set1_epi32(p->output_zero_point), _mm512_set1_epi32(p->min),
        _mm512_set1_epi32(p->max));
#undef TM_LD
    return y;
}

/* requantize 16 accumulators, add the zero point, clamp: int32 lanes in [min, max]. */
static inline TM_TARGET_AVX512 __m512i tm_qu8_requant_avx512(__m512i acc, const int32_t* mult,
                                                             const int32_t* shift,
                                                             const tm_qu8_requant_params* p) {
    __m512i y = tm_qu8_mbqm_avx512(acc, _mm512_loadu_si512((const void*)mult),
                                   _mm512_loadu_si512((const void*)shift));
    y = _mm512_add_epi32(y, _mm512_set1_epi32(p->output_zero_point));
    y = _mm512_max_epi32(y, _mm512_set1_epi32(p->min));
    return _mm512_min_epi32(y, _mm512_set1_epi32(p->max));
}

/* 16 int32 lanes in 0..255 -> the bytes of the lanes set in m at out (a plain store when all
 * are). The empty asm keeps the
 * vpmovdb in a register: GCC would otherwise fuse it with the masked store into the memory form
 * of vpmovdb, which AMD cores run many times slower. */
static inline TM_TARGET_AVX512BW void tm_qu8_store16_avx512(uint8_t* out, __m512i v, __mmask16 m) {
    __m128i b = _mm512_cvtepi32_epi8(v);
    __asm__("" : "+v"(b));
    if (m == (__mmask16)0xFFFF)
        _mm_storeu_si128((__m128i*)out, b);
    else
        _mm_mask_storeu_epi8(out, m, b);
}

/* Two vectors of 8 values in 0..255 -> 16 bytes in order. */
static inline TM_TARGET_AVX2 __m128i tm_qu8_pack16_avx2(__m256i a, __m256i b) {
    const __m128i wa = _mm_packs_epi32(_mm256_castsi256_si128(a), _mm256_extracti128_si256(a, 1));
    const __m128i wb = _mm_packs_epi32(_mm256_castsi256_si128(b), _mm256_extracti128_si256(b, 1));
    return _mm_packus_epi16(wa, wb);
}
#endif

/* Only in files compiled for NEON (on 32-bit ARM: after TM_NEON_BEGIN). */
#if defined(TM_ARCH_NEON) && defined(__ARM_NEON)
#include <arm_neon.h>

/* 4 lanes. vqrdmulh is exactly SaturatingRoundingDoublingHighMul; the fixup makes the rounding
 * shift (halves up) round halves away from zero, as gemmlowp's NEON RoundingDivideByPOT. */
static inline int32x4_t tm_qu8_mbqm_neon(int32x4_t x, int32x4_t m, int32x4_t shift) {
    const int32x4_t zero = vdupq_n_s32(0);
    const int32x4_t left = vmaxq_s32(shift, zero);
    const int32x4_t neg_right = vminq_s32(shift, zero);
    x = vshlq_s32(x, left);
    const int32x4_t high = vqrdmulhq_s32(x, m);
    const int32x4_t fixup = vshrq_n_s32(vandq_s32(high, neg_right), 31);
    return vrshlq_s32(vqaddq_s32(high, fixup), neg_right);
}

static inline int32x4_t tm_qu8_requant_neon(int32x4_t acc, const int32_t* mult,
                                            const int32_t* shift, const tm_qu8_requant_params* p) {
    int32x4_t y = tm_qu8_mbqm_neon(acc, vld1q_s32(mult), vld1q_s32(shift));
    y = vaddq_s32(y, vdupq_n_s32(p->output_zero_point));
    y = vmaxq_s32(y, vdupq_n_s32(p->min));
    return vminq_s32(y, vdupq_n_s32(p->max));
}

/* Two vectors of 4 values in 0..255 -> 8 bytes. */
static inline uint8x8_t tm_qu8_pack8_neon(int32x4_t a, int32x4_t b) {
    return vqmovun_s16(vcombine_s16(vqmovn_s32(a), vqmovn_s32(b)));
}
#endif

#endif
