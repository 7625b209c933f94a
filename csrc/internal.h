/* Declarations shared by the C sources but not exported to Python. */
#ifndef TINYMOBILE_INTERNAL_H
#define TINYMOBILE_INTERNAL_H

#include "tinymobile.h"

#if defined(__x86_64__) || defined(__i386__) || defined(_M_X64)
#define TM_ARCH_X86 1
#define TM_TARGET_AVX2 __attribute__((target("avx2,fma")))
#define TM_TARGET_AVX512 __attribute__((target("avx512f,avx2,fma")))
/* The integer dot-product kernels: vpdpbusd on zmm (with byte masks: BW, VL), or on ymm with
 * the VEX encoding of CPUs that have AVX-VNNI without AVX-512 (Alder Lake and later). */
#define TM_TARGET_AVX512VNNI __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma")))
#define TM_TARGET_AVX512BW __attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma")))
#define TM_TARGET_AVXVNNI __attribute__((target("avxvnni,avx2,fma")))
#endif
/* NEON kernels: on aarch64 NEON is baseline. On 32-bit ARM the extension is built with the
 * compiler's defaults (Raspberry Pi OS: ARMv6 + VFPv2, which Pi 1 / Zero run), so only the NEON
 * kernel files are compiled for NEON with FMA: each opens with TM_NEON_BEGIN (a GCC target
 * pragma) before it includes arm_neon.h, and dispatch.c picks them only where the CPU reports
 * NEON and VFPv4 (getauxval(AT_HWCAP); TM_NEON_AT_RUNTIME). Other 32-bit compilers get NEON
 * only where their own flags give NEON with FMA. */
#if defined(__aarch64__) && defined(__ARM_NEON)
#define TM_ARCH_NEON 1
#define TM_NEON_BEGIN
#define TM_NEON_END
#elif defined(__arm__) && defined(__linux__) && defined(__ARM_FP) && \
    ((defined(__GNUC__) && !defined(__clang__)) || (defined(__ARM_NEON) && defined(__ARM_FEATURE_FMA)))
#define TM_ARCH_NEON 1
#define TM_NEON_AT_RUNTIME 1
#if defined(__GNUC__) && !defined(__clang__)
#define TM_NEON_BEGIN _Pragma("GCC push_options") _Pragma("GCC target(\"fpu=neon-vfpv4\")")
#define TM_NEON_END _Pragma("GCC pop_options")
#else
#define TM_NEON_BEGIN
#define TM_NEON_END
#endif
#endif

/* Largest gemm_mr of any table (the aarch64 NEON and AVX-512 tiles). */
#define TM_MAX_MR 8
#define TM_ROUND_UP(x, m) ((((x) + (m) - 1) / (m)) * (m))
#define TM_MIN(a, b) ((a) < (b) ? (a) : (b))
#define TM_MAX(a, b) ((a) > (b) ? (a) : (b))
/* Packed depthwise weights: channels in blocks of TM_CHANNEL_TILE (zero-padded); each block holds
 * its biases, then tap 0..8 (tap = ky * 3 + kx), TM_CHANNEL_TILE floats each, so one block's
 * weights are contiguous. TM_DW_W(w, c, t): channel c's bias (t = 0) or tap t - 1. */
#define TM_CHANNEL_TILE 8
#define TM_DW_BLOCK_FLOATS (10 * TM_CHANNEL_TILE)
#define TM_DW_W(w, c, t) \
    ((w) + ((c) / TM_CHANNEL_TILE) * TM_DW_BLOCK_FLOATS + (t) * TM_CHANNEL_TILE + (c) % TM_CHANNEL_TILE)

/* Runs fn(ctx, thread_index, task) for every task in [0, tasks) on the pool's threads (the caller
 * included); returns when all are done. pool == NULL runs them on the caller, thread_index 0. */
typedef void (*tm_task_fn)(void* ctx, size_t thread, size_t task);
void tm_pool_parallelize(tm_pool* pool, tm_task_fn fn, void* ctx, size_t tasks);

/* ---- work partitioning (every threaded operator) ----------------------------------------
 * A GEMM of m rows times `panels` packed weight panels, cut into row_blocks x col_blocks tasks
 * (task = cb * row_blocks + rb). Row blocks are whole tiles of mr rows, as even in count as they
 * can be, at most max_block_rows rows each (so a block of A stays in L2 while every panel of W
 * streams past it). With several threads there are at least 4 tasks per thread where the shape
 * allows: rows cut finer when the weights are small (weight_bytes <= l2_budget) or the rows are
 * plentiful, and there is a tile for every thread; else the panels cut into column blocks (late
 * layers: few pixels, large weights; a lone row). */
