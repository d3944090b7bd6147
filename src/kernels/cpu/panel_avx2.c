/* panel_avx2.c — AVX2/FMA inference products on the panel16 layout:
 * f32 (FMA), bf16 (weights widened to f32 by shifts, then FMA; for CPUs without AVX-512 BF16),
 * int8 (vpmaddubsw with the sign trick, exact: no saturation; see blk_i8). Twins:
 * cphil_pmat_*_ref in panel.c. Does not: AVX-VNNI (256-bit) — Zen 4 takes the AVX-512 path.
 */
#include "kernels/cpu/panel.h"

#include <immintrin.h>

#define AI static inline __attribute__((always_inline))

AI void epilogue8(const cphil_pmat_args *a, int mm, int r0, __m256 v) {
    const cphil_pmat *m = a->m;
    int n = m->rows - r0;
    float *y = a->Y + (size_t)mm * a->ldy + r0;
    if (n >= 8) {
        if (m->bias) v = _mm256_add_ps(v, _mm256_loadu_ps(m->bias + r0));
        if (a->beta) v = _mm256_add_ps(v, _mm256_loadu_ps(y));
        _mm256_storeu_ps(y, v);
        return;
    }
    if (n <= 0) return;
    float t[8];
    _mm256_storeu_ps(t, v);
    for (int i = 0; i < n; i++) {
        float s = t[i] + (m->bias ? m->bias[r0 + i] : 0.f);
        y[i] = a->beta ? y[i] + s : s;
    }
}

/* ---- f32 ---------------------------------------------------------------------------------- */
AI void blk_f32(const cphil_pmat_args *a, int m0, int p0, const int MB, const int PB) {
    const cphil_pmat *m = a->m;
    const int kp = m->kp;
    const float *x = (const float *)a->x + (size_t)m0 * a->ldx;
    const float *w = (const float *)m->w + (size_t)p0 * CPHIL_PANEL * kp;
    __m256 acc[4][4][2];
#pragma GCC unroll 4
    for (int i = 0; i < MB; i++)
#pragma GCC unroll 4
        for (int j = 0; j < PB; j++) acc[i][j][0] = acc[i][j][1] = _mm256_setzero_ps();
    for (int k = 0; k < kp; k++) {
        __m256 wv[4][2];
#pragma GCC unroll 4
        for (int j = 0; j < PB; j++) {
            const float *wp = w + (size_t)j * CPHIL_PANEL * kp + (size_t)k * 16;
            wv[j][0] = _mm256_load_ps(wp);
            wv[j][1] = _mm256_load_ps(wp + 8);
        }
#pragma GCC unroll 4
        for (int i = 0; i < MB; i++) {
            __m256 xv = _mm256_broadcast_ss(x + (size_t)i * a->ldx + k);
#pragma GCC unroll 4
            for (int j = 0; j < PB; j++) {
                acc[i][j][0] = _mm256_fmadd_ps(xv, wv[j][0], acc[i][j][0]);
                acc[i][j][1] = _mm256_fmadd_ps(xv, wv[j][1], acc[i][j][1]);
            }
        }
    }
#pragma GCC unroll 4
    for (int i = 0; i < MB; i++)
#pragma GCC unroll 4
        for (int j = 0; j < PB; j++) {
            epilogue8(a, m0 + i, (p0 + j) * CPHIL_PANEL, acc[i][j][0]);
            epilogue8(a, m0 + i, (p0 + j) * CPHIL_PANEL + 8, acc[i][j][1]);
        }
}

void cphil_pmat_f32_avx2(const cphil_pmat_args *a) {
    const int np = a->m->np;
    int m0 = 0;
    for (; m0 + 4 <= a->M; m0 += 4)
        for (int p = 0; p < np; p++) blk_f32(a, m0, p, 4, 1);
    int rest = a->M - m0;
    if (!rest) return;
    int p = 0;
    if (rest == 1)
        for (; p + 4 <= np; p += 4) blk_f32(a, m0, p, 1, 4);
    else
        for (; p + 2 <= np; p += 2) {
            if (rest == 2) blk_f32(a, m0, p, 2, 2);
            else blk_f32(a, m0, p, 3, 2);
        }
    for (; p < np; p++) {
        if (rest == 1) blk_f32(a, m0, p, 1, 1);
        else if (rest == 2) blk_f32(a, m0, p, 2, 1);
        else blk_f32(a, m0, p, 3, 1);
    }
}

