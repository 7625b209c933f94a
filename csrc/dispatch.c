/* Kernel tables per ISA and run-time selection of the best one this CPU runs. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static const tm_f32_kernels tm_scalar_table = {
    "scalar", 4, 4, tm_f32_igemm_4x4__scalar,
    tm_f32_dwconv3x3_row__scalar, tm_f32_avgpool__scalar, NULL, "tm_f32_igemm_4x4__scalar",
    tm_f32_maxpool__scalar,
    0, NULL, NULL, /* no short tile */
    NULL, 0, 0,    /* no narrow conv tile */
    NULL, NULL, NULL, /* no packed-A GEMM */
};

#ifdef TM_ARCH_X86
static const tm_f32_kernels tm_avx2_table = {
    "avx2", 6, 16, tm_f32_igemm_6x16__avx2,
    tm_f32_dwconv3x3_row__avx2, tm_f32_avgpool__avx2, tm_f32_gemv_4x16__avx2,
    "tm_f32_igemm_6x16__avx2", tm_f32_maxpool__avx2,
    0, NULL, NULL, /* no short tile */
    NULL, 0, 0,    /* no narrow conv tile */
    NULL, NULL, NULL, /* no packed-A GEMM */
};

static const tm_f32_kernels tm_avx512_table = {
    "avx512", 8, 32, tm_f32_igemm_8x32__avx512,
    tm_f32_dwconv3x3_row__avx512, tm_f32_avgpool__avx2, tm_f32_gemv_4x32__avx512,
    "tm_f32_igemm_8x32__avx512", tm_f32_maxpool__avx2,
    7, tm_f32_igemm_7x32__avx512, "tm_f32_igemm_7x32__avx512",
    tm_f32_igemm_16x16__avx512, 16, 16,
    NULL, NULL, NULL, /* no packed-A GEMM */
};

