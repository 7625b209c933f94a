#include "../internal.h"

#if defined(TM_ARCH_NEON) && defined(__aarch64__)

/* One output row of a depthwise 3x3 convolution for aarch64 NEON, scheduled for in-order cores
 * (Cortex-A53/A55: Pi 3, Zero 2 W). Same contract and packing as tm_f32_dwconv3x3_row__neon, and
 * the same arithmetic: every output is the bias, then one fused multiply-add per tap inside the
 * image in row-major order (ky outer, kx inner), so the two kernels agree bit for bit
 * (tests/arm/kernel_check.c compares them).
 *
 * An in-order core issues in program order, so the schedule is the code's. Interior pixels go
 * in groups (10 at stride 1, 8 at stride 2) and 8 channels (one packed weight block) per
 * iteration of an inline-assembly loop, as two halves of 4 channels. Per half and input row:
 * one burst of loads (the row's 3 taps and the group's 12 or 17 input columns: neighbouring
 * pixels share columns), then the row's 30 or 24 FMAs back to back, tap by tap across the group,
 * so each accumulator is touched once every 10 (8) FMAs: independent chains that hide most of
 * the FMA latency (10 cycles on llvm-mca's cortex-a53 model). Loads and FMAs are not interleaved
 * because on that model any other instruction issued behind an FMA waits for it to complete in
 * order (a stall of about 4 cycles per switch), so the switches are kept to one per row. Column
 * addresses are a row pointer plus 0..3 channel strides in registers (register-offset loads; one
 * add per 4 columns, a group ahead, which dual-issues with the loads). Clamp and stores close
 * each half. llvm-mca (benchmarks/pi_model.py): 0.48 of the FMA peak on cortex-a53 at stride 1,
 * 0.38 at stride 2 (tm_f32_dwconv3x3_row__neon: 0.19, 0.18), and 0.82 / 0.76 on cortex-a72
 * (0.71 / 0.64). With one output row per call that is near the A53 model's ceiling: every 9
 * FMAs of an output vector need 2 clamp instructions, 1 store, 1 load of the bias into the
 * accumulator and at least 3 (stride 1) or 6 (stride 2) input loads, each a cycle of its own
 * there (nothing but integer arithmetic pairs with them), so at most 9/16 = 0.56 of the peak at
 * stride 1 and 9/19 = 0.47 at stride 2 before any stall. Several output rows per call do not
 * lift it within 32 vector registers: the loops benchmarks/pi_dw_schedules.py generates for 2
 * and 3 rows (each input row loaded once, same FMA order) model at 0.47 / 0.35 and 0.44 / 0.36
 * (docs/RASPBERRY_PI.md).
 *
 * Pixels outside the groups (borders, the last few interior pixels), rows whose channel count is
 * not a multiple of 8, and strides other than 1 and 2 go to tm_f32_dwconv3x3_row__neon on the
 * sub-row they cover. Compilers without GNU inline assembly get the out-of-order kernel. */
#if defined(__GNUC__)

#define TM_S1_TAP0 \
    "fmla v0.4s, v10.4s, v22.4s\n\t" \
    "fmla v1.4s, v11.4s, v22.4s\n\t" \
    "fmla v2.4s, v12.4s, v22.4s\n\t" \
    "fmla v3.4s, v13.4s, v22.4s\n\t" \
    "fmla v4.4s, v14.4s, v22.4s\n\t" \
    "fmla v5.4s, v15.4s, v22.4s\n\t" \
    "fmla v6.4s, v16.4s, v22.4s\n\t" \
    "fmla v7.4s, v17.4s, v22.4s\n\t" \
    "fmla v8.4s, v18.4s, v22.4s\n\t" \
    "fmla v9.4s, v19.4s, v22.4s\n\t"