/* ---- bf16 --------------------------------------------------------------------------------- */
AI void blk_bf16(const cphil_pmat_args *a, int m0, int p0, const int MB) {
    const cphil_pmat *m = a->m;
    const int kp = m->kp;
    const uint16_t *x = (const uint16_t *)a->x + (size_t)m0 * kp;
    const uint16_t *w = (const uint16_t *)m->w + (size_t)p0 * CPHIL_PANEL * kp;
    const __m256i hi_mask = _mm256_set1_epi32((int)0xffff0000u);
    __m256 acc[4][2];
#pragma GCC unroll 4
    for (int i = 0; i < MB; i++) acc[i][0] = acc[i][1] = _mm256_setzero_ps();
    for (int k2 = 0; k2 < kp / 2; k2++) {
        const uint16_t *wp = w + (size_t)k2 * 32;
        __m256i v0 = _mm256_load_si256((const __m256i *)wp);
        __m256i v1 = _mm256_load_si256((const __m256i *)(wp + 16));
        __m256 e0 = _mm256_castsi256_ps(_mm256_slli_epi32(v0, 16)); /* k even, rows 0-7 */
        __m256 o0 = _mm256_castsi256_ps(_mm256_and_si256(v0, hi_mask)); /* k odd */
        __m256 e1 = _mm256_castsi256_ps(_mm256_slli_epi32(v1, 16));
        __m256 o1 = _mm256_castsi256_ps(_mm256_and_si256(v1, hi_mask));
#pragma GCC unroll 4
        for (int i = 0; i < MB; i++) {
            const uint16_t *xp = x + (size_t)i * kp + 2 * k2;
            __m256 xe = _mm256_set1_ps(cphil_pmat_bf16_to_f32(xp[0]));
            __m256 xo = _mm256_set1_ps(cphil_pmat_bf16_to_f32(xp[1]));
            acc[i][0] = _mm256_fmadd_ps(xe, e0, acc[i][0]);
            acc[i][1] = _mm256_fmadd_ps(xe, e1, acc[i][1]);
            acc[i][0] = _mm256_fmadd_ps(xo, o0, acc[i][0]);
            acc[i][1] = _mm256_fmadd_ps(xo, o1, acc[i][1]);
        }
    }
#pragma GCC unroll 4
    for (int i = 0; i < MB; i++) {
        epilogue8(a, m0 + i, p0 * CPHIL_PANEL, acc[i][0]);
        epilogue8(a, m0 + i, p0 * CPHIL_PANEL + 8, acc[i][1]);
    }
}

void cphil_pmat_bf16_avx2(const cphil_pmat_args *a) {
    const int np = a->m->np;
    int m0 = 0;
    for (; m0 + 4 <= a->M; m0 += 4)
        for (int p = 0; p < np; p++) blk_bf16(a, m0, p, 4);
    int rest = a->M - m0;
    for (int p = 0; p < np && rest; p++) {
        if (rest == 1) blk_bf16(a, m0, p, 1);
        else if (rest == 2) blk_bf16(a, m0, p, 2);
        else blk_bf16(a, m0, p, 3);
    }
}

/* ---- int8 --------------------------------------------------------------------------------- */
/* int8 without VNNI: vpmaddubsw multiplies u8 by s8 and adds pairs into s16, saturating. The
 * sign trick keeps it exact: |x| (u8, <= 127) times sign(x) * w (s8, |w| <= 127), so a pair
 * sum is at most 2 * 127 * 127 = 32258 < 32767; vpmaddwd by ones then adds the pairs into s32.
 * One ymm holds 8 rows x one k-quad of a panel (rows 0-7 in the low half of the 64-byte slice,
 * 8-15 in the high half), so the sums land per row with no reduction; |x| is shared by both
 * halves. MB input rows share each weight load. */
