#include "../internal.h"

#if defined(TM_ARCH_NEON) && defined(__aarch64__)
#include <arm_neon.h>

#include "../f32-igemm/tm_f32_igemm_8x8_aarch64.h"

/* 8x8 GEMM tile for aarch64 NEON with A pre-packed (XNNPACK's "ppmm"), scheduled for in-order
 * cores (Cortex-A53/A55: Pi 3, Zero 2 W); the float pointwise layers run it on them
 * (pointwise_op.c packs each row block once, tm_f32_ppmm_pack_8__aarch64_neon, and reuses it for
 * every panel). a: kc x 8 floats, channel by channel the tile's 8 rows (rows past mr repeat a
 * valid one), readable 16 floats past its end; w, c, params: as the igemm (tm_f32_gemm_pack's
 * panel). Each accumulator takes bias, then its FMAs channel by channel, one fused
 * multiply-add each: the bits of tm_f32_igemm_8x8__aarch64_neonfma and _cortex_a53 on the same
 * rows (tests/arm/kernel_check.c compares them).
 *
 * Fitted to llvm-mca's cortex-a53 model (benchmarks/pi_model.py), where an FMLA has 10 cycles of
 * latency and no instruction may write back before an earlier one, so whatever follows an FMLA
 * waits for it: a 64-byte ld1 (latency 7) 3 cycles, then issues beside the next FMLA, and its 4
 * cycles on the load unit pass under the FMLAs that follow (an integer operation waits 7, a
 * 16-byte load 6: why the row-pointer kernel, eight 16-byte row loads per 4 channels, stops near
 * 0.82). So the loop reads A and W only as 64-byte ld1s (two channels of the 8 rows, two
 * channels of the 8 columns), each alone between FMLAs, into one of two register sets (v16-v23,
 * v24-v31) while the FMLAs use the other: 2 cycles per 32 FMLAs and ld1. ld1 has no offset
 * form, so each of the 16 ld1s of a loop turn (16 channels, 256 FMLAs) has its own pointer, all
 * stepped in one break at the end of the turn, which also loads the next turn's first A (one
 * integer break costs its 7 cycles once). On the turn before the last, the pointer of the last
 * turn's final W load is switched to a harmless re-read when no channel pair follows (the
 * weights may end there). Model, cycles per turn: 301 = 0.85 of the FMA peak (cortex-a72 model:
 * 256, 1.00). Leftover channel pairs run one at a time (loads, then 32 FMAs), a last odd channel
 * alone. All 16 accumulators stay in v0-v15 (operands); the clamp and the stores are C. */
#if defined(__GNUC__)
/* 16 FMAs: channel of A registers alo (rows 0-3), ahi (rows 4-7) times W registers wl, wh. */
#define TM_PP_CH(alo, ahi, wl, wh)                                  \
    "fmla %[l0].4s, " wl ".4s, " alo ".s[0]\n\t"                   \
    "fmla %[h0].4s, " wh ".4s, " alo ".s[0]\n\t"                   \
    "fmla %[l1].4s, " wl ".4s, " alo ".s[1]\n\t"                   \
    "fmla %[h1].4s, " wh ".4s, " alo ".s[1]\n\t"                   \
    "fmla %[l2].4s, " wl ".4s, " alo ".s[2]\n\t"                   \
    "fmla %[h2].4s, " wh ".4s, " alo ".s[2]\n\t"                   \
    "fmla %[l3].4s, " wl ".4s, " alo ".s[3]\n\t"                   \
    "fmla %[h3].4s, " wh ".4s, " alo ".s[3]\n\t"                   \
    "fmla %[l4].4s, " wl ".4s, " ahi ".s[0]\n\t"                   \
    "fmla %[h4].4s, " wh ".4s, " ahi ".s[0]\n\t"                   \
    "fmla %[l5].4s, " wl ".4s, " ahi ".s[1]\n\t"                   \
    "fmla %[h5].4s, " wh ".4s, " ahi ".s[1]\n\t"                   \
    "fmla %[l6].4s, " wl ".4s, " ahi ".s[2]\n\t"                   \
    "fmla %[h6].4s, " wh ".4s, " ahi ".s[2]\n\t"                   \
    "fmla %[l7].4s, " wl ".4s, " ahi ".s[3]\n\t"                   \
    "fmla %[h7].4s, " wh ".4s, " ahi ".s[3]\n\t"

/* Register set 0: A v16-v19, W v20-v23; set 1: A v24-v27, W v28-v31 (channel k: A lo, hi, W
 * lo, hi; channel k + 1: the next two of each). */
