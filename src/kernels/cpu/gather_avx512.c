/* gather_avx512.c — AVX-512 one-hot gather-add (cphil_gather_add; twin cphil_gather_add_ref in
 * gather.c): 16 outputs per step, ids summed in order (f32/bf16) or as exact int32 (int8).
 * Reference: kernels.h.
 */
#include "kernels/cpu/kernels_internal.h"

#include <immintrin.h>

static inline __mmask16 tail_mask(int n) { return n >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << n) - 1); }

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
    /* up to 64 ids (the usual case): the valid rows are listed once, not once per 16 outputs */
    int n_once = 0;
    if (n_ids <= 64)
        for (int i = 0; i < n_ids; i++) {
            int64_t r = (int64_t)ids[i] - t->col0;
            if (r >= 0 && r < t->rows) rows[n_once++] = (int32_t)r;
        }
    for (int o0 = 0; o0 < t->width; o0 += 16) {
        __mmask16 m = tail_mask(t->width - o0);
        __m512 sf = _mm512_setzero_ps();
        __m512i si = _mm512_setzero_si512();
        bool first = true;
        for (int i0 = 0; i0 < n_ids; i0 += 64) {
            int n = n_ids <= 64 ? n_once : 0;
            for (int i = i0; n_ids > 64 && i < n_ids && i < i0 + 64; i++) {
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
