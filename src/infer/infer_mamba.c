/* infer_mamba.c — the Mamba backbone (Gu & Dao 2023; the selective scan in its recurrent form, as
 * in mamba.c): per layer RMSNorm, in_proj to x|z, causal depthwise conv + SiLU, x_proj to
 * dt|B|C, dt_proj, the gated scan, out_proj added to the residual stream; RMSNorm at the end.
 * The first layer's in_proj(norm(x)) is frame-local: cached per frame in the ring ("pre").
 */
#include "infer/infer_impl.h"

#include <stdio.h>

typedef struct mamba_weights {
    int I, R; /* inner width (expand x H), dt rank ceil(H / 16) */
    struct mamba_layer {
        float *norm;         /* [H] */
        cphil_pmat in_proj;  /* [2I, H] */
        float *conv_w;       /* [K][I]: conv1d.weight [I, 1, K] transposed (contiguous over channels) */
        float *conv_b;       /* [I] */
        cphil_pmat x_proj;   /* [R+2N, I] */
        cphil_pmat dt_proj;  /* [I, R] + bias */
        float *A;            /* [N][I] = -exp(A_log) * log2(e), transposed (the scan takes 2^(dt A2)) */
        float *D;            /* [I] */
        cphil_pmat out_proj; /* [H, I] */
    } layer[INFER_MAX_LAYERS];
    float *normf_w; /* [H] */
} mamba_weights;

typedef struct mamba_run {
    float *normed;   /* [H] the first layer's RMSNorm of a frame (for its cached in_proj) */
    float *y;        /* [I] the last layer's gated scan output at the last position */
    /* window mode: [W] rows of each piece of a layer */
    float *res;      /* [W][H] residual stream */
    float *seq_u;    /* [W][H] RMSNorm of the residual (layers > 0) */
    float *seq_xz;   /* [W][2I] in_proj output: x | z */
    float *seq_xc;   /* [W][I] conv + SiLU output, then the scan's gated output */
    float *seq_dbl;  /* [W][R + 2N] x_proj output: dt rank R, B[N], C[N] */
    float *seq_dt;   /* [W][I] dt_proj output (the scan applies the softplus) */
    float *scan;     /* [N][I] the scan's state over the window */
    /* stream mode: one frame's pieces and the carried state */
    float *st_x;     /* [H] residual stream */
    float *st_u;     /* [H] RMSNorm of it */
    float *st_xz;    /* [2I] in_proj output (layers > 0) */
    float *st_xc;    /* [I] */
    float *st_dbl;   /* [R + 2N] */
    float *st_dt;    /* [I] */
    float *conv_ring;/* [L][max(K-1, 1)][I] the last K-1 conv inputs of each layer */
    float *ssm;      /* [L][N][I] */
} mamba_run;

static cphil_status mamba_check(const cphil_infer_spec *sp) {
    if (sp->state < 1 || sp->state > 1024 || sp->expand < 1 || sp->expand > 16 || sp->conv < 1 || sp->conv > 64)
        return cphil_err(CPHIL_E_MISMATCH, "bad Mamba sizes (state %d, expand %d, conv %d)", sp->state, sp->expand, sp->conv);
    return CPHIL_OK;
}

static void mamba_free_weights(void *wp) {
    mamba_weights *w = wp;
    for (int l = 0; l < INFER_MAX_LAYERS; l++) { /* the products are freed through m->mats */
        cphil_free(w->layer[l].norm);
        cphil_free(w->layer[l].conv_w);
        cphil_free(w->layer[l].conv_b);
        cphil_free(w->layer[l].A);
        cphil_free(w->layer[l].D);
    }
    cphil_free(w->normf_w);
    cphil_free(w);
}

