#include "../qu8_requant.h"

#ifdef TM_ARCH_X86
/* One output row of a quantized depthwise 3x3 convolution, AVX2, 8 channels per step.
 * A pixel byte zero-extended to 32 bits is the int16 pair (x, 0) and a weight sign-extended to
 * 32 bits is (w', 0 or -1): vpmaddwd of the two is exactly x * w' in int32. Leftover channels
 * (channels % 8) take the scalar path. */
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
    for (size_t ox = 0; ox < out_width; ox++) {
        const uint8_t* px[9];
        for (size_t kx = 0; kx < 3; kx++) {
            const ptrdiff_t ix = (ptrdiff_t)(ox * stride + kx) - (ptrdiff_t)pad_left;
            const int inside = ix >= 0 && ix < (ptrdiff_t)in_width;
            for (size_t ky = 0; ky < 3; ky++)
                px[ky * 3 + kx] = inside ? rows[ky] + (size_t)ix * channels : zp_pixel;
        }
        size_t c = 0;
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
        for (; c < channels; c++) {
            int32_t acc = bias[c];
            for (size_t t = 0; t < 9; t++) acc += (int32_t)px[t][c] * taps[t * cp + c];
            out[c] = tm_qu8_output(acc, mult[c], shift[c], params);
        }
        out += channels;
    }
}
#endif
