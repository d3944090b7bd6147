/* infer_kern.c — packing into the panel16 layout, the scalar `_ref` kernels, input conversion
 * (f32 -> bf16 pairs, f32 -> s8 with per-row scales) and the run-time ISA dispatch of the
 * inference engine's products. See infer_kern.h for the layout and the contract.
 * Does not: any SIMD (infer_kern_avx2.c, infer_kern_avx512.c).
 */
#include "infer/infer_kern.h"
#include "kernels/cpu/kernels.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- ISA dispatch ---------------------------------------------------------------------- */
/* The project's dispatch (src/kernels/cpu: CPUID, CPHIL_ISA) picks the tier; the engine's
 * AVX-512 tier also needs VNNI and BF16, else it takes the AVX2 kernels. */
infer_isa infer_isa_best(void) {
    cphil_isa b = cphil_isa_best();
    if (b == CPHIL_ISA_AVX512 && !(cphil_cpu_has_vnni() && cphil_cpu_has_bf16())) return INFER_ISA_AVX2;
    return (infer_isa)b;
}

infer_isa infer_isa_set(infer_isa isa) {
    infer_isa best = infer_isa_best();
    if (isa > best) isa = best;
    cphil_isa_set((cphil_isa)isa);
    return infer_isa_get();
}

infer_isa infer_isa_get(void) {
    cphil_isa a = cphil_isa_active();
    if (a == CPHIL_ISA_AVX512 && !(cphil_cpu_has_vnni() && cphil_cpu_has_bf16())) return INFER_ISA_AVX2;
    return (infer_isa)a;
}

const char *infer_isa_name(infer_isa isa) {
    switch (isa) {
    case INFER_ISA_SCALAR: return "scalar";
    case INFER_ISA_AVX2: return "avx2";
    case INFER_ISA_AVX512: return "avx512";
    }
    return "?";
}

/* ---- packing --------------------------------------------------------------------------- */
static size_t elem_size(infer_dtype d) { return d == INFER_F32 ? 4 : d == INFER_BF16 ? 2 : 1; }

size_t infer_mat_bytes(const infer_mat *m) {
    return (size_t)m->np * INFER_PANEL * (size_t)m->kp * elem_size(m->dtype);
}

static cphil_status mat_alloc(infer_mat *m, int rows, int cols, infer_dtype dtype, const float *bias) {
    memset(m, 0, sizeof *m);
    m->rows = rows;
    m->cols = cols;
    m->kp = (cols + 3) & ~3;
    m->np = (rows + INFER_PANEL - 1) / INFER_PANEL;
    m->dtype = dtype;
    m->w = cphil_calloc(1, infer_mat_bytes(m) + 64);
    if (!m->w) return cphil_err(CPHIL_E_NOMEM, "out of memory packing a %dx%d matrix", rows, cols);
    if (bias) {
        m->bias = cphil_alloc(sizeof(float) * (size_t)rows);
        if (!m->bias) {
            infer_mat_free(m);
            return cphil_err(CPHIL_E_NOMEM, "out of memory packing a bias of %d", rows);
        }
        memcpy(m->bias, bias, sizeof(float) * (size_t)rows);
    }
    if (dtype == INFER_I8) {
        m->scale = cphil_calloc((size_t)m->np * INFER_PANEL, sizeof(float));
        m->rowsum = cphil_calloc((size_t)m->np * INFER_PANEL, sizeof(int32_t));
        if (!m->scale || !m->rowsum) {
            infer_mat_free(m);
            return cphil_err(CPHIL_E_NOMEM, "out of memory packing scales of %d rows", rows);
        }
    }
    return CPHIL_OK;
}

/* Offset of element (r, k) in the packed array, in elements. */
static inline size_t pidx(const infer_mat *m, int r, int k) {
    size_t p = (size_t)(r / INFER_PANEL), lr = (size_t)(r % INFER_PANEL);
    size_t base = p * INFER_PANEL * (size_t)m->kp;
    switch (m->dtype) {
    case INFER_F32: return base + (size_t)k * INFER_PANEL + lr;
    case INFER_BF16: return base + (size_t)(k / 2) * INFER_PANEL * 2 + lr * 2 + (size_t)(k % 2);
    case INFER_I8: return base + (size_t)(k / 4) * INFER_PANEL * 4 + lr * 4 + (size_t)(k % 4);
    }
    return 0;
}

