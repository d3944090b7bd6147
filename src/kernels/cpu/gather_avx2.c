/* gather_avx2.c — AVX2 one-hot gather-add (cphil_gather_add; twin cphil_gather_add_ref in
 * gather.c): 8 outputs per step, ids summed in order (f32/bf16) or as exact int32 (int8).
 * Reference: kernels.h.
 */
#include "kernels/cpu/kernels_internal.h"

#include <immintrin.h>
#include <string.h>

static inline __m256i tail_mask8(int n) { /* lanes < n all-ones */
    __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), idx);
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