static cphil_status mamba_load(infer_build *b) {
    cphil_infer_model *m = b->m;
    const cphil_infer_spec *sp = &m->spec;
    mamba_weights *w = cphil_calloc(1, sizeof *w);
    if (!w) return cphil_err(CPHIL_E_NOMEM, "out of memory for the Mamba layers");
    m->weights = w;
    w->I = sp->expand * sp->hidden;
    w->R = (sp->hidden + 15) / 16;
    const int H = sp->hidden, I = w->I, R = w->R, N = sp->state, K = sp->conv;
    char n1[96], n2[96];
    cphil_status s;
    for (int l = 0; l < sp->layers; l++) {
        struct mamba_layer *ml = &w->layer[l];
        snprintf(n1, sizeof n1, "layers.%d.norm.weight", l);
        if ((s = cphil_infer_load_vec(b, n1, H, &ml->norm))) return s;
        snprintf(n1, sizeof n1, "layers.%d.mixer.in_proj.weight", l);
        if ((s = cphil_infer_load_linear(b, &ml->in_proj, n1, NULL, NULL, 2 * I, H))) return s;
        snprintf(n1, sizeof n1, "layers.%d.mixer.conv1d.weight", l);
        int64_t cs[3] = {I, 1, K};
        if ((s = cphil_infer_load_floats(b, n1, 3, cs, &ml->conv_w))) return s;
        float *cT = cphil_alloc(sizeof(float) * (size_t)I * K);
        if (!cT) return cphil_err(CPHIL_E_NOMEM, "out of memory");
        for (int i = 0; i < I; i++)
            for (int j = 0; j < K; j++) cT[(size_t)j * I + i] = ml->conv_w[(size_t)i * K + j];
        cphil_free(ml->conv_w);
        ml->conv_w = cT;
        snprintf(n1, sizeof n1, "layers.%d.mixer.conv1d.bias", l);
        if ((s = cphil_infer_load_vec(b, n1, I, &ml->conv_b))) return s;
        snprintf(n1, sizeof n1, "layers.%d.mixer.x_proj.weight", l);
        if ((s = cphil_infer_load_linear(b, &ml->x_proj, n1, NULL, NULL, R + 2 * N, I))) return s;
        snprintf(n1, sizeof n1, "layers.%d.mixer.dt_proj.weight", l);
        snprintf(n2, sizeof n2, "layers.%d.mixer.dt_proj.bias", l);
        if ((s = cphil_infer_load_linear(b, &ml->dt_proj, n1, n2, NULL, I, R))) return s;
        snprintf(n1, sizeof n1, "layers.%d.mixer.A_log", l);
        int64_t as[2] = {I, N};
        if ((s = cphil_infer_load_floats(b, n1, 2, as, &ml->A))) return s;
        /* A = -exp(A_log), stored transposed [N][I] for the scan (vectorized over i) and times
         * log2(e) (one rounding, in double): the scan computes exp(dt A) as 2^(dt A2) */
        float *At = cphil_alloc(sizeof(float) * (size_t)I * N);
        if (!At) return cphil_err(CPHIL_E_NOMEM, "out of memory");
        for (int i = 0; i < I; i++)
            for (int n = 0; n < N; n++)
                At[(size_t)n * I + i] = (float)(-exp((double)ml->A[(size_t)i * N + n]) * 1.4426950408889634074);
        cphil_free(ml->A);
        ml->A = At;
        snprintf(n1, sizeof n1, "layers.%d.mixer.D", l);
        if ((s = cphil_infer_load_vec(b, n1, I, &ml->D))) return s;
        snprintf(n1, sizeof n1, "layers.%d.mixer.out_proj.weight", l);
        if ((s = cphil_infer_load_linear(b, &ml->out_proj, n1, NULL, NULL, H, I))) return s;
    }
    return cphil_infer_load_vec(b, "norm_f.weight", H, &w->normf_w);
}

static int mamba_pre_width(const cphil_infer_model *m) { return 2 * m->spec.expand * m->spec.hidden; }

static size_t conv_ring_len(const cphil_infer_spec *sp, int I) {
    return (size_t)sp->layers * (sp->conv > 1 ? sp->conv - 1 : 1) * I;
}

