#include <math.h>

#include "../internal.h"

#ifdef TM_ARCH_NEON
TM_NEON_BEGIN
#include <arm_neon.h>

/* One output row of a depthwise 3x3 convolution, NEON with FMA (ARMv7 neon-vfpv4 and aarch64), 4
 * channels per vector, pixels outer and channels inner (see the AVX2 kernel for why).
 *
 * Interior pixels go TM_DW_PIXELS at a time: for each block of 4 channels the bias and nine taps
 * are loaded once for the group and every pixel keeps its own accumulator, so the FMAs form
 * TM_DW_PIXELS independent chains (one chain of nine dependent FMAs per pixel left the FMA unit
 * idle for most of its latency) and the weight loads are shared. Neighbouring pixels share input
 * columns: a group reads stride * (P - 1) + 3 columns per row, not 3 * P. Border pixels and the
 * pixels left over run one at a time over the columns inside the image; channels past the last
 * multiple of 4 one at a time. aarch64 (32 vector registers) takes 4 pixels a group, ARMv7 (16) 2.
 *
 * Whichever path computes it (group, single pixel, scalar channel tail), every output is the bias
 * and then one fused multiply-add per tap inside the image, in row-major order (ky outer, kx
 * inner): results do not depend on where a pixel falls, and the kernel scheduled for in-order
 * cores (tm_f32_dwconv3x3_row__aarch64_neonfma_cortex_a53), which hands this one its borders,
 * gives the same bits. */
#if defined(__aarch64__)
#define TM_DW_PIXELS 4
#else
#define TM_DW_PIXELS 2
#endif

static inline float32x4_t tm_clamp4(float32x4_t v, float32x4_t lo, float32x4_t hi) {
    return vminq_f32(vmaxq_f32(v, lo), hi);
}

/* TM_DW_PIXELS interior output pixels, channels [0, cv) in blocks of 4. p0..p2: the first pixel's
 * window in the three input rows; pixel j's window starts `stride` columns after pixel j-1's.
 * Inlined with stride 1 and 2 as constants, so the columns shared by neighbouring pixels are
 * loaded once (the loads of equal column indices are the same expression). */
#if defined(__GNUC__)
#define TM_DW_INLINE static inline __attribute__((always_inline))
#define TM_DW_NOINLINE static __attribute__((noinline))
#else
#define TM_DW_INLINE static inline
#define TM_DW_NOINLINE static
#endif

TM_DW_INLINE void tm_dw_group(
        size_t cv, size_t channels, size_t stride, const float* p0, const float* p1,
        const float* p2, const float* w, float* o, float32x4_t lo, float32x4_t hi) {
    for (size_t c = 0; c < cv; c += 4) {
        const float* wc = TM_DW_W(w, c, 0);
        const float32x4_t bias = vld1q_f32(wc);
        float32x4_t a0 = bias, a1 = bias;
#if TM_DW_PIXELS == 4
        float32x4_t a2 = bias, a3 = bias;
#endif
        /* Row r: taps 3r..3r+2; column m of the group is at p + m * channels. */
#define TM_COL(p, m) vld1q_f32((p) + (m) * channels + c)
#define TM_PIX(acc, p, j)                                              \
        acc = vfmaq_f32(acc, TM_COL(p, (j) * stride + 0), ka);          \
        acc = vfmaq_f32(acc, TM_COL(p, (j) * stride + 1), kb);          \
        acc = vfmaq_f32(acc, TM_COL(p, (j) * stride + 2), kc);
#if TM_DW_PIXELS == 4
#define TM_ROW(p, t)                                                                  \
        {                                                                             \
            const float32x4_t ka = vld1q_f32(wc + 8 * (t + 1));                       \
            const float32x4_t kb = vld1q_f32(wc + 8 * (t + 2));                       \
            const float32x4_t kc = vld1q_f32(wc + 8 * (t + 3));                       \
            TM_PIX(a0, p, 0) TM_PIX(a1, p, 1) TM_PIX(a2, p, 2) TM_PIX(a3, p, 3)       \
        }
#else
#define TM_ROW(p, t)                                                                  \
        {                                                                             \
            const float32x4_t ka = vld1q_f32(wc + 8 * (t + 1));                       \
            const float32x4_t kb = vld1q_f32(wc + 8 * (t + 2));                       \
            const float32x4_t kc = vld1q_f32(wc + 8 * (t + 3));                       \
            TM_PIX(a0, p, 0) TM_PIX(a1, p, 1)                                         \
        }
#endif
        TM_ROW(p0, 0)
        TM_ROW(p1, 3)
        TM_ROW(p2, 6)
#undef TM_ROW
#undef TM_PIX
#undef TM_COL
        vst1q_f32(o + c, tm_clamp4(a0, lo, hi));
        vst1q_f32(o + channels + c, tm_clamp4(a1, lo, hi));
#if TM_DW_PIXELS == 4
        vst1q_f32(o + 2 * channels + c, tm_clamp4(a2, lo, hi));
        vst1q_f32(o + 3 * channels + c, tm_clamp4(a3, lo, hi));
#endif
    }
}

/* One copy per stride, not inlined into the row loop, so that each is a function of its own
 * (benchmarks/pi_model.py models the stride-1 and stride-2 loops separately). */
TM_DW_NOINLINE void tm_dw_group_s1(size_t cv, size_t channels, const float* p0, const float* p1,
                                   const float* p2, const float* w, float* o, float32x4_t lo,
                                   float32x4_t hi) {
    tm_dw_group(cv, channels, 1, p0, p1, p2, w, o, lo, hi);
}