static int tm_cpu_has_avx2_fma(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

static int tm_cpu_has_avx512f(void) {
    __builtin_cpu_init(); /* GCC's check includes the OS saving the zmm state (XGETBV) */
    return tm_cpu_has_avx2_fma() && __builtin_cpu_supports("avx512f");
}

/* CPUID leaf 7: AVX-512 VNNI (with BW and VL for the byte masks), or the VEX AVX-VNNI. */
static int tm_cpu_has_avx512vnni(void) {
    return tm_cpu_has_avx512f() && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
}

static int tm_cpu_has_avxvnni(void) {
    return tm_cpu_has_avx2_fma() && __builtin_cpu_supports("avxvnni");
}
#endif

#ifdef TM_ARCH_NEON
static const tm_f32_kernels tm_neon_table = {
#if defined(__aarch64__)
    /* out-of-order cores (Cortex-A72/A76: Pi 4, Pi 5) */
    "neon", 8, 8, tm_f32_igemm_8x8__aarch64_neonfma,
    tm_f32_dwconv3x3_row__neon, tm_f32_avgpool__neon, NULL, "tm_f32_igemm_8x8__aarch64_neonfma",
    tm_f32_maxpool__neon,
#else
    "neon", 4, 12, tm_f32_igemm_4x12__neonfma,
    tm_f32_dwconv3x3_row__neon, tm_f32_avgpool__neon, NULL, "tm_f32_igemm_4x12__neonfma",
    tm_f32_maxpool__neon,
#endif
    0, NULL, NULL, /* no short tile */
    NULL, 0, 0,    /* no narrow conv tile */
    NULL, NULL, NULL, /* no packed-A GEMM */
};
#if defined(__aarch64__)
/* In-order cores (Cortex-A53/A55: Pi 3, Zero 2 W): the GEMM and depthwise kernels scheduled for
 * them (tm_arm_core). */
static const tm_f32_kernels tm_neon_in_order_table = {
    "neon", 8, 8, tm_f32_igemm_8x8__aarch64_neonfma_cortex_a53,
    tm_f32_dwconv3x3_row__aarch64_neonfma_cortex_a53, tm_f32_avgpool__neon, NULL,
    "tm_f32_igemm_8x8__aarch64_neonfma_cortex_a53", tm_f32_maxpool__neon,
    0, NULL, NULL, /* no short tile */
    NULL, 0, 0,    /* no narrow conv tile */
    /* pointwise layers on A packed once per row block (0.85 of the FMA peak on the llvm-mca
     * cortex-a53 model where the row pointers give 0.81) */
    tm_f32_ppmm_8x8__aarch64_neonfma_cortex_a53, tm_f32_ppmm_pack_8__aarch64_neon,
    "tm_f32_ppmm_8x8__aarch64_neonfma_cortex_a53",
};
#endif
#endif

#ifdef TM_NEON_AT_RUNTIME
/* 32-bit ARM: NEON with FMA (VFPv4) only where the kernel reports both. Pi 1 / Zero (ARMv6)
 * have neither, Cortex-A8/A9 boards NEON without FMA; a 32-bit process under a 64-bit kernel
 * (Pi 4/5) gets the 32-bit hwcaps. Values of the kernel's arch/arm/include/uapi/asm/hwcap.h. */
#include <sys/auxv.h>
#define TM_HWCAP_NEON (1UL << 12)
#define TM_HWCAP_VFPV4 (1UL << 16)
static int tm_cpu_has_neon(void) {
    const unsigned long hwcap = getauxval(AT_HWCAP);
    return (hwcap & TM_HWCAP_NEON) && (hwcap & TM_HWCAP_VFPV4);
}
#else
static int tm_cpu_has_neon(void) { return 1; } /* aarch64: NEON is baseline (x86: no NEON case) */
#endif

const tm_f32_kernels* tm_f32_kernels_for(int isa) {
    if (isa == TM_ISA_NEON && !tm_cpu_has_neon()) return NULL;
    switch (isa) {
        case TM_ISA_SCALAR:
            return &tm_scalar_table;
#ifdef TM_ARCH_X86
        case TM_ISA_AVX2:
            return tm_cpu_has_avx2_fma() ? &tm_avx2_table : NULL;
        case TM_ISA_AVX512:
            return tm_cpu_has_avx512f() ? &tm_avx512_table : NULL;
        case TM_ISA_AVXVNNI: /* float: the avx2 kernels */
            return tm_cpu_has_avxvnni() ? &tm_avx2_table : NULL;
        case TM_ISA_AVX512VNNI: /* float: the avx512 kernels */
            return tm_cpu_has_avx512vnni() ? &tm_avx512_table : NULL;
#endif
#ifdef TM_ARCH_NEON
        case TM_ISA_NEON: { /* NEON: baseline on aarch64, tm_cpu_has_neon on 32-bit ARM */
            const int core = tm_arm_core();
            if (core < 0) return NULL;
#if defined(__aarch64__)
            if (core == TM_CORE_IN_ORDER) return &tm_neon_in_order_table;
#endif
            return &tm_neon_table;
        }
#endif
        default:
            return NULL;
    }
}

/* ---- quantized tables -------------------------------------------------------------------- */
static const tm_qu8_kernels tm_qu8_scalar_table = {
    "scalar", 4, 4, tm_qu8_gemm_4x4__scalar, tm_qu8_dwconv3x3_row__scalar, NULL, 0, 0,
    NULL, 0, 0, NULL, 0, NULL, /* no narrow conv tile, short tile, GEMV */
};
#ifdef TM_ARCH_X86
static const tm_qu8_kernels tm_qu8_avx2_table = {
    "avx2", 6, 16, tm_qu8_gemm_6x16__avx2, tm_qu8_dwconv3x3_row__avx2, NULL, 0, 0,
    NULL, 0, 0, NULL, 0, NULL, /* no narrow conv tile, short tile, GEMV */
};
static const tm_qu8_kernels tm_qu8_avx512_table = { /* AVX-512 BW without VNNI (Skylake-SP) */
    "avx512", 6, 16, tm_qu8_gemm_6x16__avx2, tm_qu8_dwconv3x3_row__avx512, NULL, 0, 0,
    NULL, 0, 0, NULL, 0, NULL, /* no narrow conv tile, short tile, GEMV */
};
static const tm_qu8_kernels tm_qu8_avxvnni_table = {
    "avxvnni", 6, 16, NULL, tm_qu8_dwconv3x3_row__avx2, tm_qu8_gemm_6x16__avxvnni, 4, 1,
    NULL, 0, 0, NULL, 0, NULL, /* no narrow conv tile, short tile, GEMV */
};
static const tm_qu8_kernels tm_qu8_avx512vnni_table = {
    "avx512vnni", 8, 32, NULL, tm_qu8_dwconv3x3_row__avx512vnni, tm_qu8_gemm_8x32__avx512vnni,
    4, 1, tm_qu8_gemm_16x8__avx512vnni, 16, 8, tm_qu8_gemm_7x32__avx512vnni, 7,
    tm_qu8_gemv_4x32__avx512vnni,
};
#endif
#ifdef TM_ARCH_NEON
static const tm_qu8_kernels tm_qu8_neon_table = {
    "neon", 4, 8, tm_qu8_gemm_4x8__neon, tm_qu8_dwconv3x3_row__neon, NULL, 0, 0,
    NULL, 0, 0, NULL, 0, NULL, /* no narrow conv tile, short tile, GEMV */
};
#endif
#ifdef TM_HAVE_NEONDOT
#include <sys/auxv.h>
static const tm_qu8_kernels tm_qu8_neondot_table = {
    "neon", 8, 8, NULL, tm_qu8_dwconv3x3_row__neon, tm_qu8_gemm_8x8__neondot, 16, 0,
    NULL, 0, 0, NULL, 0, NULL, /* no narrow conv tile, short tile, GEMV */
};

static int tm_cpu_has_dotprod(void) {
    const char* off = getenv("TINYMOBILE_NO_DOTPROD");
    if (off != NULL && off[0] != '\0' && strcmp(off, "0") != 0) return 0;
    return (getauxval(AT_HWCAP) & (1UL << 20)) != 0; /* HWCAP_ASIMDDP */
}
#endif

const tm_qu8_kernels* tm_qu8_kernels_for(int isa) {
    if (isa == TM_ISA_NEON && !tm_cpu_has_neon()) return NULL;
    switch (isa) {
        case TM_ISA_SCALAR:
            return &tm_qu8_scalar_table;
#ifdef TM_ARCH_X86
        case TM_ISA_AVX2:
            return tm_cpu_has_avx2_fma() ? &tm_qu8_avx2_table : NULL;
        case TM_ISA_AVX512: /* the AVX2 integer GEMM; the AVX-512 depthwise needs BW and VL */
            if (!tm_cpu_has_avx512f()) return NULL;
            return __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl")
                       ? &tm_qu8_avx512_table
                       : &tm_qu8_avx2_table;
        case TM_ISA_AVXVNNI:
            return tm_cpu_has_avxvnni() ? &tm_qu8_avxvnni_table : NULL;
        case TM_ISA_AVX512VNNI:
            return tm_cpu_has_avx512vnni() ? &tm_qu8_avx512vnni_table : NULL;
#endif
#ifdef TM_ARCH_NEON
        case TM_ISA_NEON:
#ifdef TM_HAVE_NEONDOT
            if (tm_cpu_has_dotprod()) return &tm_qu8_neondot_table;
#endif
            return &tm_qu8_neon_table;
#endif
        default:
            return NULL;
    }
}

/* The one list of ISA names (Python reads it through tm_isa_name). */
static const char* const tm_isa_names[TM_ISA_COUNT] = {
    [TM_ISA_SCALAR] = "scalar",
    [TM_ISA_AVX2] = "avx2",
    [TM_ISA_NEON] = "neon",
    [TM_ISA_AVX512] = "avx512",
    [TM_ISA_AVXVNNI] = "avxvnni",
    [TM_ISA_AVX512VNNI] = "avx512vnni",
};

const char* tm_isa_name(int isa) {
    return isa >= 0 && isa < TM_ISA_COUNT ? tm_isa_names[isa] : NULL;
}

int tm_default_isa(void) {
    if (tm_arm_core() < 0) return -1; /* an invalid TINYMOBILE_CORE: refused, not ignored */
    const char* forced = getenv("TINYMOBILE_ISA");
    if (forced != NULL && forced[0] != '\0') {
        for (int isa = 0; isa < TM_ISA_COUNT; isa++)
            if (strcmp(forced, tm_isa_names[isa]) == 0) return tm_f32_kernels_for(isa) ? isa : -1;
        return -1;
    }
    for (int isa = TM_ISA_COUNT - 1; isa > 0; isa--)
        if (tm_f32_kernels_for(isa)) return isa;
    return TM_ISA_SCALAR;
}

/* ---- ukernel names (which path ran, for the benchmark's per-layer profile) ---------------- */
#define TM_NAME(f) \
    if (fn == f) return #f

const char* tm_f32_ukernel_name(const tm_f32_kernels* kern, int part) {
    if (kern == NULL) return NULL;
    if (part == TM_UK_GEMM) return kern->igemm_name;
    if (part == TM_UK_CONV_NARROW) {
#ifdef TM_ARCH_X86
        const tm_f32_igemm_ukernel_fn fn = kern->conv_narrow;
        TM_NAME(tm_f32_igemm_16x16__avx512);
#endif
        return NULL;
    }
    if (part == TM_UK_GEMV) {
#ifdef TM_ARCH_X86
        const tm_f32_gemv_ukernel_fn fn = kern->gemv;
        TM_NAME(tm_f32_gemv_4x16__avx2);
        TM_NAME(tm_f32_gemv_4x32__avx512);
#endif
        return NULL;
    }
    if (part == TM_UK_DWCONV) {
        const tm_f32_dwconv3x3_row_fn fn = kern->dwconv3x3_row;
        TM_NAME(tm_f32_dwconv3x3_row__scalar);
#ifdef TM_ARCH_X86
        TM_NAME(tm_f32_dwconv3x3_row__avx2);
        TM_NAME(tm_f32_dwconv3x3_row__avx512);
#endif
#ifdef TM_ARCH_NEON
        TM_NAME(tm_f32_dwconv3x3_row__neon);
#if defined(__aarch64__)
        TM_NAME(tm_f32_dwconv3x3_row__aarch64_neonfma_cortex_a53);
#endif
#endif
        return NULL;
    }
    if (part == TM_UK_AVGPOOL) {
        const tm_f32_avgpool_fn fn = kern->avgpool;
        TM_NAME(tm_f32_avgpool__scalar);
#ifdef TM_ARCH_X86
        TM_NAME(tm_f32_avgpool__avx2);
#endif
#ifdef TM_ARCH_NEON
        TM_NAME(tm_f32_avgpool__neon);
#endif
    }
    return NULL;
}

const char* tm_qu8_ukernel_name(const tm_qu8_kernels* kern, int part) {
    if (kern == NULL) return NULL;
    if (part == TM_UK_CONV_NARROW) {
#ifdef TM_ARCH_X86
        const tm_qu8_dot_gemm_fn fn = kern->conv_narrow;
        TM_NAME(tm_qu8_gemm_16x8__avx512vnni);
#endif
        return NULL;
    }
    if (part == TM_UK_GEMM && kern->dot_gemm != NULL) {
        const tm_qu8_dot_gemm_fn fn = kern->dot_gemm;
#ifdef TM_ARCH_X86
        TM_NAME(tm_qu8_gemm_6x16__avxvnni);
        TM_NAME(tm_qu8_gemm_8x32__avx512vnni);
        TM_NAME(tm_qu8_gemm_7x32__avx512vnni);
#endif
#ifdef TM_HAVE_NEONDOT
        TM_NAME(tm_qu8_gemm_8x8__neondot);
#endif
        (void)fn; /* builds without a dot-product kernel */
        return NULL;
    }
    if (part == TM_UK_GEMM) {
        const tm_qu8_gemm_ukernel_fn fn = kern->gemm;
        TM_NAME(tm_qu8_gemm_4x4__scalar);
#ifdef TM_ARCH_X86
        TM_NAME(tm_qu8_gemm_6x16__avx2);
#endif
#ifdef TM_ARCH_NEON
        TM_NAME(tm_qu8_gemm_4x8__neon);
#endif
        return NULL;
    }
    if (part == TM_UK_DWCONV) {
        const tm_qu8_dwconv3x3_row_fn fn = kern->dwconv3x3_row;
        TM_NAME(tm_qu8_dwconv3x3_row__scalar);
#ifdef TM_ARCH_X86
        TM_NAME(tm_qu8_dwconv3x3_row__avx2);
        TM_NAME(tm_qu8_dwconv3x3_row__avx512);
        TM_NAME(tm_qu8_dwconv3x3_row__avx512vnni);
#endif
#ifdef TM_ARCH_NEON
        TM_NAME(tm_qu8_dwconv3x3_row__neon);
#endif
    }
    return NULL;
}
