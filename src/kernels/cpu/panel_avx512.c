/* panel_avx512.c — AVX-512 inference products on the panel16 layout:
 * f32 (AVX-512F FMA), bf16 (AVX-512 BF16 vdpbf16ps), int8 (AVX-512 VNNI vpdpbusd, u8 x s8 with
 * the +128 offset removed through per-row sums). Twins: cphil_pmat_*_ref in panel.c.
 * Blocking: MB input rows x PB panels of accumulators so that a batch-1 step (M = 1) still has
 * independent FMA chains. int8 with 2 or more input rows runs on AMX where the CPU has it and
 * Linux granted it (cphil_amx_on, isa.c): tdpbssd on 16-row tiles (s8 x s8, no offset to remove),
 * the same integer sums, so the same bits as vpdpbusd. Does not: prefetching, multi-threading.
 */
#include "kernels/cpu/panel.h"

#include <immintrin.h>
#include <string.h>

#define AI static inline __attribute__((always_inline))

/* y[0..15] of panel p for input row mm: bias, beta, masked tail. */
AI void epilogue(const cphil_pmat_args *a, int mm, int p, __m512 v) {
    const cphil_pmat *m = a->m;
    int r0 = p * CPHIL_PANEL;
    int n = m->rows - r0;
    __mmask16 k = n >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << n) - 1u);
    float *y = a->Y + (size_t)mm * a->ldy + r0;
    if (m->bias) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(k, m->bias + r0));
    if (a->beta) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(k, y));
    _mm512_mask_storeu_ps(y, k, v);
}

/* The M > 1 driver of every type: six input rows per pass over the weights. Each pass streams
 * all panels from L2, so more rows per pass means fewer passes: 6 x 2 blocks measured ~25%
 * faster than 4 x 2 at M = 60 on 1024 x 256 int8 (bench_gemv); 6 x 3, 6 x 4 and 10 x 2 spill
 * registers and are slower. The rest (M mod 6 rows) takes 4/5 x 2 or 1-3 x 4 blocks. A block's
 * shape does not change any output's order of sums. */
#define DRIVE_ROWS(BLK)                                                                        \
    do {                                                                                       \
        const int np_ = a->m->np;                                                              \
        int m0 = 0;                                                                            \
        for (; m0 + 6 <= a->M; m0 += 6) {                                                      \
            int p = 0;                                                                         \
            for (; p + 2 <= np_; p += 2) BLK(a, m0, p, 6, 2);                                  \
            for (; p < np_; p++) BLK(a, m0, p, 6, 1);                                          \
        }                                                                                      \
        const int rest = a->M - m0;                                                            \
        int p = 0;                                                                             \
        if (rest >= 4) {                                                                       \
            for (; p + 2 <= np_; p += 2) {                                                     \
                if (rest == 5) BLK(a, m0, p, 5, 2);                                            \
                else BLK(a, m0, p, 4, 2);                                                      \
            }                                                                                  \
            for (; p < np_; p++) {                                                             \
                if (rest == 5) BLK(a, m0, p, 5, 1);                                            \
                else BLK(a, m0, p, 4, 1);                                                      \
            }                                                                                  \
        } else if (rest > 0) {                                                                 \
            for (; p + 4 <= np_; p += 4) {                                                     \
                if (rest == 1) BLK(a, m0, p, 1, 4);                                            \
                else if (rest == 2) BLK(a, m0, p, 2, 4);                                       \
                else BLK(a, m0, p, 3, 4);                                                      \
            }                                                                                  \
            for (; p < np_; p++) {                                                             \
                if (rest == 1) BLK(a, m0, p, 1, 1);                                            \
                else if (rest == 2) BLK(a, m0, p, 2, 1);                                       \
                else BLK(a, m0, p, 3, 1);                                                      \
            }                                                                                  \
        }                                                                                      \
    } while (0)

