/* What the aarch64 8x8 tiles (the out-of-order C igemm, the in-order assembly igemm and ppmm)
 * share: the row macro, the in-order tiles' asm start, the output row pointers and the
 * clamp-and-store epilogue. Include after arm_neon.h. */
#ifndef TINYMOBILE_F32_IGEMM_8X8_AARCH64_H
#define TINYMOBILE_F32_IGEMM_8X8_AARCH64_H

#define TM_ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7)

/* Inline-asm start of the in-order 8x8 tiles: the panel's 8 biases into row 0's accumulators
 * (%[l0] columns 0-3, %[h0] 4-7), w past them, and copied to rows 1-7. */
#define TM_8X8_ASM_BIAS_INIT                                          \
    "ldp %q[l0], %q[h0], [%[w]]\n\t"                                 \
    "add %[w], %[w], 32\n\t"                                         \
    "mov %[l1].16b, %[l0].16b\n\t" "mov %[h1].16b, %[h0].16b\n\t"   \
    "mov %[l2].16b, %[l0].16b\n\t" "mov %[h2].16b, %[h0].16b\n\t"   \
    "mov %[l3].16b, %[l0].16b\n\t" "mov %[h3].16b, %[h0].16b\n\t"   \
    "mov %[l4].16b, %[l0].16b\n\t" "mov %[h4].16b, %[h0].16b\n\t"   \
    "mov %[l5].16b, %[l0].16b\n\t" "mov %[h5].16b, %[h0].16b\n\t"   \
    "mov %[l6].16b, %[l0].16b\n\t" "mov %[h6].16b, %[h0].16b\n\t"   \
    "mov %[l7].16b, %[l0].16b\n\t" "mov %[h7].16b, %[h0].16b\n\t"

/* c0..c7: the output rows; rows past mr alias the last valid one. */
#define TM_8X8_OUTPUT_ROWS(c, mr, c_stride)              \
    float* c0 = (c);                                     \
    float* c1 = (mr) > 1 ? c0 + (c_stride) : c0;         \
    float* c2 = (mr) > 2 ? c1 + (c_stride) : c1;         \
    float* c3 = (mr) > 3 ? c2 + (c_stride) : c2;         \
    float* c4 = (mr) > 4 ? c3 + (c_stride) : c3;         \
    float* c5 = (mr) > 5 ? c4 + (c_stride) : c4;         \
    float* c6 = (mr) > 6 ? c5 + (c_stride) : c5;         \
    float* c7 = (mr) > 7 ? c6 + (c_stride) : c6;

/* Stores nc <= 8 floats of one row from two vectors. */
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

/* Clamp the accumulators lo0/hi0 .. lo7/hi7 and store them to c0..c7, highest row first: rows
 * past mr alias the last valid row, whose own values so land last. */
#define TM_8X8_CLAMP_ROW(i)                              \
    lo##i = vminq_f32(vmaxq_f32(lo##i, vmin), vmax);    \
    hi##i = vminq_f32(vmaxq_f32(hi##i, vmin), vmax);
#define TM_8X8_STORE_ROW(i) tm_store_row8(c##i, nc, lo##i, hi##i);
#define TM_8X8_CLAMP_STORE(params, nc)                                                         \
    do {                                                                                       \
        const float32x4_t vmin = vdupq_n_f32((params)->min), vmax = vdupq_n_f32((params)->max); \
        TM_ROWS(TM_8X8_CLAMP_ROW)                                                               \
        TM_8X8_STORE_ROW(7) TM_8X8_STORE_ROW(6) TM_8X8_STORE_ROW(5) TM_8X8_STORE_ROW(4)            \
        TM_8X8_STORE_ROW(3) TM_8X8_STORE_ROW(2) TM_8X8_STORE_ROW(1) TM_8X8_STORE_ROW(0)            \
    } while (0)

#endif