#define TM_S1_TAP1 \
    "fmla v0.4s, v11.4s, v23.4s\n\t" \
    "fmla v1.4s, v12.4s, v23.4s\n\t" \
    "fmla v2.4s, v13.4s, v23.4s\n\t" \
    "fmla v3.4s, v14.4s, v23.4s\n\t" \
    "fmla v4.4s, v15.4s, v23.4s\n\t" \
    "fmla v5.4s, v16.4s, v23.4s\n\t" \
    "fmla v6.4s, v17.4s, v23.4s\n\t" \
    "fmla v7.4s, v18.4s, v23.4s\n\t" \
    "fmla v8.4s, v19.4s, v23.4s\n\t" \
    "fmla v9.4s, v20.4s, v23.4s\n\t"
#define TM_S1_TAP2 \
    "fmla v0.4s, v12.4s, v24.4s\n\t" \
    "fmla v1.4s, v13.4s, v24.4s\n\t" \
    "fmla v2.4s, v14.4s, v24.4s\n\t" \
    "fmla v3.4s, v15.4s, v24.4s\n\t" \
    "fmla v4.4s, v16.4s, v24.4s\n\t" \
    "fmla v5.4s, v17.4s, v24.4s\n\t" \
    "fmla v6.4s, v18.4s, v24.4s\n\t" \
    "fmla v7.4s, v19.4s, v24.4s\n\t" \
    "fmla v8.4s, v20.4s, v24.4s\n\t" \
    "fmla v9.4s, v21.4s, v24.4s\n\t"
#define TM_S2_TAP0 \
    "fmla v0.4s, v8.4s, v25.4s\n\t" \
    "fmla v1.4s, v10.4s, v25.4s\n\t" \
    "fmla v2.4s, v12.4s, v25.4s\n\t" \
    "fmla v3.4s, v14.4s, v25.4s\n\t" \
    "fmla v4.4s, v16.4s, v25.4s\n\t" \
    "fmla v5.4s, v18.4s, v25.4s\n\t" \
    "fmla v6.4s, v20.4s, v25.4s\n\t" \
    "fmla v7.4s, v22.4s, v25.4s\n\t"
#define TM_S2_TAP1 \
    "fmla v0.4s, v9.4s, v26.4s\n\t" \
    "fmla v1.4s, v11.4s, v26.4s\n\t" \
    "fmla v2.4s, v13.4s, v26.4s\n\t" \
    "fmla v3.4s, v15.4s, v26.4s\n\t" \
    "fmla v4.4s, v17.4s, v26.4s\n\t" \
    "fmla v5.4s, v19.4s, v26.4s\n\t" \
    "fmla v6.4s, v21.4s, v26.4s\n\t" \
    "fmla v7.4s, v23.4s, v26.4s\n\t"
#define TM_S2_TAP2 \
    "fmla v0.4s, v10.4s, v27.4s\n\t" \
    "fmla v1.4s, v12.4s, v27.4s\n\t" \
    "fmla v2.4s, v14.4s, v27.4s\n\t" \
    "fmla v3.4s, v16.4s, v27.4s\n\t" \
    "fmla v4.4s, v18.4s, v27.4s\n\t" \
    "fmla v5.4s, v20.4s, v27.4s\n\t" \
    "fmla v6.4s, v22.4s, v27.4s\n\t" \
    "fmla v7.4s, v24.4s, v27.4s\n\t"

/* Bias into every accumulator: half h's 4 biases are at w + 16 h bytes. */
#define TM_BIAS(n, off) TM_BIAS_##n(off)
#define TM_BIAS1(j, off) "ldr q" #j ", [%[w], #" #off "]\n\t"
#define TM_BIAS_8(off) TM_BIAS1(0, off) TM_BIAS1(1, off) TM_BIAS1(2, off) TM_BIAS1(3, off) \
    TM_BIAS1(4, off) TM_BIAS1(5, off) TM_BIAS1(6, off) TM_BIAS1(7, off)
#define TM_BIAS_10(off) TM_BIAS_8(off) TM_BIAS1(8, off) TM_BIAS1(9, off)

/* Four columns of a row into q(a)..q(a+3): p, p + cs, p + 2 cs, p + 3 cs. */
#define TM_COLS4(a, b, c, d, p)                \
    "ldr q" #a ", [" p "]\n\t"                  \
    "ldr q" #b ", [" p ", %[c1]]\n\t"           \
    "ldr q" #c ", [" p ", %[c2]]\n\t"           \
    "ldr q" #d ", [" p ", %[c3]]\n\t"

