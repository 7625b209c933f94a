/* tinymobile: every C prototype and parameter struct, in one place.
 *
 * The cffi declarations are generated from this file (lines between the TM_CDEF_BEGIN and
 * TM_CDEF_END markers, preprocessor lines removed), so keep that region plain C declarations.
 *
 * Conventions
 *   - Tensors are NHWC float32, rows contiguous; strides are in elements unless named *_bytes.
 *   - Kernels ("ukernels") do no allocation and no threading; operators (one tm_step each, run
 *     by tm_run_steps) split work over a thread pool and call the ukernels of one ISA table.
 *   - Every output is clamped to [params.min, params.max] (ReLU6 = [0, 6], ReLU = [0, inf],
 *     none = [-inf, inf]).
 */
#ifndef TINYMOBILE_H
#define TINYMOBILE_H

#include <stddef.h>
#include <stdint.h>

/* TM_CDEF_BEGIN */

/* ---- ISA selection ----------------------------------------------------------------------- */
/* Higher numbers are preferred when available. AVX512 (AVX-512F, x86): the GEMM runs 8x32 AVX-512
 * tiles (and its GEMV four 32-column panels), the other float kernels and the integer GEMM are the AVX2 ones (the integer depthwise is
 * AVX-512 where the CPU has AVX-512 BW and VL). */
/* avxvnni and avx512vnni: the avx2 and avx512 float kernels with the vpdpbusd integer GEMM. */
enum { TM_ISA_SCALAR = 0, TM_ISA_AVX2 = 1, TM_ISA_NEON = 2, TM_ISA_AVX512 = 3, TM_ISA_AVXVNNI = 4,
       TM_ISA_AVX512VNNI = 5, TM_ISA_COUNT = 6 };

/* The clamp of a float kernel's outputs, and for the GEMM tiles a prefetch hint: prefetch > 0 is
 * the distance in floats from each packed weight row to the same row of the next panel, which
 * the AVX-512 tiles prefetch as they stream their own (the pointwise operator sets it for the
 * first tiles of each panel, so the next panel's weights come from DRAM at the pace they are
 * used); other kernels ignore it. */
typedef struct { float min; float max; size_t prefetch; } tm_f32_minmax_params;

/* The GEMM ukernel, "indirect" (XNNPACK's igemm): C[mr x nc] = clamp(A * W + bias) for one
 * packed panel of W (nc <= nr columns), where the rows of A come through pointers: for each of
 * ks taps, gemm_mr row pointers (a[t * gemm_mr + r], rows past mr repeat a valid row), each
 * giving kc floats. A pointwise layer is ks = 1 (the pointers are its rows); a 3x3 convolution
 * is ks = 3, kc = 3 * cin (the pointers are the window rows: three taps' pixels each, see
 * conv3x3_op.c). w: nr biases, then ks * kc rows of nr
 * weights (tm_f32_gemm_pack); c: row r at c + r * c_stride; mr <= gemm_mr. */
typedef void (*tm_f32_igemm_ukernel_fn)(size_t mr, size_t nc, size_t kc, size_t ks,
                                        const float** a, const float* w, float* c,
                                        size_t c_stride, const tm_f32_minmax_params* params);

/* One row a (kc floats) times `panels` (1..4) consecutive packed GEMM panels of the table's
 * gemm_nr columns, panel_floats apart: c[0 .. nr * (panels - 1) + nc) = clamp(bias + a * W), the
 * last panel nc <= nr columns wide. Bit-identical to the table's GEMM ukernel on the same row. */
typedef void (*tm_f32_gemv_ukernel_fn)(size_t panels, size_t nc, size_t kc, const float* a,
                                       const float* w, size_t panel_floats, float* c,
                                       const tm_f32_minmax_params* params);

