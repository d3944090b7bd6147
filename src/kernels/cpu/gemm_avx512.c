/* gemm_avx512.c — AVX-512 microkernels of cphil_gemm: f32 12x32 (FMA) and bf16 12x32
 * (AVX512_BF16 vdpbf16ps, one instruction per 16 lanes x 2 k).
 *
 * Tile: 12 rows of A broadcast (embedded broadcast operands) x 32 columns of B in two zmm,
 * 24 accumulators. Partial tiles store through masks. Not here: packing (gemm.c), the exact
 * bf16 emulation for CPUs without AVX512_BF16 (gemm_avx2.c).
 * Reference: kernels_internal.h (microkernel contract), Intel SDM (VDPBF16PS).
 */
#include "kernels/cpu/kernels_internal.h"

#include <immintrin.h>

#define MR GEMM_MR_AVX512
#define NR GEMM_NR_AVX512

static inline void store_tile(__m512 *c, float *C, int ldc, int mr, int nr, float alpha, float beta) {
    __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
    __mmask16 m0 = nr >= 16 ? 0xffff : (__mmask16)((1u << nr) - 1);
    __mmask16 m1 = nr >= 32 ? 0xffff : (nr <= 16 ? 0 : (__mmask16)((1u << (nr - 16)) - 1));
    for (int i = 0; i < mr; i++) {
        float *r = C + (size_t)i * ldc;
        __m512 t0 = _mm512_mul_ps(va, c[2 * i]), t1 = _mm512_mul_ps(va, c[2 * i + 1]);
        if (beta != 0.0f) {
            t0 = _mm512_add_ps(t0, _mm512_mul_ps(vb, _mm512_maskz_loadu_ps(m0, r)));
            t1 = _mm512_add_ps(t1, _mm512_mul_ps(vb, _mm512_maskz_loadu_ps(m1, r + 16)));
        }
        _mm512_mask_storeu_ps(r, m0, t0);
        _mm512_mask_storeu_ps(r + 16, m1, t1);
    }
}

void cphil_uk_f32_avx512(int kc, const void *Ap, const void *Bp, float *C, int ldc, int mr, int nr,
                         float alpha, float beta) {
    const float *a = Ap, *b = Bp;
    __m512 c0 = _mm512_setzero_ps(), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0, c6 = c0, c7 = c0,
           c8 = c0, c9 = c0, c10 = c0, c11 = c0, c12 = c0, c13 = c0, c14 = c0, c15 = c0, c16 = c0,
           c17 = c0, c18 = c0, c19 = c0, c20 = c0, c21 = c0, c22 = c0, c23 = c0;
    for (int k = 0; k < kc; k++, a += MR, b += NR) {
        __m512 b0 = _mm512_load_ps(b), b1 = _mm512_load_ps(b + 16);
        __m512 x;
#define ROW(i, ca, cb) x = _mm512_set1_ps(a[i]); ca = _mm512_fmadd_ps(x, b0, ca); cb = _mm512_fmadd_ps(x, b1, cb);
        ROW(0, c0, c1) ROW(1, c2, c3) ROW(2, c4, c5) ROW(3, c6, c7) ROW(4, c8, c9) ROW(5, c10, c11)
        ROW(6, c12, c13) ROW(7, c14, c15) ROW(8, c16, c17) ROW(9, c18, c19) ROW(10, c20, c21) ROW(11, c22, c23)
#undef ROW
    }
    __m512 c[24] = {c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11,
                    c12, c13, c14, c15, c16, c17, c18, c19, c20, c21, c22, c23};
    store_tile(c, C, ldc, mr, nr, alpha, beta);
}

void cphil_uk_bf16_avx512(int kc, const void *Ap, const void *Bp, float *C, int ldc, int mr, int nr,
                          float alpha, float beta) {
    const int *a = Ap;
    const uint32_t *b = Bp;
    __m512 c0 = _mm512_setzero_ps(), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0, c6 = c0, c7 = c0,
           c8 = c0, c9 = c0, c10 = c0, c11 = c0, c12 = c0, c13 = c0, c14 = c0, c15 = c0, c16 = c0,
           c17 = c0, c18 = c0, c19 = c0, c20 = c0, c21 = c0, c22 = c0, c23 = c0;
    for (int k = 0; k < kc; k++, a += MR, b += NR) {
        __m512bh b0 = (__m512bh)_mm512_load_si512(b), b1 = (__m512bh)_mm512_load_si512(b + 16);
        __m512bh x;
#define ROW(i, ca, cb) x = (__m512bh)_mm512_set1_epi32(a[i]); ca = _mm512_dpbf16_ps(ca, x, b0); cb = _mm512_dpbf16_ps(cb, x, b1);
        ROW(0, c0, c1) ROW(1, c2, c3) ROW(2, c4, c5) ROW(3, c6, c7) ROW(4, c8, c9) ROW(5, c10, c11)
        ROW(6, c12, c13) ROW(7, c14, c15) ROW(8, c16, c17) ROW(9, c18, c19) ROW(10, c20, c21) ROW(11, c22, c23)
#undef ROW
    }
    __m512 c[24] = {c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11,
                    c12, c13, c14, c15, c16, c17, c18, c19, c20, c21, c22, c23};
    store_tile(c, C, ldc, mr, nr, alpha, beta);
}