/* Stride 1, one input row (pointer p) for one half: taps (byte offsets ka, kb, kc from w) into
 * v22-v24, columns 0..11 into v10-v21, then the row's 30 FMAs. */
#define TM_S1_ROW(p, ka, kb, kc)                                  \
    "ldr q22, [%[w], #" #ka "]\n\t"                               \
    "add %[t0], " p ", %[c4]\n\t"                                 \
    "ldr q10, [" p "]\n\t"                                        \
    "ldr q11, [" p ", %[c1]]\n\t"                                 \
    "ldr q23, [%[w], #" #kb "]\n\t"                               \
    "ldr q12, [" p ", %[c2]]\n\t"                                 \
    "ldr q13, [" p ", %[c3]]\n\t"                                 \
    "ldr q24, [%[w], #" #kc "]\n\t"                               \
    "add %[t1], %[t0], %[c4]\n\t"                                 \
    TM_COLS4(14, 15, 16, 17, "%[t0]")                             \
    "ldr q18, [%[t1]]\n\t"                                        \
    "ldr q19, [%[t1], %[c1]]\n\t"                                 \
    "ldr q20, [%[t1], %[c2]]\n\t"                                 \
    "ldr q21, [%[t1], %[c3]]\n\t"                                 \
    TM_S1_TAP0 TM_S1_TAP1 TM_S1_TAP2

/* Stride 2: taps into v25-v27, columns 0..16 into v8-v24, then 24 FMAs. */
#define TM_S2_ROW(p, ka, kb, kc)                                  \
    "ldr q25, [%[w], #" #ka "]\n\t"                               \
    "add %[t0], " p ", %[c4]\n\t"                                 \
    "ldr q8, [" p "]\n\t"                                         \
    "ldr q9, [" p ", %[c1]]\n\t"                                  \
    "ldr q26, [%[w], #" #kb "]\n\t"                               \
    "ldr q10, [" p ", %[c2]]\n\t"                                 \
    "ldr q11, [" p ", %[c3]]\n\t"                                 \
    "ldr q27, [%[w], #" #kc "]\n\t"                               \
    "add %[t1], %[t0], %[c4]\n\t"                                 \
    TM_COLS4(12, 13, 14, 15, "%[t0]")                             \
    "add %[t0], %[t1], %[c4]\n\t"                                 \
    TM_COLS4(16, 17, 18, 19, "%[t1]")                             \
    "add %[t1], %[t0], %[c4]\n\t"                                 \
    TM_COLS4(20, 21, 22, 23, "%[t0]")                             \
    "ldr q24, [%[t1]]\n\t"                                        \
    TM_S2_TAP0 TM_S2_TAP1 TM_S2_TAP2

/* Clamp accumulators v0..v(n-1) to [v30, v31]. */
#define TM_CLAMP1(j) "fmax v" #j ".4s, v" #j ".4s, v30.4s\n\t"
#define TM_CLAMP2(j) "fmin v" #j ".4s, v" #j ".4s, v31.4s\n\t"
#define TM_CLAMP_8                                                                       \
    TM_CLAMP1(0) TM_CLAMP1(1) TM_CLAMP1(2) TM_CLAMP1(3) TM_CLAMP1(4) TM_CLAMP1(5)         \
    TM_CLAMP1(6) TM_CLAMP1(7)
#define TM_CLAMP_8B                                                                      \
    TM_CLAMP2(0) TM_CLAMP2(1) TM_CLAMP2(2) TM_CLAMP2(3) TM_CLAMP2(4) TM_CLAMP2(5)         \
    TM_CLAMP2(6) TM_CLAMP2(7)
#define TM_CLAMP_10 TM_CLAMP_8 TM_CLAMP1(8) TM_CLAMP1(9) TM_CLAMP_8B TM_CLAMP2(8) TM_CLAMP2(9)
#define TM_CLAMP_8ALL TM_CLAMP_8 TM_CLAMP_8B

