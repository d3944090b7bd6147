/* linear.c — inference kernels on pre-packed weights: packing (f32, bf16, int8 per-channel),
 * the scalar twins (cphil_linear_ref, cphil_gather_add_ref), activation quantization, and the
 * dispatch to the AVX2 / AVX-512 versions (linear_avx2.c, linear_avx512.c).
 *
 * The _ref functions read the same packed layout with plain loops and define the results: the
 * bf16 and int8 paths of every tier must equal them bit for bit, f32 within a tolerance.
 * Not here: training products (gemm.c), activations (vec.c). Reference: kernels.h for the
 * contract; Intel SDM (VPDPBUSD, VDPBF16PS, PMADDUBSW) for the instruction semantics emulated.
 */
#include "core/core.h"
#include "kernels/cpu/kernels_internal.h"

#include <math.h>
#include <string.h>

#define PW 64 /* outputs per panel (group) */

static inline float round_q(float v);
static size_t align64(size_t n) { return (n + 63) & ~(size_t)63; }

static cphil_status alloc_pack(cphil_wpack *p, cphil_wtype type, int out, int in) {
    memset(p, 0, sizeof *p);
    if (out < 1 || in < 1 || out > (1 << 20) || in > (1 << 20))
        return cphil_err(CPHIL_E_ARG, "weight pack: bad shape [%d, %d] (each 1..2^20)", out, in);
    p->type = type;
    p->out = out;
    p->in = in;
    p->out_pad = (out + PW - 1) / PW * PW;
    p->in_pad = (in + 3) / 4 * 4;
    size_t elt = type == CPHIL_W_F32 ? 4 : (type == CPHIL_W_BF16 ? 2 : 1);
    size_t k = type == CPHIL_W_F32 ? (size_t)in : (size_t)p->in_pad;
    size_t bytes = align64((size_t)p->out_pad * k * elt);
    p->data = cphil_calloc(1, bytes);
    p->bytes = bytes;
    if (type == CPHIL_W_I8) {
        p->scale = cphil_calloc((size_t)p->out_pad, sizeof(float));
        p->qsum = cphil_calloc((size_t)p->out_pad, sizeof(int32_t));
        p->bytes += (size_t)p->out_pad * 8;
    }
    if (!p->data || (type == CPHIL_W_I8 && (!p->scale || !p->qsum))) {
        cphil_wpack_free(p);
        return cphil_err(CPHIL_E_NOMEM, "weight pack: out of memory for [%d, %d]", out, in);
    }
    return CPHIL_OK;
}

void cphil_wpack_free(cphil_wpack *p) {
    if (!p) return;
    cphil_free(p->data);
    cphil_free(p->scale);
    cphil_free(p->qsum);
    memset(p, 0, sizeof *p);
}

/* Panel addressing: element (o, k) */
static inline size_t f32_idx(const cphil_wpack *p, int o, int k) {
    return ((size_t)(o / PW) * p->in + k) * PW + o % PW;
}
static inline size_t bf16_idx(const cphil_wpack *p, int o, int k) { /* in u16 units */
    return (((size_t)(o / PW) * (p->in_pad / 2) + k / 2) * PW + o % PW) * 2 + (k & 1);
}
static inline size_t i8_idx(const cphil_wpack *p, int o, int k) {
    return (((size_t)(o / PW) * (p->in_pad / 4) + k / 4) * PW + o % PW) * 4 + (k & 3);
}

static void finish_i8(cphil_wpack *p) {
    const int8_t *q = p->data;
    for (int o = 0; o < p->out; o++) {
        int32_t s = 0;
        for (int k = 0; k < p->in; k++) s += q[i8_idx(p, o, k)];
        p->qsum[o] = 128 * s;
    }
}

