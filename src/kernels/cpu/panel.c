/* panel.c — the inference products on 16-row panels (panel16 layout): packing from PyTorch-layout
 * row-major weights, the scalar `_ref` kernels, input conversion (f32 -> bf16, f32 -> s8 with
 * per-row scales) and the run-time tier choice. See panel.h for the layout and the contract.
 * Does not: any SIMD (panel_avx2.c, panel_avx512.c).
 */
#include "kernels/cpu/panel.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- tier ------------------------------------------------------------------------------- */
/* The project's dispatch (isa.c: CPUID, CPHIL_ISA) picks the tier; the panel kernels' AVX-512
 * tier also needs VNNI and BF16, else they take the AVX2 kernels. */
static cphil_isa bound(cphil_isa a) {
    if (a == CPHIL_ISA_AVX512 && !(cphil_cpu_has_vnni() && cphil_cpu_has_bf16())) return CPHIL_ISA_AVX2;
    return a;
}
cphil_isa cphil_pmat_isa_best(void) { return bound(cphil_isa_best()); }
cphil_isa cphil_pmat_isa(void) { return bound(cphil_isa_active()); }

/* ---- packing --------------------------------------------------------------------------- */
static size_t elem_size(cphil_wtype d) { return d == CPHIL_W_F32 ? 4 : d == CPHIL_W_BF16 ? 2 : 1; }

size_t cphil_pmat_bytes(const cphil_pmat *m) {
    return (size_t)m->np * CPHIL_PANEL * (size_t)m->kp * elem_size(m->dtype);
}

static cphil_status mat_alloc(cphil_pmat *m, int rows, int cols, cphil_wtype dtype, const float *bias) {
    memset(m, 0, sizeof *m);
    m->rows = rows;
    m->cols = cols;
    m->kp = (cols + 3) & ~3;
    m->np = (rows + CPHIL_PANEL - 1) / CPHIL_PANEL;
    m->dtype = dtype;
    m->w = cphil_calloc(1, cphil_pmat_bytes(m) + 64);
    if (!m->w) return cphil_err(CPHIL_E_NOMEM, "out of memory packing a %dx%d matrix", rows, cols);
    if (bias) {
        m->bias = cphil_alloc(sizeof(float) * (size_t)rows);
        if (!m->bias) {
            cphil_pmat_free(m);
            return cphil_err(CPHIL_E_NOMEM, "out of memory packing a bias of %d", rows);
        }
        memcpy(m->bias, bias, sizeof(float) * (size_t)rows);
    }
    if (dtype == CPHIL_W_I8) {
        m->scale = cphil_calloc((size_t)m->np * CPHIL_PANEL, sizeof(float));
        m->rowsum = cphil_calloc((size_t)m->np * CPHIL_PANEL, sizeof(int32_t));
        if (!m->scale || !m->rowsum) {
            cphil_pmat_free(m);
            return cphil_err(CPHIL_E_NOMEM, "out of memory packing scales of %d rows", rows);
        }
    }
    return CPHIL_OK;
}

/* Offset of element (r, k) in the packed array, in elements. */
static inline size_t pidx(const cphil_pmat *m, int r, int k) {
    size_t p = (size_t)(r / CPHIL_PANEL), lr = (size_t)(r % CPHIL_PANEL);
    size_t base = p * CPHIL_PANEL * (size_t)m->kp;
    switch (m->dtype) {
    case CPHIL_W_F32: return base + (size_t)k * CPHIL_PANEL + lr;
    case CPHIL_W_BF16: return base + (size_t)(k / 2) * CPHIL_PANEL * 2 + lr * 2 + (size_t)(k % 2);
    case CPHIL_W_I8: return base + (size_t)(k / 4) * CPHIL_PANEL * 4 + lr * 4 + (size_t)(k % 4);
    }
    return 0;
}

cphil_status cphil_pmat_pack(cphil_pmat *m, int rows, int cols, const float *w, const float *bias,
                            cphil_wtype dtype) {
    cphil_status s = mat_alloc(m, rows, cols, dtype, bias);
    if (s) return s;
    for (int r = 0; r < rows; r++) {
        const float *wr = w + (size_t)r * cols;
        if (dtype == CPHIL_W_F32) {
            float *d = m->w;
            for (int k = 0; k < cols; k++) d[pidx(m, r, k)] = wr[k];
        } else if (dtype == CPHIL_W_BF16) {
            uint16_t *d = m->w;
            for (int k = 0; k < cols; k++) d[pidx(m, r, k)] = cphil_pmat_bf16(wr[k]);
        } else {
            float amax = 0.f;
            for (int k = 0; k < cols; k++) amax = fmaxf(amax, fabsf(wr[k]));
            for (int k = 0; k < cols; k++) /* fmaxf skips NaN: test every value */
                if (!isfinite(wr[k])) {
                    cphil_pmat_free(m);
                    return cphil_err(CPHIL_E_NUMERIC, "packing a %dx%d int8 matrix: weight [%d][%d] is %g", rows, cols, r,
                                     k, (double)wr[k]);
                }
            /* a row of only subnormals can give amax / 127 == 0: scale 1 (its values quantize to 0) */
            float sc = amax / 127.f > 0.f ? amax / 127.f : 1.f;
            int8_t *d = m->w;
            int32_t sum = 0;
            for (int k = 0; k < cols; k++) {
                float q = nearbyintf(wr[k] / sc);
                q = q > 127.f ? 127.f : q < -127.f ? -127.f : q;
                d[pidx(m, r, k)] = (int8_t)q;
                sum += (int32_t)q;
            }
            m->scale[r] = sc;
            m->rowsum[r] = sum;
        }
    }
    return CPHIL_OK;
}