TM_DW_NOINLINE void tm_dw_group_s2(size_t cv, size_t channels, const float* p0, const float* p1,
                                   const float* p2, const float* w, float* o, float32x4_t lo,
                                   float32x4_t hi) {
    tm_dw_group(cv, channels, 2, p0, p1, p2, w, o, lo, hi);
}

/* One channel of one output pixel: the bias, then a fused multiply-add per tap of window columns
 * kx_lo..kx_hi-1 in row-major order, as every vector lane of this kernel and of the in-order one
 * (tm_f32_dwconv3x3_row__aarch64_neonfma_cortex_a53) computes it; `at` indexes column kx_lo. */
static float tm_dw_channel(const float** rows, size_t at, size_t channels, size_t kx_lo,
                           size_t kx_hi, const float* w, size_t c,
                           const tm_f32_minmax_params* params) {
    float acc = *TM_DW_W(w, c, 0);
    for (size_t ky = 0; ky < 3; ky++)
        for (size_t kx = kx_lo; kx < kx_hi; kx++)
            acc = fmaf(rows[ky][at + (kx - kx_lo) * channels], *TM_DW_W(w, c, 1 + 3 * ky + kx), acc);
    acc = acc < params->min ? params->min : acc;
    return acc > params->max ? params->max : acc;
}

void tm_f32_dwconv3x3_row__neon(size_t channels, size_t in_width, size_t out_width,
                                size_t stride, size_t pad_left, const float** rows,
                                const float* w, float* out, const tm_f32_minmax_params* params) {
    const size_t cv = channels & ~(size_t)3;
    const float32x4_t lo = vdupq_n_f32(params->min), hi = vdupq_n_f32(params->max);
    const float* r0 = rows[0];
    const float* r1 = rows[1];
    const float* r2 = rows[2];
    /* Interior pixels [first, last): all three columns inside the row. */
    size_t first = pad_left == 0 ? 0 : (pad_left + stride - 1) / stride;
    size_t last = in_width + pad_left >= 3 ? (in_width + pad_left - 3) / stride + 1 : 0;
    if (last > out_width) last = out_width;
    if (first > last) first = last;

    size_t ox = 0;
    while (ox < out_width) {
        if (ox >= first && ox + TM_DW_PIXELS <= last) {
            const size_t ix0 = ox * stride - pad_left;
            const float* p0 = r0 + ix0 * channels;
            const float* p1 = r1 + ix0 * channels;
            const float* p2 = r2 + ix0 * channels;
            float* o = out + ox * channels;
            if (stride == 1) {
                tm_dw_group_s1(cv, channels, p0, p1, p2, w, o, lo, hi);
            } else if (stride == 2) {
                tm_dw_group_s2(cv, channels, p0, p1, p2, w, o, lo, hi);
            } else {
                tm_dw_group(cv, channels, stride, p0, p1, p2, w, o, lo, hi);
            }
            for (size_t j = 0; j < TM_DW_PIXELS; j++) {
                float* oj = out + (ox + j) * channels;
                const size_t off = (ix0 + j * stride) * channels;
                for (size_t c = cv; c < channels; c++)
                    oj[c] = tm_dw_channel(rows, off + c, channels, 0, 3, w, c, params);
            }
            ox += TM_DW_PIXELS;
            continue;
        }
        /* One pixel: a border pixel, or one of the interior's last < TM_DW_PIXELS. */
        const ptrdiff_t ix0 = (ptrdiff_t)(ox * stride) - (ptrdiff_t)pad_left;
        const size_t kx_lo = ix0 < 0 ? (size_t)(-ix0) : 0;
        const ptrdiff_t room = (ptrdiff_t)in_width - ix0;
        const size_t kx_hi = room >= 3 ? 3 : (room > 0 ? (size_t)room : 0);
        float* o = out + ox * channels;
        /* Column kx of the window is input column ix0 + kx (inside the image for kx_lo..kx_hi). */
        const size_t base = (size_t)(ix0 + (ptrdiff_t)kx_lo) * channels;
        size_t c = 0;
        /* 16 channels at a time: four independent chains (one would wait out the FMA latency
         * at every tap). */
        for (; c + 16 <= cv; c += 16) {
            float32x4_t a[4];
            for (size_t k = 0; k < 4; k++) a[k] = vld1q_f32(TM_DW_W(w, c + 4 * k, 0));
            for (size_t ky = 0; ky < 3; ky++) {
                for (size_t kx = kx_lo; kx < kx_hi; kx++) {
                    const float* x = rows[ky] + base + (kx - kx_lo) * channels + c;
                    for (size_t k = 0; k < 4; k++)
                        a[k] = vfmaq_f32(a[k], vld1q_f32(x + 4 * k),
                                         vld1q_f32(TM_DW_W(w, c + 4 * k, 1 + 3 * ky + kx)));
                }
            }
            for (size_t k = 0; k < 4; k++) vst1q_f32(o + c + 4 * k, tm_clamp4(a[k], lo, hi));
        }
        for (; c < cv; c += 4) {
            const float* wc = TM_DW_W(w, c, 0);
            float32x4_t a = vld1q_f32(wc);
            for (size_t ky = 0; ky < 3; ky++) {
                for (size_t kx = kx_lo; kx < kx_hi; kx++) {
                    const size_t off = base + (kx - kx_lo) * channels + c;
                    a = vfmaq_f32(a, vld1q_f32(rows[ky] + off), vld1q_f32(wc + 8 * (1 + 3 * ky + kx)));
                }
            }
            vst1q_f32(o + c, tm_clamp4(a, lo, hi));
        }
        for (; c < channels; c++)
            o[c] = tm_dw_channel(rows, base + c, channels, kx_lo, kx_hi, w, c, params);
        ox++;
    }
}
TM_NEON_END
#endif
