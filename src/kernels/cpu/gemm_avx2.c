/* gemm_avx2.c — AVX2/FMA microkernels of cphil_gemm: f32 6x16 and the exact bf16 emulation.
 *
 * Tile: 6 rows of A broadcast x 16 columns of B in two ymm, 12 accumulators. The bf16 kernel
 * emulates vdpbf16ps lane by lane: acc = ftz(acc + a_hi*b_hi), acc = ftz(acc + a_lo*b_lo) (an
 * FMA of exact bf16 products equals the rounded sum of the exact product); ftz flushes tiny sums
 * to signed zero (MXCSR.FTZ, set for the k loop: x86's rule, see cphil_ftz_sum). Not here: packing (gemm.c), the AVX-512
 * tier (gemm_avx512.c).
 * Reference: kernels_internal.h (microkernel contract), Intel SDM (VDPBF16PS).
 */
#include "kernels/cpu/kernels_internal.h"

#include <immintrin.h>
#include <string.h>

#define MR GEMM_MR_AVX2
#define NR GEMM_NR_AVX2

/* Store a 6x16 tile held in c[12] with the shared epilogue; partial tiles through a buffer. */
static inline void store_tile(__m256 *c, float *C, int ldc, int mr, int nr, float alpha, float beta) {
    __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
    if (mr == MR && nr == NR) {
        for (int i = 0; i < MR; i++) {
            float *r = C + (size_t)i * ldc;
            __m256 t0 = _mm256_mul_ps(va, c[2 * i]), t1 = _mm256_mul_ps(va, c[2 * i + 1]);
            if (beta != 0.0f) {
                t0 = _mm256_add_ps(t0, _mm256_mul_ps(vb, _mm256_loadu_ps(r)));
                t1 = _mm256_add_ps(t1, _mm256_mul_ps(vb, _mm256_loadu_ps(r + 8)));
            }
            _mm256_storeu_ps(r, t0);
            _mm256_storeu_ps(r + 8, t1);
        }
        return;
    }
    float buf[MR * NR];
    for (int i = 0; i < MR; i++) {
        _mm256_storeu_ps(buf + i * NR, _mm256_mul_ps(va, c[2 * i]));
        _mm256_storeu_ps(buf + i * NR + 8, _mm256_mul_ps(va, c[2 * i + 1]));
    }
    for (int i = 0; i < mr; i++)
        for (int j = 0; j < nr; j++) {
            float *p = &C[(size_t)i * ldc + j];
            if (beta == 0.0f) *p = buf[i * NR + j];
            else {
                /* vector ops on one lane: no contraction into an FMA */
                __m128 t = _mm_set_ss(buf[i * NR + j]);
                __m128 bc = _mm_mul_ss(_mm_set_ss(beta), _mm_set_ss(*p));
                *p = _mm_cvtss_f32(_mm_add_ss(t, bc));
            }
        }
}

/* Accumulators are named variables (an array passed to store_tile made gcc store them to the
 * stack on every k step). */
#define DECL_ACC __m256 c0 = _mm256_setzero_ps(), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0, c6 = c0, \
                        c7 = c0, c8 = c0, c9 = c0, c10 = c0, c11 = c0
#define STORE_ACC { __m256 c[12] = {c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11}; \
                    store_tile(c, C, ldc, mr, nr, alpha, beta); }

void cphil_uk_f32_avx2(int kc, const void *Ap, const void *Bp, float *C, int ldc, int mr, int nr,
                       float alpha, float beta) {
    const float *a = Ap, *b = Bp;
    DECL_ACC;
    for (int k = 0; k < kc; k++, a += MR, b += NR) {
        __m256 b0 = _mm256_load_ps(b), b1 = _mm256_load_ps(b + 8), x;
#define ROW(i, ca, cb) x = _mm256_broadcast_ss(a + i); ca = _mm256_fmadd_ps(x, b0, ca); cb = _mm256_fmadd_ps(x, b1, cb);
        ROW(0, c0, c1) ROW(1, c2, c3) ROW(2, c4, c5) ROW(3, c6, c7) ROW(4, c8, c9) ROW(5, c10, c11)
#undef ROW
    }
    STORE_ACC
}

/* Keeps the twelve accumulators in registers at this point of the program: no FMA on them moves
 * across it, so every FMA between two of these runs under the MXCSR set between them. */
#define ACC_FENCE __asm__ volatile("" : "+x"(c0), "+x"(c1), "+x"(c2), "+x"(c3), "+x"(c4), "+x"(c5), \
                                   "+x"(c6), "+x"(c7), "+x"(c8), "+x"(c9), "+x"(c10), "+x"(c11))

/* The flush of each step is the CPU's own: MXCSR.FTZ set for the k loop flushes a tiny FMA
 * result to a zero of the same sign, as vdpbf16ps does (it runs with FTZ by definition), at no
 * cost per FMA. x86 calls a result tiny when, rounded to 24 bits with an unbounded exponent, it
 * is below FLT_MIN (cphil_ftz_sum is the scalar statement). The caller's MXCSR comes back before
 * the epilogue. */
