/* linear_avx512.c — AVX-512 inference kernels on packed weights: f32 (FMA), bf16 (AVX512_BF16
 * vdpbf16ps), int8 (AVX512_VNNI vpdpbusd, u8 = xq + 128 with the 128 * sum(q) term removed),
 * and the one-hot gather-add.
 *
 * Weights come in panels of 64 outputs (4 zmm per k step). Tiles: 1 row x 2 panels (128
 * outputs) for single rows, 4 rows x 1 panel otherwise; each output is one accumulator chain over
 * k from 0 (so bf16 and int8 equal the _ref bit for bit). Rows or panels past the end reuse the
 * last valid pointer and their results are dropped; padding outputs are computed, not stored.
 * Not here: activation quantization (linear.c). Reference: kernels.h, Intel SDM.
 */
#include "kernels/cpu/kernels_internal.h"

#include <immintrin.h>

#define PW 64 /* outputs per weight panel */

static inline __mmask16 tail_mask(int n) { return n >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << n) - 1); }

/* The shared epilogue for 16 outputs o0.. of row m. */
static inline void store16(__m512 v, float *yrow, int o0, int out, const float *bias, bool acc) {
    __mmask16 m = tail_mask(out - o0);
    if (bias) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, bias + o0));
    if (acc) v = _mm512_add_ps(_mm512_maskz_loadu_ps(m, yrow + o0), v);
    _mm512_mask_storeu_ps(yrow + o0, m, v);
}

#define UNROLL _Pragma("GCC unroll 16")

/* ---- f32 -------------------------------------------------------------------------------- */
static inline __attribute__((always_inline)) void f32_tile(const cphil_wpack *p, int R, int G, int M, int m0, int g0,
                                                           const float *x, int ldx, const float *bias, float *y,
                                                           int ldy, bool acc) {
    int np = p->out_pad / PW;
    size_t ps = (size_t)p->in * PW;
    const float *xr[4], *wp[2];
    UNROLL for (int r = 0; r < R; r++) xr[r] = x + (size_t)(m0 + r < M ? m0 + r : M - 1) * ldx;
    UNROLL for (int q = 0; q < G / 4; q++) wp[q] = (const float *)p->data + (size_t)(g0 / 4 + q < np ? g0 / 4 + q : np - 1) * ps;
    __m512 c[4][8];
    UNROLL for (int r = 0; r < R; r++) UNROLL for (int g = 0; g < G; g++) c[r][g] = _mm512_setzero_ps();
    for (int k = 0; k < p->in; k++) {
        __m512 w[8];
        UNROLL for (int g = 0; g < G; g++) w[g] = _mm512_load_ps(wp[g / 4] + (size_t)k * PW + (g % 4) * 16);
        UNROLL for (int r = 0; r < R; r++) {
            __m512 xb = _mm512_set1_ps(xr[r][k]);
            UNROLL for (int g = 0; g < G; g++) c[r][g] = _mm512_fmadd_ps(xb, w[g], c[r][g]);
        }
    }
    UNROLL for (int r = 0; r < R; r++) {
        if (m0 + r >= M) break;
        UNROLL for (int g = 0; g < G; g++)
            if ((g0 + g) * 16 < p->out) store16(c[r][g], y + (size_t)(m0 + r) * ldy, (g0 + g) * 16, p->out, bias, acc);
    }
}

void cphil_linear_f32_avx512(const cphil_wpack *p, int M, const float *x, int ldx, const float *bias, float *y,
                             int ldy, bool acc) {
    int np = p->out_pad / 16, m = 0; /* 16-lane vectors */
    if (M > 1) { /* weight panel outer, so it stays in cache across the row tiles */
        for (int g = 0; g < np; g += 4)
            for (m = 0; m < M; m += 4) f32_tile(p, 4, 4, M, m, g, x, ldx, bias, y, ldy, acc);
        return;
    }
    for (; m < M; m++)
        for (int g = 0; g < np; g += 8) f32_tile(p, 1, 8, M, m, g, x, ldx, bias, y, ldy, acc);
}