/* ---- f32 ---------------------------------------------------------------------------------- */
AI void blk_f32(const cphil_pmat_args *a, int m0, int p0, const int MB, const int PB) {
    const cphil_pmat *m = a->m;
    const int kp = m->kp;
    const float *x = (const float *)a->x + (size_t)m0 * a->ldx;
    const float *w = (const float *)m->w + (size_t)p0 * CPHIL_PANEL * kp;
    __m512 acc[6][4];
#pragma GCC unroll 6
    for (int i = 0; i < MB; i++)
#pragma GCC unroll 4
        for (int j = 0; j < PB; j++) acc[i][j] = _mm512_setzero_ps();
    for (int k = 0; k < kp; k++) {
        __m512 wv[4];
#pragma GCC unroll 4
        for (int j = 0; j < PB; j++) wv[j] = _mm512_load_ps(w + (size_t)j * CPHIL_PANEL * kp + (size_t)k * 16);
#pragma GCC unroll 6
        for (int i = 0; i < MB; i++) {
            __m512 xv = _mm512_set1_ps(x[(size_t)i * a->ldx + k]);
#pragma GCC unroll 4
            for (int j = 0; j < PB; j++) acc[i][j] = _mm512_fmadd_ps(xv, wv[j], acc[i][j]);
        }
    }
#pragma GCC unroll 6
    for (int i = 0; i < MB; i++)
#pragma GCC unroll 4
        for (int j = 0; j < PB; j++) epilogue(a, m0 + i, p0 + j, acc[i][j]);
}

void cphil_pmat_f32_avx512(const cphil_pmat_args *a) {
    DRIVE_ROWS(blk_f32);
}

/* ---- bf16 --------------------------------------------------------------------------------- */
AI void blk_bf16(const cphil_pmat_args *a, int m0, int p0, const int MB, const int PB) {
    const cphil_pmat *m = a->m;
    const int kp = m->kp;
    const uint16_t *x = (const uint16_t *)a->x + (size_t)m0 * kp;
    const uint16_t *w = (const uint16_t *)m->w + (size_t)p0 * CPHIL_PANEL * kp;
    __m512 acc[6][4];
#pragma GCC unroll 6
    for (int i = 0; i < MB; i++)
#pragma GCC unroll 4
        for (int j = 0; j < PB; j++) acc[i][j] = _mm512_setzero_ps();
    for (int k2 = 0; k2 < kp / 2; k2++) {
        __m512i wv[4];
#pragma GCC unroll 4
        for (int j = 0; j < PB; j++)
            wv[j] = _mm512_load_si512((const void *)(w + (size_t)j * CPHIL_PANEL * kp + (size_t)k2 * 32));
#pragma GCC unroll 6
        for (int i = 0; i < MB; i++) {
            int32_t pair;
            __builtin_memcpy(&pair, x + (size_t)i * kp + 2 * k2, 4);
            __m512i xv = _mm512_set1_epi32(pair);
#pragma GCC unroll 4
            for (int j = 0; j < PB; j++)
                acc[i][j] = _mm512_dpbf16_ps(acc[i][j], (__m512bh)xv, (__m512bh)wv[j]);
        }
    }
#pragma GCC unroll 6
    for (int i = 0; i < MB; i++)
#pragma GCC unroll 4
        for (int j = 0; j < PB; j++) epilogue(a, m0 + i, p0 + j, acc[i][j]);
}

void cphil_pmat_bf16_avx512(const cphil_pmat_args *a) {
    DRIVE_ROWS(blk_bf16);
}

/* ---- int8 (VNNI) -------------------------------------------------------------------------- */
AI void blk_i8(const cphil_pmat_args *a, int m0, int p0, const int MB, const int PB) {
    const cphil_pmat *m = a->m;
    const int kp = m->kp;
    const int8_t *x = (const int8_t *)a->x + (size_t)m0 * kp;
    const int8_t *w = (const int8_t *)m->w + (size_t)p0 * CPHIL_PANEL * kp;
    const __m512i off = _mm512_set1_epi32((int)0x80808080u);
    __m512i acc[6][8];
#pragma GCC unroll 8
    for (int i = 0; i < MB; i++)
#pragma GCC unroll 8
        for (int j = 0; j < PB; j++) acc[i][j] = _mm512_setzero_si512();
    for (int k4 = 0; k4 < kp / 4; k4++) {
        __m512i wv[8];
#pragma GCC unroll 8
        for (int j = 0; j < PB; j++)
            wv[j] = _mm512_load_si512((const void *)(w + (size_t)j * CPHIL_PANEL * kp + (size_t)k4 * 64));
#pragma GCC unroll 8
        for (int i = 0; i < MB; i++) {
            int32_t quad;
            __builtin_memcpy(&quad, x + (size_t)i * kp + 4 * k4, 4);
            __m512i xv = _mm512_xor_si512(_mm512_set1_epi32(quad), off); /* s8 -> u8 (+128) */
#pragma GCC unroll 8
            for (int j = 0; j < PB; j++) acc[i][j] = _mm512_dpbusd_epi32(acc[i][j], xv, wv[j]);
        }
    }
#pragma GCC unroll 8
    for (int j = 0; j < PB; j++) {
        int r0 = (p0 + j) * CPHIL_PANEL;
        __m512i corr = _mm512_slli_epi32(_mm512_loadu_si512((const void *)(m->rowsum + r0)), 7);
        __m512 sc = _mm512_loadu_ps(m->scale + r0);
#pragma GCC unroll 8
        for (int i = 0; i < MB; i++) {
            __m512 v = _mm512_cvtepi32_ps(_mm512_sub_epi32(acc[i][j], corr));
            /* (acc * xs) * scale: the scalar twin's order, so every tier gives the same bits */
            v = _mm512_mul_ps(_mm512_mul_ps(v, _mm512_set1_ps(a->xs[m0 + i])), sc);
            epilogue(a, m0 + i, p0 + j, v);
        }
    }
}

