/* linear_avx2.c — AVX2/FMA inference kernels on packed weights: f32 (FMA), bf16 (exact
 * emulation of vdpbf16ps: FMA of exact bf16 products, then flush-to-zero), int8 (vpmaddubsw with
 * the sign trick: |q| as u8 times sign(q)*xq as s8, pair sums <= 2*127*127 never saturate, then
 * vpmaddwd by ones to int32), and the one-hot gather-add.
 *
 * Weight panels hold 64 outputs (8 ymm per k step). Tiles: 1 row x 64 outputs, or 3 rows x 32
 * outputs. Each output is one accumulator chain over k from 0. Not here: activation quantization (linear.c).
 * Reference: kernels.h; Intel SDM (PMADDUBSW, PSIGNB, PMADDWD).
 */
#include "kernels/cpu/kernels_internal.h"

#include <immintrin.h>
#include <string.h>

#define PW 64 /* outputs per weight panel */
#define UNROLL _Pragma("GCC unroll 16")

static inline __m256i tail_mask8(int n) { /* lanes < n all-ones */
    __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), idx);
}

/* Epilogue for 8 outputs o0.. of one row. */
static inline void store8(__m256 v, float *yrow, int o0, int out, const float *bias, bool acc) {
    int n = out - o0;
    if (n <= 0) return;
    if (n >= 8) {
        if (bias) v = _mm256_add_ps(v, _mm256_loadu_ps(bias + o0));
        if (acc) v = _mm256_add_ps(_mm256_loadu_ps(yrow + o0), v);
        _mm256_storeu_ps(yrow + o0, v);
        return;
    }
    __m256i m = tail_mask8(n);
    if (bias) v = _mm256_add_ps(v, _mm256_maskload_ps(bias + o0, m));
    if (acc) v = _mm256_add_ps(_mm256_maskload_ps(yrow + o0, m), v);
    _mm256_maskstore_ps(yrow + o0, m, v);
}

static inline __m256 ftz8(__m256 x) {
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    __m256 small = _mm256_cmp_ps(_mm256_and_ps(x, absmask), _mm256_set1_ps(1.17549435e-38f), _CMP_LT_OQ);
    return _mm256_andnot_ps(_mm256_and_ps(small, absmask), x);
}

