#include "../internal.h"

#if defined(TM_ARCH_NEON) && defined(__aarch64__)
#include <arm_neon.h>

/* 8x8 indirect-GEMM tile for aarch64 NEON, scheduled for in-order cores (Cortex-A53/A55: Pi 3,
 * Zero 2 W). Same contract and packing as tm_f32_igemm_8x8__aarch64_neonfma.
 *
 * An in-order core issues in program order, so the schedule is the compiler's to get right, and
 * GCC's is not: it puts each weight load just before the FMAs that need it and the loop stalls
 * on every one. Here the inner loop (4 channels of a tap) is GNU inline assembly, because the
 * order is the point and C cannot pin it: the eight row loads and the first pair of weight rows
 * go in one burst at the top of the iteration, the second pair one FMA group later, and then 64
 * FMAs run back to back, each accumulator touched every 16 FMAs (more than the FMA latency). All
 * 16 accumulators stay in v0-v15 (operands), v16-v23 hold the rows, v24-v31 the weights; only
 * register-offset and plain-base addressing, no post-increment (a pointer written back by a load
 * is ready before the load, and an in-order core holds it back to retire in order). Modelled
 * with llvm-mca's cortex-a53 model: 0.71 of the FMA peak per iteration, against 0.58 for the
 * same tile compiled from C (benchmarks/pi_model.py). Leftover channels (kc % 4) and the clamp
 * and stores are C. Compilers without GNU inline assembly get the out-of-order kernel. */
#if defined(__GNUC__)
#define TM_ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7)

static inline void tm_store_row8(float* c, size_t nc, float32x4_t lo, float32x4_t hi) {
    if (nc == 8) {
        vst1q_f32(c, lo);
        vst1q_f32(c + 4, hi);
        return;
    }
    if (nc & 4) {
        vst1q_f32(c, lo);
        lo = hi;
        c += 4;
    }
    float32x2_t h = vget_low_f32(lo);
    if (nc & 2) {
        vst1_f32(c, h);
        h = vget_high_f32(lo);
        c += 2;
    }
    if (nc & 1) vst1_lane_f32(c, h, 0);
}

/* One group of 16 FMAs: every row's lane l times the weight pair (lo, hi). */
#define TM_A53_LANE(l, blo, bhi)                                 \
    "fmla %[l0].4s, " blo ".4s, v16.s[" #l "]\n\t"              \
    "fmla %[h0].4s, " bhi ".4s, v16.s[" #l "]\n\t"              \
    "fmla %[l1].4s, " blo ".4s, v17.s[" #l "]\n\t"              \
    "fmla %[h1].4s, " bhi ".4s, v17.s[" #l "]\n\t"              \
    "fmla %[l2].4s, " blo ".4s, v18.s[" #l "]\n\t"              \
    "fmla %[h2].4s, " bhi ".4s, v18.s[" #l "]\n\t"              \
    "fmla %[l3].4s, " blo ".4s, v19.s[" #l "]\n\t"              \
    "fmla %[h3].4s, " bhi ".4s, v19.s[" #l "]\n\t"              \
    "fmla %[l4].4s, " blo ".4s, v20.s[" #l "]\n\t"              \
    "fmla %[h4].4s, " bhi ".4s, v20.s[" #l "]\n\t"              \
    "fmla %[l5].4s, " blo ".4s, v21.s[" #l "]\n\t"              \
    "fmla %[h5].4s, " bhi ".4s, v21.s[" #l "]\n\t"              \
    "fmla %[l6].4s, " blo ".4s, v22.s[" #l "]\n\t"              \
    "fmla %[h6].4s, " bhi ".4s, v22.s[" #l "]\n\t"              \
    "fmla %[l7].4s, " blo ".4s, v23.s[" #l "]\n\t"              \
    "fmla %[h7].4s, " bhi ".4s, v23.s[" #l "]\n\t"