cphil_status infer_mat_pack(infer_mat *m, int rows, int cols, const float *w, const float *bias,
                            infer_dtype dtype) {
    cphil_status s = mat_alloc(m, rows, cols, dtype, bias);
    if (s) return s;
    for (int r = 0; r < rows; r++) {
        const float *wr = w + (size_t)r * cols;
        if (dtype == INFER_F32) {
            float *d = m->w;
            for (int k = 0; k < cols; k++) d[pidx(m, r, k)] = wr[k];
        } else if (dtype == INFER_BF16) {
            uint16_t *d = m->w;
            for (int k = 0; k < cols; k++) d[pidx(m, r, k)] = infer_f32_to_bf16(wr[k]);
        } else {
            float amax = 0.f;
            for (int k = 0; k < cols; k++) amax = fmaxf(amax, fabsf(wr[k]));
            float sc = amax > 0.f ? amax / 127.f : 1.f;
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

cphil_status infer_mat_pack_i8(infer_mat *m, int rows, int cols, const int8_t *q, const float *scale,
                               const float *bias) {
    cphil_status s = mat_alloc(m, rows, cols, INFER_I8, bias);
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

void infer_mat_row(const infer_mat *m, int r, float *out) {
    for (int k = 0; k < m->cols; k++) {
        size_t i = pidx(m, r, k);
        if (m->dtype == INFER_F32) out[k] = ((const float *)m->w)[i];
        else if (m->dtype == INFER_BF16) out[k] = infer_bf16_to_f32(((const uint16_t *)m->w)[i]);
        else out[k] = (float)((const int8_t *)m->w)[i] * m->scale[r];
    }
}

void infer_mat_free(infer_mat *m) {
    if (!m) return;
    cphil_free(m->w);
    cphil_free(m->scale);
    cphil_free(m->rowsum);
    cphil_free(m->bias);
    memset(m, 0, sizeof *m);
}

/* ---- scalar reference kernels ------------------------------------------------------------ */
static inline void store(const infer_kargs *a, int mm, int r, float v) {
    const infer_mat *m = a->m;
    if (r >= m->rows) return;
    float *y = a->Y + (size_t)mm * a->ldy + r;
    if (m->bias) v += m->bias[r];
    *y = a->beta ? *y + v : v;
}

void gemm_f32_ref(const infer_kargs *a) {
    const infer_mat *m = a->m;
    const float *w = m->w;
    const float *x = a->x;
    for (int mm = 0; mm < a->M; mm++)
        for (int r = 0; r < m->rows; r++) {
            float acc = 0.f;
            for (int k = 0; k < m->cols; k++) acc += w[pidx(m, r, k)] * x[(size_t)mm * a->ldx + k];
            store(a, mm, r, acc);
        }
}

void gemm_bf16_ref(const infer_kargs *a) {
    const infer_mat *m = a->m;
    const uint16_t *w = m->w;
    const uint16_t *x = a->x;
    for (int mm = 0; mm < a->M; mm++)
        for (int r = 0; r < m->rows; r++) {
            float acc = 0.f;
            for (int k = 0; k < m->kp; k++)
                acc += infer_bf16_to_f32(w[pidx(m, r, k)]) * infer_bf16_to_f32(x[(size_t)mm * m->kp + k]);
            store(a, mm, r, acc);
        }
}

void gemm_i8_ref(const infer_kargs *a) {
    const infer_mat *m = a->m;
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
size_t infer_mat_scratch_bytes(int M, int kp) {
    /* f32 padding needs 4*kp per row (bf16 2*kp, int8 kp + a float scale), rounded to 64. */
    size_t row = ((size_t)kp * 4 + 63) & ~(size_t)63;
    return (size_t)M * row + (((size_t)M * sizeof(float) + 63) & ~(size_t)63) + 64;
}

void infer_mat_gemm(const infer_mat *m, int M, const float *X, int ldx, float *Y, int ldy, int beta,
                    void *scratch) {
    infer_kargs a = {m, M, X, ldx, NULL, Y, ldy, beta};
    infer_isa isa = infer_isa_get();
    if (m->dtype == INFER_F32) {
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
        if (isa == INFER_ISA_AVX512) gemm_f32_avx512(&a);
        else if (isa == INFER_ISA_AVX2) gemm_f32_avx2(&a);
        else gemm_f32_ref(&a);
        return;
    }
    if (m->dtype == INFER_BF16) {
        uint16_t *xb = scratch;
        for (int mm = 0; mm < M; mm++) {
            const float *xr = X + (size_t)mm * ldx;
            uint16_t *d = xb + (size_t)mm * m->kp;
            for (int k = 0; k < m->cols; k++) d[k] = infer_f32_to_bf16(xr[k]);
            for (int k = m->cols; k < m->kp; k++) d[k] = 0;
        }
        a.x = xb;
        if (isa == INFER_ISA_AVX512) gemm_bf16_avx512(&a);
        else if (isa == INFER_ISA_AVX2) gemm_bf16_avx2(&a);
        else gemm_bf16_ref(&a);
        return;
    }
    /* int8: symmetric per-row activation quantization */
    int8_t *xq = scratch;
    size_t xbytes = ((size_t)M * (size_t)m->kp + 63) & ~(size_t)63;
    float *xs = (float *)((uint8_t *)scratch + xbytes);
    for (int mm = 0; mm < M; mm++) {
        const float *xr = X + (size_t)mm * ldx;
        int8_t *d = xq + (size_t)mm * m->kp;
        float sc = infer_quant_row(xr, m->cols, m->act_scale, d);
        for (int k = m->cols; k < m->kp; k++) d[k] = 0;
        xs[mm] = sc;
    }
    a.x = xq;
    a.xs = xs;
    if (isa == INFER_ISA_AVX512) gemm_i8_avx512(&a);
    else if (isa == INFER_ISA_AVX2) gemm_i8_avx2(&a);
    else gemm_i8_ref(&a);
}

/* ---- activations: scalar reference and dispatch ------------------------------------------ */
void infer_vexp_ref(float *x, int n) {
    for (int i = 0; i < n; i++) x[i] = expf(x[i]);
}
void infer_vsigmoid_ref(float *x, int n) {
    for (int i = 0; i < n; i++) x[i] = 1.f / (1.f + expf(-x[i]));
}
void infer_vtanh_ref(float *x, int n) {
    for (int i = 0; i < n; i++) x[i] = tanhf(x[i]);
}
void infer_vsilu_ref(float *x, int n) {
    for (int i = 0; i < n; i++) x[i] = x[i] / (1.f + expf(-x[i]));
}
void infer_vsoftplus_ref(float *x, int n) {
    for (int i = 0; i < n; i++) x[i] = x[i] > 20.f ? x[i] : log1pf(expf(x[i]));
}

#define DISPATCH_ACT(name)                                                                     \
    void infer_##name(float *x, int n) {                                                       \
        if (infer_isa_get() == INFER_ISA_AVX512) infer_##name##_avx512(x, n);                  \
        else infer_##name##_ref(x, n);                                                         \
    }
DISPATCH_ACT(vexp)
DISPATCH_ACT(vsigmoid)
DISPATCH_ACT(vtanh)
DISPATCH_ACT(vsilu)
DISPATCH_ACT(vsoftplus)

void infer_axpy_rows_f32(float *y, int n, const float *w, size_t ld, const float *a, int nrows) {
    for (int k = 0; k < nrows; k++) {
        float ak = a[k];
        if (ak == 0.f) continue;
        const float *r = w + (size_t)k * ld;
        for (int j = 0; j < n; j++) y[j] += ak * r[j];
    }
}

void infer_gather_add_f32(float *y, int n, const float *w, size_t ld, const int32_t *ids, int nids) {
    for (int k = 0; k < nids; k++) {
        const float *r = w + (size_t)ids[k] * ld;
        for (int j = 0; j < n; j++) y[j] += r[j];
    }
}

void infer_ssm_step_ref(int I, int N, const float *At, const float *dt, const float *xc, const float *B,
                        const float *C, const float *D, float *h, float *y) {
    for (int i = 0; i < I; i++) {
        float x = xc[i], d = dt[i], dx = d * x, acc = 0.f;
        for (int n = 0; n < N; n++) {
            float *hn = h + (size_t)n * I + i;
            *hn = expf(d * At[(size_t)n * I + i]) * *hn + dx * B[n];
            acc += *hn * C[n];
        }
        y[i] = acc + D[i] * x;
    }
}

void infer_ssm_step(int I, int N, const float *At, const float *dt, const float *xc, const float *B,
                    const float *C, const float *D, float *h, float *y) {
    if (infer_isa_get() == INFER_ISA_AVX512) infer_ssm_step_avx512(I, N, At, dt, xc, B, C, D, h, y);
    else infer_ssm_step_ref(I, N, At, dt, xc, B, C, D, h, y);
}

float infer_quant_row_ref(const float *x, int n, float act_scale, int8_t *q) {
    float sc = act_scale;
    if (sc <= 0.f) {
        float amax = 0.f;
        for (int k = 0; k < n; k++) amax = fmaxf(amax, fabsf(x[k]));
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

float infer_quant_row(const float *x, int n, float act_scale, int8_t *q) {
    if (infer_isa_get() == INFER_ISA_AVX512) return infer_quant_row_avx512(x, n, act_scale, q);
    return infer_quant_row_ref(x, n, act_scale, q);
}