/* Batch 1, one panel: a single sequential weight stream, k split over four accumulators (their
 * integer sum is exact, so the result is the same bits as the blocked form). One stream instead
 * of eight keeps the address arithmetic in registers (the 1x8 block spilled its eight panel
 * offsets) and suits the hardware prefetcher. */
AI void blk_i8_m1(const cphil_pmat_args *a, int p) {
    const cphil_pmat *m = a->m;
    const int kq = m->kp / 4;
    const int8_t *x = (const int8_t *)a->x;
    const int8_t *w = (const int8_t *)m->w + (size_t)p * CPHIL_PANEL * m->kp;
    const __m512i off = _mm512_set1_epi32((int)0x80808080u);
    __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
    int k = 0;
#define XQ(kk) ({ int32_t q_; __builtin_memcpy(&q_, x + 4 * (kk), 4); _mm512_xor_si512(_mm512_set1_epi32(q_), off); })
#define WV(kk) _mm512_load_si512((const void *)(w + (size_t)(kk) * 64))
    for (; k + 4 <= kq; k += 4) {
        a0 = _mm512_dpbusd_epi32(a0, XQ(k), WV(k));
        a1 = _mm512_dpbusd_epi32(a1, XQ(k + 1), WV(k + 1));
        a2 = _mm512_dpbusd_epi32(a2, XQ(k + 2), WV(k + 2));
        a3 = _mm512_dpbusd_epi32(a3, XQ(k + 3), WV(k + 3));
    }
    for (; k < kq; k++) a0 = _mm512_dpbusd_epi32(a0, XQ(k), WV(k));
#undef XQ
#undef WV
    __m512i acc = _mm512_add_epi32(_mm512_add_epi32(a0, a1), _mm512_add_epi32(a2, a3));
    int r0 = p * CPHIL_PANEL;
    __m512i corr = _mm512_slli_epi32(_mm512_loadu_si512((const void *)(m->rowsum + r0)), 7);
    __m512 v = _mm512_cvtepi32_ps(_mm512_sub_epi32(acc, corr));
    v = _mm512_mul_ps(_mm512_mul_ps(v, _mm512_set1_ps(a->xs[0])), _mm512_loadu_ps(m->scale + r0));
    epilogue(a, 0, p, v);
}

/* ---- int8 on AMX ------------------------------------------------------------------------------
 * Tiles (palette 1): tmm0, tmm1 accumulate two panels' outputs (mr rows x 16 int32); tmm2 holds
 * mr input rows x 64 k (bytes), tmm3 the same for the last, shorter k block; tmm4, tmm5 the two
 * panels' weights for 64 k: 16 quads x 64 bytes, which is the panel16 int8 layout itself
 * (panel[kp/4][16][4], so one tile is 1 KB contiguous); tmm6, tmm7 the shorter last k block. */
typedef struct {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} amx_tilecfg;

static void amx_configure(int mr, int ktail) {
    amx_tilecfg c;
    memset(&c, 0, sizeof c);
    c.palette = 1;
    const int kt = ktail ? ktail : 64;
    for (int t = 0; t < 8; t++) c.colsb[t] = 64;
    c.rows[0] = c.rows[1] = c.rows[2] = c.rows[3] = (uint8_t)mr;
    c.colsb[3] = (uint16_t)kt;
    c.rows[4] = c.rows[5] = 16;
    c.rows[6] = c.rows[7] = (uint8_t)(kt / 4);
    _tile_loadconfig(&c);
}

/* Outputs of panel p for input rows m0 .. m0 + mr - 1 from the stored tile c[row][16]: as
 * blk_i8's epilogue (acc there is sum (x + 128) w - 128 rowsum = sum x w, the integer here). */
