#include <string.h>

#include "../qu8_requant.h"

#ifdef TM_ARCH_X86
/* One row (a batch-1 fully connected layer) times `panels` (1..4) consecutive packed panels of
 * the 8x32 tile's packing (tm_qu8_gemm_pack, panel_bytes apart), AVX-512 VNNI: the row's k-quad
 * broadcast once for eight accumulators (four panels x 32 columns), eight independent vpdpbusd
 * chains where one row of the GEMM tile has two. The last panel is nc <= 32 columns wide; c gets
 * 32 * (panels - 1) + nc bytes. row_sum (NULL when every z is 0): acc -= z * row_sum. Exact
 * integer sums, the same requantization and byte packing as the tile (two panels' 32 columns
 * as its two rows): the same bytes. */
TM_TARGET_AVX512VNNI void tm_qu8_gemv_4x32__avx512vnni(size_t panels, size_t nc, size_t kc,
                                                       const uint8_t* a, const int32_t* row_sum,
                                                       const void* wv, size_t panel_bytes,
                                                       uint8_t* c,
                                                       const tm_qu8_requant_params* params) {
    const uint8_t* base = (const uint8_t*)wv;
    const int32_t* head[4];
    const int8_t* w[4];
    for (size_t p = 0; p < 4; p++) { /* panels past the last repeat it (computed, not stored) */
        head[p] = (const int32_t*)(base + (p < panels ? p : panels - 1) * panel_bytes);
        w[p] = (const int8_t*)(head[p] + TM_QU8_DOT_HEAD_FIELDS * 32);
    }
    __m512i v00 = _mm512_loadu_si512((const void*)head[0]);
    __m512i v01 = _mm512_loadu_si512((const void*)(head[0] + 16));
    __m512i v10 = _mm512_loadu_si512((const void*)head[1]);
    __m512i v11 = _mm512_loadu_si512((const void*)(head[1] + 16));
    __m512i v20 = _mm512_loadu_si512((const void*)head[2]);
    __m512i v21 = _mm512_loadu_si512((const void*)(head[2] + 16));
    __m512i v30 = _mm512_loadu_si512((const void*)head[3]);
    __m512i v31 = _mm512_loadu_si512((const void*)(head[3] + 16));
    const int8_t *w0 = w[0], *w1 = w[1], *w2 = w[2], *w3 = w[3];
    for (size_t k = 0; k < kc; k += 4) {
        int32_t quad;
        memcpy(&quad, a + k, 4);
        const __m512i x = _mm512_set1_epi32(quad);
        const size_t o = 32 * k; /* the k-quad group: 128 bytes per 4 k */
        v00 = _mm512_dpbusd_epi32(v00, x, _mm512_loadu_si512((const void*)(w0 + o)));
        v01 = _mm512_dpbusd_epi32(v01, x, _mm512_loadu_si512((const void*)(w0 + o + 64)));
        v10 = _mm512_dpbusd_epi32(v10, x, _mm512_loadu_si512((const void*)(w1 + o)));
        v11 = _mm512_dpbusd_epi32(v11, x, _mm512_loadu_si512((const void*)(w1 + o + 64)));
        v20 = _mm512_dpbusd_epi32(v20, x, _mm512_loadu_si512((const void*)(w2 + o)));
        v21 = _mm512_dpbusd_epi32(v21, x, _mm512_loadu_si512((const void*)(w2 + o + 64)));
        v30 = _mm512_dpbusd_epi32(v30, x, _mm512_loadu_si512((const void*)(w3 + o)));
        v31 = _mm512_dpbusd_epi32(v31, x, _mm512_loadu_si512((const void*)(w3 + o + 64)));
    }
    __m512i acc[4][2] = {{v00, v01}, {v10, v11}, {v20, v21}, {v30, v31}};
    const __m512i zp16 = _mm512_set1_epi16((short)params->output_zero_point);
    const __m512i min8 = _mm512_set1_epi8((char)params->min);
    const __m512i max8 = _mm512_set1_epi8((char)params->max);
    for (size_t p = 0; p < 4; p++) {
        const int32_t* h = head[p];
        if (row_sum != NULL) {
            const __m512i s = _mm512_set1_epi32(*row_sum);
            acc[p][0] = _mm512_sub_epi32(acc[p][0], _mm512_mullo_epi32(_mm512_loadu_si512((const void*)(h + 96)), s));
            acc[p][1] = _mm512_sub_epi32(acc[p][1], _mm512_mullo_epi32(_mm512_loadu_si512((const void*)(h + 112)), s));
        }
        const __m512i any_left = _mm512_or_si512(_mm512_loadu_si512((const void*)(h + 160)),
                                                 _mm512_loadu_si512((const void*)(h + 176)));
        const int lefts = _mm512_test_epi32_mask(any_left, any_left) != 0;
        acc[p][0] = tm_qu8_mbqm64_pre_avx512(acc[p][0], h + 32, h + 128, 32, lefts);
        acc[p][1] = tm_qu8_mbqm64_pre_avx512(acc[p][1], h + 48, h + 144, 32, lefts);
    }
    /* panels 0 and 1, then 2 and 3, as the two rows of the tile's packing: 64 bytes each */
    const size_t total = 32 * (panels - 1) + nc;
    for (size_t q = 0; q < 2; q++) {
        const size_t first = 64 * q;
        if (first >= total) break;
        const __m512i u = tm_qu8_pack_rows32_avx512(acc[2 * q][0], acc[2 * q][1], acc[2 * q + 1][0],
                                                    acc[2 * q + 1][1], zp16, min8, max8);
        const size_t bytes = TM_MIN(64, total - first);
        if (bytes == 64)
            _mm512_storeu_si512((void*)(c + first), u);
        else
            _mm512_mask_storeu_epi8(c + first, ((__mmask64)1 << bytes) - 1, u);
    }
}
#endif