AI void blk_i8(const cphil_pmat_args *a, int m0, int p0, const int MB) {
    const cphil_pmat *m = a->m;
    const int kp = m->kp;
    const int8_t *x = (const int8_t *)a->x + (size_t)m0 * kp;
    const int8_t *w = (const int8_t *)m->w + (size_t)p0 * CPHIL_PANEL * kp;
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i acc[4][2];
#pragma GCC unroll 4
    for (int i = 0; i < MB; i++) acc[i][0] = acc[i][1] = _mm256_setzero_si256();
    for (int k4 = 0; k4 < kp / 4; k4++) {
        const __m256i w0 = _mm256_load_si256((const __m256i *)(w + (size_t)k4 * 64));
        const __m256i w1 = _mm256_load_si256((const __m256i *)(w + (size_t)k4 * 64 + 32));
#pragma GCC unroll 4
        for (int i = 0; i < MB; i++) {
            int32_t quad;
            __builtin_memcpy(&quad, x + (size_t)i * kp + 4 * k4, 4);
            const __m256i xv = _mm256_set1_epi32(quad), xa = _mm256_abs_epi8(xv);
            acc[i][0] = _mm256_add_epi32(acc[i][0], _mm256_madd_epi16(_mm256_maddubs_epi16(xa, _mm256_sign_epi8(w0, xv)), ones));
            acc[i][1] = _mm256_add_epi32(acc[i][1], _mm256_madd_epi16(_mm256_maddubs_epi16(xa, _mm256_sign_epi8(w1, xv)), ones));
        }
    }
    const int r0 = p0 * CPHIL_PANEL;
#pragma GCC unroll 4
    for (int i = 0; i < MB; i++) {
        const __m256 xs = _mm256_set1_ps(a->xs[m0 + i]);
        for (int h = 0; h < 2; h++) { /* (acc * xs) * scale: the scalar twin's order */
            __m256 v = _mm256_mul_ps(_mm256_cvtepi32_ps(acc[i][h]), xs);
            epilogue8(a, m0 + i, r0 + 8 * h, _mm256_mul_ps(v, _mm256_loadu_ps(m->scale + r0 + 8 * h)));
        }
    }
}

void cphil_pmat_i8_avx2(const cphil_pmat_args *a) {
    const int np = a->m->np;
    int m0 = 0;
    for (; m0 + 4 <= a->M; m0 += 4)
        for (int p = 0; p < np; p++) blk_i8(a, m0, p, 4);
    const int rest = a->M - m0;
    for (int p = 0; p < np && rest; p++) {
        if (rest == 1) blk_i8(a, m0, p, 1);
        else if (rest == 2) blk_i8(a, m0, p, 2);
        else blk_i8(a, m0, p, 3);
    }
}

/* Quantize one activation row to s8 (the contract of cphil_pmat_quant_row_ref, same bytes): the
 * max |x| over 8 lanes, then x / scale clamped to +-127 and rounded half to even (vcvtps2dq
 * under the default rounding mode, as nearbyintf). */
float cphil_pmat_quant_row_avx2(const float *x, int n, float act_scale, int8_t *q) {
    float sc = act_scale;
    int i = 0;
    if (sc <= 0.f) {
        const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
        __m256 mx = _mm256_setzero_ps();
        for (; i + 8 <= n; i += 8) mx = _mm256_max_ps(mx, _mm256_and_ps(_mm256_loadu_ps(x + i), absmask));
        float t[8], amax = 0.f;
        _mm256_storeu_ps(t, mx);
        for (int j = 0; j < 8; j++) amax = t[j] > amax ? t[j] : amax;
        for (; i < n; i++) {
            float a = x[i] < 0.f ? -x[i] : x[i];
            amax = a > amax ? a : amax;
        }
        sc = amax > 0.f ? amax / 127.f : 1.f;
    }
    const float inv = 1.f / sc;
    const __m256 vinv = _mm256_set1_ps(inv), lo = _mm256_set1_ps(-127.f), hi = _mm256_set1_ps(127.f);
    for (i = 0; i + 8 <= n; i += 8) {
        __m256 v = _mm256_min_ps(_mm256_max_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i), vinv), lo), hi);
        __m256i r = _mm256_cvtps_epi32(v);
        __m128i p16 = _mm_packs_epi32(_mm256_castsi256_si128(r), _mm256_extracti128_si256(r, 1));
        _mm_storel_epi64((__m128i *)(q + i), _mm_packs_epi16(p16, p16));
    }
    for (; i < n; i++) { /* the scalar twin's steps (clamping first gives the same byte) */
        float v = x[i] * inv;
        v = v > 127.f ? 127.f : v < -127.f ? -127.f : v;
        q[i] = (int8_t)_mm_cvtss_si32(_mm_set_ss(v));
    }
    return sc;
}