cphil_status cphil_wpack_init(cphil_wpack *p, cphil_wtype type, const float *W, int out, int in, int ldw) {
    if (type != CPHIL_W_F32 && type != CPHIL_W_BF16 && type != CPHIL_W_I8) {
        memset(p, 0, sizeof *p);
        return cphil_err(CPHIL_E_ARG, "weight pack: unknown type %d", (int)type);
    }
    if (ldw < in) {
        memset(p, 0, sizeof *p);
        return cphil_err(CPHIL_E_ARG, "weight pack: ldw %d < in %d", ldw, in);
    }
    for (int o = 0; o < out; o++)
        for (int k = 0; k < in; k++)
            if (!isfinite(W[(size_t)o * ldw + k])) {
                memset(p, 0, sizeof *p);
                return cphil_err(CPHIL_E_NUMERIC, "weight pack: W[%d][%d] is not finite", o, k);
            }
    cphil_status st = alloc_pack(p, type, out, in);
    if (st) return st;
    for (int o = 0; o < out; o++) {
        const float *w = &W[(size_t)o * ldw];
        if (type == CPHIL_W_F32) {
            float *d = p->data;
            for (int k = 0; k < in; k++) d[f32_idx(p, o, k)] = w[k];
        } else if (type == CPHIL_W_BF16) {
            uint16_t *d = p->data;
            for (int k = 0; k < in; k++) d[bf16_idx(p, o, k)] = cphil_bf16_from_f32(w[k]);
        } else {
            float mx = 0;
            for (int k = 0; k < in; k++) mx = fmaxf(mx, fabsf(w[k]));
            float sc = mx > 0 ? mx / 127.0f : 1.0f;
            float inv = 1.0f / sc;
            int8_t *d = p->data;
            for (int k = 0; k < in; k++) {
                float r = w[k] * inv;
                r = r > 127.0f ? 127.0f : (r < -127.0f ? -127.0f : r);
                d[i8_idx(p, o, k)] = (int8_t)round_q(r);
            }
            p->scale[o] = sc;
        }
    }
    if (type == CPHIL_W_I8) finish_i8(p);
    return CPHIL_OK;
}

cphil_status cphil_wpack_init_i8q(cphil_wpack *p, const int8_t *q, const float *scale, int out, int in) {
    cphil_status st = alloc_pack(p, CPHIL_W_I8, out, in);
    if (st) return st;
    int8_t *d = p->data;
    for (int o = 0; o < out; o++) {
        if (!(scale[o] > 0) || !isfinite(scale[o])) {
            cphil_wpack_free(p);
            return cphil_err(CPHIL_E_NUMERIC, "int8 weights: scale[%d] = %g is not a positive finite number", o, (double)scale[o]);
        }
        p->scale[o] = scale[o];
        for (int k = 0; k < in; k++) {
            int8_t v = q[(size_t)o * in + k];
            if (v == -128) {
                cphil_wpack_free(p);
                return cphil_err(CPHIL_E_FORMAT, "int8 weights: q[%d][%d] = -128 (the range is -127..127)", o, k);
            }
            d[i8_idx(p, o, k)] = v;
        }
    }
    finish_i8(p);
    return CPHIL_OK;
}

void cphil_wpack_unpack(const cphil_wpack *p, float *W, int ldw) {
    for (int o = 0; o < p->out; o++)
        for (int k = 0; k < p->in; k++) {
            float v;
            if (p->type == CPHIL_W_F32) v = ((const float *)p->data)[f32_idx(p, o, k)];
            else if (p->type == CPHIL_W_BF16) v = cphil_bf16_to_f32(((const uint16_t *)p->data)[bf16_idx(p, o, k)]);
            else v = (float)((const int8_t *)p->data)[i8_idx(p, o, k)] * p->scale[o];
            W[(size_t)o * ldw + k] = v;
        }
}

/* ---- activations per call (shared by every tier) --------------------------------------- */
size_t cphil_linear_scratch_bytes(const cphil_wpack *p, int M) {
    if (M < 1 || p->type == CPHIL_W_F32) return 0;
    if (p->type == CPHIL_W_BF16) return align64((size_t)M * (p->in_pad / 2) * 4);
    return align64((size_t)M * p->in_pad) + align64((size_t)M * sizeof(float));
}