/* One output row of a depthwise 3x3 convolution over all channels.
 * rows[0..2]: the three input rows (a padded row points at a zero row of >= width*channels + 8
 * floats); in_width, pad_left and stride describe the horizontal geometry; out_width outputs.
 * w: packed by tm_f32_dwconv3x3_pack (blocks of 8 channels: 8 biases, then 9 taps of 8). */
typedef void (*tm_f32_dwconv3x3_row_fn)(size_t channels, size_t in_width, size_t out_width,
                                        size_t stride, size_t pad_left, const float** rows,
                                        const float* w, float* out,
                                        const tm_f32_minmax_params* params);

/* The GEMM ukernel on A pre-packed (XNNPACK's ppmm): as the igemm with one tap, the gemm_mr
 * rows of A read from `a`, kc x gemm_mr floats channel by channel (rows past mr repeat a valid
 * one, as the table's ppmm_pack writes them), readable 16 floats past its end. Same bits as the
 * igemm on the same rows. */
typedef void (*tm_f32_ppmm_ukernel_fn)(size_t mr, size_t nc, size_t kc, const float* a,
                                       const float* w, float* c, size_t c_stride,
                                       const tm_f32_minmax_params* params);
/* Packs rows (1..gemm_mr) rows of kc floats, row r at a + r * a_stride, for the ppmm ukernel
 * into packed (kc * gemm_mr floats). */
typedef void (*tm_f32_ppmm_pack_fn)(size_t rows, size_t kc, const float* a, size_t a_stride,
                                    float* packed);

/* out[c] = mean over pixels of in[p * channels + c], for p < pixels. */
typedef void (*tm_f32_avgpool_fn)(size_t pixels, size_t channels, const float* in, float* out);
/* out[c] = max over pixels of in[p * channels + c], for 1 <= p < pixels (finite inputs). */
typedef void (*tm_f32_maxpool_fn)(size_t pixels, size_t channels, const float* in, float* out);

typedef struct {
    const char* name;
    size_t gemm_mr;
    size_t gemm_nr;
    tm_f32_igemm_ukernel_fn igemm;
    tm_f32_dwconv3x3_row_fn dwconv3x3_row;
    tm_f32_avgpool_fn avgpool;
    tm_f32_gemv_ukernel_fn gemv;  /* NULL: single rows go through igemm */
    const char* igemm_name;       /* the igemm ukernel's function name (which one ran) */
    tm_f32_maxpool_fn maxpool;
    /* A second tile of gemm_mr_short (< gemm_mr) rows, the same gemm_nr and packing (NULL:
     * none): pointwise layers whose rows it pads no more than the main tile run on it (same
     * bits, see the igemm contract). */
    size_t gemm_mr_short;
    tm_f32_igemm_ukernel_fn igemm_short;
    const char* igemm_short_name;
    /* Full 3x3 convolution panels of at most conv_narrow_nr columns (the first layer's 8 or 16
     * output channels) run this tile of conv_narrow_mr rows (a multiple of gemm_mr: its rows are
     * that many consecutive gemm_mr-row indirection groups) on the igemm's packed weights
     * instead; NULL: the igemm runs every panel. */
    tm_f32_igemm_ukernel_fn conv_narrow;
    size_t conv_narrow_mr;
    size_t conv_narrow_nr;
    /* Pointwise layers on A pre-packed (NULL: none, the igemm reads the rows where they are):
     * each thread packs its row block once (ppmm_pack) into the step's workspace and runs ppmm
     * over it for every panel; 3x3 convolutions and the fused step keep the igemm. */
    tm_f32_ppmm_ukernel_fn ppmm;
    tm_f32_ppmm_pack_fn ppmm_pack;
    const char* ppmm_name;
} tm_f32_kernels;

/* The table of `isa`, or NULL when this build or this CPU cannot run it. On aarch64 the NEON
 * table's GEMM is scheduled for the kind of core tm_arm_core() says (an invalid TINYMOBILE_CORE:
 * NULL). */
