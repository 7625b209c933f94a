#include "../qu8_requant.h"

#ifdef TM_ARCH_X86
/* One output row of a quantized depthwise 3x3 convolution, AVX2.
 * 16 channels per step: pixels widened to int16, two taps interleaved per vpunpck{l,h}wd so one
 * vpmaddwd adds two exact products per channel (bias, multipliers, shifts and int16 weight pairs
 * from the packed 16-channel tile section, already in that lane order);
 * the accumulators hold channels 0-3,8-11 and 4-7,12-15, which vpackssdw puts back in order.
 * Then 8 channels per step (pixel byte zero-extended to 32 bits = the int16 pair (x, 0), weight
 * sign-extended = (w', 0 or -1): vpmaddwd gives x * w'), then plain C for the rest. */
TM_TARGET_AVX2 void tm_qu8_dwconv3x3_row__avx2(size_t channels, size_t in_width,
                                               size_t out_width, size_t stride, size_t pad_left,
                                               const uint8_t** rows, const uint8_t* zp_pixel,
                                               const int32_t* w, uint8_t* out,
                                               const tm_qu8_requant_params* params) {
    const size_t cp = TM_ROUND_UP(channels, TM_CHANNEL_TILE);
    const int32_t* bias = w;
    const int32_t* mult = w + cp;
    const int32_t* shift = w + 2 * cp;
    const int32_t* taps = w + 3 * cp;
    const int16_t* tiles = (const int16_t*)(w + 12 * cp);
    const __m256i zp_out = _mm256_set1_epi32(params->output_zero_point);
    const __m256i vmin = _mm256_set1_epi32(params->min), vmax = _mm256_set1_epi32(params->max);
    for (size_t ox = 0; ox < out_width; ox++) {
        const uint8_t* px[9];
        tm_qu8_taps(ox, channels, in_width, stride, pad_left, rows, zp_pixel, px);
        size_t c = 0;
        const int16_t* tile = tiles;
        for (; c + 16 <= channels; c += 16, tile += 256) {
            const __m256i* head = (const __m256i*)tile;  /* bias, mult, shift: lo, hi each */
            const int16_t* wp = tile + 96;
            __m256i lo = _mm256_loadu_si256(head);
            __m256i hi = _mm256_loadu_si256(head + 1);
            for (size_t pr = 0; pr < 4; pr++) {
                const __m256i xa = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i*)(px[2 * pr] + c)));
                const __m256i xb = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i*)(px[2 * pr + 1] + c)));
                lo = _mm256_add_epi32(lo, _mm256_madd_epi16(_mm256_unpacklo_epi16(xa, xb),
                                                            _mm256_loadu_si256((const __m256i*)(wp + pr * 32))));
                hi = _mm256_add_epi32(hi, _mm256_madd_epi16(_mm256_unpackhi_epi16(xa, xb),
                                                            _mm256_loadu_si256((const __m256i*)(wp + pr * 32 + 16))));
            }
            const __m256i x8 = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i*)(px[8] + c)));
            const __m256i zero = _mm256_setzero_si256();
            lo = _mm256_add_epi32(lo, _mm256_madd_epi16(_mm256_unpacklo_epi16(x8, zero),
                                                        _mm256_loadu_si256((const __m256i*)(wp + 128))));
            hi = _mm256_add_epi32(hi, _mm256_madd_epi16(_mm256_unpackhi_epi16(x8, zero),
                                                        _mm256_loadu_si256((const __m256i*)(wp + 144))));
            lo = tm_qu8_mbqm_avx2(lo, _mm256_loadu_si256(head + 2), _mm256_loadu_si256(head + 4));
            hi = tm_qu8_mbqm_avx2(hi, _mm256_loadu_si256(head + 3), _mm256_loadu_si256(head + 5));
            lo = _mm256_min_epi32(_mm256_max_epi32(_mm256_add_epi32(lo, zp_out), vmin), vmax);
            hi = _mm256_min_epi32(_mm256_max_epi32(_mm256_add_epi32(hi, zp_out), vmin), vmax);
            const __m256i w16 = _mm256_packs_epi32(lo, hi);          /* channels 0..15 in order */
            const __m256i b8 = _mm256_permute4x64_epi64(_mm256_packus_epi16(w16, w16), 0x08);
            _mm_storeu_si128((__m128i*)(out + c), _mm256_castsi256_si128(b8));
        }
        for (; c + 8 <= channels; c += 8) {
            __m256i acc = _mm256_loadu_si256((const __m256i*)(bias + c));
            for (size_t t = 0; t < 9; t++) {
                const __m256i x = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i*)(px[t] + c)));
                const __m256i k = _mm256_loadu_si256((const __m256i*)(taps + t * cp + c));
                acc = _mm256_add_epi32(acc, _mm256_madd_epi16(x, k));
            }
            const __m256i y = tm_qu8_requant_avx2(acc, mult + c, shift + c, params);
            const __m128i w16 = _mm_packs_epi32(_mm256_castsi256_si128(y), _mm256_extracti128_si256(y, 1));
            _mm_storel_epi64((__m128i*)(out + c), _mm_packus_epi16(w16, w16));
        }
        tm_qu8_dw_channels(c, channels, px, w, cp, out, params);
        out += channels;
    }
}
#endif
