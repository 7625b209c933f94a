#include "tm_qu8_dw16_avx512.h"

#ifdef TM_ARCH_X86
/* The nine tap vectors x[t] (64 bytes each: 64 lanes of one tap) times one packed quad block
 * (tm_qu8_dw_quad_pack) -> 64 output bytes in lane order. The tap rows are interleaved
 * (vpunpck{l,h}bw, then vpunpck{l,h}wd) into k-quads: 32-bit lane p of vector j holds taps
 * (0..3), (4..7) or (8, 0, 0, 0) of lane 16 * (p / 4) + 4 * j + p % 4, and one vpdpbusd adds four
 * exact products x * (w' + z) per lane. Where some z != 0 the block also sums the nine bytes
 * (vpdpbusd by ones) and takes z * sum off. Requantized in 64-bit lanes
 * (tm_qu8_mbqm64_avx512); vpackssdw, the zero point with int16 saturation, vpackuswb and a byte
 * clamp put the lanes back in order (the same as clamping y + zp: see
 * tm_qu8_pack_rows32_avx512). */
static inline TM_TARGET_AVX512VNNI __m512i tm_qu8_dw_quad_block(const __m512i x[9],
                                                                const uint8_t* block,
                                                                __m512i zp16, __m512i min8,
                                                                __m512i max8) {
    const __m512i zero = _mm512_setzero_si512();
    /* q[g][j]: k-quad g (taps 4g..4g+3) of vector j */
    __m512i q[3][4];
    for (size_t g = 0; g < 2; g++) {
        const __m512i ab_lo = _mm512_unpacklo_epi8(x[4 * g], x[4 * g + 1]);
        const __m512i ab_hi = _mm512_unpackhi_epi8(x[4 * g], x[4 * g + 1]);
        const __m512i cd_lo = _mm512_unpacklo_epi8(x[4 * g + 2], x[4 * g + 3]);
        const __m512i cd_hi = _mm512_unpackhi_epi8(x[4 * g + 2], x[4 * g + 3]);
        q[g][0] = _mm512_unpacklo_epi16(ab_lo, cd_lo);
        q[g][1] = _mm512_unpackhi_epi16(ab_lo, cd_lo);
        q[g][2] = _mm512_unpacklo_epi16(ab_hi, cd_hi);
        q[g][3] = _mm512_unpackhi_epi16(ab_hi, cd_hi);
    }
    const __m512i e_lo = _mm512_unpacklo_epi8(x[8], zero);
    const __m512i e_hi = _mm512_unpackhi_epi8(x[8], zero);
    q[2][0] = _mm512_unpacklo_epi16(e_lo, zero);
    q[2][1] = _mm512_unpackhi_epi16(e_lo, zero);
    q[2][2] = _mm512_unpacklo_epi16(e_hi, zero);
    q[2][3] = _mm512_unpackhi_epi16(e_hi, zero);
    const int offsets = ((const int32_t*)block)[0] != 0, lefts = ((const int32_t*)block)[1] != 0;
    __m512i y[4];
    for (size_t j = 0; j < 4; j++) {
        const __m512i* v = (const __m512i*)(block + 64 + j * TM_QU8_DW_QUAD_VECTOR_BYTES);
#define TM_V(i) _mm512_loadu_si512((const void*)(v + (i)))
        __m512i acc = TM_V(0);
        for (size_t g = 0; g < 3; g++) acc = _mm512_dpbusd_epi32(acc, q[g][j], TM_V(11 + g));
        if (offsets) {
            const __m512i ones8 = _mm512_set1_epi8(1);
            __m512i sum = _mm512_dpbusd_epi32(zero, q[0][j], ones8);
            sum = _mm512_dpbusd_epi32(sum, q[1][j], ones8);
            sum = _mm512_dpbusd_epi32(sum, q[2][j], ones8);
            acc = _mm512_sub_epi32(acc, _mm512_mullo_epi32(sum, TM_V(10)));
        }
        if (lefts) /* some channel shifts left */
            y[j] = tm_qu8_mbqm64_avx512(acc, TM_V(1), TM_V(2), TM_V(3), TM_V(4), TM_V(5), TM_V(6),
                                        TM_V(7), TM_V(8), TM_V(9));
        else
            y[j] = tm_qu8_mbqm64_avx512(acc, TM_V(1), TM_V(2), zero, TM_V(4), TM_V(5), TM_V(6),
                                        TM_V(7), TM_V(8), TM_V(9));
#undef TM_V
    }
    const __m512i lo = _mm512_adds_epi16(_mm512_packs_epi32(y[0], y[1]), zp16);
    const __m512i hi = _mm512_adds_epi16(_mm512_packs_epi32(y[2], y[3]), zp16);
    return _mm512_min_epu8(_mm512_max_epu8(_mm512_packus_epi16(lo, hi), min8), max8);
}