const tm_f32_kernels* tm_f32_kernels_for(int isa);
/* Best ISA this CPU runs, unless TINYMOBILE_ISA=scalar|avx2|avx512|avxvnni|avx512vnni|neon names
 * another one it runs (an unknown or unsupported name returns -1; so does an invalid
 * TINYMOBILE_CORE). */
int tm_default_isa(void);

/* ARM cores (csrc/arm_cores.c): in-order (Cortex-A53/A55: Pi 3, Zero 2 W) or out-of-order
 * (Cortex-A72/A76: Pi 4, Pi 5). */
enum { TM_CORE_UNKNOWN = -2, TM_CORE_OUT_OF_ORDER = 0, TM_CORE_IN_ORDER = 1 };
/* The kind of core the float GEMM is scheduled for in this process: TINYMOBILE_CORE=a53|a55|
 * in-order or a72|a76|out-of-order when set (any other value: -1), else on aarch64 from the CPU
 * part of every processor in /proc/cpuinfo the process may run on (in-order if any of them is:
 * big.LITTLE threads migrate, and the in-order schedule costs the big cores nothing on the
 * llvm-mca model), out-of-order when none says. Builds without core variants (x86, ARMv7):
 * TM_CORE_OUT_OF_ORDER for any valid or unset TINYMOBILE_CORE. */
int tm_arm_core(void);
/* In-order if any processor listed in the cpuinfo file `path` (restricted to the ones this
 * process may run on when use_affinity) is an in-order ARM core, out-of-order if all listed are
 * other cores, TM_CORE_UNKNOWN if none gives a CPU part (or the file cannot be read). */
int tm_arm_core_from_cpuinfo(const char* path, int use_affinity);
/* The name of ISA `isa` ("scalar", "avx2", ...: what TINYMOBILE_ISA and the Python API take), or
 * NULL outside [0, TM_ISA_COUNT). */
const char* tm_isa_name(int isa);
/* Which ukernel a table runs for a part of a layer: the function's name ("tm_qu8_gemm_8x32__
 * avx512vnni"), NULL when the table has none there. f32 parts: TM_UK_GEMM (igemm), TM_UK_GEMV
 * (the lone-row GEMV), TM_UK_DWCONV, TM_UK_AVGPOOL, TM_UK_CONV_NARROW (the narrow-panel tile of
 * a full 3x3 convolution); quantized: TM_UK_GEMM (dot_gemm where the
 * table has one, else gemm), TM_UK_CONV_NARROW (conv_narrow) and TM_UK_DWCONV (the quantized pool
 * is plain C in avgpool_op.c). */
enum { TM_UK_GEMM = 0, TM_UK_GEMV = 1, TM_UK_DWCONV = 2, TM_UK_AVGPOOL = 3, TM_UK_CONV_NARROW = 4 };
/* Fused multiply-add peak probe: GFLOP/s one core reaches on `isa`'s vector FMA loop. */
double tm_fma_peak_gflops(int isa, double seconds);

/* ---- thread pool ------------------------------------------------------------------------- */
typedef struct tm_pool tm_pool;
/* threads >= 1 (the calling thread counts as one). NULL on failure. */
tm_pool* tm_pool_create(size_t threads);
void tm_pool_destroy(tm_pool* pool);
size_t tm_pool_threads(const tm_pool* pool);

/* ---- weight packing (once, at load) ------------------------------------------------------ */
/* Floats needed for a packed k x n GEMM weight matrix for table `k`. */
size_t tm_f32_gemm_packed_size(const tm_f32_kernels* kern, size_t k, size_t n);
/* w: k x n row-major (HWIO flattened for a 3x3 conv), b: n biases (NULL = zeros). */
void tm_f32_gemm_pack(const tm_f32_kernels* kern, size_t k, size_t n, const float* w,
                      const float* b, float* packed);