/* ---- bf16 packing primitives (vcvtneps2bf16: RNE, subnormal inputs as zero, quiet NaN) ---- */
void cphil_bf16_pairs_avx512(const float *src, int n, uint32_t *dst) {
    int i = 0;
    for (; i + 32 <= n; i += 32) {
        __m512 x0 = _mm512_loadu_ps(src + i), x1 = _mm512_loadu_ps(src + i + 16);
        /* cvtne2ps: result words 0..15 from the second operand, 16..31 from the first */
        __m512bh h = _mm512_cvtne2ps_pbh(x1, x0);
        _mm512_storeu_si512(dst + i / 2, (__m512i)h);
    }
    if (i < n) {
        int r = n - i;
        __mmask16 m0 = r >= 16 ? 0xffff : (__mmask16)((1u << r) - 1);
        __mmask16 m1 = r <= 16 ? 0 : (__mmask16)((1u << (r - 16)) - 1);
        __m512 x0 = _mm512_maskz_loadu_ps(m0, src + i), x1 = _mm512_maskz_loadu_ps(m1, src + i + 16);
        __m512bh h = _mm512_cvtne2ps_pbh(x1, x0);
        int words = (r + 1) / 2;
        _mm512_mask_storeu_epi32(dst + i / 2, (__mmask16)((1u << words) - 1), (__m512i)h);
    }
}

void cphil_bf16_inter_avx512(const float *r0, const float *r1, int n, uint32_t *dst) {
    for (int j = 0; j < n; j += 16) {
        int r = n - j;
        __mmask16 m = r >= 16 ? 0xffff : (__mmask16)((1u << r) - 1);
        __m512 x0 = _mm512_maskz_loadu_ps(m, r0 + j);
        __m512 x1 = r1 ? _mm512_maskz_loadu_ps(m, r1 + j) : _mm512_setzero_ps();
        __m256bh h0 = _mm512_cvtneps_pbh(x0), h1 = _mm512_cvtneps_pbh(x1);
        __m512i w = _mm512_or_si512(_mm512_cvtepu16_epi32((__m256i)h0),
                                    _mm512_slli_epi32(_mm512_cvtepu16_epi32((__m256i)h1), 16));
        _mm512_mask_storeu_epi32(dst + j, m, w);
    }
}

/* ---- transposing pack: dst[k*R + i] = X[i*ldx + k] (i < rows, zero for rows <= i < R) ---- */
static inline void transpose16(__m512 r[16]) {
    __m512 t[16];
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 16; i += 4) {
        r[i] = _mm512_shuffle_ps(t[i], t[i + 2], 0x44);
        r[i + 1] = _mm512_shuffle_ps(t[i], t[i + 2], 0xee);
        r[i + 2] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0x44);
        r[i + 3] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0xee);
    }
    /* r[4q + s] now holds, per 128-bit lane L, elements k = 4L + s of rows 4q..4q+3 */
    for (int s = 0; s < 4; s++) {
        __m512 a = r[s], b = r[4 + s], c = r[8 + s], d = r[12 + s];
        __m512 ab0 = _mm512_shuffle_f32x4(a, b, 0x44), ab1 = _mm512_shuffle_f32x4(a, b, 0xee);
        __m512 cd0 = _mm512_shuffle_f32x4(c, d, 0x44), cd1 = _mm512_shuffle_f32x4(c, d, 0xee);
        t[s] = _mm512_shuffle_f32x4(ab0, cd0, 0x88);      /* lane 0 of a,b,c,d: k = s */
        t[4 + s] = _mm512_shuffle_f32x4(ab0, cd0, 0xdd);  /* lane 1: k = 4 + s */
        t[8 + s] = _mm512_shuffle_f32x4(ab1, cd1, 0x88);  /* lane 2: k = 8 + s */
        t[12 + s] = _mm512_shuffle_f32x4(ab1, cd1, 0xdd); /* lane 3: k = 12 + s */
    }
    for (int i = 0; i < 16; i++) r[i] = t[i];
}

void cphil_pack_t_avx512(const float *X, size_t ldx, int rows, int kc, int R, float *dst) {
    for (int ib = 0; ib < R; ib += 16) {
        int lanes = CPHIL_MIN_I(16, R - ib);
        __mmask16 sm = (__mmask16)((1u << lanes) - 1);
        for (int k0 = 0; k0 < kc; k0 += 16) {
            int kn = kc - k0 < 16 ? kc - k0 : 16;
            __mmask16 lm = (__mmask16)((1u << kn) - 1);
            __m512 r[16];
            for (int i = 0; i < 16; i++)
                r[i] = ib + i < rows ? _mm512_maskz_loadu_ps(lm, X + (size_t)(ib + i) * ldx + k0) : _mm512_setzero_ps();
            transpose16(r);
            for (int t = 0; t < kn; t++) _mm512_mask_storeu_ps(dst + (size_t)(k0 + t) * R + ib, sm, r[t]);
        }
    }
}