/* One template for the three types: T = 0 f32, 1 bf16, 2 int8. */
static inline __attribute__((always_inline)) void tile(int T, const cphil_wpack *p, int R, int G, int M, int m0,
                                                       int g0, const void *xin, int ldx, const float *s,
                                                       const float *bias, float *y, int ldy, bool acc) {
    int ksteps = T == 0 ? p->in : (T == 1 ? p->in_pad / 2 : p->in_pad / 4);
    size_t xstride = T == 0 ? (size_t)ldx : (T == 1 ? (size_t)p->in_pad / 2 : (size_t)p->in_pad / 4);
    size_t ps = (size_t)ksteps * PW; /* elements of 4 bytes per panel */
    const uint32_t *xr[3];
    /* g0 counts 16-output vectors; G of them (G = 2 or 4) lie inside one 64-output panel */
    const uint32_t *wp = (const uint32_t *)p->data + (size_t)(g0 / 4) * ps + (g0 % 4) * 16;
    UNROLL for (int r = 0; r < R; r++) xr[r] = (const uint32_t *)xin + (size_t)(m0 + r < M ? m0 + r : M - 1) * xstride;
    __m256 c[3][8];
    __m256i ci[3][8];
    UNROLL for (int r = 0; r < R; r++) UNROLL for (int h = 0; h < 2 * G; h++) {
        c[r][h] = _mm256_setzero_ps();
        ci[r][h] = _mm256_setzero_si256();
    }
    const __m256i himask = _mm256_set1_epi32((int)0xffff0000u), ones16 = _mm256_set1_epi16(1);
    for (int k = 0; k < ksteps; k++) {
        __m256i w[8];
        UNROLL for (int h = 0; h < 2 * G; h++) w[h] = _mm256_load_si256((const __m256i *)(wp + (size_t)k * PW + h * 8));
        if (T == 0) {
            UNROLL for (int r = 0; r < R; r++) {
                __m256 xb = _mm256_broadcast_ss((const float *)xr[r] + k);
                UNROLL for (int h = 0; h < 2 * G; h++) c[r][h] = _mm256_fmadd_ps(xb, _mm256_castsi256_ps(w[h]), c[r][h]);
            }
        } else if (T == 1) {
            __m256 wh[8], wl[8];
            UNROLL for (int h = 0; h < 2 * G; h++) {
                wh[h] = _mm256_castsi256_ps(_mm256_and_si256(w[h], himask));
                wl[h] = _mm256_castsi256_ps(_mm256_slli_epi32(w[h], 16));
            }
            UNROLL for (int r = 0; r < R; r++) {
                __m256i xv = _mm256_set1_epi32((int)xr[r][k]);
                __m256 xh = _mm256_castsi256_ps(_mm256_and_si256(xv, himask));
                __m256 xl = _mm256_castsi256_ps(_mm256_slli_epi32(xv, 16));
                UNROLL for (int h = 0; h < 2 * G; h++) {
                    c[r][h] = ftz8(_mm256_fmadd_ps(xh, wh[h], c[r][h]));
                    c[r][h] = ftz8(_mm256_fmadd_ps(xl, wl[h], c[r][h]));
                }
            }
        } else {
            __m256i wa[8];
            UNROLL for (int h = 0; h < 2 * G; h++) wa[h] = _mm256_abs_epi8(w[h]);
            UNROLL for (int r = 0; r < R; r++) {
                __m256i xv = _mm256_set1_epi32((int)xr[r][k]);
                UNROLL for (int h = 0; h < 2 * G; h++) {
                    __m256i t16 = _mm256_maddubs_epi16(wa[h], _mm256_sign_epi8(xv, w[h]));
                    ci[r][h] = _mm256_add_epi32(ci[r][h], _mm256_madd_epi16(t16, ones16));
                }
            }
        }
    }
    UNROLL for (int r = 0; r < R; r++) {
        if (m0 + r >= M) break;
        float *yrow = y + (size_t)(m0 + r) * ldy;
        UNROLL for (int h = 0; h < 2 * G; h++) {
            int o0 = g0 * 16 + h * 8;
            if (o0 >= p->out) continue;
            __m256 v = c[r][h];
            if (T == 2) {
                __m256 comb = _mm256_mul_ps(_mm256_set1_ps(s[m0 + r]), _mm256_loadu_ps(p->scale + o0));
                v = _mm256_mul_ps(_mm256_cvtepi32_ps(ci[r][h]), comb);
            }
            store8(v, yrow, o0, p->out, bias, acc);
        }
    }
}

/* Several rows: tiles of 3 rows x 32 outputs; one row: 64 outputs at a time. */
#define DRIVE(T, XIN, LDX, S)                                                                        \
    do {                                                                                             \
        int np = p->out_pad / 16, m = 0; /* 16-output vectors */                                    \
        if (M > 1) { /* weight panel outer: it stays in cache across the row tiles */               \
            for (int g = 0; g < np; g += 2)                                                          \
                for (m = 0; m < M; m += 3) tile(T, p, 3, 2, M, m, g, XIN, LDX, S, bias, y, ldy, acc); \
            break;                                                                                   \
        }                                                                                            \
        for (; m < M; m++)                                                                           \
            for (int g = 0; g < np; g += 4) tile(T, p, 1, 4, M, m, g, XIN, LDX, S, bias, y, ldy, acc); \
    } while (0)

void cphil_linear_f32_avx2(const cphil_wpack *p, int M, const float *x, int ldx, const float *bias, float *y, int ldy,
                           bool acc) {
    DRIVE(0, x, ldx, NULL);
}

void cphil_linear_bf16_avx2(const cphil_wpack *p, int M, const uint32_t *xb, const float *bias, float *y, int ldy,
                            bool acc) {
    DRIVE(1, xb, 0, NULL);
}

void cphil_linear_i8_avx2(const cphil_wpack *p, int M, const int8_t *xq, const float *s, const float *bias, float *y,
                          int ldy, bool acc) {
    DRIVE(2, xq, 0, s);
}

