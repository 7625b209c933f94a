#include "tm_qu8_dw16_avx512.h"

#ifdef TM_ARCH_X86
/* One output row of a quantized depthwise 3x3 convolution, AVX-512 VNNI: blocks of 64 channels
 * with vpdpbusd, the rest by tm_qu8_dw16_avx512.
 * The nine tap rows of 64 pixel bytes are interleaved (vpunpck{l,h}bw, then vpunpck{l,h}wd) into
 * k-quads: 32-bit lane p of vector j holds taps (0..3), (4..7) or (8, 0, 0, 0) of channel
 * 16 * (p / 4) + 4 * j + p % 4, and one vpdpbusd adds four exact products x * (w' + z) per
 * channel (int8 weights from tm_qu8_dw_quad_pack). Where some z != 0 the block also sums the
 * nine bytes (vpdpbusd by ones) and takes z * sum off. vpackssdw / vpackuswb of the four
 * requantized vectors put the channels back in order. */
TM_TARGET_AVX512VNNI void tm_qu8_dwconv3x3_row__avx512vnni(size_t channels, size_t in_width,
                                                           size_t out_width, size_t stride,
                                                           size_t pad_left, const uint8_t** rows,
                                                           const uint8_t* zp_pixel,
                                                           const int32_t* w, uint8_t* out,
                                                           const tm_qu8_requant_params* params) {
    const size_t blocks = channels / 64;
    const uint8_t* packed = (const uint8_t*)w + tm_qu8_dw_quad_offset(channels);
    const size_t ox0 = TM_MIN(out_width, (pad_left + stride - 1) / stride);
    size_t ox1 = in_width + pad_left >= 3 ? (in_width + pad_left - 3) / stride + 1 : 0;
    ox1 = TM_MAX(ox0, TM_MIN(out_width, ox1));
    const __m512i ones8 = _mm512_set1_epi8(1);
    const __m512i zero = _mm512_setzero_si512();
    const __m512i zp_out = _mm512_set1_epi32(params->output_zero_point);
    const __m512i vmin = _mm512_set1_epi32(params->min), vmax = _mm512_set1_epi32(params->max);
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
            const size_t c = 64 * b;
            __m512i x[9];
            for (size_t t = 0; t < 9; t++) x[t] = _mm512_loadu_si512((const void*)(px[t] + c));
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
            const int offsets = *(const int32_t*)block != 0;
            __m512i y[4];
            for (size_t j = 0; j < 4; j++) {
                const __m512i* v = (const __m512i*)(block + 64 + j * TM_QU8_DW_QUAD_VECTOR_BYTES);
                __m512i acc = _mm512_loadu_si512((const void*)v);
                for (size_t g = 0; g < 3; g++)
                    acc = _mm512_dpbusd_epi32(acc, q[g][j], _mm512_loadu_si512((const void*)(v + 8 + g)));
                if (offsets) {
                    __m512i sum = _mm512_dpbusd_epi32(zero, q[0][j], ones8);
                    sum = _mm512_dpbusd_epi32(sum, q[1][j], ones8);
                    sum = _mm512_dpbusd_epi32(sum, q[2][j], ones8);
                    acc = _mm512_sub_epi32(acc, _mm512_mullo_epi32(sum, _mm512_loadu_si512((const void*)(v + 7))));
                }
                /* the shift-derived constants from the packing */
#define TM_V(i) _mm512_loadu_si512((const void*)(v + (i)))
                y[j] = tm_qu8_requant_derived_avx512(acc, TM_V(1), TM_V(2), TM_V(3), TM_V(4), TM_V(5),
                                                     TM_V(6), zp_out, vmin, vmax);
#undef TM_V
            }
            const __m512i bytes = _mm512_packus_epi16(_mm512_packs_epi32(y[0], y[1]),
                                                      _mm512_packs_epi32(y[2], y[3]));
            _mm512_storeu_si512((void*)(out + ox * channels + c), bytes);
        }
    }
    if (64 * blocks < channels)
        tm_qu8_dw16_avx512(64 * blocks, channels, in_width, out_width, stride, pad_left, rows,
                           zp_pixel, w, out, params);
}
#endif