size_t tm_f32_dwconv3x3_packed_size(size_t channels);
/* w: (3, 3, channels), b: channels. */
void tm_f32_dwconv3x3_pack(size_t channels, const float* w, const float* b, float* packed);

/* ---- quantized: uint8 activations ("qu8") --------------------------------------------------
 * All quantized kernels work on uint8 activations; an int8 model runs in the same domain with
 * every activation xor 0x80 (x_u8 = x_i8 + 128, zero points + 128): the products (x - x_zp) are
 * unchanged. Weights enter as w' = w - w_zero_point (int16, exact for uint8 and int8 weights);
 * packing folds -x_zp * sum(w') into the bias, so padding reads x_zp (never 0).
 * Requantization is TFLite's exactly: MultiplyByQuantizedMultiplier (SaturatingRoundingDoubling-
 * HighMul, then RoundingDivideByPOT) per output channel, + output zero point, clamp. */
typedef struct { int32_t output_zero_point; int32_t min; int32_t max; } tm_qu8_requant_params;

/* C[mr x nc] = requant(A[mr x kc] * W' + bias') for one packed panel (nc <= nr columns).
 * a: int16 rows (zero-extended activations), row r at a + r * a_stride, kc even;
 * w: panel = nr int32 biases, nr int32 multipliers, nr int32 shifts, then kc/2 groups of
 * nr x 2 int16 (w'[2j][col], w'[2j+1][col] adjacent); c: uint8, row r at c + r * c_stride. */
typedef void (*tm_qu8_gemm_ukernel_fn)(size_t mr, size_t nc, size_t kc, const int16_t* a,
                                       size_t a_stride, const void* w, uint8_t* c,
                                       size_t c_stride, const tm_qu8_requant_params* params);

/* One output row of a quantized depthwise 3x3 convolution over all channels. rows[0..2]: input
 * rows (a row outside the image points at a row of x_zp); zp_pixel: `channels` bytes of x_zp,
 * read for taps left or right of the image. w: packed as int32 bias'[cp], multiplier[cp],
 * shift[cp], then 9 taps of cp int32 weights (cp = channels rounded up to 8). */
typedef void (*tm_qu8_dwconv3x3_row_fn)(size_t channels, size_t in_width, size_t out_width,
                                        size_t stride, size_t pad_left, const uint8_t** rows,
                                        const uint8_t* zp_pixel, const int32_t* w, uint8_t* out,
                                        const tm_qu8_requant_params* params);

/* Dot-product GEMM (aarch64 udot, x86 vpdpbusd): a = uint8 rows, kc a multiple of the table's
 * dot_kr (16 for udot, whose rows are zero padded; 4 for vpdpbusd), row_sums[r] = sum of row
 * r's bytes; w: panel = nr int32 bias', nr multipliers, nr shifts, nr weight offsets z (for
 * vpdpbusd then 5 x nr requantization constants, see tm_qu8_gemm_pack), then kc/4 groups of
 * nr x 4 weight bytes w' + z (k-quads per column): uint8 for udot (z = -min w'), int8 for
 * vpdpbusd (z = 0 where the column's w' fit int8, else -min w' - 128; row_sums may then be
 * NULL when every z is 0).
 * acc = bias' + sum(a * (w' + z)) - z * row_sum, then the same requantization. */
typedef void (*tm_qu8_dot_gemm_fn)(size_t mr, size_t nc, size_t kc, const uint8_t* a,
                                   size_t a_stride, const int32_t* row_sums, const void* w,
                                   uint8_t* c, size_t c_stride,
                                   const tm_qu8_requant_params* params);

/* One row a (kc bytes, a multiple of dot_kr) times `panels` (1..4) consecutive dot_gemm panels
 * panel_bytes apart: c[0 .. nr * (panels - 1) + nc) (the last panel nc <= nr columns), row_sum
 * as for dot_gemm (NULL: every z is 0). The same bytes as the dot_gemm tile on that row. */
