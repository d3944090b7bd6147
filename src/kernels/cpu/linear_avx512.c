/* linear_avx512.c — AVX-512 inference kernels on packed weights: f32 (FMA), bf16 (AVX512_BF16
 * vdpbf16ps), int8 (AVX512_VNNI vpdpbusd, u8 = xq + 128 with the 128 * sum(q) term removed),
 * and the one-hot gather-add.
 *
 * Tiles: 1 row x 8 panels (128 outputs) for single rows, 4 rows x 4 panels otherwise; each
 * output is one accumulator chain over k from 0 (so bf16 and int8 equal the _ref bit for bit).
 * Rows or panels past the end reuse the last valid pointer and their results are dropped.
 * Not here: activation quantization (linear.c). Reference: kernels.h, Intel SDM.
 */
#include "kernels/cpu/kernels_internal.h"

#include <immintrin.h>

#define PW 16

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
    const float *xr[4], *wp[8];
    UNROLL for (int r = 0; r < R; r++) xr[r] = x + (size_t)(m0 + r < M ? m0 + r : M - 1) * ldx;
    UNROLL for (int g = 0; g < G; g++) wp[g] = (const float *)p->data + (size_t)(g0 + g < np ? g0 + g : np - 1) * ps;
    __m512 c[4][8];
    UNROLL for (int r = 0; r < R; r++) UNROLL for (int g = 0; g < G; g++) c[r][g] = _mm512_setzero_ps();
    for (int k = 0; k < p->in; k++) {
        __m512 w[8];
        UNROLL for (int g = 0; g < G; g++) w[g] = _mm512_load_ps(wp[g] + (size_t)k * PW);
        UNROLL for (int r = 0; r < R; r++) {
            __m512 xb = _mm512_set1_ps(xr[r][k]);
            UNROLL for (int g = 0; g < G; g++) c[r][g] = _mm512_fmadd_ps(xb, w[g], c[r][g]);
        }
    }
    UNROLL for (int r = 0; r < R; r++) {
        if (m0 + r >= M) break;
        UNROLL for (int g = 0; g < G; g++)
            if (g0 + g < np) store16(c[r][g], y + (size_t)(m0 + r) * ldy, (g0 + g) * PW, p->out, bias, acc);
    }
}

void cphil_linear_f32_avx512(const cphil_wpack *p, int M, const float *x, int ldx, const float *bias, float *y,
                             int ldy, bool acc) {
    int np = p->out_pad / PW, m = 0;
    for (; m + 1 < M; m += 4)
        for (int g = 0; g < np; g += 4) f32_tile(p, 4, 4, M, m, g, x, ldx, bias, y, ldy, acc);
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
    const uint32_t *wp[8];
    UNROLL for (int r = 0; r < R; r++) xr[r] = (const int *)xb + (size_t)(m0 + r < M ? m0 + r : M - 1) * kp;
    UNROLL for (int g = 0; g < G; g++) wp[g] = (const uint32_t *)p->data + (size_t)(g0 + g < np ? g0 + g : np - 1) * ps;
    __m512 c[4][8];
    UNROLL for (int r = 0; r < R; r++) UNROLL for (int g = 0; g < G; g++) c[r][g] = _mm512_setzero_ps();
    for (int k = 0; k < kp; k++) {
        __m512bh w[8];
        UNROLL for (int g = 0; g < G; g++) w[g] = (__m512bh)_mm512_load_si512(wp[g] + (size_t)k * PW);
        UNROLL for (int r = 0; r < R; r++) {
            __m512bh xv = (__m512bh)_mm512_set1_epi32(xr[r][k]);
            UNROLL for (int g = 0; g < G; g++) c[r][g] = _mm512_dpbf16_ps(c[r][g], xv, w[g]);
        }
    }
    UNROLL for (int r = 0; r < R; r++) {
        if (m0 + r >= M) break;
        UNROLL for (int g = 0; g < G; g++)
            if (g0 + g < np) store16(c[r][g], y + (size_t)(m0 + r) * ldy, (g0 + g) * PW, p->out, bias, acc);
    }
}

void cphil_linear_bf16_avx512(const cphil_wpack *p, int M, const uint32_t *xb, const float *bias, float *y, int ldy,
                              bool acc) {
    int np = p->out_pad / PW, m = 0;
    for (; m + 1 < M; m += 4)
        for (int g = 0; g < np; g += 4) bf16_tile(p, 4, 4, M, m, g, xb, bias, y, ldy, acc);
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
    const int *wp[8];
    UNROLL for (int r = 0; r < R; r++) xr[r] = (const int *)(xq + (size_t)(m0 + r < M ? m0 + r : M - 1) * p->in_pad);
    UNROLL for (int g = 0; g < G; g++) wp[g] = (const int *)p->data + (size_t)(g0 + g < np ? g0 + g : np - 1) * ps;
    __m512i c[4][8];
    UNROLL for (int r = 0; r < R; r++) UNROLL for (int g = 0; g < G; g++) c[r][g] = _mm512_setzero_si512();
    const __m512i flip = _mm512_set1_epi32((int)0x80808080u);
    for (int k = 0; k < kq; k++) {
        __m512i w[8];
        UNROLL for (int g = 0; g < G; g++) w[g] = _mm512_load_si512(wp[g] + (size_t)k * PW);
        UNROLL for (int r = 0; r < R; r++) {
            __m512i xv = _mm512_xor_si512(_mm512_set1_epi32(xr[r][k]), flip); /* s8 -> u8 = x + 128 */
            UNROLL for (int g = 0; g < G; g++) c[r][g] = _mm512_dpbusd_epi32(c[r][g], xv, w[g]);
        }
    }
    UNROLL for (int r = 0; r < R; r++) {
        if (m0 + r >= M) break;
        __m512 sm = _mm512_set1_ps(s[m0 + r]);
        UNROLL for (int g = 0; g < G; g++) {
            if (g0 + g >= np) continue;
            int o0 = (g0 + g) * PW;
            __m512i a = _mm512_sub_epi32(c[r][g], _mm512_loadu_si512(p->qsum + o0));
            __m512 comb = _mm512_mul_ps(sm, _mm512_loadu_ps(p->scale + o0));
            store16(_mm512_mul_ps(_mm512_cvtepi32_ps(a), comb), y + (size_t)(m0 + r) * ldy, o0, p->out, bias, acc);
        }
    }
}

void cphil_linear_i8_avx512(const cphil_wpack *p, int M, const int8_t *xq, const float *s, const float *bias, float *y,
                            int ldy, bool acc) {
    int np = p->out_pad / PW, m = 0;
    for (; m + 1 < M; m += 4)
        for (int g = 0; g < np; g += 4) i8_tile(p, 4, 4, M, m, g, xq, s, bias, y, ldy, acc);
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