/* The eight rows' next 4 channels into v16-v23. */
#define TM_A53_ROWS                     \
    "ldr q16, [x9, %[off]]\n\t"         \
    "ldr q17, [x10, %[off]]\n\t"        \
    "ldr q18, [x11, %[off]]\n\t"        \
    "ldr q19, [x12, %[off]]\n\t"        \
    "ldr q20, [x13, %[off]]\n\t"        \
    "ldr q21, [x14, %[off]]\n\t"        \
    "ldr q22, [x15, %[off]]\n\t"        \
    "ldr q23, [x16, %[off]]\n\t"        \
    "add %[off], %[off], 16\n\t"

void tm_f32_igemm_8x8__aarch64_neonfma_cortex_a53(size_t mr, size_t nc, size_t kc, size_t ks,
                                                  const float** a, const float* w, float* c,
                                                  size_t c_stride,
                                                  const tm_f32_minmax_params* params) {
    float* c0 = c;
    float* c1 = mr > 1 ? c0 + c_stride : c0;
    float* c2 = mr > 2 ? c1 + c_stride : c1;
    float* c3 = mr > 3 ? c2 + c_stride : c2;
    float* c4 = mr > 4 ? c3 + c_stride : c3;
    float* c5 = mr > 5 ? c4 + c_stride : c4;
    float* c6 = mr > 6 ? c5 + c_stride : c5;
    float* c7 = mr > 7 ? c6 + c_stride : c6;
    float32x4_t lo0, hi0, lo1, hi1, lo2, hi2, lo3, hi3, lo4, hi4, lo5, hi5, lo6, hi6, lo7, hi7;
    const size_t quads = kc / 4, rest = kc % 4;
    size_t taps = ks, offset, count;
    const float* w1;
    /* x9-x16: the eight row pointers of the current tap. */
    __asm__ volatile(
        "ldp %q[l0], %q[h0], [%[w]]\n\t"
        "add %[w], %[w], 32\n\t"
        "mov %[l1].16b, %[l0].16b\n\t" "mov %[h1].16b, %[h0].16b\n\t"
        "mov %[l2].16b, %[l0].16b\n\t" "mov %[h2].16b, %[h0].16b\n\t"
        "mov %[l3].16b, %[l0].16b\n\t" "mov %[h3].16b, %[h0].16b\n\t"
        "mov %[l4].16b, %[l0].16b\n\t" "mov %[h4].16b, %[h0].16b\n\t"
        "mov %[l5].16b, %[l0].16b\n\t" "mov %[h5].16b, %[h0].16b\n\t"
        "mov %[l6].16b, %[l0].16b\n\t" "mov %[h6].16b, %[h0].16b\n\t"
        "mov %[l7].16b, %[l0].16b\n\t" "mov %[h7].16b, %[h0].16b\n\t"
        "1:\n\t" /* per tap */
        "ldp x9, x10, [%[a]]\n\t"
        "ldp x11, x12, [%[a], 16]\n\t"
        "ldp x13, x14, [%[a], 32]\n\t"
        "ldp x15, x16, [%[a], 48]\n\t"
        "add %[a], %[a], 64\n\t"
        "mov %[off], 0\n\t"
        "cbz %[quads], 3f\n\t"
        "ld1 {v24.4s, v25.4s, v26.4s, v27.4s}, [%[w]]\n\t" /* the first quad's rows 0, 1 */
        "subs %[n], %[quads], 1\n\t"
        "b.eq 21f\n\t"
        "2:\n\t" /* 4 channels: row loads in one burst, then 64 FMAs */
        "add %[w1], %[w], 64\n\t"
        TM_A53_ROWS
        "add %[w], %[w], 128\n\t"
        "subs %[n], %[n], 1\n\t"
        "ld1 {v28.4s, v29.4s, v30.4s, v31.4s}, [%[w1]]\n\t" /* weight rows 2, 3 */
        TM_A53_LANE(0, "v24", "v25")
        TM_A53_LANE(1, "v26", "v27")
        "ld1 {v24.4s, v25.4s, v26.4s, v27.4s}, [%[w]]\n\t" /* next quad's rows 0, 1 */
        TM_A53_LANE(2, "v28", "v29")
        TM_A53_LANE(3, "v30", "v31")
        "b.ne 2b\n\t"
        "21:\n\t" /* the last quad: nothing to load ahead (it would read past the weights) */
        "add %[w1], %[w], 64\n\t"
        TM_A53_ROWS
        "add %[w], %[w], 128\n\t"
        "ld1 {v28.4s, v29.4s, v30.4s, v31.4s}, [%[w1]]\n\t"
        TM_A53_LANE(0, "v24", "v25")
        TM_A53_LANE(1, "v26", "v27")
        TM_A53_LANE(2, "v28", "v29")
        TM_A53_LANE(3, "v30", "v31")
        "3:\n\t"
        "cbz %[rest], 5f\n\t"
        "mov %[n], %[rest]\n\t"
        "4:\n\t" /* leftover channels one at a time */
        "ldr s16, [x9, %[off]]\n\t"
        "ldr s17, [x10, %[off]]\n\t"
        "ldr s18, [x11, %[off]]\n\t"
        "ldr s19, [x12, %[off]]\n\t"
        "ldr s20, [x13, %[off]]\n\t"
        "ldr s21, [x14, %[off]]\n\t"
        "ldr s22, [x15, %[off]]\n\t"
        "ldr s23, [x16, %[off]]\n\t"
        "ldp q24, q25, [%[w]]\n\t"
        "add %[off], %[off], 4\n\t"
        "add %[w], %[w], 32\n\t"
        "subs %[n], %[n], 1\n\t"
        TM_A53_LANE(0, "v24", "v25")
        "b.ne 4b\n\t"
        "5:\n\t"
        "subs %[taps], %[taps], 1\n\t"
        "b.ne 1b\n\t"
        : [l0] "=&w"(lo0), [h0] "=&w"(hi0), [l1] "=&w"(lo1), [h1] "=&w"(hi1),
          [l2] "=&w"(lo2), [h2] "=&w"(hi2), [l3] "=&w"(lo3), [h3] "=&w"(hi3),
          [l4] "=&w"(lo4), [h4] "=&w"(hi4), [l5] "=&w"(lo5), [h5] "=&w"(hi5),
          [l6] "=&w"(lo6), [h6] "=&w"(hi6), [l7] "=&w"(lo7), [h7] "=&w"(hi7),
          [n] "=&r"(count), [off] "=&r"(offset), [w1] "=&r"(w1),
          [a] "+r"(a), [w] "+r"(w), [taps] "+r"(taps)
        : [quads] "r"(quads), [rest] "r"(rest)
        : "cc", "memory", "x9", "x10", "x11", "x12", "x13", "x14", "x15", "x16",
          "v16", "v17", "v18", "v19", "v20", "v21", "v22", "v23",
          "v24", "v25", "v26", "v27", "v28", "v29", "v30", "v31");
    const float32x4_t vmin = vdupq_n_f32(params->min), vmax = vdupq_n_f32(params->max);
#define TM_CLAMP(i)                                   \
    lo##i = vminq_f32(vmaxq_f32(lo##i, vmin), vmax);  \
    hi##i = vminq_f32(vmaxq_f32(hi##i, vmin), vmax);
    TM_ROWS(TM_CLAMP)
#undef TM_CLAMP
    /* Rows past mr alias the last valid row: highest row first, so the valid row lands last. */
#define TM_STORE(i) tm_store_row8(c##i, nc, lo##i, hi##i);
    TM_STORE(7) TM_STORE(6) TM_STORE(5) TM_STORE(4) TM_STORE(3) TM_STORE(2) TM_STORE(1) TM_STORE(0)
#undef TM_STORE
}
#else
void tm_f32_igemm_8x8__aarch64_neonfma_cortex_a53(size_t mr, size_t nc, size_t kc, size_t ks,
                                                  const float** a, const float* w, float* c,
                                                  size_t c_stride,
                                                  const tm_f32_minmax_params* params) {
    tm_f32_igemm_8x8__aarch64_neonfma(mr, nc, kc, ks, a, w, c, c_stride, params);
}
#endif
#endif
