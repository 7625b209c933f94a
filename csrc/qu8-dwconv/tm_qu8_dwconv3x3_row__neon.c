#include "../internal.h"

#ifdef TM_ARCH_NEON
TM_NEON_BEGIN
#include "../qu8_requant.h"

/* One output row of a quantized depthwise 3x3 convolution, NEON (ARMv7 and aarch64), 8 channels
 * per step: pixels widened u8 -> s16 -> s32, multiply-accumulated with int32 weights (exact).
 * Leftover channels (channels % 8) take the scalar path. */
void tm_qu8_dwconv3x3_row__neon(size_t channels, size_t in_width, size_t out_width,
                                size_t stride, size_t pad_left, const uint8_t** rows,
                                const uint8_t* zp_pixel, const int32_t* w, uint8_t* out,
                                const tm_qu8_requant_params* params) {
    const size_t cp = TM_ROUND_UP(channels, TM_CHANNEL_TILE);
    const int32_t* bias = w;
    const int32_t* mult = w + cp;
    const int32_t* shift = w + 2 * cp;
    const int32_t* taps = w + 3 * cp;
    for (size_t ox = 0; ox < out_width; ox++) {
        const uint8_t* px[9];
        tm_qu8_taps(ox, channels, in_width, stride, pad_left, rows, zp_pixel, px);
        size_t c = 0;
        for (; c + 8 <= channels; c += 8) {
            int32x4_t lo = vld1q_s32(bias + c), hi = vld1q_s32(bias + c + 4);
            for (size_t t = 0; t < 9; t++) {
                const int16x8_t x = vreinterpretq_s16_u16(vmovl_u8(vld1_u8(px[t] + c)));
                lo = vmlaq_s32(lo, vmovl_s16(vget_low_s16(x)), vld1q_s32(taps + t * cp + c));
                hi = vmlaq_s32(hi, vmovl_s16(vget_high_s16(x)), vld1q_s32(taps + t * cp + c + 4));
            }
            lo = tm_qu8_requant_neon(lo, mult + c, shift + c, params);
            hi = tm_qu8_requant_neon(hi, mult + c + 4, shift + c + 4, params);
            vst1_u8(out + c, tm_qu8_pack8_neon(lo, hi));
        }
        tm_qu8_dw_channels(c, channels, px, w, cp, out, params);
        out += channels;
    }
}
TM_NEON_END
#endif