typedef struct { size_t m, mr, tiles, row_blocks, col_blocks, panels, panels_per_block; } tm_gemm_split;
tm_gemm_split tm_gemm_partition(size_t m, size_t mr, size_t panels, size_t max_block_rows,
                                size_t weight_bytes, size_t l2_budget, size_t threads);
/* Rows [*m0, *m1) and panels [*p0, *p1) of task `task`. */
static inline void tm_gemm_task(const tm_gemm_split* s, size_t task, size_t* m0, size_t* m1,
                                size_t* p0, size_t* p1) {
    const size_t rb = task % s->row_blocks, cb = task / s->row_blocks;
    *m0 = rb * s->tiles / s->row_blocks * s->mr;
    *m1 = TM_MIN(s->m, (rb + 1) * s->tiles / s->row_blocks * s->mr);
    *p0 = cb * s->panels_per_block;
    *p1 = TM_MIN(s->panels, *p0 + s->panels_per_block);
}
/* Tasks of `per_task` items each (the last one shorter) for `items` items. */
static inline size_t tm_task_count(size_t items, size_t per_task) {
    return (items + per_task - 1) / per_task;
}

/* ---- operators: one file per layer kind, float32 and quantized entry points -------------
 * workspace: bytes the step needs; setup: initialise it (step->workspace set); run: the
 * operator. NULL setup: nothing to initialise. Dispatched by kind and dtype in steps.c. */
size_t tm_f32_pointwise_workspace(const tm_step* s);
void tm_f32_pointwise_run(const tm_step* s);
size_t tm_qu8_pointwise_workspace(const tm_step* s);
void tm_qu8_pointwise_run(const tm_step* s);
size_t tm_f32_conv3x3_workspace(const tm_step* s);
void tm_f32_conv3x3_setup(const tm_step* s);
void tm_f32_conv3x3_run(const tm_step* s);
size_t tm_qu8_conv3x3_workspace(const tm_step* s);
void tm_qu8_conv3x3_run(const tm_step* s);
size_t tm_f32_dwconv3x3_workspace(const tm_step* s);
void tm_f32_dwconv3x3_setup(const tm_step* s);
void tm_f32_dwconv3x3_run(const tm_step* s);
size_t tm_qu8_dwconv3x3_workspace(const tm_step* s);
void tm_qu8_dwconv3x3_setup(const tm_step* s);
void tm_qu8_dwconv3x3_run(const tm_step* s);
size_t tm_f32_avgpool_workspace(const tm_step* s);
void tm_f32_avgpool_run(const tm_step* s);
size_t tm_qu8_avgpool_workspace(const tm_step* s);
void tm_qu8_avgpool_run(const tm_step* s);
size_t tm_f32_maxpool_workspace(const tm_step* s);
void tm_f32_maxpool_run(const tm_step* s);
size_t tm_f32_fused_workspace(const tm_step* s); /* (size_t)-1: the members are no chain */
void tm_f32_fused_setup(const tm_step* s);
void tm_f32_fused_run(const tm_step* s);

/* Pieces of the float operators the fused step runs row by row (each on the calling thread):
 * pixels [0, count) of a 3x3 convolution's indirection from `ind`, a group boundary
 * (tm_f32_conv3x3_group pixels) of a table laid out as tm_f32_conv3x3_setup lays it; the
 * pointer to window row ky of pixel `pixel` in a set-up convolution step's own table; its edge
 * rows filled from its input; rows [0, m) of a pointwise step from a into c. */
void tm_f32_conv3x3_pixels(const tm_f32_kernels* kern, size_t cin, size_t cout,
                           const float** ind, size_t count, const float* packed, float* out,
                           const tm_f32_minmax_params* params);
size_t tm_f32_conv3x3_group(const tm_f32_kernels* kern);
const float* tm_f32_conv3x3_window_row(const tm_step* s, size_t pixel, size_t ky);
void tm_f32_conv3x3_fill_edges(const tm_step* s);
void tm_f32_pointwise_rows(const tm_step* s, const float* a, size_t m, float* c);

/* ---- ukernels, one per file of the same name -------------------------------------------- */
void tm_f32_igemm_4x4__scalar(size_t, size_t, size_t, size_t, const float**, const float*, float*,
                              size_t, const tm_f32_minmax_params*);