/* Tap t's 64 lanes for `pixels` (= 64 / c, c = 8, 16 or 32 channels) output pixels from p, the
 * first pixel's tap: at stride 1 they are the 64 bytes at p; at stride 2 every other c-byte
 * group of the 128 - c bytes from p, from a load at p and one ending at the last byte needed
 * (p + 64 - c: nothing past the last pixel's tap is read). */
static inline TM_TARGET_AVX512VNNI __m512i tm_qu8_dw_group_tap(const uint8_t* p, size_t c,
                                                               size_t stride) {
    const __m512i a = _mm512_loadu_si512((const void*)p);
    if (stride == 1) return a;
    const __m512i b = _mm512_loadu_si512((const void*)(p + 64 - c));
    if (c == 32) return _mm512_mask_blend_epi64((__mmask8)0xF0, a, b); /* pixel 1 at b + 32 */
    const __m512i idx = c == 16 ? _mm512_setr_epi64(0, 1, 4, 5, 10, 11, 14, 15)  /* b + 16, 48 */
                                : _mm512_setr_epi64(0, 2, 4, 6, 9, 11, 13, 15);  /* b + 8, 24, .. */
    return _mm512_permutex2var_epi64(a, idx, b);
}

/* The same for 24, 40, 48 or 56 channels (pixels = 64 / c rounded down, lanes past pixels * c
 * unused). `last`: the row's last group, whose taps are read with byte masks (nothing past the
 * last pixel's tap); any other group has an interior pixel after it, so a 64-byte load from p
 * stays inside the input row. At stride 2, 24 channels take pixel 1 from a load ending at the
 * last byte needed (no mask needed); wider ones are one pixel. */
static inline TM_TARGET_AVX512VNNI __m512i tm_qu8_dw_group_tap_part(const uint8_t* p, size_t c,
                                                                    size_t stride, int last) {
    if (c == 24 && stride == 2) { /* pixel 0 at p, pixel 1 at p + 48 = b + 40 */
        const __m512i a = _mm512_loadu_si512((const void*)p);
        const __m512i b = _mm512_loadu_si512((const void*)(p + 8));
        return _mm512_permutex2var_epi64(a, _mm512_setr_epi64(0, 1, 2, 13, 14, 15, 0, 0), b);
    }
    if (!last) return _mm512_loadu_si512((const void*)p);
    return _mm512_maskz_loadu_epi8(((__mmask64)1 << (c * (64 / c))) - 1, p);
}

/* One output row of a quantized depthwise 3x3 convolution, AVX-512 VNNI, with vpdpbusd: blocks
 * of 64 channels per output pixel (tm_qu8_dw_quad_block); below 64 channels (a multiple of 8),
 * groups of 64 / channels (rounded down) interior output pixels (every tap inside the image) as
 * one 64-lane block (the packing repeats the channels' weights), the last group moved back to
 * end at the last interior pixel (its overlap recomputed, same bytes); everything else by
 * tm_qu8_dw16_avx512. */