typedef void (*tm_qu8_dot_gemv_fn)(size_t panels, size_t nc, size_t kc, const uint8_t* a,
                                   const int32_t* row_sum, const void* w, size_t panel_bytes,
                                   uint8_t* c, const tm_qu8_requant_params* params);

/* gemm_mr x gemm_nr is the tile of `gemm`, or of `dot_gemm` when that is not NULL (then the
 * GEMM operators use it instead of `gemm`; dot_kr and dot_signed say its k padding and weight
 * byte encoding). */
typedef struct {
    const char* name;
    size_t gemm_mr;
    size_t gemm_nr;
    tm_qu8_gemm_ukernel_fn gemm;
    tm_qu8_dwconv3x3_row_fn dwconv3x3_row;
    tm_qu8_dot_gemm_fn dot_gemm;
    size_t dot_kr;
    int dot_signed;
    /* Full 3x3 convolution panels of at most conv_narrow_nr columns (the first layer's 8 output
     * channels at alpha 0.25) run this dot-product tile of conv_narrow_mr rows (a multiple of
     * gemm_mr) on dot_gemm's packing instead; NULL: dot_gemm runs every panel. */
    tm_qu8_dot_gemm_fn conv_narrow;
    size_t conv_narrow_mr;
    size_t conv_narrow_nr;
    /* A dot-product tile of dot_short_mr (< gemm_mr) rows on dot_gemm's packing (NULL: none):
     * pointwise layers whose rows it pads less than gemm_mr run on it. */
    tm_qu8_dot_gemm_fn dot_short;
    size_t dot_short_mr;
    /* Lone rows of a pointwise layer (batch-1 fully connected) four panels at a time (NULL:
     * they run on the GEMM tiles). */
    tm_qu8_dot_gemv_fn dot_gemv;
} tm_qu8_kernels;

/* The quantized table of `isa`, or NULL when this build or this CPU cannot run it. On aarch64
 * CPUs with the dot-product extension the NEON table uses udot unless TINYMOBILE_NO_DOTPROD is
 * set (to test the vmlal path there). On x86 the avx512vnni and avxvnni tables use vpdpbusd. */
const tm_qu8_kernels* tm_qu8_kernels_for(int isa);
const char* tm_f32_ukernel_name(const tm_f32_kernels* kern, int part);
const char* tm_qu8_ukernel_name(const tm_qu8_kernels* kern, int part);
/* The igemm tile a float pointwise layer of m rows (batch x pixels) runs on: the table's main
 * one, or its short one where that pads no more rows. */
const char* tm_f32_pointwise_igemm_name(const tm_f32_kernels* kern, size_t m);
/* The same for an integer pointwise layer: the table's GEMM tile, or its short one. */
const char* tm_qu8_pointwise_gemm_name(const tm_qu8_kernels* kern, size_t m);

/* Bytes of a packed k x n GEMM weight matrix (k rounded up to even). */
size_t tm_qu8_gemm_packed_size(const tm_qu8_kernels* kern, size_t k, size_t n);
/* w: k x n row-major int16 w' (HWIO flattened for a 3x3 conv); b, multiplier, shift: n each. */
void tm_qu8_gemm_pack(const tm_qu8_kernels* kern, size_t k, size_t n, const int16_t* w,
                      const int32_t* b, int32_t input_zero_point, const int32_t* multiplier,
                      const int32_t* shift, void* packed);
size_t tm_qu8_dwconv3x3_packed_size(size_t channels);
/* w: (3, 3, channels) int16 w'; b, multiplier, shift: channels each. */
void tm_qu8_dwconv3x3_pack(size_t channels, const int16_t* w, const int32_t* b,
                           int32_t input_zero_point, const int32_t* multiplier,
                           const int32_t* shift, void* packed);

/* TFLite's MultiplyByQuantizedMultiplier on n int32 values (for tests of the rounding). */
void tm_qu8_requantize_scalar(size_t n, const int32_t* acc, int32_t multiplier, int32_t shift,
                              int32_t* out);