cphil_status cphil_pmat_pack_i8(cphil_pmat *m, int rows, int cols, const int8_t *q, const float *scale,
                               const float *bias) {
    cphil_status s = mat_alloc(m, rows, cols, CPHIL_W_I8, bias);
    if (s) return s;
    int8_t *d = m->w;
    for (int r = 0; r < rows; r++) {
        int32_t sum = 0;
        for (int k = 0; k < cols; k++) {
            int8_t v = q[(size_t)r * cols + k];
            if (v == -128) v = -127; /* keep the symmetric range (vpmaddwd/vpdpbusd safe) */
            d[pidx(m, r, k)] = v;
            sum += v;
        }
        m->scale[r] = scale[r];
        m->rowsum[r] = sum;
    }
    return CPHIL_OK;
}

void cphil_pmat_row(const cphil_pmat *m, int r, float *out) {
    for (int k = 0; k < m->cols; k++) {
        size_t i = pidx(m, r, k);
        if (m->dtype == CPHIL_W_F32) out[k] = ((const float *)m->w)[i];
        else if (m->dtype == CPHIL_W_BF16) out[k] = cphil_pmat_bf16_to_f32(((const uint16_t *)m->w)[i]);
        else out[k] = (float)((const int8_t *)m->w)[i] * m->scale[r];
    }
}

void cphil_pmat_free(cphil_pmat *m) {
    if (!m) return;
    cphil_free(m->w);
    cphil_free(m->scale);
    cphil_free(m->rowsum);
    cphil_free(m->bias);
    memset(m, 0, sizeof *m);
}

cphil_pmat cphil_pmat_view_panels(const cphil_pmat *m, int p0, int p1) {
    cphil_pmat v = *m;
    p0 = p0 < 0 ? 0 : p0 > m->np ? m->np : p0;
    p1 = p1 < p0 ? p0 : p1 > m->np ? m->np : p1;
    size_t r0 = (size_t)p0 * CPHIL_PANEL;
    v.w = (uint8_t *)m->w + r0 * (size_t)m->kp * elem_size(m->dtype);
    if (m->scale) v.scale = m->scale + r0;
    if (m->rowsum) v.rowsum = m->rowsum + r0;
    if (m->bias) v.bias = m->bias + r0;
    v.np = p1 - p0;
    int end = p1 * CPHIL_PANEL < m->rows ? p1 * CPHIL_PANEL : m->rows;
    v.rows = end > (int)r0 ? end - (int)r0 : 0;
    if (v.rows == 0) v.np = 0;
    return v;
}

/* ---- scalar reference kernels ------------------------------------------------------------ */
static inline void store(const cphil_pmat_args *a, int mm, int r, float v) {
    const cphil_pmat *m = a->m;
    if (r >= m->rows) return;
    float *y = a->Y + (size_t)mm * a->ldy + r;
    if (m->bias) v += m->bias[r];
    *y = a->beta ? *y + v : v;
}

void cphil_pmat_f32_ref(const cphil_pmat_args *a) {
    const cphil_pmat *m = a->m;
    const float *w = m->w;
    const float *x = a->x;
    for (int mm = 0; mm < a->M; mm++)
        for (int r = 0; r < m->rows; r++) {
            float acc = 0.f;
            for (int k = 0; k < m->cols; k++) acc += w[pidx(m, r, k)] * x[(size_t)mm * a->ldx + k];
            store(a, mm, r, acc);
        }
}

void cphil_pmat_bf16_ref(const cphil_pmat_args *a) {
    const cphil_pmat *m = a->m;
    const uint16_t *w = m->w;
    const uint16_t *x = a->x;
    for (int mm = 0; mm < a->M; mm++)
        for (int r = 0; r < m->rows; r++) {
            float acc = 0.f;
            for (int k = 0; k < m->kp; k++)
                acc += cphil_pmat_bf16_to_f32(w[pidx(m, r, k)]) * cphil_pmat_bf16_to_f32(x[(size_t)mm * m->kp + k]);
            store(a, mm, r, acc);
        }
}

