#define _POSIX_C_SOURCE 200809L
/* Measures the FMA throughput one core reaches, for the benchmark's "share of peak" figure:
 * independent accumulator chains, enough of them to cover the FMA latency. */
#include <time.h>

#include "internal.h"

#ifdef TM_ARCH_X86
#include <immintrin.h>
TM_TARGET_AVX2 static double tm_probe_avx2(long iterations) {
    __m256 acc[10];
    const __m256 x = _mm256_set1_ps(0.999999f), y = _mm256_set1_ps(1e-7f);
    for (int i = 0; i < 10; i++) acc[i] = _mm256_set1_ps((float)i);
    for (long it = 0; it < iterations; it++)
        for (int i = 0; i < 10; i++) acc[i] = _mm256_fmadd_ps(acc[i], x, y);
    __m256 s = acc[0];
    for (int i = 1; i < 10; i++) s = _mm256_add_ps(s, acc[i]);
    float out[8];
    _mm256_storeu_ps(out, s);
    return (double)out[0];
}
TM_TARGET_AVX512 static double tm_probe_avx512(long iterations) {
    __m512 acc[12];
    const __m512 x = _mm512_set1_ps(0.999999f), y = _mm512_set1_ps(1e-7f);
    for (int i = 0; i < 12; i++) acc[i] = _mm512_set1_ps((float)i);
    for (long it = 0; it < iterations; it++)
        for (int i = 0; i < 12; i++) acc[i] = _mm512_fmadd_ps(acc[i], x, y);
    __m512 s = acc[0];
    for (int i = 1; i < 12; i++) s = _mm512_add_ps(s, acc[i]);
    float out[16];
    _mm512_storeu_ps(out, s);
    return (double)out[0];
}
#endif

#ifdef TM_ARCH_NEON
TM_NEON_BEGIN
#include <arm_neon.h>
static double tm_probe_neon(long iterations) {
    float32x4_t acc[8];
    const float32x4_t x = vdupq_n_f32(0.999999f), y = vdupq_n_f32(1e-7f);
    for (int i = 0; i < 8; i++) acc[i] = vdupq_n_f32((float)i);
    for (long it = 0; it < iterations; it++)
        for (int i = 0; i < 8; i++) acc[i] = vfmaq_f32(y, acc[i], x);
    float32x4_t s = acc[0];
    for (int i = 1; i < 8; i++) s = vaddq_f32(s, acc[i]);
    return (double)vgetq_lane_f32(s, 0);
}
TM_NEON_END
#endif

static double tm_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

double tm_fma_peak_gflops(int isa, double seconds) {
    volatile double sink = 0.0;
    double flops_per_iteration;
    double (*probe)(long) = NULL;
#ifdef TM_ARCH_X86
    /* the VNNI ISAs run the avx2 / avx512 float kernels: their FMA peak */
    if (isa == TM_ISA_AVXVNNI && tm_f32_kernels_for(isa)) isa = TM_ISA_AVX2;
    if (isa == TM_ISA_AVX512VNNI && tm_f32_kernels_for(isa)) isa = TM_ISA_AVX512;
    if (isa == TM_ISA_AVX2 && tm_f32_kernels_for(TM_ISA_AVX2)) { probe = tm_probe_avx2; flops_per_iteration = 10 * 8 * 2; }
    if (isa == TM_ISA_AVX512 && tm_f32_kernels_for(TM_ISA_AVX512)) { probe = tm_probe_avx512; flops_per_iteration = 12 * 16 * 2; }
#endif
#ifdef TM_ARCH_NEON
    if (isa == TM_ISA_NEON && tm_f32_kernels_for(TM_ISA_NEON)) { probe = tm_probe_neon; flops_per_iteration = 8 * 4 * 2; }
#endif
    if (probe == NULL) return 0.0;
    long iterations = 1 << 16;
    double best = 0.0, start = tm_now();
    while (tm_now() - start < seconds) {
        const double t0 = tm_now();
        sink += probe(iterations);
        const double dt = tm_now() - t0;
        if (dt > 0) {
            const double g = flops_per_iteration * iterations / dt * 1e-9;
            if (g > best) best = g;
        }
        if (dt < 1e-3) iterations *= 2;
    }
    (void)sink;
    return best;
}
