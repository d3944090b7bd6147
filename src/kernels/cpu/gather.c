/* gather.c — the one-hot input layer's table (cphil_gtable: f32, bf16, int8 per-output-channel)
 * and its gather-add: the scalar twin cphil_gather_add_ref, which defines the results (every tier
 * gives the same bits), and the dispatch to gather_avx2.c / gather_avx512.c.
 * Not here: the dense products (panel.c). Reference: kernels.h for the contract.
 */
#include "core/core.h"
#include "kernels/cpu/kernels_internal.h"

#include <math.h>
#include <string.h>

/* Round half to even for |v| <= 127 (the magic-number trick: exact in f32 below 2^22). */
static inline float round_q(float v) {
    const float magic = 12582912.0f; /* 1.5 * 2^23 */
    return (v + magic) - magic;
}

/* ---- gather-add ------------------------------------------------------------------------ */
static cphil_status check_shape(int out, int ldw, int col0, int ncols) {
    if (out < 1 || ncols < 1 || col0 < 0 || out > (1 << 20) || ncols > (1 << 24) || ldw < col0 + ncols)
        return cphil_err(CPHIL_E_ARG, "gather table: bad shape (out %d, columns %d..%d, ldw %d)", out, col0,
                         col0 + ncols, ldw);
    return CPHIL_OK;
}

/* shape fields and zeroed storage */
static cphil_status table_alloc(cphil_gtable *t, cphil_wtype type, int out, int col0, int ncols) {
    t->type = type;
    t->rows = ncols;
    t->width = out;
    t->col0 = col0;
    t->ld = (out + 63) / 64 * 64;
    size_t elt = type == CPHIL_W_F32 ? 4 : (type == CPHIL_W_BF16 ? 2 : 1);
    t->bytes = (size_t)ncols * t->ld * elt;
    t->data = cphil_calloc(1, t->bytes);
    if (type == CPHIL_W_I8) {
        t->scale = cphil_calloc((size_t)t->ld, sizeof(float));
        t->bytes += (size_t)t->ld * 4;
    }
    if (!t->data || (type == CPHIL_W_I8 && !t->scale)) {
        cphil_gtable_free(t);
        return cphil_err(CPHIL_E_NOMEM, "gather table: out of memory");
    }
    return CPHIL_OK;
}

cphil_status cphil_gtable_init(cphil_gtable *t, cphil_wtype type, const float *W, int out, int ldw,
                               int col0, int ncols) {
    memset(t, 0, sizeof *t);
    cphil_status s = check_shape(out, ldw, col0, ncols);
    if (s) return s;
    if (type != CPHIL_W_F32 && type != CPHIL_W_BF16 && type != CPHIL_W_I8)
        return cphil_err(CPHIL_E_ARG, "gather table: unknown type %d", (int)type);
    for (int o = 0; o < out; o++)
        for (int c = 0; c < ncols; c++)
            if (!isfinite(W[(size_t)o * ldw + col0 + c]))
                return cphil_err(CPHIL_E_NUMERIC, "gather table: W[%d][%d] is not finite", o, col0 + c);
    if ((s = table_alloc(t, type, out, col0, ncols))) return s;
    for (int o = 0; o < out; o++) {
        const float *w = &W[(size_t)o * ldw + col0];
        float inv = 1.0f;
        if (type == CPHIL_W_I8) {
            float mx = 0;
            for (int c = 0; c < ncols; c++) mx = fmaxf(mx, fabsf(w[c]));
            t->scale[o] = mx > 0 ? mx / 127.0f : 1.0f;
            inv = 1.0f / t->scale[o];
        }
        for (int c = 0; c < ncols; c++) {
            size_t i = (size_t)c * t->ld + o;
            if (type == CPHIL_W_F32) ((float *)t->data)[i] = w[c];
            else if (type == CPHIL_W_BF16) ((uint16_t *)t->data)[i] = cphil_bf16_from_f32(w[c]);
            else {
                float r = w[c] * inv;
                r = r > 127.0f ? 127.0f : (r < -127.0f ? -127.0f : r);
                ((int8_t *)t->data)[i] = (int8_t)round_q(r);
            }
        }
    }
    return CPHIL_OK;
}

cphil_status cphil_gtable_init_i8(cphil_gtable *t, const int8_t *Q, const float *scale, int out, int ldw,
                                  int col0, int ncols) {
    memset(t, 0, sizeof *t);
    cphil_status s = check_shape(out, ldw, col0, ncols);
    if (s) return s;
    for (int o = 0; o < out; o++)
        if (!(isfinite(scale[o]) && scale[o] > 0.f))
            return cphil_err(CPHIL_E_NUMERIC, "gather table: scale %d is %g (must be finite and > 0)", o, (double)scale[o]);
    if ((s = table_alloc(t, CPHIL_W_I8, out, col0, ncols))) return s;
    for (int o = 0; o < out; o++) {
        t->scale[o] = scale[o];
        for (int c = 0; c < ncols; c++) {
            int8_t v = Q[(size_t)o * ldw + col0 + c];
            ((int8_t *)t->data)[(size_t)c * t->ld + o] = v == -128 ? -127 : v;
        }
    }
    return CPHIL_OK;
}

void cphil_gtable_free(cphil_gtable *t) {
    if (!t) return;
    cphil_free(t->data);
    cphil_free(t->scale);
    memset(t, 0, sizeof *t);
}

int cphil_gather_add_ref(const cphil_gtable *t, int n_ids, const int32_t *ids, float *y) {
    int bad = 0, nv = 0;
    for (int i = 0; i < n_ids; i++) {
        int64_t r = (int64_t)ids[i] - t->col0;
        if (r < 0 || r >= t->rows) bad++;
        else nv++;
    }
    if (nv == 0) return bad;
    for (int o = 0; o < t->width; o++) {
        float sf = 0;
        int32_t si = 0;
        bool first = true;
        for (int i = 0; i < n_ids; i++) {
            int64_t r = (int64_t)ids[i] - t->col0;
            if (r < 0 || r >= t->rows) continue;
            size_t idx = (size_t)r * t->ld + o;
            if (t->type == CPHIL_W_I8) si += ((const int8_t *)t->data)[idx];
            else {
                float v = t->type == CPHIL_W_F32 ? ((const float *)t->data)[idx]
                                                 : cphil_bf16_to_f32(((const uint16_t *)t->data)[idx]);
                sf = first ? v : sf + v;
            }
            first = false;
        }
        if (t->type == CPHIL_W_I8) sf = (float)si * t->scale[o];
        y[o] = y[o] + sf;
    }
    return bad;
}

int cphil_gather_add(const cphil_gtable *t, int n_ids, const int32_t *ids, float *y) {
    cphil_isa isa = cphil_isa_active();
    if (isa == CPHIL_ISA_AVX512) return cphil_gather_add_avx512(t, n_ids, ids, y);
    if (isa == CPHIL_ISA_AVX2) return cphil_gather_add_avx2(t, n_ids, ids, y);
    return cphil_gather_add_ref(t, n_ids, ids, y);
}
