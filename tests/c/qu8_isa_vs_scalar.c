/* Compare the qu8 NEON (or, on x86, AVX2) kernels with the scalar ones on random data, through the operators
 * (pointwise GEMM, depthwise 3x3 both strides, full 3x3 conv). Build it statically with every
 * C file of csrc (the top folder and its kernel folders) for ARM and run it under emulation:
 * aarch64-linux-gnu-gcc -O2 -static -Icsrc, then qemu-aarch64; ARMv7: arm-linux-gnueabihf-gcc
 * -mfpu=neon-vfpv4 -mfloat-abi=hard, then qemu-arm. Prints the number of failing cases. On
 * aarch64 the udot path runs where the (emulated) CPU has it; TINYMOBILE_NO_DOTPROD=1 (or
 * qemu-aarch64 -cpu cortex-a72) tests the vmlal path. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "tinymobile.h"

static unsigned rnd_state = 12345;
static unsigned rnd(void) { rnd_state = rnd_state * 1103515245u + 12345u; return rnd_state >> 8; }

int main(void) {
    const tm_qu8_kernels* ks = tm_qu8_kernels_for(TM_ISA_SCALAR);
    const tm_qu8_kernels* kn = tm_qu8_kernels_for(TM_ISA_NEON);
    if (!kn) kn = tm_qu8_kernels_for(TM_ISA_AVX2);
    if (!kn) { printf("no vector table to compare with scalar\n"); return 1; }
    printf("%s table: %s GEMM %zux%zu\n", kn->name, kn->dot_gemm ? "dot-product" : "widening",
           kn->gemm_mr, kn->gemm_nr);
    int fails = 0, cases = 0;
    for (int trial = 0; trial < 300; trial++) {
        size_t m = 1 + rnd() % 40, k = trial % 50 == 0 ? 1000 + rnd() % 100 : 1 + rnd() % 70;
        size_t n = 1 + rnd() % 45;
        size_t h = 1 + rnd() % 12, w = 1 + rnd() % 12, c = 1 + rnd() % 37, stride = 1 + rnd() % 2;
        const int wzp = (int)(rnd() % 256);
        int32_t xzp = rnd() % 256, ozp = rnd() % 256, lo = rnd() % 40, hi = 200 + rnd() % 56;
        size_t maxn = k * n > 9 * c * n ? k * n : 9 * c * n;
        int16_t* wt = malloc(sizeof(int16_t) * (maxn + 9 * c * 3 * 64));
        int32_t* b = malloc(4 * 512); int32_t* mu = malloc(4 * 512); int32_t* sh = malloc(4 * 512);
        for (size_t i = 0; i < maxn + 9 * c * 3 * 64; i++) wt[i] = (int16_t)((int)(rnd() % 256) - wzp); /* 8-bit weights minus their zero point */
        for (int i = 0; i < 512; i++) { b[i] = (int32_t)(rnd() % 80000) - 40000; mu[i] = (int32_t)((1u << 30) + rnd() % (1u << 30)); sh[i] = -(int32_t)(rnd() % 15); }
        /* pointwise */
        uint8_t* a = malloc(m * k); for (size_t i = 0; i < m * k; i++) a[i] = rnd();
        void* ps = malloc(tm_qu8_gemm_packed_size(ks, k, n)); void* pn = malloc(tm_qu8_gemm_packed_size(kn, k, n));
        tm_qu8_gemm_pack(ks, k, n, wt, b, xzp, mu, sh, ps); tm_qu8_gemm_pack(kn, k, n, wt, b, xzp, mu, sh, pn);
        int16_t* sc = malloc(2 * tm_qu8_pointwise_scratch_size(ks, 1, k) + 2 * tm_qu8_pointwise_scratch_size(kn, 1, k));
        uint8_t* os = malloc(m * n); uint8_t* on = malloc(m * n); memset(on, 0xAB, m * n);
        tm_qu8_pointwise_op(ks, NULL, m, k, n, a, ps, sc, os, ozp, lo, hi);
        tm_qu8_pointwise_op(kn, NULL, m, k, n, a, pn, sc, on, ozp, lo, hi);
        cases++; if (memcmp(os, on, m * n)) { fails++; printf("pointwise m=%zu k=%zu n=%zu differs\n", m, k, n); }
        /* depthwise */
        uint8_t* x = malloc(h * w * c); for (size_t i = 0; i < h * w * c; i++) x[i] = rnd();
        size_t oh = (h + stride - 1) / stride, ow = (w + stride - 1) / stride;
        size_t pt = ((oh - 1) * stride + 3 > h ? (oh - 1) * stride + 3 - h : 0) / 2;
        size_t pl = ((ow - 1) * stride + 3 > w ? (ow - 1) * stride + 3 - w : 0) / 2;
        int32_t* dws = malloc(tm_qu8_dwconv3x3_packed_size(c)); tm_qu8_dwconv3x3_pack(c, wt, b, xzp, mu, sh, dws);
        uint8_t* zr = malloc(w * c); memset(zr, xzp, w * c);
        uint8_t* ds = malloc(oh * ow * c); uint8_t* dn = malloc(oh * ow * c); memset(dn, 0xCD, oh * ow * c);
        tm_qu8_dwconv3x3_op(ks, NULL, 1, h, w, c, stride, pt, pl, oh, ow, x, dws, zr, ds, ozp, lo, hi);
        tm_qu8_dwconv3x3_op(kn, NULL, 1, h, w, c, stride, pt, pl, oh, ow, x, dws, zr, dn, ozp, lo, hi);
        cases++; if (memcmp(ds, dn, oh * ow * c)) { fails++; printf("dwconv h=%zu w=%zu c=%zu s=%zu differs\n", h, w, c, stride); }
        /* conv3x3 with cin = 3, cout = n */
        size_t cin = 1 + rnd() % 4;
        uint8_t* xc = malloc(h * w * cin); for (size_t i = 0; i < h * w * cin; i++) xc[i] = rnd();
        void* cs = malloc(tm_qu8_gemm_packed_size(ks, 9 * cin, n)); void* cn = malloc(tm_qu8_gemm_packed_size(kn, 9 * cin, n));
        tm_qu8_gemm_pack(ks, 9 * cin, n, wt, b, xzp, mu, sh, cs); tm_qu8_gemm_pack(kn, 9 * cin, n, wt, b, xzp, mu, sh, cn);
        int16_t* csc = malloc(2 * (tm_qu8_conv3x3_scratch_size(ks, 1, cin) + tm_qu8_conv3x3_scratch_size(kn, 1, cin)));
        uint8_t* cos_ = malloc(oh * ow * n); uint8_t* con = malloc(oh * ow * n); memset(con, 0x11, oh * ow * n);
        tm_qu8_conv3x3_op(ks, NULL, 1, h, w, cin, n, stride, pt, pl, oh, ow, xc, cs, xzp, csc, cos_, ozp, lo, hi);
        tm_qu8_conv3x3_op(kn, NULL, 1, h, w, cin, n, stride, pt, pl, oh, ow, xc, cn, xzp, csc, con, ozp, lo, hi);
        cases++; if (memcmp(cos_, con, oh * ow * n)) { fails++; printf("conv differs\n"); }
        free(wt); free(b); free(mu); free(sh); free(a); free(ps); free(pn); free(sc); free(os); free(on);
        free(x); free(dws); free(zr); free(ds); free(dn); free(xc); free(cs); free(cn); free(csc); free(cos_); free(con);
    }
    printf("%d cases, %d failures\n", cases, fails);
    return fails != 0;
}