/* ---- gather-add ------------------------------------------------------------------------- */
int cphil_gather_add_avx2(const cphil_gtable *t, int n_ids, const int32_t *ids, float *y) {
    int bad = 0, nv = 0;
    for (int i = 0; i < n_ids; i++) {
        int64_t r = (int64_t)ids[i] - t->col0;
        if (r < 0 || r >= t->rows) bad++;
        else nv++;
    }
    if (nv == 0) return bad;
    for (int o0 = 0; o0 < t->width; o0 += 8) {
        __m256 sf = _mm256_setzero_ps();
        __m256i si = _mm256_setzero_si256();
        bool first = true;
        for (int i = 0; i < n_ids; i++) {
            int64_t r = (int64_t)ids[i] - t->col0;
            if (r < 0 || r >= t->rows) continue;
            size_t base = (size_t)r * t->ld + o0;
            if (t->type == CPHIL_W_I8) {
                int64_t v8;
                memcpy(&v8, (const int8_t *)t->data + base, 8);
                si = _mm256_add_epi32(si, _mm256_cvtepi8_epi32(_mm_cvtsi64_si128(v8)));
            } else {
                __m256 v = t->type == CPHIL_W_F32
                               ? _mm256_load_ps((const float *)t->data + base)
                               : _mm256_castsi256_ps(_mm256_slli_epi32(
                                     _mm256_cvtepu16_epi32(_mm_load_si128((const __m128i *)((const uint16_t *)t->data + base))), 16));
                sf = first ? v : _mm256_add_ps(sf, v);
            }
            first = false;
        }
        if (t->type == CPHIL_W_I8) sf = _mm256_mul_ps(_mm256_cvtepi32_ps(si), _mm256_load_ps(t->scale + o0));
        int n = t->width - o0;
        if (n >= 8) _mm256_storeu_ps(y + o0, _mm256_add_ps(_mm256_loadu_ps(y + o0), sf));
        else {
            __m256i m = tail_mask8(n);
            _mm256_maskstore_ps(y + o0, m, _mm256_add_ps(_mm256_maskload_ps(y + o0, m), sf));
        }
    }
    return bad;
}

/* ---- per-call int8 activations (same results as cphil_lin_act_i8) ---------------------- */
void cphil_lin_act_i8_avx2(const cphil_wpack *p, int M, const float *x, int ldx, float act_scale, int8_t *xq,
                           float *s) {
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    const __m256 hi = _mm256_set1_ps(127.0f), lo = _mm256_set1_ps(-127.0f), magic = _mm256_set1_ps(12582912.0f);
    int in = p->in;
    for (int m = 0; m < M; m++) {
        const float *r = x + (size_t)m * ldx;
        int8_t *d = xq + (size_t)m * p->in_pad;
        float sc, inv;
        if (act_scale > 0) {
            sc = act_scale;
            inv = 1.0f / act_scale;
        } else {
            __m256 mx = _mm256_setzero_ps();
            int k = 0;
            for (; k + 8 <= in; k += 8) mx = _mm256_max_ps(_mm256_and_ps(_mm256_loadu_ps(r + k), absmask), mx);
            float lanes[8], mxs = 0;
            _mm256_storeu_ps(lanes, mx);
            for (int i = 0; i < 8; i++) mxs = lanes[i] > mxs ? lanes[i] : mxs;
            for (; k < in; k++) {
                float a = r[k] < 0 ? -r[k] : r[k];
                mxs = a > mxs ? a : mxs;
            }
            sc = mxs / 127.0f;
            inv = mxs > 0 ? 127.0f / mxs : 0.0f;
        }
        s[m] = sc;
        __m256 vi = _mm256_set1_ps(inv);
        int k = 0;
        for (; k + 8 <= in; k += 8) {
            __m256 v = _mm256_mul_ps(_mm256_loadu_ps(r + k), vi);
            v = _mm256_and_ps(v, _mm256_cmp_ps(v, v, _CMP_ORD_Q)); /* NaN -> 0 */
            v = _mm256_min_ps(_mm256_max_ps(v, lo), hi);
            v = _mm256_sub_ps(_mm256_add_ps(v, magic), magic);
            __m256i q = _mm256_cvttps_epi32(v);
            __m128i q16 = _mm_packs_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
            _mm_storel_epi64((__m128i *)(d + k), _mm_packs_epi16(q16, q16));
        }
        for (; k < in; k++) {
            __m128 v = _mm_mul_ss(_mm_set_ss(r[k]), _mm_set_ss(inv));
            v = _mm_and_ps(v, _mm_cmp_ss(v, v, _CMP_ORD_Q));
            v = _mm_min_ss(_mm_max_ss(v, _mm_set_ss(-127.0f)), _mm_set_ss(127.0f));
            v = _mm_sub_ss(_mm_add_ss(v, _mm_set_ss(12582912.0f)), _mm_set_ss(12582912.0f));
            d[k] = (int8_t)_mm_cvttss_si32(v);
        }
        for (k = in; k < p->in_pad; k++) d[k] = 0;
    }
}