static cphil_status mamba_open(cphil_infer_state *s) {
    const cphil_infer_spec *sp = &s->m->spec;
    const mamba_weights *w = s->m->weights;
    const size_t H = (size_t)sp->hidden, I = (size_t)w->I, N = (size_t)sp->state, W = (size_t)s->W;
    const size_t DBL = (size_t)w->R + 2 * N;
    bool ok = true;
    mamba_run *r = cphil_infer_calloc(&ok, 1, sizeof *r);
    s->run = r;
    if (!ok) return CPHIL_E_NOMEM;
    r->normed = cphil_infer_calloc(&ok, H, sizeof(float));
    r->y = cphil_infer_calloc(&ok, I, sizeof(float));
    if (s->mode == CPHIL_INFER_WINDOW) {
        r->res = cphil_infer_calloc(&ok, W * H, sizeof(float));
        r->seq_u = cphil_infer_calloc(&ok, W * H, sizeof(float));
        r->seq_xz = cphil_infer_calloc(&ok, W * 2 * I, sizeof(float));
        r->seq_xc = cphil_infer_calloc(&ok, W * I, sizeof(float));
        r->seq_dbl = cphil_infer_calloc(&ok, W * DBL, sizeof(float));
        r->seq_dt = cphil_infer_calloc(&ok, W * I, sizeof(float));
        r->scan = cphil_infer_calloc(&ok, N * I, sizeof(float));
    } else {
        r->st_x = cphil_infer_calloc(&ok, H, sizeof(float));
        r->st_u = cphil_infer_calloc(&ok, H, sizeof(float));
        r->st_xz = cphil_infer_calloc(&ok, 2 * I, sizeof(float));
        r->st_xc = cphil_infer_calloc(&ok, I, sizeof(float));
        r->st_dbl = cphil_infer_calloc(&ok, DBL, sizeof(float));
        r->st_dt = cphil_infer_calloc(&ok, I, sizeof(float));
        r->conv_ring = cphil_infer_calloc(&ok, conv_ring_len(sp, w->I), sizeof(float));
        r->ssm = cphil_infer_calloc(&ok, (size_t)sp->layers * N * I, sizeof(float));
    }
    return ok ? CPHIL_OK : CPHIL_E_NOMEM;
}

static void mamba_close(void *run) {
    mamba_run *r = run;
    float *bufs[] = {r->normed, r->y, r->res, r->seq_u, r->seq_xz, r->seq_xc, r->seq_dbl, r->seq_dt, r->scan,
                     r->st_x, r->st_u, r->st_xz, r->st_xc, r->st_dbl, r->st_dt, r->conv_ring, r->ssm};
    for (size_t i = 0; i < CPHIL_ARRAY_LEN(bufs); i++) cphil_free(bufs[i]);
    cphil_free(r);
}

static void mamba_reset(cphil_infer_state *s) {
    const cphil_infer_spec *sp = &s->m->spec;
    const mamba_weights *w = s->m->weights;
    mamba_run *r = s->run;
    if (r->conv_ring) memset(r->conv_ring, 0, sizeof(float) * conv_ring_len(sp, w->I));
    if (r->ssm) memset(r->ssm, 0, sizeof(float) * (size_t)sp->layers * w->I * sp->state);
}

static void mamba_pre(cphil_infer_state *s, const float *x0, float *pre) {
    const cphil_infer_spec *sp = &s->m->spec;
    const mamba_weights *w = s->m->weights;
    mamba_run *r = s->run;
    cphil_infer_rmsnorm(x0, w->layer[0].norm, r->normed, sp->hidden, sp->norm_eps);
    infer_mm(s, &w->layer[0].in_proj, 1, r->normed, sp->hidden, pre, s->P, 0);
}

/* Window over T positions from a zero state. Layer 0 takes x|z from the per-frame cache; only
 * the last position's output is needed from the last layer. */