/* Stores of pixels 0..n-1 (at o + j cs), the three row pointers moved on by 4 channels, and
 * `extra` (the loop counter and weight pointer after the second half), then o += 16. */
#define TM_STORE_HEAD(extra)                  \
    "add %[t0], %[o], %[c4]\n\t"              \
    "str q0, [%[o]]\n\t"                      \
    "add %[r0], %[r0], #16\n\t"               \
    "add %[r1], %[r1], #16\n\t"               \
    "add %[r2], %[r2], #16\n\t"               \
    "str q1, [%[o], %[c1]]\n\t"               \
    extra                                     \
    "str q2, [%[o], %[c2]]\n\t"               \
    "str q3, [%[o], %[c3]]\n\t"
#define TM_STORE_4(a, b, c, d, p)             \
    "str q" #a ", [" p "]\n\t"                \
    "str q" #b ", [" p ", %[c1]]\n\t"         \
    "str q" #c ", [" p ", %[c2]]\n\t"         \
    "str q" #d ", [" p ", %[c3]]\n\t"
#define TM_STORE_10(extra)                    \
    TM_STORE_HEAD(extra)                      \
    "add %[t1], %[t0], %[c4]\n\t"             \
    TM_STORE_4(4, 5, 6, 7, "%[t0]")           \
    "str q8, [%[t1]]\n\t"                     \
    "str q9, [%[t1], %[c1]]\n\t"              \
    "add %[o], %[o], #16\n\t"
#define TM_STORE_8(extra)                     \
    TM_STORE_HEAD(extra)                      \
    TM_STORE_4(4, 5, 6, 7, "%[t0]")           \
    "add %[o], %[o], #16\n\t"
#define TM_NEXT_BLOCK "subs %[n], %[n], #1\n\t" "add %[w], %[w], #320\n\t"

/* One half (4 channels at byte offset h16 = 0 or 16 within the 8-channel weight block): packed
 * weights are 8 biases, then taps 0..8 of 8 channels each (32 bytes a tap). */
#define TM_S1_HALF(h16, k0, k1, k2, k3, k4, k5, k6, k7, k8, extra)         \
    TM_BIAS(10, h16)                                                       \
    TM_S1_ROW("%[r0]", k0, k1, k2)                                         \
    TM_S1_ROW("%[r1]", k3, k4, k5)                                         \
    TM_S1_ROW("%[r2]", k6, k7, k8)                                         \
    TM_CLAMP_10 TM_STORE_10(extra)
#define TM_S2_HALF(h16, k0, k1, k2, k3, k4, k5, k6, k7, k8, extra)         \
    TM_BIAS(8, h16)                                                        \
    TM_S2_ROW("%[r0]", k0, k1, k2)                                         \
    TM_S2_ROW("%[r1]", k3, k4, k5)                                         \
    TM_S2_ROW("%[r2]", k6, k7, k8)                                         \
    TM_CLAMP_8ALL TM_STORE_8(extra)

#define TM_A53_OPERANDS                                                                    \
    : [r0] "+r"(r0), [r1] "+r"(r1), [r2] "+r"(r2), [w] "+r"(w), [o] "+r"(o), [n] "+r"(n), \
      [t0] "=&r"(t0), [t1] "=&r"(t1)                                                       \
    : [c1] "r"(cs), [c2] "r"(2 * cs), [c3] "r"(3 * cs), [c4] "r"(4 * cs),                 \
      [lo] "r"(&params->min), [hi] "r"(&params->max)                                      \
    : "cc", "memory", "v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7", "v8", "v9", "v10",   \
      "v11", "v12", "v13", "v14", "v15", "v16", "v17", "v18", "v19", "v20", "v21", "v22",  \
      "v23", "v24", "v25", "v26", "v27", "v28", "v29", "v30", "v31"

/* 10 interior output pixels at stride 1 (r0..r2: the first pixel's leftmost input column in
 * each row, o: its output), all channels; n = channels / 8 >= 1, cs = channels * 4 bytes. */
