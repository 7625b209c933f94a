#include "../internal.h"

#if defined(TM_ARCH_NEON) && defined(__aarch64__)
#include <arm_neon.h>

#include "tm_f32_igemm_8x8_aarch64.h"

/* 8x8 indirect-GEMM tile for aarch64 NEON, scheduled for in-order cores (Cortex-A53/A55: Pi 3,
 * Zero 2 W). Same contract, packing and FMA order as tm_f32_igemm_8x8__aarch64_neonfma: each
 * accumulator takes its FMAs tap by tap, channel by channel, so the two give the same bits
 * (tests/arm/kernel_check.c compares them).
 *
 * An in-order core issues in program order, so the schedule is the code's, and C cannot pin it:
 * the loops are GNU inline assembly, fitted to llvm-mca's cortex-a53 model
 * (benchmarks/pi_model.py). There an FMLA has 10 cycles of latency and no instruction may write
 * back before an earlier one, so whatever follows an FMLA waits for it: a load ~5 cycles, a
 * 64-byte ld1 (latency 7) 2, a branch 8. Hence: per 4 channels one burst of loads (weights 0, 1
 * as one 64-byte ld1, the eight rows, weights 2, 3 as another, the pointer updates paired with
 * them), then 64 FMAs, each accumulator touched every 16 (more than the latency); 16 channels
 * (4 bursts, 256 FMAs) per loop turn, and the next turn's first ld1 just before the branch,
 * which waits anyway (on the last turn it re-reads this turn's last 64 bytes instead: the
 * weights may end there). No post-increment addressing (its pointer write-back is due before
 * the load's data, so the model holds the load back), and at most one integer operation per
 * load in a burst (a second one costs a cycle). Leftover channels: 4 at a time (the same burst,
 * rows at a register offset), then 2 (64-bit row loads), then 1. Model, cycles per turn: 16
 * channels 315 = 0.81 of the FMA peak (cortex-a72 model: 256, 1.00), 4 channels 82 = 0.78,
 * 2 channels 46 = 0.70, 1 channel 29 = 0.55 (the kernel before: 85 = 0.75 per 4 channels, 36 =
 * 0.45 per leftover channel).
 * With each row behind its own pointer, eight row loads per 4 channels that no FMA can pair with
 * cap this tile near 0.82 on that model; the pointwise layers therefore run
 * tm_f32_ppmm_8x8__aarch64_neonfma_cortex_a53 on a packed copy of their rows (0.85), and this
 * tile the 3x3 convolution, whose rows are window pointers. All 16 accumulators stay in v0-v15 (operands), v16-v23
 * hold the rows, v24-v31 the weights. The clamp and the stores are C. Compilers without GNU
 * inline assembly get the out-of-order kernel. */
#if defined(__GNUC__)
/* One group of 16 FMAs: every row's channel (lane) l times the weight pair (lo, hi). */
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

/* Four channels: lanes 0-3, weights v24-v27 (channels 0, 1) and v28-v31 (channels 2, 3). */
#define TM_A53_QUAD \
    TM_A53_LANE(0, "v24", "v25") TM_A53_LANE(1, "v26", "v27") \
    TM_A53_LANE(2, "v28", "v29") TM_A53_LANE(3, "v30", "v31")

/* The eight rows (x9-x16) into v16-v23 as q (16 bytes), d or s registers at address suffix
 * `at`, each load followed by one of the integer operations o0-o7 (empty: none), which the
 * core pairs with the next load. */
#define TM_A53_ROWS(q, at, o0, o1, o2, o3, o4, o5, o6, o7)                       \
    q "16, [x9" at "]\n\t" o0 q "17, [x10" at "]\n\t" o1                         \
    q "18, [x11" at "]\n\t" o2 q "19, [x12" at "]\n\t" o3                        \
    q "20, [x13" at "]\n\t" o4 q "21, [x14" at "]\n\t" o5                        \
    q "22, [x15" at "]\n\t" o6 q "23, [x16" at "]\n\t" o7

#define TM_A53_W01(reg) "ld1 {v24.4s, v25.4s, v26.4s, v27.4s}, [" reg "]\n\t"
#define TM_A53_W23(reg) "ld1 {v28.4s, v29.4s, v30.4s, v31.4s}, [" reg "]\n\t"

/* Channels 4s .. 4s+3 of a 16-channel iteration, s = 1, 2, 3, in one burst: weights 0, 1 at
 * w + 128 s (pa, set in the burst before), the rows at -64 + 16 s from the pointers (stepped by
 * 64 at the top), weights 2, 3 at w + 128 s + 64 (pb), then the 64 FMAs. o0, o1, o4, o5:
 * integer operations paired with row loads (one per load: a second one costs a cycle). */
#define TM_A53_SUB(at, o0, o1, o4, o5)                                            \
    TM_A53_W01("%[pa]")                                                          \
    TM_A53_ROWS("ldur q", at, o0, o1, "", "", o4, o5, "", "")                     \
    TM_A53_W23("%[pb]")                                                          \
    TM_A53_QUAD

