/* The AVX-512 depthwise row for the channels from c_begin (a multiple of 16) on, output columns
 * ox_begin .. out_width - 1 but skip_begin .. skip_end - 1 (the full row's geometry otherwise):
 * shared by
 * tm_qu8_dwconv3x3_row__avx512 (all channels) and tm_qu8_dwconv3x3_row__avx512vnni (the
 * channels after its 64-channel blocks).
 * Channel groups of 16 outer, output pixels inner: a group's nine tap weights, bias and
 * requantization constants stay in registers for the whole row. Each tap's 16 pixel bytes are
 * zero-extended to 32-bit lanes, i.e. the int16 pairs (x, 0), and the packed int32 weight w' is
 * the pair (w', 0 or -1), so one vpmaddwd gives the exact product x * w'. The last group is
 * byte-masked (no plain-C tail); full groups load unmasked (masked loads are slow on AMD cores).
 * Packed weights as for every depthwise kernel (tm_qu8_dwconv3x3_pack: bias', multipliers,
 * shifts, 9 taps; cp = channels rounded up to 8 each); masked loads never read past them. */
#ifndef TINYMOBILE_QU8_DW16_AVX512_H
#define TINYMOBILE_QU8_DW16_AVX512_H

#include "../qu8_requant.h"

#ifdef TM_ARCH_X86
/* Lanes 0..7 copied to lanes 8..15. */
static inline TM_TARGET_AVX512BW __m512i tm_qu8_dup8(__m512i v) {
    return _mm512_shuffle_i64x2(v, v, 0x44);
}

static inline TM_TARGET_AVX512BW void tm_qu8_dw16_avx512(size_t c_begin, size_t channels,
                                                         size_t in_width, size_t ox_begin,
                                                         size_t out_width, size_t skip_begin,
                                                         size_t skip_end,
                                                         size_t stride, size_t pad_left,
                                                         const uint8_t** rows,
                                                         const uint8_t* zp_pixel,
                                                         const int32_t* w, uint8_t* out,
                                                         const tm_qu8_requant_params* params) {
    const size_t cp = TM_ROUND_UP(channels, TM_CHANNEL_TILE);
    const int32_t* taps = w + 3 * cp;
    /* Output columns whose three taps all lie inside the image: [ox0, ox1). */
    const size_t ox0 = TM_MIN(out_width, (pad_left + stride - 1) / stride);
    size_t ox1 = in_width + pad_left >= 3 ? (in_width + pad_left - 3) / stride + 1 : 0;
    ox1 = TM_MAX(ox0, TM_MIN(out_width, ox1));
    const __m512i one = _mm512_set1_epi32(1);
    const __m512i zp_out = _mm512_set1_epi32(params->output_zero_point);
    const __m512i vmin = _mm512_set1_epi32(params->min), vmax = _mm512_set1_epi32(params->max);
    for (size_t c = c_begin; c < channels; c += 16) {
        const size_t n = TM_MIN(16, channels - c);
        const __mmask16 m = (__mmask16)(n == 16 ? 0xFFFF : (1u << n) - 1);
        __m512i k[9];
        for (size_t t = 0; t < 9; t++) k[t] = _mm512_maskz_loadu_epi32(m, taps + t * cp + c);
        const __m512i bias = _mm512_maskz_loadu_epi32(m, w + c);
        const __m512i mult = _mm512_maskz_loadu_epi32(m, w + cp + c);
        const __m512i mult_odd = _mm512_srli_epi64(mult, 32);
        const __m512i shift = _mm512_maskz_loadu_epi32(m, w + 2 * cp + c);
        const __m512i left = _mm512_max_epi32(shift, _mm512_setzero_si512());
        const __m512i right = _mm512_sub_epi32(left, shift);
        const __m512i mask = _mm512_sub_epi32(_mm512_sllv_epi32(one, right), one);
        const __m512i half = _mm512_srli_epi32(mask, 1);
        /* 8 channels (alpha 0.25's first depthwise layer): two interior output pixels per
         * vector, lanes 8..15 the right-hand one, every constant in both halves; at stride 1
         * one 16-byte load holds a tap of both pixels. Integer sums: any order, same bits. */
        const int pairs = channels == 8 && stride <= 2;
        __m512i k2[9], bias2 = bias, mult2 = mult, mult_odd2 = mult_odd, left2 = left,
                       right2 = right, mask2 = mask, half2 = half;
        if (pairs) {
            for (size_t t = 0; t < 9; t++) k2[t] = tm_qu8_dup8(k[t]);
            bias2 = tm_qu8_dup8(bias), mult2 = tm_qu8_dup8(mult);
            mult_odd2 = _mm512_srli_epi64(mult2, 32), left2 = tm_qu8_dup8(left);
            right2 = tm_qu8_dup8(right), mask2 = tm_qu8_dup8(mask), half2 = tm_qu8_dup8(half);
        }
        for (size_t ox = ox_begin; ox < out_width; ox++) {
            if (ox == skip_begin && skip_end > skip_begin) { /* the caller's columns */
                ox = skip_end - 1;
                continue;
            }
            if (pairs && ox >= ox0 && ox + 1 < ox1) {
                const size_t ix = ox * stride - pad_left;
                __m512i acc = bias2;
                for (size_t ky = 0; ky < 3; ky++)
                    for (size_t kx = 0; kx < 3; kx++) {
                        const uint8_t* p = rows[ky] + (ix + kx) * 8;
                        const __m128i both = stride == 1
                            ? _mm_loadu_si128((const __m128i*)p)
                            : _mm_unpacklo_epi64(_mm_loadl_epi64((const __m128i*)p),
                                                 _mm_loadl_epi64((const __m128i*)(p + 16)));
                        acc = _mm512_add_epi32(acc, _mm512_madd_epi16(_mm512_cvtepu8_epi32(both),
                                                                      k2[ky * 3 + kx]));
                    }
                tm_qu8_store16_avx512(out + ox * 8,
                                      tm_qu8_requant_derived_avx512(acc, mult2, mult_odd2, left2, right2,
                                                          mask2, half2, zp_out, vmin, vmax),
                                      (__mmask16)0xFFFF);
                ox++;
                continue;
            }
            const uint8_t* px[9];
            if (ox >= ox0 && ox < ox1) {
                const size_t ix = ox * stride - pad_left;
                for (size_t ky = 0; ky < 3; ky++)
                    for (size_t kx = 0; kx < 3; kx++) px[ky * 3 + kx] = rows[ky] + (ix + kx) * channels;
            } else {
                tm_qu8_taps(ox, channels, in_width, stride, pad_left, rows, zp_pixel, px);
            }
            __m512i acc = bias;
            if (n == 16) { /* vpmovzxbd straight from memory */
                for (size_t t = 0; t < 9; t++) {
                    const __m512i x = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i*)(px[t] + c)));
                    acc = _mm512_add_epi32(acc, _mm512_madd_epi16(x, k[t]));
                }
            } else {
                for (size_t t = 0; t < 9; t++) {
                    const __m512i x = _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(m, px[t] + c));
                    acc = _mm512_add_epi32(acc, _mm512_madd_epi16(x, k[t]));
                }
            }
            const __m512i y = tm_qu8_requant_derived_avx512(acc, mult, mult_odd, left, right, mask, half,
                                                  zp_out, vmin, vmax);
            tm_qu8_store16_avx512(out + ox * channels + c, y, m);
        }
    }
}
#endif
#endif