static __attribute__((noinline)) void tm_dw_a53_s1(size_t n, size_t cs, const float* r0,
                                                   const float* r1, const float* r2,
                                                   const float* w, float* o,
                                                   const tm_f32_minmax_params* params) {
    uintptr_t t0, t1;
    __asm__ volatile(
        "ld1r {v30.4s}, [%[lo]]\n\t"
        "ld1r {v31.4s}, [%[hi]]\n\t"
        "0:\n\t"
        TM_S1_HALF(0, 32, 64, 96, 128, 160, 192, 224, 256, 288, "")
        TM_S1_HALF(16, 48, 80, 112, 144, 176, 208, 240, 272, 304, TM_NEXT_BLOCK)
        "b.ne 0b\n\t"
        TM_A53_OPERANDS);
}

/* 8 interior output pixels at stride 2; as tm_dw_a53_s1. */
static __attribute__((noinline)) void tm_dw_a53_s2(size_t n, size_t cs, const float* r0,
                                                   const float* r1, const float* r2,
                                                   const float* w, float* o,
                                                   const tm_f32_minmax_params* params) {
    uintptr_t t0, t1;
    __asm__ volatile(
        "ld1r {v30.4s}, [%[lo]]\n\t"
        "ld1r {v31.4s}, [%[hi]]\n\t"
        "0:\n\t"
        TM_S2_HALF(0, 32, 64, 96, 128, 160, 192, 224, 256, 288, "")
        TM_S2_HALF(16, 48, 80, 112, 144, 176, 208, 240, 272, 304, TM_NEXT_BLOCK)
        "b.ne 0b\n\t"
        TM_A53_OPERANDS);
}

#endif /* __GNUC__ */

void tm_f32_dwconv3x3_row__aarch64_neonfma_cortex_a53(size_t channels, size_t in_width,
                                                      size_t out_width, size_t stride,
                                                      size_t pad_left, const float** rows,
                                                      const float* w, float* out,
                                                      const tm_f32_minmax_params* params) {
#if !defined(__GNUC__)
    tm_f32_dwconv3x3_row__neon(channels, in_width, out_width, stride, pad_left, rows, w, out,
                               params);
#else
    const size_t group = stride == 1 ? 10 : 8;
    /* Interior pixels [first, last): all three columns inside the row (as the NEON kernel). */
    size_t first = pad_left == 0 ? 0 : (pad_left + stride - 1) / stride;
    size_t last = in_width + pad_left >= 3 ? (in_width + pad_left - 3) / stride + 1 : 0;
    if (last > out_width) last = out_width;
    if (first > last) first = last;
    if (channels == 0 || channels % 8 != 0 || (stride != 1 && stride != 2) ||
        last - first < group) {
        tm_f32_dwconv3x3_row__neon(channels, in_width, out_width, stride, pad_left, rows, w, out,
                                   params);
        return;
    }
    if (first > 0) /* the left border */
        tm_f32_dwconv3x3_row__neon(channels, in_width, first, stride, pad_left, rows, w, out,
                                   params);
    const size_t cs = channels * sizeof(float);
    size_t ox = first;
    for (; ox + group <= last; ox += group) {
        const size_t at = (ox * stride - pad_left) * channels;
        if (stride == 1)
            tm_dw_a53_s1(channels / 8, cs, rows[0] + at, rows[1] + at, rows[2] + at, w,
                         out + ox * channels, params);
        else
            tm_dw_a53_s2(channels / 8, cs, rows[0] + at, rows[1] + at, rows[2] + at, w,
                         out + ox * channels, params);
    }
    if (ox < out_width) {
        /* The rest as a row of its own that starts at input column ix0 (< in_width: ox <= last)
         * with no left padding. */
        const size_t ix0 = ox * stride - pad_left;
        const float* rest[3] = {rows[0] + ix0 * channels, rows[1] + ix0 * channels,
                                rows[2] + ix0 * channels};
        tm_f32_dwconv3x3_row__neon(channels, in_width - ix0, out_width - ox, stride, 0, rest, w,
                                   out + ox * channels, params);
    }
#endif
}
#endif