/* ---- bf16 ------------------------------------------------------------------------------- */
static inline __attribute__((always_inline)) void bf16_tile(const cphil_wpack *p, int R, int G, int M, int m0, int g0,
                                                            const uint32_t *xb, const float *bias, float *y, int ldy,
                                                            bool acc) {
    int np = p->out_pad / PW, kp = p->in_pad / 2;
    size_t ps = (size_t)kp * PW;
    const int *xr[4];
    const uint32_t *wp[2];
    UNROLL for (int r = 0; r < R; r++) xr[r] = (const int *)xb + (size_t)(m0 + r < M ? m0 + r : M - 1) * kp;
    UNROLL for (int q = 0; q < G / 4; q++) wp[q] = (const uint32_t *)p->data + (size_t)(g0 / 4 + q < np ? g0 / 4 + q : np - 1) * ps;
    __m512 c[4][8];
    UNROLL for (int r = 0; r < R; r++) UNROLL for (int g = 0; g < G; g++) c[r][g] = _mm512_setzero_ps();
    for (int k = 0; k < kp; k++) {
        __m512bh w[8];
        UNROLL for (int g = 0; g < G; g++) w[g] = (__m512bh)_mm512_load_si512(wp[g / 4] + (size_t)k * PW + (g % 4) * 16);
        UNROLL for (int r = 0; r < R; r++) {
            __m512bh xv = (__m512bh)_mm512_set1_epi32(xr[r][k]);
            UNROLL for (int g = 0; g < G; g++) c[r][g] = _mm512_dpbf16_ps(c[r][g], xv, w[g]);
        }
    }
    UNROLL for (int r = 0; r < R; r++) {
        if (m0 + r >= M) break;
        UNROLL for (int g = 0; g < G; g++)
            if ((g0 + g) * 16 < p->out) store16(c[r][g], y + (size_t)(m0 + r) * ldy, (g0 + g) * 16, p->out, bias, acc);
    }
}

void cphil_linear_bf16_avx512(const cphil_wpack *p, int M, const uint32_t *xb, const float *bias, float *y, int ldy,
                              bool acc) {
    int np = p->out_pad / 16, m = 0; /* 16-lane vectors */
    if (M > 1) { /* weight panel outer, so it stays in cache across the row tiles */
        for (int g = 0; g < np; g += 4)
            for (m = 0; m < M; m += 4) bf16_tile(p, 4, 4, M, m, g, xb, bias, y, ldy, acc);
        return;
    }
    for (; m < M; m++)
        for (int g = 0; g < np; g += 8) bf16_tile(p, 1, 8, M, m, g, xb, bias, y, ldy, acc);
}

/* ---- int8 (VNNI) ------------------------------------------------------------------------ */
static inline __attribute__((always_inline)) void i8_tile(const cphil_wpack *p, int R, int G, int M, int m0, int g0,
                                                          const int8_t *xq, const float *s, const float *bias,
                                                          float *y, int ldy, bool acc) {
    int np = p->out_pad / PW, kq = p->in_pad / 4;
    size_t ps = (size_t)kq * PW;
    const int *xr[4];
    const int *wp[2];
    UNROLL for (int r = 0; r < R; r++) xr[r] = (const int *)(xq + (size_t)(m0 + r < M ? m0 + r : M - 1) * p->in_pad);
    UNROLL for (int q = 0; q < G / 4; q++) wp[q] = (const int *)p->data + (size_t)(g0 / 4 + q < np ? g0 / 4 + q : np - 1) * ps;
    __m512i c[4][8];
    UNROLL for (int r = 0; r < R; r++) UNROLL for (int g = 0; g < G; g++) c[r][g] = _mm512_setzero_si512();
    const __m512i flip = _mm512_set1_epi32((int)0x80808080u);
    for (int k = 0; k < kq; k++) {
        __m512i w[8];
        UNROLL for (int g = 0; g < G; g++) w[g] = _mm512_load_si512(wp[g / 4] + (size_t)k * PW + (g % 4) * 16);
        UNROLL for (int r = 0; r < R; r++) {
            __m512i xv = _mm512_xor_si512(_mm512_set1_epi32(xr[r][k]), flip); /* s8 -> u8 = x + 128 */
            UNROLL for (int g = 0; g < G; g++) c[r][g] = _mm512_dpbusd_epi32(c[r][g], xv, w[g]);
        }
    }
    UNROLL for (int r = 0; r < R; r++) {
        if (m0 + r >= M) break;
        __m512 sm = _mm512_set1_ps(s[m0 + r]);
        UNROLL for (int g = 0; g < G; g++) {
            int o0 = (g0 + g) * 16;
            if (o0 >= p->out) continue;
            __m512i a = _mm512_sub_epi32(c[r][g], _mm512_loadu_si512(p->qsum + o0));
            __m512 comb = _mm512_mul_ps(sm, _mm512_loadu_ps(p->scale + o0));
            store16(_mm512_mul_ps(_mm512_cvtepi32_ps(a), comb), y + (size_t)(m0 + r) * ldy, o0, p->out, bias, acc);
        }
    }
}

void cphil_linear_i8_avx512(const cphil_wpack *p, int M, const int8_t *xq, const float *s, const float *bias, float *y,
                            int ldy, bool acc) {
    int np = p->out_pad / 16, m = 0; /* 16-lane vectors */
    if (M > 1) { /* weight panel outer, so it stays in cache across the row tiles */
        for (int g = 0; g < np; g += 4)
            for (m = 0; m < M; m += 4) i8_tile(p, 4, 4, M, m, g, xq, s, bias, y, ldy, acc);
        return;
    }
    for (; m < M; m++)
        for (int g = 0; g < np; g += 8) i8_tile(p, 1, 8, M, m, g, xq, s, bias, y, ldy, acc);
}