/* bf16 activations: xb[m][pair] like the weight pairs; padding pairs zero. */
void cphil_lin_act_bf16(const cphil_wpack *p, int M, const float *x, int ldx, uint32_t *xb) {
    int kp = p->in_pad / 2;
    for (int m = 0; m < M; m++) {
        const float *r = x + (size_t)m * ldx;
        uint32_t *d = xb + (size_t)m * kp;
        for (int q = 0; q < kp; q++) {
            int k = 2 * q;
            uint32_t lo = k < p->in ? cphil_bf16_from_f32(r[k]) : 0;
            uint32_t hi = k + 1 < p->in ? cphil_bf16_from_f32(r[k + 1]) : 0;
            d[q] = lo | (hi << 16);
        }
    }
}

/* Round half to even for |v| <= 127 (the magic-number trick: exact in f32 below 2^22). */
static inline float round_q(float v) {
    const float magic = 12582912.0f; /* 1.5 * 2^23 */
    return (v + magic) - magic;
}

/* int8 activations: xq[m][in_pad] (padding 0) and the per-row scales s[m]. NaN inputs give 0. */
void cphil_lin_act_i8(const cphil_wpack *p, int M, const float *x, int ldx, float act_scale, int8_t *xq, float *s) {
    for (int m = 0; m < M; m++) {
        const float *r = x + (size_t)m * ldx;
        int8_t *d = xq + (size_t)m * p->in_pad;
        float sc, inv;
        if (act_scale > 0) {
            sc = act_scale;
            inv = 1.0f / act_scale;
        } else {
            float mx = 0;
            for (int k = 0; k < p->in; k++) {
                float a = fabsf(r[k]);
                mx = a > mx ? a : mx;
            }
            sc = mx / 127.0f;
            inv = mx > 0 ? 127.0f / mx : 0.0f;
        }
        s[m] = sc;
        for (int k = 0; k < p->in; k++) {
            float v = r[k] * inv;
            v = v > 127.0f ? 127.0f : v;
            v = v < -127.0f ? -127.0f : v;
            v = v == v ? v : 0.0f;
            d[k] = (int8_t)round_q(v);
        }
        for (int k = p->in; k < p->in_pad; k++) d[k] = 0;
    }
}

static inline float epi(float dot, const float *bias, int o, const float *yp, bool acc) {
    float v = dot;
    if (bias) v = v + bias[o];
    if (acc) v = *yp + v;
    return v;
}

void cphil_linear_ref(const cphil_wpack *p, int M, const float *x, int ldx, const float *bias,
                      float *y, int ldy, bool accumulate, float act_scale, void *scratch) {
    if (M < 1) return;
    if (p->type == CPHIL_W_F32) {
        const float *w = p->data;
        for (int m = 0; m < M; m++)
            for (int o = 0; o < p->out; o++) {
                float acc = 0;
                for (int k = 0; k < p->in; k++) acc += x[(size_t)m * ldx + k] * w[f32_idx(p, o, k)];
                float *yp = &y[(size_t)m * ldy + o];
                *yp = epi(acc, bias, o, yp, accumulate);
            }
    } else if (p->type == CPHIL_W_BF16) {
        uint32_t *xb = scratch;
        cphil_lin_act_bf16(p, M, x, ldx, xb);
        const uint32_t *w = p->data;
        int kp = p->in_pad / 2;
        for (int m = 0; m < M; m++)
            for (int o = 0; o < p->out; o++) {
                float acc = 0;
                for (int q = 0; q < kp; q++) {
                    uint32_t a = xb[(size_t)m * kp + q], b = w[((size_t)(o / PW) * kp + q) * PW + o % PW];
                    acc = cphil_ftz((float)((double)acc + (double)cphil_bf16_to_f32((uint16_t)(a >> 16)) *
                                                              (double)cphil_bf16_to_f32((uint16_t)(b >> 16))));
                    acc = cphil_ftz((float)((double)acc + (double)cphil_bf16_to_f32((uint16_t)a) *
                                                              (double)cphil_bf16_to_f32((uint16_t)b)));
                }
                float *yp = &y[(size_t)m * ldy + o];
                *yp = epi(acc, bias, o, yp, accumulate);
            }
    } else {
        int8_t *xq = scratch;
        float *s = (float *)((char *)scratch + align64((size_t)M * p->in_pad));
        cphil_lin_act_i8(p, M, x, ldx, act_scale, xq, s);
        const int8_t *w = p->data;
        for (int m = 0; m < M; m++)
            for (int o = 0; o < p->out; o++) {
                int32_t acc = 0;
                for (int k = 0; k < p->in; k++) acc += (int32_t)xq[(size_t)m * p->in_pad + k] * w[i8_idx(p, o, k)];
                float comb = s[m] * p->scale[o];
                float *yp = &y[(size_t)m * ldy + o];
                *yp = epi((float)acc * comb, bias, o, yp, accumulate);
            }
    }
}