/* ---- operators: one step struct for every layer kind and dtype ---------------------------
 * A step is one operator with its geometry, buffers and output parameters, filled once per plan
 * (XNNPACK's create -> reshape -> setup -> run; TFLite's prepare once, eval many):
 *   1. fill a tm_step (kind, dtype, the table of that dtype, pool, shapes, in / packed / out);
 *   2. tm_step_workspace_size: bytes of the workspace it needs (indirection table, zero rows,
 *      per-thread scratch; 0 for none); the caller allocates it, 64-byte aligned, and owns it;
 *   3. tm_step_setup: hands the workspace over and initialises it (pointers into `in`, zero
 *      rows); after this the step reads and writes only in, packed, out and its workspace, so
 *      steps with different workspaces and outputs may run concurrently;
 *   4. tm_run_steps: runs a list of steps in order in one call (a forward pass).
 * Fields by kind (the others are ignored):
 *   POINTWISE: batch = rows m, cin = k, cout = n ((m, k) -> (m, n));
 *   CONV3X3:   batch, h, w, cin, cout, stride, pad_top, pad_left, oh, ow;
 *   DWCONV3X3: batch, h, w, cin (channels), stride, pad_top, pad_left, oh, ow;
 *   AVGPOOL:   batch, h * w pixels, cin channels ((batch, h, w, c) -> (batch, c));
 *   MAXPOOL:   the same (TM_F32 only).
 *   FUSED:     TM_F32 only: batch, in, out, and members[0..member_count): 2..TM_FUSED_MAX set-up
 *              float32 steps that form a chain (a 3x3 convolution only first, depthwise 3x3,
 *              pointwise over maps, each one's output shape the next one's input), in =
 *              members[0]'s in, out = the last one's out. It runs them row by row: each
 *              intermediate row lives in a ring of a few rows in the fused step's workspace,
 *              never in the members' own outputs, and each output is the member's own bits.
 * TM_F32 steps: float32 in / out, packed by tm_f32_*_pack for `f32`, clamp [f32_min, f32_max].
 * TM_QU8 steps: uint8 in / out, packed by tm_qu8_*_pack for `qu8`, and `quant`:
 *   input_zero_point (read where a window leaves the image), output_zero_point, [min, max];
 *   AVGPOOL also pool_mode, value_offset, multiplier, shift:
 *     TM_POOL_AVERAGE_POOL_2D, TFLite AVERAGE_POOL_2D: s = sum(x) - pixels * value_offset, out =
 *       round_half_away(s / pixels) + value_offset (value_offset: 0 for uint8 models, 128 for
 *       int8 ones in this domain);
 *     TM_POOL_MEAN, TFLite int8 MEAN: out = MBQM(sum(x - input_zero_point), multiplier, shift)
 *       + output_zero_point, with multiplier / shift already divided by pixels;
 *     then clamped to [min, max]. */
enum { TM_OP_POINTWISE = 1, TM_OP_CONV3X3 = 2, TM_OP_DWCONV3X3 = 3, TM_OP_AVGPOOL = 4,
       TM_OP_MAXPOOL = 5, TM_OP_FUSED = 6, TM_OP_COUNT = 7 };
enum { TM_F32 = 0, TM_QU8 = 1, TM_DTYPE_COUNT = 2 };
/* tm_qu8_step_params.pool_mode: how an integer global average pool rounds. */
enum { TM_POOL_AVERAGE_POOL_2D = 0, TM_POOL_MEAN = 1 };
/* Most members of a FUSED step. */
enum { TM_FUSED_MAX = 8 };
/* Status of tm_step_setup / tm_run_steps (tm_status_string gives a message). */
enum { TM_OK = 0, TM_ERROR_UNKNOWN_STEP = 1, TM_ERROR_NO_KERNELS = 2, TM_ERROR_NO_WORKSPACE = 3,
       TM_ERROR_BAD_MEMBERS = 4 };