void cphil_pmat_i8_ref(const cphil_pmat_args *a) {
    const cphil_pmat *m = a->m;
    const int8_t *w = m->w;
    const int8_t *x = a->x;
    for (int mm = 0; mm < a->M; mm++)
        for (int r = 0; r < m->rows; r++) {
            int32_t acc = 0;
            for (int k = 0; k < m->kp; k++) acc += (int32_t)w[pidx(m, r, k)] * x[(size_t)mm * m->kp + k];
            store(a, mm, r, (float)acc * a->xs[mm] * m->scale[r]);
        }
}

/* ---- input conversion -------------------------------------------------------------------- */
size_t cphil_pmat_scratch_bytes(int M, int kp) {
    /* f32 padding needs 4*kp per row (bf16 2*kp, int8 kp + a float scale), rounded to 64. */
    size_t row = ((size_t)kp * 4 + 63) & ~(size_t)63;
    return (size_t)M * row + (((size_t)M * sizeof(float) + 63) & ~(size_t)63) + 64;
}

void cphil_pmat_gemm(const cphil_pmat *m, int M, const float *X, int ldx, float *Y, int ldy, int beta,
                    void *scratch) {
    cphil_pmat_args a = {m, M, X, ldx, NULL, Y, ldy, beta};
    cphil_isa isa = cphil_pmat_isa();
    if (m->dtype == CPHIL_W_F32) {
        if (m->kp != m->cols) {
            /* pad each row with zeros into scratch (kernels read kp values) */
            float *xp = scratch;
            for (int mm = 0; mm < M; mm++) {
                memcpy(xp + (size_t)mm * m->kp, X + (size_t)mm * ldx, sizeof(float) * (size_t)m->cols);
                for (int k = m->cols; k < m->kp; k++) xp[(size_t)mm * m->kp + k] = 0.f;
            }
            a.x = xp;
            a.ldx = m->kp;
        }
        if (isa == CPHIL_ISA_AVX512) cphil_pmat_f32_avx512(&a);
        else if (isa == CPHIL_ISA_AVX2) cphil_pmat_f32_avx2(&a);
        else cphil_pmat_f32_ref(&a);
        return;
    }
    if (m->dtype == CPHIL_W_BF16) {
        uint16_t *xb = scratch;
        for (int mm = 0; mm < M; mm++) {
            const float *xr = X + (size_t)mm * ldx;
            uint16_t *d = xb + (size_t)mm * m->kp;
            for (int k = 0; k < m->cols; k++) d[k] = cphil_pmat_bf16(xr[k]);
            for (int k = m->cols; k < m->kp; k++) d[k] = 0;
        }
        a.x = xb;
        if (isa == CPHIL_ISA_AVX512) cphil_pmat_bf16_avx512(&a);
        else if (isa == CPHIL_ISA_AVX2) cphil_pmat_bf16_avx2(&a);
        else cphil_pmat_bf16_ref(&a);
        return;
    }
    /* int8: symmetric per-row activation quantization */
    int8_t *xq = scratch;
    size_t xbytes = ((size_t)M * (size_t)m->kp + 63) & ~(size_t)63;
    float *xs = (float *)((uint8_t *)scratch + xbytes);
    for (int mm = 0; mm < M; mm++) {
        const float *xr = X + (size_t)mm * ldx;
        int8_t *d = xq + (size_t)mm * m->kp;
        float sc = cphil_pmat_quant_row(xr, m->cols, m->act_scale, d);
        for (int k = m->cols; k < m->kp; k++) d[k] = 0;
        xs[mm] = sc;
    }
    a.x = xq;
    a.xs = xs;
    if (isa == CPHIL_ISA_AVX512) cphil_pmat_i8_avx512(&a);
    else if (isa == CPHIL_ISA_AVX2) cphil_pmat_i8_avx2(&a);
    else cphil_pmat_i8_ref(&a);
}

float cphil_pmat_quant_row_ref(const float *x, int n, float act_scale, int8_t *q) {
    float sc = act_scale;
    if (sc <= 0.f) {
        float amax = 0.f;
        for (int k = 0; k < n; k++) { /* a compare, not libm's fmaxf call (inputs are finite) */
            float a = fabsf(x[k]);
            amax = a > amax ? a : amax;
        }
        sc = amax > 0.f ? amax / 127.f : 1.f;
    }
    float inv = 1.f / sc;
    for (int k = 0; k < n; k++) {
        float v = nearbyintf(x[k] * inv);
        v = v > 127.f ? 127.f : v < -127.f ? -127.f : v;
        q[k] = (int8_t)v;
    }
    return sc;
}

float cphil_pmat_quant_row(const float *x, int n, float act_scale, int8_t *q) {
    cphil_isa isa = cphil_pmat_isa();
    if (isa == CPHIL_ISA_AVX512) return cphil_pmat_quant_row_avx512(x, n, act_scale, q);
    if (isa == CPHIL_ISA_AVX2) return cphil_pmat_quant_row_avx2(x, n, act_scale, q);
    return cphil_pmat_quant_row_ref(x, n, act_scale, q);
}