/* ---- gather-add ------------------------------------------------------------------------- */
int cphil_gather_add_avx512(const cphil_gtable *t, int n_ids, const int32_t *ids, float *y) {
    int bad = 0, nv = 0;
    int32_t rows[64];
    /* validate once; gather in chunks of 64 ids (more ids: the tail goes through the loop again
     * with the partial sums carried, in the same order) */
    for (int i = 0; i < n_ids; i++) {
        int64_t r = (int64_t)ids[i] - t->col0;
        if (r < 0 || r >= t->rows) bad++;
        else nv++;
    }
    if (nv == 0) return bad;
    for (int o0 = 0; o0 < t->width; o0 += 16) {
        __mmask16 m = tail_mask(t->width - o0);
        __m512 sf = _mm512_setzero_ps();
        __m512i si = _mm512_setzero_si512();
        bool first = true;
        for (int i0 = 0; i0 < n_ids; i0 += 64) {
            int n = 0;
            for (int i = i0; i < n_ids && i < i0 + 64; i++) {
                int64_t r = (int64_t)ids[i] - t->col0;
                if (r >= 0 && r < t->rows) rows[n++] = (int32_t)r;
            }
            for (int i = 0; i < n; i++) {
                size_t base = (size_t)rows[i] * t->ld + o0;
                if (t->type == CPHIL_W_I8) {
                    si = _mm512_add_epi32(si, _mm512_cvtepi8_epi32(_mm_load_si128((const __m128i *)((const int8_t *)t->data + base))));
                } else {
                    __m512 v = t->type == CPHIL_W_F32
                                   ? _mm512_load_ps((const float *)t->data + base)
                                   : _mm512_castsi512_ps(_mm512_slli_epi32(
                                         _mm512_cvtepu16_epi32(_mm256_load_si256((const __m256i *)((const uint16_t *)t->data + base))), 16));
                    sf = first ? v : _mm512_add_ps(sf, v);
                }
                first = false;
            }
        }
        if (t->type == CPHIL_W_I8) sf = _mm512_mul_ps(_mm512_cvtepi32_ps(si), _mm512_load_ps(t->scale + o0));
        __m512 yv = _mm512_maskz_loadu_ps(m, y + o0);
        _mm512_mask_storeu_ps(y + o0, m, _mm512_add_ps(yv, sf));
    }
    return bad;
}

/* ---- per-call activations (same results as cphil_lin_act_bf16 / cphil_lin_act_i8) ----- */
void cphil_lin_act_bf16_avx512(const cphil_wpack *p, int M, const float *x, int ldx, uint32_t *xb) {
    int kp = p->in_pad / 2, used = (p->in + 1) / 2;
    for (int m = 0; m < M; m++) {
        uint32_t *d = xb + (size_t)m * kp;
        cphil_bf16_pairs_avx512(x + (size_t)m * ldx, p->in, d);
        for (int q = used; q < kp; q++) d[q] = 0;
    }
}

void cphil_lin_act_i8_avx512(const cphil_wpack *p, int M, const float *x, int ldx, float act_scale, int8_t *xq,
                             float *s) {
    const __m512 absmask = _mm512_castsi512_ps(_mm512_set1_epi32(0x7fffffff));
    const __m512 hi = _mm512_set1_ps(127.0f), lo = _mm512_set1_ps(-127.0f), magic = _mm512_set1_ps(12582912.0f);
    int in = p->in;
    for (int m = 0; m < M; m++) {
        const float *r = x + (size_t)m * ldx;
        int8_t *d = xq + (size_t)m * p->in_pad;
        float sc, inv;
        if (act_scale > 0) {
            sc = act_scale;
            inv = 1.0f / act_scale;
        } else {
            __m512 mx = _mm512_setzero_ps();
            for (int k = 0; k < in; k += 16) {
                __m512 v = _mm512_and_ps(_mm512_maskz_loadu_ps(tail_mask(in - k), r + k), absmask);
                mx = _mm512_max_ps(v, mx); /* a NaN v keeps mx, like the scalar a > mx ? a : mx */
            }
            float mxs = _mm512_reduce_max_ps(mx);
            sc = mxs / 127.0f;
            inv = mxs > 0 ? 127.0f / mxs : 0.0f;
        }
        s[m] = sc;
        __m512 vi = _mm512_set1_ps(inv);
        for (int k = 0; k < in; k += 16) {
            __mmask16 tm = tail_mask(in - k);
            __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(tm, r + k), vi);
            v = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(v, v, _CMP_ORD_Q), v); /* NaN -> 0 */
            v = _mm512_min_ps(_mm512_max_ps(v, lo), hi);
            v = _mm512_sub_ps(_mm512_add_ps(v, magic), magic);
            _mm512_mask_cvtepi32_storeu_epi8(d + k, tm, _mm512_cvttps_epi32(v));
        }
        for (int k = in; k < p->in_pad; k++) d[k] = 0;
    }
}