AI void amx_out(const cphil_pmat_args *a, int m0, int mr, int p, const int32_t c[16][16]) {
    const int r0 = p * CPHIL_PANEL;
    const __m512 sc = _mm512_loadu_ps(a->m->scale + r0);
    for (int i = 0; i < mr; i++) {
        __m512 v = _mm512_cvtepi32_ps(_mm512_load_si512((const void *)c[i]));
        v = _mm512_mul_ps(_mm512_mul_ps(v, _mm512_set1_ps(a->xs[m0 + i])), sc);
        epilogue(a, m0 + i, p, v);
    }
}

static void i8_amx(const cphil_pmat_args *a) {
    const cphil_pmat *m = a->m;
    const int kp = m->kp, kfull = kp / 64, ktail = kp % 64, np = m->np;
    const int8_t *w = (const int8_t *)m->w;
    int32_t c[16][16] __attribute__((aligned(64)));
    int configured = -1;
    for (int m0 = 0; m0 < a->M; m0 += 16) {
        const int mr = a->M - m0 < 16 ? a->M - m0 : 16;
        if (mr != configured) {
            amx_configure(mr, ktail);
            configured = mr;
        }
        const int8_t *x = (const int8_t *)a->x + (size_t)m0 * kp;
        int p = 0;
        for (; p + 2 <= np; p += 2) {
            const int8_t *w0 = w + (size_t)p * CPHIL_PANEL * kp, *w1 = w0 + (size_t)CPHIL_PANEL * kp;
            _tile_zero(0);
            _tile_zero(1);
            for (int kb = 0; kb < kfull; kb++) {
                _tile_loadd(2, x + kb * 64, kp);
                _tile_loadd(4, w0 + (size_t)kb * 1024, 64);
                _tile_loadd(5, w1 + (size_t)kb * 1024, 64);
                _tile_dpbssd(0, 2, 4);
                _tile_dpbssd(1, 2, 5);
            }
            if (ktail) {
                _tile_loadd(3, x + kfull * 64, kp);
                _tile_loadd(6, w0 + (size_t)kfull * 1024, 64);
                _tile_loadd(7, w1 + (size_t)kfull * 1024, 64);
                _tile_dpbssd(0, 3, 6);
                _tile_dpbssd(1, 3, 7);
            }
            _tile_stored(0, c, 64);
            amx_out(a, m0, mr, p, c);
            _tile_stored(1, c, 64);
            amx_out(a, m0, mr, p + 1, c);
        }
        for (; p < np; p++) {
            const int8_t *w0 = w + (size_t)p * CPHIL_PANEL * kp;
            _tile_zero(0);
            for (int kb = 0; kb < kfull; kb++) {
                _tile_loadd(2, x + kb * 64, kp);
                _tile_loadd(4, w0 + (size_t)kb * 1024, 64);
                _tile_dpbssd(0, 2, 4);
            }
            if (ktail) {
                _tile_loadd(3, x + kfull * 64, kp);
                _tile_loadd(6, w0 + (size_t)kfull * 1024, 64);
                _tile_dpbssd(0, 3, 6);
            }
            _tile_stored(0, c, 64);
            amx_out(a, m0, mr, p, c);
        }
    }
    _tile_release();
}

void cphil_pmat_i8_avx512(const cphil_pmat_args *a) {
    if (a->M >= 2 && cphil_amx_on()) {
        i8_amx(a);
        return;
    }
    if (a->M == 1) {
        for (int p = 0; p < a->m->np; p++) blk_i8_m1(a, p);
        return;
    }
    DRIVE_ROWS(blk_i8);
}

float cphil_pmat_quant_row_avx512(const float *x, int n, float act_scale, int8_t *q) {
    float sc = act_scale;
    if (sc <= 0.f) {
        __m512 mx = _mm512_setzero_ps();
        for (int i = 0; i < n; i += 16) {
            __mmask16 k = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1u);
            mx = _mm512_max_ps(mx, _mm512_abs_ps(_mm512_maskz_loadu_ps(k, x + i)));
        }
        float amax = _mm512_reduce_max_ps(mx);
        sc = amax > 0.f ? amax / 127.f : 1.f;
    }
    const __m512 inv = _mm512_set1_ps(1.f / sc), lo = _mm512_set1_ps(-127.f), hi = _mm512_set1_ps(127.f);
    for (int i = 0; i < n; i += 16) {
        __mmask16 k = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1u);
        __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(k, x + i), inv);
        v = _mm512_min_ps(_mm512_max_ps(v, lo), hi);
        __m512i r = _mm512_cvt_roundps_epi32(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        _mm512_mask_cvtepi32_storeu_epi8(q + i, k, r);
    }
    return sc;
}