#define TM_PP_S0C0 TM_PP_CH("v16", "v17", "v20", "v21")
#define TM_PP_S0C1 TM_PP_CH("v18", "v19", "v22", "v23")
#define TM_PP_S1C0 TM_PP_CH("v24", "v25", "v28", "v29")
#define TM_PP_S1C1 TM_PP_CH("v26", "v27", "v30", "v31")
#define TM_PP_LDA0(p) "ld1 {v16.4s, v17.4s, v18.4s, v19.4s}, [" p "]\n\t"
#define TM_PP_LDW0(p) "ld1 {v20.4s, v21.4s, v22.4s, v23.4s}, [" p "]\n\t"
#define TM_PP_LDA1(p) "ld1 {v24.4s, v25.4s, v26.4s, v27.4s}, [" p "]\n\t"
#define TM_PP_LDW1(p) "ld1 {v28.4s, v29.4s, v30.4s, v31.4s}, [" p "]\n\t"

/* Channel pair g of a turn on set g % 2, loading pair g + 1 into the other set: its A (pa, none
 * for the last pair: the end of the turn loads it) before the first FMA, its W (pw) between
 * the two channels. */
#define TM_PP_PAIR0(pa, pw) TM_PP_LDA1(pa) TM_PP_S0C0 TM_PP_LDW1(pw) TM_PP_S0C1
#define TM_PP_PAIR1(pa, pw) TM_PP_LDA0(pa) TM_PP_S1C0 TM_PP_LDW0(pw) TM_PP_S1C1
#define TM_PP_STEP(x) "add " x ", " x ", 512\n\t"