void tm_f32_dwconv3x3_row__scalar(size_t, size_t, size_t, size_t, size_t, const float**,
                                  const float*, float*, const tm_f32_minmax_params*);
void tm_f32_avgpool__scalar(size_t, size_t, const float*, float*);
void tm_f32_maxpool__scalar(size_t, size_t, const float*, float*);

#ifdef TM_ARCH_X86
void tm_f32_igemm_6x16__avx2(size_t, size_t, size_t, size_t, const float**, const float*, float*,
                             size_t, const tm_f32_minmax_params*);
void tm_f32_dwconv3x3_row__avx2(size_t, size_t, size_t, size_t, size_t, const float**,
                                const float*, float*, const tm_f32_minmax_params*);
void tm_f32_dwconv3x3_row__avx512(size_t, size_t, size_t, size_t, size_t, const float**,
                                  const float*, float*, const tm_f32_minmax_params*);
void tm_f32_avgpool__avx2(size_t, size_t, const float*, float*);
void tm_f32_maxpool__avx2(size_t, size_t, const float*, float*);
void tm_f32_igemm_8x32__avx512(size_t, size_t, size_t, size_t, const float**, const float*, float*,
                               size_t, const tm_f32_minmax_params*);
void tm_f32_igemm_7x32__avx512(size_t, size_t, size_t, size_t, const float**, const float*, float*,
                               size_t, const tm_f32_minmax_params*);
void tm_f32_igemm_16x16__avx512(size_t, size_t, size_t, size_t, const float**, const float*,
                                float*, size_t, const tm_f32_minmax_params*);
void tm_f32_gemv_4x16__avx2(size_t, size_t, size_t, const float*, const float*, size_t, float*,
                            const tm_f32_minmax_params*);
void tm_f32_gemv_4x32__avx512(size_t, size_t, size_t, const float*, const float*, size_t, float*,
                              const tm_f32_minmax_params*);
#endif

#ifdef TM_ARCH_NEON
void tm_f32_igemm_4x12__neonfma(size_t, size_t, size_t, size_t, const float**, const float*,
                                float*, size_t, const tm_f32_minmax_params*);
#if defined(__aarch64__)
void tm_f32_igemm_8x8__aarch64_neonfma(size_t, size_t, size_t, size_t, const float**,
                                       const float*, float*, size_t,
                                       const tm_f32_minmax_params*);
void tm_f32_igemm_8x8__aarch64_neonfma_cortex_a53(size_t, size_t, size_t, size_t, const float**,
                                                  const float*, float*, size_t,
                                                  const tm_f32_minmax_params*);
void tm_f32_ppmm_8x8__aarch64_neonfma_cortex_a53(size_t, size_t, size_t, const float*,
                                                 const float*, float*, size_t,
                                                 const tm_f32_minmax_params*);
void tm_f32_ppmm_pack_8__aarch64_neon(size_t, size_t, const float*, size_t, float*);
void tm_f32_dwconv3x3_row__aarch64_neonfma_cortex_a53(size_t, size_t, size_t, size_t, size_t,
                                                      const float**, const float*, float*,
                                                      const tm_f32_minmax_params*);
#endif
void tm_f32_dwconv3x3_row__neon(size_t, size_t, size_t, size_t, size_t, const float**,
                                const float*, float*, const tm_f32_minmax_params*);
void tm_f32_avgpool__neon(size_t, size_t, const float*, float*);
void tm_f32_maxpool__neon(size_t, size_t, const float*, float*);
#endif


/* ---- quantized ukernels ---------------------------------------------------------------- */
void tm_qu8_gemm_4x4__scalar(size_t, size_t, size_t, const int16_t*, size_t, const void*,
                             uint8_t*, size_t, const tm_qu8_requant_params*);
void tm_qu8_dwconv3x3_row__scalar(size_t, size_t, size_t, size_t, size_t, const uint8_t**,
                                  const uint8_t*, const int32_t*, uint8_t*,
                                  const tm_qu8_requant_params*);
#ifdef TM_ARCH_X86
void tm_qu8_gemm_6x16__avx2(size_t, size_t, size_t, const int16_t*, size_t, const void*,
                            uint8_t*, size_t, const tm_qu8_requant_params*);
void tm_qu8_dwconv3x3_row__avx2(size_t, size_t, size_t, size_t, size_t, const uint8_t**,
                                const uint8_t*, const int32_t*, uint8_t*,
                                const tm_qu8_requant_params*);