TM_TARGET_AVX512VNNI void tm_qu8_dwconv3x3_row__avx512vnni(size_t channels, size_t in_width,
                                                           size_t out_width, size_t stride,
                                                           size_t pad_left, const uint8_t** rows,
                                                           const uint8_t* zp_pixel,
                                                           const int32_t* w, uint8_t* out,
                                                           const tm_qu8_requant_params* params) {
    const uint8_t* packed = (const uint8_t*)w + tm_qu8_dw_quad_offset(channels);
    const size_t ox0 = TM_MIN(out_width, (pad_left + stride - 1) / stride);
    size_t ox1 = in_width + pad_left >= 3 ? (in_width + pad_left - 3) / stride + 1 : 0;
    ox1 = TM_MAX(ox0, TM_MIN(out_width, ox1));
    const __m512i zp16 = _mm512_set1_epi16((short)params->output_zero_point);
    const __m512i min8 = _mm512_set1_epi8((char)params->min);
    const __m512i max8 = _mm512_set1_epi8((char)params->max);
    if (channels < 64 && tm_qu8_dw_quad_blocks(channels) == 1 && stride <= 2) {
        const size_t group = 64 / channels, lanes = group * channels;
        if (ox1 - ox0 < group) {
            tm_qu8_dw16_avx512(0, channels, in_width, 0, out_width, 0, 0, stride, pad_left, rows,
                               zp_pixel, w, out, params);
            return;
        }
        /* the columns outside [ox0, ox1) (taps off the image), in one call */
        tm_qu8_dw16_avx512(0, channels, in_width, 0, out_width, ox0, ox1, stride, pad_left, rows,
                           zp_pixel, w, out, params);
        for (size_t ox = ox0; ox < ox1; ox += group) {
            const size_t g = TM_MIN(ox, ox1 - group);
            const size_t ix = g * stride - pad_left;
            __m512i x[9];
            if (lanes == 64) {
                for (size_t ky = 0; ky < 3; ky++)
                    for (size_t kx = 0; kx < 3; kx++)
                        x[ky * 3 + kx] = tm_qu8_dw_group_tap(rows[ky] + (ix + kx) * channels,
                                                             channels, stride);
                _mm512_storeu_si512((void*)(out + g * channels),
                                    tm_qu8_dw_quad_block(x, packed, zp16, min8, max8));
            } else {
                const int last = g + group >= ox1;
                for (size_t ky = 0; ky < 3; ky++)
                    for (size_t kx = 0; kx < 3; kx++)
                        x[ky * 3 + kx] = tm_qu8_dw_group_tap_part(rows[ky] + (ix + kx) * channels,
                                                                  channels, stride, last);
                _mm512_mask_storeu_epi8(out + g * channels, ((__mmask64)1 << lanes) - 1,
                                        tm_qu8_dw_quad_block(x, packed, zp16, min8, max8));
            }
        }
        return;
    }
    const size_t blocks = channels / 64;
    for (size_t ox = 0; ox < out_width; ox++) {
        const uint8_t* px[9];
        if (ox >= ox0 && ox < ox1) {
            const size_t ix = ox * stride - pad_left;
            for (size_t ky = 0; ky < 3; ky++)
                for (size_t kx = 0; kx < 3; kx++) px[ky * 3 + kx] = rows[ky] + (ix + kx) * channels;
        } else {
            tm_qu8_taps(ox, channels, in_width, stride, pad_left, rows, zp_pixel, px);
        }
        const uint8_t* block = packed;
        for (size_t b = 0; b < blocks; b++, block += TM_QU8_DW_QUAD_BLOCK_BYTES) {
            __m512i x[9];
            for (size_t t = 0; t < 9; t++) x[t] = _mm512_loadu_si512((const void*)(px[t] + 64 * b));
            _mm512_storeu_si512((void*)(out + ox * channels + 64 * b),
                                tm_qu8_dw_quad_block(x, block, zp16, min8, max8));
        }
    }
    if (64 * blocks < channels)
        tm_qu8_dw16_avx512(64 * blocks, channels, in_width, 0, out_width, 0, 0, stride, pad_left, rows,
                           zp_pixel, w, out, params);
}
#endif