void tm_f32_ppmm_8x8__aarch64_neonfma_cortex_a53(size_t mr, size_t nc, size_t kc, const float* a,
                                                 const float* w, float* c, size_t c_stride,
                                                 const tm_f32_minmax_params* params) {
    TM_8X8_OUTPUT_ROWS(c, mr, c_stride)
    float32x4_t lo0, hi0, lo1, hi1, lo2, hi2, lo3, hi3, lo4, hi4, lo5, hi5, lo6, hi6, lo7, hi7;
    const size_t pairs = kc / 2, turns = kc / 16;
    size_t rest = kc % 16 / 2; /* channel pairs after the turns */
    /* where the last turn's final W load points: the first leftover pair, or (none) the panel's
     * first weights again */
    const float* safe = rest ? w + 8 + 128 * turns : w + 8;
    const float* a_odd = a + 8 * (kc - (kc & 1)); /* the odd last channel, if any */
    const float* w_odd = w + 8 + 8 * (kc - (kc & 1));
    /* x9-x16: A of pairs 1..8 of the turn; x17, x19-x25: W of pairs 1..8; x26: turns left - 1 */
    __asm__ volatile(
        TM_8X8_ASM_BIAS_INIT
        "cbz %[pairs], 6f\n\t"
        TM_PP_LDA0("%[a]") TM_PP_LDW0("%[w]")
        "add x9, %[a], 64\n\t" "add x10, %[a], 128\n\t" "add x11, %[a], 192\n\t"
        "add x12, %[a], 256\n\t" "add x13, %[a], 320\n\t" "add x14, %[a], 384\n\t"
        "add x15, %[a], 448\n\t" "add x16, %[a], 512\n\t"
        "add x17, %[w], 64\n\t" "add x19, %[w], 128\n\t" "add x20, %[w], 192\n\t"
        "add x21, %[w], 256\n\t" "add x22, %[w], 320\n\t" "add x23, %[w], 384\n\t"
        "add x24, %[w], 448\n\t" "add x25, %[w], 512\n\t"
        "cbz %[turns], 3f\n\t"
        "subs x26, %[turns], 1\n\t"
        "csel x25, %[safe], x25, eq\n\t" /* one turn: it is the last */
        "2:\n\t" /* 16 channels: 8 pairs, 256 FMAs */
        TM_PP_PAIR0("x9", "x17") TM_PP_PAIR1("x10", "x19")
        TM_PP_PAIR0("x11", "x20") TM_PP_PAIR1("x12", "x21")
        TM_PP_PAIR0("x13", "x22") TM_PP_PAIR1("x14", "x23")
        TM_PP_PAIR0("x15", "x24") TM_PP_S1C0 TM_PP_LDW0("x25") TM_PP_S1C1
        TM_PP_LDA0("x16") /* the next turn's first A, in the integer break */
        "subs x26, x26, 1\n\t"
        TM_PP_STEP("x25") TM_PP_STEP("x9") TM_PP_STEP("x17") TM_PP_STEP("x10")
        TM_PP_STEP("x19") TM_PP_STEP("x11") TM_PP_STEP("x20") TM_PP_STEP("x12")
        TM_PP_STEP("x21") TM_PP_STEP("x13") TM_PP_STEP("x22") TM_PP_STEP("x14")
        TM_PP_STEP("x23") TM_PP_STEP("x15") TM_PP_STEP("x24") TM_PP_STEP("x16")
        "csel x25, %[safe], x25, eq\n\t" /* the next turn is the last */
        "b.pl 2b\n\t"
        "3:\n\t" /* leftover pairs: set 0 holds the next one, x9 / x17 point past it */
        "cbz %[rest], 6f\n\t"
        "4:\n\t"
        TM_PP_S0C0 TM_PP_S0C1
        "subs %[rest], %[rest], 1\n\t"
        "b.eq 6f\n\t"
        TM_PP_LDA0("x9") TM_PP_LDW0("x17")
        "add x9, x9, 64\n\t"
        "add x17, x17, 64\n\t"
        "b 4b\n\t"
        "6:\n\t"
        "tbz %[kc], 0, 7f\n\t" /* an odd last channel */
        "ld1 {v16.4s, v17.4s}, [%[a_odd]]\n\t"
        "ld1 {v20.4s, v21.4s}, [%[w_odd]]\n\t"
        TM_PP_S0C0
        "7:\n\t"
        : [l0] "=&w"(lo0), [h0] "=&w"(hi0), [l1] "=&w"(lo1), [h1] "=&w"(hi1),
          [l2] "=&w"(lo2), [h2] "=&w"(hi2), [l3] "=&w"(lo3), [h3] "=&w"(hi3),
          [l4] "=&w"(lo4), [h4] "=&w"(hi4), [l5] "=&w"(lo5), [h5] "=&w"(hi5),
          [l6] "=&w"(lo6), [h6] "=&w"(hi6), [l7] "=&w"(lo7), [h7] "=&w"(hi7),
          [w] "+r"(w), [rest] "+r"(rest)
        : [a] "r"(a), [pairs] "r"(pairs), [turns] "r"(turns), [safe] "r"(safe), [kc] "r"(kc),
          [a_odd] "r"(a_odd), [w_odd] "r"(w_odd)
        : "cc", "memory", "x9", "x10", "x11", "x12", "x13", "x14", "x15", "x16", "x17", "x19",
          "x20", "x21", "x22", "x23", "x24", "x25", "x26", "v16", "v17", "v18", "v19", "v20",
          "v21", "v22", "v23", "v24", "v25", "v26", "v27", "v28", "v29", "v30", "v31");
    TM_8X8_CLAMP_STORE(params, nc);
}
#else
/* Without GNU inline assembly: the same sums in C. */
void tm_f32_ppmm_8x8__aarch64_neonfma_cortex_a53(size_t mr, size_t nc, size_t kc, const float* a,
                                                 const float* w, float* c, size_t c_stride,
                                                 const tm_f32_minmax_params* params) {
    TM_8X8_OUTPUT_ROWS(c, mr, c_stride)
    float32x4_t lo0 = vld1q_f32(w), hi0 = vld1q_f32(w + 4);
    float32x4_t lo1 = lo0, hi1 = hi0, lo2 = lo0, hi2 = hi0, lo3 = lo0, hi3 = hi0;
    float32x4_t lo4 = lo0, hi4 = hi0, lo5 = lo0, hi5 = hi0, lo6 = lo0, hi6 = hi0, lo7 = lo0,
                hi7 = hi0;
    w += 8;
    for (size_t k = 0; k < kc; k++, a += 8, w += 8) {
        const float32x4_t al = vld1q_f32(a), ah = vld1q_f32(a + 4);
        const float32x4_t wl = vld1q_f32(w), wh = vld1q_f32(w + 4);
#define TM_PP_C_ROW(i, av, l)                      \
    lo##i = vfmaq_laneq_f32(lo##i, wl, av, l);     \
    hi##i = vfmaq_laneq_f32(hi##i, wh, av, l);
        TM_PP_C_ROW(0, al, 0) TM_PP_C_ROW(1, al, 1) TM_PP_C_ROW(2, al, 2) TM_PP_C_ROW(3, al, 3)
        TM_PP_C_ROW(4, ah, 0) TM_PP_C_ROW(5, ah, 1) TM_PP_C_ROW(6, ah, 2) TM_PP_C_ROW(7, ah, 3)
#undef TM_PP_C_ROW
    }
    TM_8X8_CLAMP_STORE(params, nc);
}
#endif
#endif