void cphil_uk_bf16emu_avx2(int kc, const void *Ap, const void *Bp, float *C, int ldc, int mr,
                           int nr, float alpha, float beta) {
    const uint32_t *a = Ap, *b = Bp;
    const __m256i himask = _mm256_set1_epi32((int)0xffff0000u);
    DECL_ACC;
    const unsigned int csr = _mm_getcsr();
    _mm_setcsr(csr | _MM_FLUSH_ZERO_ON);
    ACC_FENCE;
    for (int k = 0; k < kc; k++, a += MR, b += NR) {
        __m256i u0 = _mm256_load_si256((const __m256i *)b), u1 = _mm256_load_si256((const __m256i *)(b + 8));
        __m256 bh0 = _mm256_castsi256_ps(_mm256_and_si256(u0, himask));
        __m256 bh1 = _mm256_castsi256_ps(_mm256_and_si256(u1, himask));
        __m256 bl0 = _mm256_castsi256_ps(_mm256_slli_epi32(u0, 16));
        __m256 bl1 = _mm256_castsi256_ps(_mm256_slli_epi32(u1, 16));
        __m256i xv;
        __m256 xh, xl;
#define ROW(i, ca, cb)                                                                     \
        xv = _mm256_set1_epi32((int)a[i]);                                                 \
        xh = _mm256_castsi256_ps(_mm256_and_si256(xv, himask));                            \
        xl = _mm256_castsi256_ps(_mm256_slli_epi32(xv, 16));                               \
        ca = _mm256_fmadd_ps(xh, bh0, ca); cb = _mm256_fmadd_ps(xh, bh1, cb);              \
        ca = _mm256_fmadd_ps(xl, bl0, ca); cb = _mm256_fmadd_ps(xl, bl1, cb);
        ROW(0, c0, c1) ROW(1, c2, c3) ROW(2, c4, c5) ROW(3, c6, c7) ROW(4, c8, c9) ROW(5, c10, c11)
#undef ROW
    }
    ACC_FENCE;
    _mm_setcsr(csr); /* also drops the exception flags the loop raised (nobody reads them) */
    STORE_ACC
}

/* ---- bf16 packing primitives (gemm.c has the scalar twins and the contract) ---------------- */

/* cphil_bf16_from_f32 on 8 lanes, the bf16 in the low half of each 32-bit lane: nearest even,
 * zero and subnormals to a zero of the same sign, NaN kept quiet. */
static inline __m256i bf16_of8(__m256 x) {
    const __m256i u = _mm256_castps_si256(x), top = _mm256_srli_epi32(u, 16);
    const __m256i abs = _mm256_and_si256(u, _mm256_set1_epi32(0x7fffffff));
    const __m256i nan = _mm256_cmpgt_epi32(abs, _mm256_set1_epi32(0x7f800000));
    const __m256i zero_or_sub = _mm256_cmpeq_epi32(_mm256_and_si256(u, _mm256_set1_epi32(0x7f800000)),
                                                   _mm256_setzero_si256());
    const __m256i odd = _mm256_and_si256(top, _mm256_set1_epi32(1));
    __m256i r = _mm256_srli_epi32(_mm256_add_epi32(u, _mm256_add_epi32(_mm256_set1_epi32(0x7fff), odd)), 16);
    r = _mm256_blendv_epi8(r, _mm256_or_si256(top, _mm256_set1_epi32(0x40)), nan);
    return _mm256_blendv_epi8(r, _mm256_and_si256(top, _mm256_set1_epi32(0x8000)), zero_or_sub);
}

void cphil_bf16_pairs_avx2(const float *src, int n, uint32_t *dst) {
    const __m256i even_lanes = _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7);
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256i b = bf16_of8(_mm256_loadu_ps(src + i));
        /* each 64-bit lane holds (odd << 32 | even): or-ing it shifted right by 16 puts
         * even | odd << 16 in its low 32 bits; then gather the four low halves */
        const __m256i w = _mm256_permutevar8x32_epi32(_mm256_or_si256(b, _mm256_srli_epi64(b, 16)), even_lanes);
        _mm_storeu_si128((__m128i *)(dst + i / 2), _mm256_castsi256_si128(w));
    }
    cphil_bf16_pairs_scalar(src + i, n - i, dst + i / 2); /* the tail (i is even) */
}

void cphil_bf16_inter_avx2(const float *r0, const float *r1, int n, uint32_t *dst) {
    int j = 0;
    for (; j + 8 <= n; j += 8) {
        const __m256i lo = bf16_of8(_mm256_loadu_ps(r0 + j));
        const __m256i hi = r1 ? _mm256_slli_epi32(bf16_of8(_mm256_loadu_ps(r1 + j)), 16) : _mm256_setzero_si256();
        _mm256_storeu_si256((__m256i *)(dst + j), _mm256_or_si256(lo, hi));
    }
    cphil_bf16_inter_scalar(r0 + j, r1 ? r1 + j : NULL, n - j, dst + j); /* the tail */
}