void cphil_linear(const cphil_wpack *p, int M, const float *x, int ldx, const float *bias,
                  float *y, int ldy, bool accumulate, float act_scale, void *scratch) {
    if (M < 1) return;
    cphil_isa isa = cphil_isa_active();
    switch (p->type) {
    case CPHIL_W_F32:
        if (isa == CPHIL_ISA_AVX512) cphil_linear_f32_avx512(p, M, x, ldx, bias, y, ldy, accumulate);
        else if (isa == CPHIL_ISA_AVX2) cphil_linear_f32_avx2(p, M, x, ldx, bias, y, ldy, accumulate);
        else cphil_linear_ref(p, M, x, ldx, bias, y, ldy, accumulate, act_scale, scratch);
        return;
    case CPHIL_W_BF16:
        if (isa == CPHIL_ISA_SCALAR) break;
        if (isa == CPHIL_ISA_AVX512 && cphil_cpu_has_bf16()) {
            cphil_lin_act_bf16_avx512(p, M, x, ldx, scratch);
            cphil_linear_bf16_avx512(p, M, scratch, bias, y, ldy, accumulate);
        } else {
            cphil_lin_act_bf16(p, M, x, ldx, scratch);
            cphil_linear_bf16_avx2(p, M, scratch, bias, y, ldy, accumulate);
        }
        return;
    case CPHIL_W_I8: {
        if (isa == CPHIL_ISA_SCALAR) break;
        int8_t *xq = scratch;
        float *s = (float *)((char *)scratch + align64((size_t)M * p->in_pad));
        if (isa == CPHIL_ISA_AVX512) cphil_lin_act_i8_avx512(p, M, x, ldx, act_scale, xq, s);
        else cphil_lin_act_i8_avx2(p, M, x, ldx, act_scale, xq, s);
        if (isa == CPHIL_ISA_AVX512) cphil_linear_i8_avx512(p, M, xq, s, bias, y, ldy, accumulate);
        else cphil_linear_i8_avx2(p, M, xq, s, bias, y, ldy, accumulate);
        return;
    }
    }
    cphil_linear_ref(p, M, x, ldx, bias, y, ldy, accumulate, act_scale, scratch);
}

/* ---- gather-add ------------------------------------------------------------------------ */
cphil_status cphil_gtable_init(cphil_gtable *t, cphil_wtype type, const float *W, int out, int ldw,
                               int col0, int ncols) {
    memset(t, 0, sizeof *t);
    if (out < 1 || ncols < 1 || col0 < 0 || out > (1 << 20) || ncols > (1 << 24) || ldw < col0 + ncols)
        return cphil_err(CPHIL_E_ARG, "gather table: bad shape (out %d, columns %d..%d, ldw %d)", out, col0,
                         col0 + ncols, ldw);
    if (type != CPHIL_W_F32 && type != CPHIL_W_BF16 && type != CPHIL_W_I8)
        return cphil_err(CPHIL_E_ARG, "gather table: unknown type %d", (int)type);
    for (int o = 0; o < out; o++)
        for (int c = 0; c < ncols; c++)
            if (!isfinite(W[(size_t)o * ldw + col0 + c]))
                return cphil_err(CPHIL_E_NUMERIC, "gather table: W[%d][%d] is not finite", o, col0 + c);
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