static void mamba_window(cphil_infer_state *s, int T) {
    const cphil_infer_model *m = s->m;
    const cphil_infer_spec *sp = &m->spec;
    const mamba_weights *w = m->weights;
    mamba_run *r = s->run;
    const int H = sp->hidden, I = w->I, R = w->R, N = sp->state, K = sp->conv, L = sp->layers;
    const int DBL = R + 2 * N;
    float *X = r->res;
    const float *tap[64];
    /* the residual stream starts as the input layer's outputs (the ring itself stays as it is) */
    for (int t = 0; t < T; t++) memcpy(X + (size_t)t * H, s->seq_x0[t], sizeof(float) * (size_t)H);
    for (int l = 0; l < L; l++) {
        const struct mamba_layer *ml = &w->layer[l];
        if (l > 0) {
            for (int t = 0; t < T; t++)
                cphil_infer_rmsnorm(X + (size_t)t * H, ml->norm, r->seq_u + (size_t)t * H, H, sp->norm_eps);
            infer_mm(s, &ml->in_proj, T, r->seq_u, H, r->seq_xz, 2 * I, 0);
        } else {
            for (int t = 0; t < T; t++)
                memcpy(r->seq_xz + (size_t)t * 2 * I, s->seq_pre[t], sizeof(float) * 2 * (size_t)I);
        }
        /* causal depthwise conv + SiLU (taps before the sequence contribute nothing) */
        for (int t = 0; t < T; t++) {
            for (int j = 0; j < K; j++) {
                int tt = t - (K - 1) + j;
                tap[j] = tt < 0 ? NULL : r->seq_xz + (size_t)tt * 2 * I;
            }
            cphil_infer_conv_silu(I, K, ml->conv_w, ml->conv_b, tap, NULL, r->seq_xc + (size_t)t * I);
        }
        infer_mm(s, &ml->x_proj, T, r->seq_xc, I, r->seq_dbl, DBL, 0);
        infer_mm(s, &ml->dt_proj, T, r->seq_dbl, DBL, r->seq_dt, I, 0); /* softplus is the scan's */
        memset(r->scan, 0, sizeof(float) * (size_t)I * N);
        const bool last_layer = l == L - 1;
        for (int t = 0; t < T; t++) {
            const float *dbl = r->seq_dbl + (size_t)t * DBL;
            float *xc = r->seq_xc + (size_t)t * I;
            cphil_infer_ssm_gated(I, N, ml->A, r->seq_dt + (size_t)t * I, xc, r->seq_xz + (size_t)t * 2 * I + I, dbl + R,
                            dbl + R + N, ml->D, r->scan, last_layer ? r->y : xc);
        }
        /* seq_xc[t] now holds the gated output (r->y: the last position, in the last layer) */
        if (last_layer) infer_mm(s, &ml->out_proj, 1, r->y, I, X + (size_t)(T - 1) * H, H, 1);
        else infer_mm(s, &ml->out_proj, T, r->seq_xc, I, X, H, 1);
    }
    cphil_infer_rmsnorm(X + (size_t)(T - 1) * H, w->normf_w, s->feat, H, sp->norm_eps);
}

/* One step per layer. The conv ring holds the last K-1 inputs of each layer in rotating slots:
 * at frame t the oldest is in slot t mod (K-1), and the new input replaces it (no shifts). */
static void mamba_stream(cphil_infer_state *s, const float *x0, const float *pre0) {
    const cphil_infer_model *m = s->m;
    const cphil_infer_spec *sp = &m->spec;
    const mamba_weights *w = m->weights;
    mamba_run *r = s->run;
    const int H = sp->hidden, I = w->I, R = w->R, N = sp->state, K = sp->conv, L = sp->layers;
    float *x = r->st_x;
    const float *tap[64];
    memcpy(x, x0, sizeof(float) * (size_t)H);
    const int Km1 = K > 1 ? K - 1 : 1;
    const int r0 = K > 1 ? (int)(s->t % (K - 1)) : 0;
    for (int l = 0; l < L; l++) {
        const struct mamba_layer *ml = &w->layer[l];
        const float *xz = pre0;
        if (l > 0) {
            cphil_infer_rmsnorm(x, ml->norm, r->st_u, H, sp->norm_eps);
            infer_mm(s, &ml->in_proj, 1, r->st_u, H, r->st_xz, 2 * I, 0);
            xz = r->st_xz;
        }
        float *ring = r->conv_ring + (size_t)l * Km1 * I;
        for (int j = 0; j < K - 1; j++) tap[j] = ring + (size_t)((r0 + j) % (K - 1)) * I;
        tap[K - 1] = xz;
        cphil_infer_conv_silu(I, K, ml->conv_w, ml->conv_b, tap, K > 1 ? ring + (size_t)r0 * I : NULL, r->st_xc);
        infer_mm(s, &ml->x_proj, 1, r->st_xc, I, r->st_dbl, R + 2 * N, 0);
        infer_mm(s, &ml->dt_proj, 1, r->st_dbl, R, r->st_dt, I, 0);
        cphil_infer_ssm_gated(I, N, ml->A, r->st_dt, r->st_xc, xz + I, r->st_dbl + R, r->st_dbl + R + N, ml->D,
                        r->ssm + (size_t)l * I * N, r->y);
        infer_mm(s, &ml->out_proj, 1, r->y, I, x, H, 1);
    }
    cphil_infer_rmsnorm(x, w->normf_w, s->feat, H, sp->norm_eps);
}

const infer_backbone cphil_infer_mamba_ops = {
    .check = mamba_check,
    .load = mamba_load,
    .free_weights = mamba_free_weights,
    .pre_width = mamba_pre_width,
    .open = mamba_open,
    .close = mamba_close,
    .reset = mamba_reset,
    .pre = mamba_pre,
    .window = mamba_window,
    .stream = mamba_stream,
};