void tm_qu8_dwconv3x3_row__avx512(size_t, size_t, size_t, size_t, size_t, const uint8_t**,
                                  const uint8_t*, const int32_t*, uint8_t*,
                                  const tm_qu8_requant_params*);
void tm_qu8_dwconv3x3_row__avx512vnni(size_t, size_t, size_t, size_t, size_t, const uint8_t**,
                                      const uint8_t*, const int32_t*, uint8_t*,
                                      const tm_qu8_requant_params*);
void tm_qu8_gemm_6x16__avxvnni(size_t, size_t, size_t, const uint8_t*, size_t, const int32_t*,
                                   const void*, uint8_t*, size_t, const tm_qu8_requant_params*);
void tm_qu8_gemm_16x8__avx512vnni(size_t, size_t, size_t, const uint8_t*, size_t,
                                  const int32_t*, const void*, uint8_t*, size_t,
                                  const tm_qu8_requant_params*);
void tm_qu8_gemv_4x32__avx512vnni(size_t, size_t, size_t, const uint8_t*, const int32_t*,
                                  const void*, size_t, uint8_t*, const tm_qu8_requant_params*);
void tm_qu8_gemm_7x32__avx512vnni(size_t, size_t, size_t, const uint8_t*, size_t,
                                  const int32_t*, const void*, uint8_t*, size_t,
                                  const tm_qu8_requant_params*);
void tm_qu8_gemm_8x32__avx512vnni(size_t, size_t, size_t, const uint8_t*, size_t,
                                      const int32_t*, const void*, uint8_t*, size_t,
                                      const tm_qu8_requant_params*);
#endif
/* int32 fields of nr each before the weights in a vpdpbusd (dot_signed) GEMM panel: bias',
 * multiplier, shift, z, then 8 of requantization constants (tm_qu8_gemm_pack). */
#define TM_QU8_DOT_HEAD_FIELDS 12
/* Packed depthwise weights, the 64-lane k-quad blocks of the vpdpbusd kernel (see
 * tm_qu8_dw_quad_pack): their byte offset in the packed buffer, their sizes, and how many
 * there are: one per 64 channels, or for fewer channels, a multiple of 8, one block of
 * 64 / channels pixels (rounded down; the channels' weights repeated, lanes past them unused). */
size_t tm_qu8_dw_quad_offset(size_t channels);
#define TM_QU8_DW_QUAD_VECTOR_BYTES (11 * 64 + 3 * 64)
#define TM_QU8_DW_QUAD_BLOCK_BYTES (64 + 4 * TM_QU8_DW_QUAD_VECTOR_BYTES)
static inline size_t tm_qu8_dw_quad_blocks(size_t channels) {
    return channels >= 64 ? channels / 64 : (channels > 0 && channels % 8 == 0);
}
/* Bytes of one packed GEMM panel (gemm_nr columns) of k rows. */
size_t tm_qu8_gemm_panel_bytes(const tm_qu8_kernels* kern, size_t k);
/* 1 when some column of a packed dot_gemm matrix has a weight offset z != 0 (then the kernels
 * need the activation row sums): the flag tm_qu8_gemm_pack leaves after the panels. */
int tm_qu8_gemm_packed_needs_row_sums(const tm_qu8_kernels* kern, size_t k, size_t n,
                                      const void* packed);
/* sums[i] = sum of the k bytes of row i (rows at a + i * stride). */
void tm_qu8_row_sums(const uint8_t* a, size_t rows, size_t k, size_t stride, int32_t* sums);
#ifdef TM_ARCH_NEON
void tm_qu8_gemm_4x8__neon(size_t, size_t, size_t, const int16_t*, size_t, const void*,
                           uint8_t*, size_t, const tm_qu8_requant_params*);
void tm_qu8_dwconv3x3_row__neon(size_t, size_t, size_t, size_t, size_t, const uint8_t**,
                                const uint8_t*, const int32_t*, uint8_t*,
                                const tm_qu8_requant_params*);
#endif
/* udot kernels: GCC on aarch64 (compiled for armv8.2-a+dotprod, chosen at run time). */
#if defined(TM_ARCH_NEON) && defined(__aarch64__) && defined(__GNUC__) && !defined(__clang__)
#define TM_HAVE_NEONDOT 1
void tm_qu8_gemm_8x8__neondot(size_t, size_t, size_t, const uint8_t*, size_t, const int32_t*,
                              const void*, uint8_t*, size_t, const tm_qu8_requant_params*);
#endif

#endif