typedef struct {
    int32_t input_zero_point, output_zero_point, min, max;
    int32_t pool_mode, value_offset, multiplier, shift;
} tm_qu8_step_params;

typedef struct tm_step_s {
    int kind;   /* TM_OP_* */
    int dtype;  /* TM_F32 or TM_QU8 */
    const tm_f32_kernels* f32;  /* the table of a TM_F32 step */
    const tm_qu8_kernels* qu8;  /* the table of a TM_QU8 step */
    tm_pool* pool;              /* NULL: the calling thread only */
    size_t batch, h, w, cin, cout, stride, pad_top, pad_left, oh, ow;
    const void* in;
    const void* packed;
    void* out;
    void* workspace;            /* set by tm_step_setup */
    float f32_min, f32_max;
    tm_qu8_step_params quant;
    const struct tm_step_s* const* members; /* FUSED: the layers it runs, in order */
    size_t member_count;
} tm_step;

/* Bytes of workspace `step` needs (0: none), or (size_t)-1 for an unknown kind / dtype. */
size_t tm_step_workspace_size(const tm_step* step);
/* Stores `workspace` (>= tm_step_workspace_size bytes, 64-byte aligned; NULL when that is 0)
 * in the step and initialises it. TM_OK, or an error (nothing written). */
int tm_step_setup(tm_step* step, void* workspace);
/* Runs steps[0..count) in order; TM_OK, or the error of the first step that is not runnable
 * (unknown kind or dtype, no kernel table, no workspace), in which case none runs. */
int tm_run_steps(const tm_step* const* steps, size_t count);
const char* tm_status_string(int status);

/* dst[i] = src[i] for i < n; returns how many of the values are NaN or infinite (input check
 * and copy into the plan's input buffer in one pass). */
size_t tm_f32_copy_count_nonfinite(size_t n, const float* src, float* dst);

/* ---- image preprocessing (csrc/image/) ---------------------------------------------------
 * Bilinear resize of a uint8 RGB image (rows src_row_bytes apart, pixels src_pixel_bytes apart:
 * 3 for RGB, 4 for Pillow's RGBX) to out (out_h, out_w, 3) float32, normalised
 * (x - mean[c]) / std[c] in float64 (norm_f64) or float32 arithmetic. Output row y blends source
 * rows y0[y], y1[y] with weight wy[y] on y1; output column x blends source columns x0[x], x1[x]
 * with weight wx[x] on x1. Indices must lie inside the image (the caller computes them).
 * Bit-identical to preprocess.resize_bilinear + normalisation in NumPy (no fused multiply-adds).
 * With q_out (quant not NULL), the result is quantized into q_out (out_h, out_w, 3) bytes as
 * tm_f32_quantize__scalar does, and out is a scratch row of out_w * 3 floats. */
typedef struct {
    float scale;
    int32_t zero_point, min, max;
} tm_quantize_params;
void tm_u8_resize_bilinear_rgb__scalar(size_t out_h, size_t out_w, const uint8_t* src,
                                       size_t src_row_bytes, size_t src_pixel_bytes,
                                       const int32_t* y0, const int32_t* y1, const float* wy,
                                       const int32_t* x0, const int32_t* x1, const float* wx,
                                       const double* mean, const double* std, int norm_f64,
                                       float* out, const tm_quantize_params* quant,
                                       uint8_t* q_out);
/* out[i] = clamp(round_half_away(x[i] / scale) + zero_point, qmin, qmax) as one byte (uint8,
 * or an int8's bits), the division in float32: fixedpoint.quantize. */
void tm_f32_quantize__scalar(size_t n, const float* x, float scale, int32_t zero_point,
                             int32_t qmin, int32_t qmax, uint8_t* out);

/* TM_CDEF_END */

#endif