void tm_f32_igemm_8x8__aarch64_neonfma_cortex_a53(size_t mr, size_t nc, size_t kc, size_t ks,
                                                  const float** a, const float* w, float* c,
                                                  size_t c_stride,
                                                  const tm_f32_minmax_params* params) {
    TM_8X8_OUTPUT_ROWS(c, mr, c_stride)
    float32x4_t lo0, hi0, lo1, hi1, lo2, hi2, lo3, hi3, lo4, hi4, lo5, hi5, lo6, hi6, lo7, hi7;
    const size_t sixteens = kc / 16, quads = kc % 16 / 4, rest = kc % 4;
    size_t taps = ks, count;
    const float *pa, *pb, *pt;
    size_t offset;
    /* x9-x16: the eight row pointers of the current tap, stepped as channels are consumed. */
    __asm__ volatile(
        TM_8X8_ASM_BIAS_INIT
        "1:\n\t" /* per tap */
        "ldp x9, x10, [%[a]]\n\t"
        "ldp x11, x12, [%[a], 16]\n\t"
        "ldp x13, x14, [%[a], 32]\n\t"
        "ldp x15, x16, [%[a], 48]\n\t"
        "add %[a], %[a], 64\n\t"
        "cbz %[sixteens], 3f\n\t"
        "mov %[n], %[sixteens]\n\t"
        TM_A53_W01("%[w]")
        "add %[pt], %[w], 64\n\t"
        "2:\n\t" /* 16 channels: 4 bursts of loads, 256 FMAs */
        TM_A53_ROWS("ldr q", "", "add x9, x9, 64\n\t", "add x10, x10, 64\n\t",
                    "add x11, x11, 64\n\t", "add x12, x12, 64\n\t", "add x13, x13, 64\n\t",
                    "add x14, x14, 64\n\t", "add x15, x15, 64\n\t",
                    "add x16, x16, 64\n\tadd %[pa], %[w], 128\n\t")
        TM_A53_W23("%[pt]")
        TM_A53_QUAD
        TM_A53_SUB(", -48", "add %[pb], %[w], 192\n\t", "add %[pa], %[w], 256\n\t",
                   "subs %[n], %[n], 1\n\t", "")
        TM_A53_SUB(", -32", "add %[pb], %[w], 320\n\t", "add %[pa], %[w], 384\n\t", "", "")
        /* pa: the next turn's weights 0, 1, loaded ahead of the branch (which waits for the
         * FMAs anyway); on the last turn a harmless re-read of this one's last 64 bytes (pb):
         * past them the weights may end. The flags are those of the subs above. */
        TM_A53_SUB(", -16", "add %[pb], %[w], 448\n\t", "add %[w], %[w], 512\n\t",
                   "add %[pt], %[w], 64\n\t", "csel %[pa], %[w], %[pb], ne\n\t")
        TM_A53_W01("%[pa]")
        "b.ne 2b\n\t"
        "3:\n\t" /* the leftover channels: rows at the pointers + off */
        "mov %[off], 0\n\t"
        "cbz %[quads], 5f\n\t"
        "mov %[n], %[quads]\n\t"
        TM_A53_W01("%[w]")
        "4:\n\t" /* 4 channels, the next quad's weights 0, 1 ahead of the branch as above */
        TM_A53_ROWS("ldr q", ", %[off]", "add %[pb], %[w], 64\n\t", "add %[w], %[w], 128\n\t",
                    "subs %[n], %[n], 1\n\t", "", "csel %[pa], %[w], %[pb], ne\n\t", "", "",
                    "add %[off], %[off], 16\n\t")
        TM_A53_W23("%[pb]")
        TM_A53_QUAD
        TM_A53_W01("%[pa]")
        "b.ne 4b\n\t"
        "5:\n\t"
        "tbz %[rest], 1, 6f\n\t" /* 2 channels: 64-bit row loads */
        TM_A53_W01("%[w]")
        TM_A53_ROWS("ldr d", ", %[off]", "add %[w], %[w], 64\n\t", "", "", "", "", "", "",
                    "add %[off], %[off], 8\n\t")
        TM_A53_LANE(0, "v24", "v25") TM_A53_LANE(1, "v26", "v27")
        "6:\n\t"
        "tbz %[rest], 0, 7f\n\t" /* 1 channel */
        "ld1 {v24.4s, v25.4s}, [%[w]]\n\t"
        TM_A53_ROWS("ldr s", ", %[off]", "add %[w], %[w], 32\n\t", "", "", "", "", "", "", "")
        TM_A53_LANE(0, "v24", "v25")
        "7:\n\t"
        "subs %[taps], %[taps], 1\n\t"
        "b.ne 1b\n\t"
        : [l0] "=&w"(lo0), [h0] "=&w"(hi0), [l1] "=&w"(lo1), [h1] "=&w"(hi1),
          [l2] "=&w"(lo2), [h2] "=&w"(hi2), [l3] "=&w"(lo3), [h3] "=&w"(hi3),
          [l4] "=&w"(lo4), [h4] "=&w"(hi4), [l5] "=&w"(lo5), [h5] "=&w"(hi5),
          [l6] "=&w"(lo6), [h6] "=&w"(hi6), [l7] "=&w"(lo7), [h7] "=&w"(hi7),
          [n] "=&r"(count), [pa] "=&r"(pa), [pb] "=&r"(pb), [pt] "=&r"(pt), [off] "=&r"(offset),
          [a] "+r"(a), [w] "+r"(w), [taps] "+r"(taps)
        : [sixteens] "r"(sixteens), [quads] "r"(quads), [rest] "r"(rest)
        : "cc", "memory", "x9", "x10", "x11", "x12", "x13", "x14", "x15", "x16",
          "v16", "v17", "v18", "v19", "v20", "v21", "v22", "v23",
          "v24", "v25", "v26", "v27", "v28", "v29", "v30", "v31");
    TM_8X8_CLAMP_STORE(params, nc);
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
