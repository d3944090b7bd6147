/* export.c — ONNX graphs and .npz files from a cphil model (see export.h for the contract).
 *
 * Every weight is found in the model's tensor table by name (cphil_model_find); a name the graph
 * needs that the table lacks is an error, and after building we check that the graph used every
 * tensor of the table, so the exporter cannot silently drift from the model.
 * Linear weights are stored transposed ([in, out], "<name>.T") so MatMul takes them directly.
 * References: ONNX operator docs (opset 17: LSTM, GRU, Conv, LayerNormalization, Softmax,
 * DynamicQuantizeLinear, MatMulInteger, QuantizeLinear, DequantizeLinear); PyTorch nn.LSTM /
 * nn.GRU gate layouts; Gu & Dao 2023 (Mamba) and RoFormer (rotary embedding, rotate-half form).
 */
#include "export/export.h"
#include "export/npy.h"
#include "export/onnx_build.h"

#include <math.h>
#include <string.h>

typedef struct xb {
    cphil_onnx *g;
    const cphil_model *m;
    const cphil_export_opts *o;
    cphil_status err;
    bool *used;         /* per table tensor */
    float *tmp;         /* scratch for transposes / quantization */
    size_t tmp_n;
} xb;

static void xerr(xb *x, cphil_status s) {
    if (!x->err) x->err = s;
}

static float *scratch(xb *x, size_t n) {
    if (x->err) return NULL;
    if (n > x->tmp_n) {
        cphil_free(x->tmp);
        x->tmp = cphil_alloc(n * sizeof(float));
        x->tmp_n = x->tmp ? n : 0;
        if (!x->tmp) {
            xerr(x, cphil_err(CPHIL_E_NOMEM, "export: out of memory"));
            return NULL;
        }
    }
    return x->tmp;
}

/* A table tensor by name with its expected numel (0 = any); marks it used. */
static const cphil_tensor *T(xb *x, const char *name, size_t numel) {
    if (x->err) return NULL;
    const cphil_tensor *t = cphil_model_find(x->m, name);
    if (!t) {
        xerr(x, cphil_err(CPHIL_E_MISMATCH, "export: the model has no tensor \"%s\" (exporter and model table disagree)", name));
        return NULL;
    }
    if (numel && t->numel != numel) {
        xerr(x, cphil_err(CPHIL_E_MISMATCH, "export: tensor \"%s\" has %zu elements, the graph expects %zu", name, t->numel, numel));
        return NULL;
    }
    x->used[t - x->m->tensors] = true;
    return t;
}

static const float *TP(xb *x, const char *name, size_t numel) {
    const cphil_tensor *t = T(x, name, numel);
    return t ? x->m->params + t->offset : NULL;
}

/* "<nm>.<what>_l<k>" (the RNN parameter names). */
static const char *rnn_name(char *buf, size_t cap, const char *nm, const char *what, int k) {
    snprintf(buf, cap, "%s.%s_l%d", nm, what, k);
    return buf;
}

/* Plain f32 initializer straight from the table (same name, same shape). */
static const char *init_param(xb *x, const char *name, int ndim, const int64_t *shape) {
    size_t n = 1;
    for (int i = 0; i < ndim; i++) n *= (size_t)shape[i];
    const float *p = TP(x, name, n);
    if (!p) return NULL;
    return cphil_onnx_init_f32(x->g, name, ndim, shape, p);
}

/* Symmetric int8 per row of a [rows, cols] matrix: q = round(w / s), s = amax / 127 (1 if 0). */
static void quant_rows(const float *w, int rows, int cols, int8_t *q, float *s) {
    for (int r = 0; r < rows; r++) {
        float amax = 0;
        for (int c = 0; c < cols; c++) amax = fmaxf(amax, fabsf(w[(size_t)r * cols + c]));
        float sc = amax > 0 ? amax / 127.0f : 1.0f;
        s[r] = sc;
        for (int c = 0; c < cols; c++) {
            float v = nearbyintf(w[(size_t)r * cols + c] / sc);
            q[(size_t)r * cols + c] = (int8_t)(v > 127 ? 127 : v < -127 ? -127 : v);
        }
    }
}

/* y = x W^T + b for W [out, in] in the table; x is [..., in]. */
static const char *linear(xb *x, const char *in, const char *prefix, bool bias, int n_in, int n_out) {
    if (x->err) return NULL;
    char wn[96], bn[96], tn[128];
    snprintf(wn, sizeof wn, "%s.weight", prefix);
    snprintf(bn, sizeof bn, "%s.bias", prefix);
    const float *W = TP(x, wn, (size_t)n_in * n_out);
    const float *b = bias ? TP(x, bn, (size_t)n_out) : NULL;
    if (!W || (bias && !b)) return NULL;
    cphil_onnx *g = x->g;
    const char *y;
    if (x->o->quant == CPHIL_EXPORT_F32) {
        float *wt = scratch(x, (size_t)n_in * n_out);
        if (!wt) return NULL;
        for (int o = 0; o < n_out; o++)
            for (int i = 0; i < n_in; i++) wt[(size_t)i * n_out + o] = W[(size_t)o * n_in + i];
        snprintf(tn, sizeof tn, "%s.T", wn);
        const char *wi = cphil_onnx_init_f32(g, tn, 2, (int64_t[]){n_in, n_out}, wt);
        y = CPHIL_ONNX_OP2(g, "MatMul", in, wi);
    } else {
        /* int8 per output channel; stored transposed [in, out] with scale [out]. */
        size_t n = (size_t)n_in * n_out;
        float *buf = scratch(x, n + (size_t)n_out + n / 4 + 2);
        if (!buf) return NULL;
        float *scale = buf + n;
        int8_t *q = (int8_t *)(scale + n_out);   /* n bytes (n/4 + 1 floats of room) */
        int8_t *qt = (int8_t *)buf;              /* transposed copy reuses the front */
        quant_rows(W, n_out, n_in, q, scale);
        /* transpose q [out, in] -> qt [in, out]; qt overlaps the float area only, q is after scale */
        for (int o = 0; o < n_out; o++)
            for (int i = 0; i < n_in; i++) qt[(size_t)i * n_out + o] = q[(size_t)o * n_in + i];
        snprintf(tn, sizeof tn, "%s.int8.T", wn);
        const char *wq = cphil_onnx_init(g, tn, CPHIL_ONNX_INT8, 2, (int64_t[]){n_in, n_out}, qt);
        snprintf(tn, sizeof tn, "%s.scale", wn);
        const char *ws = cphil_onnx_init_f32(g, tn, 1, (int64_t[]){n_out}, scale);
        float amax = 0;
        bool calibrated = x->o->quant == CPHIL_EXPORT_INT8_STATIC && x->o->amax &&
                          x->o->amax(x->o->amax_ctx, wn, &amax) && amax >= 0 && isfinite(amax);
        if (x->o->quant == CPHIL_EXPORT_INT8_STATIC && !calibrated && !x->o->missing_dynamic) {
            xerr(x, cphil_err(CPHIL_E_ARG, "export: static int8 needs a calibrated input range for \"%s\" (none given)", wn));
            return NULL;
        }
        if (!calibrated) {
            const char *qo[3];
            cphil_onnx_node(g, "DynamicQuantizeLinear", NULL, 1, (const char *[]){in}, 3, qo, 0, NULL);
            const char *mi = cphil_onnx_op(g, "MatMulInteger", 3, (const char *[]){qo[0], wq, qo[2]}, 0, NULL);
            const char *f = cphil_onnx_op(g, "Cast", 1, (const char *[]){mi}, 1, (cphil_onnx_attr[]){CPHIL_ONNX_AI("to", CPHIL_ONNX_FLOAT)});
            const char *sc = CPHIL_ONNX_OP2(g, "Mul", qo[1], ws);
            y = CPHIL_ONNX_OP2(g, "Mul", f, sc);
        } else {
            float s = amax > 0 ? amax / 127.0f : 1.0f;
            int8_t zp = 0;
            const char *sx = cphil_onnx_scalar_f32(g, s);
            const char *zx = cphil_onnx_init(g, NULL, CPHIL_ONNX_INT8, 0, NULL, &zp);
            const char *xq = cphil_onnx_op(g, "QuantizeLinear", 3, (const char *[]){in, sx, zx}, 0, NULL);
            const char *xd = cphil_onnx_op(g, "DequantizeLinear", 3, (const char *[]){xq, sx, zx}, 0, NULL);
            const char *wd = cphil_onnx_op(g, "DequantizeLinear", 2, (const char *[]){wq, ws}, 1,
                                           (cphil_onnx_attr[]){CPHIL_ONNX_AI("axis", 1)});
            y = CPHIL_ONNX_OP2(g, "MatMul", xd, wd);
        }
    }
    if (bias) {
        const char *bi = cphil_onnx_init_f32(g, bn, 1, (int64_t[]){n_out}, b);
        y = CPHIL_ONNX_OP2(g, "Add", y, bi);
    }
    return y;
}

/* A [G*H, H] / [G*H] PyTorch RNN parameter reordered by gate (perm[i] = source gate of ONNX
 * gate i), optionally int8 (weights only: stored int8, dequantized in the graph). */
static const char *rnn_weight(xb *x, const char *name, int G, int H, int cols, const int *perm, const char *onnx_name) {
    const float *W = TP(x, name, (size_t)G * H * cols);
    if (!W) return NULL;
    size_t n = (size_t)G * H * cols;
    float *r = scratch(x, 2 * n + (size_t)G * H + n / 4 + 2);
    if (!r) return NULL;
    for (int gi = 0; gi < G; gi++)
        memcpy(r + (size_t)gi * H * cols, W + (size_t)perm[gi] * H * cols, sizeof(float) * (size_t)H * cols);
    int64_t shape[3] = {1, (int64_t)G * H, cols};
    if (x->o->quant == CPHIL_EXPORT_F32)
        return cphil_onnx_init_f32(x->g, onnx_name, 3, shape, r);
    float *scale = r + n;
    int8_t *q = (int8_t *)(scale + G * H);
    quant_rows(r, G * H, cols, q, scale);
    char nm[128];
    snprintf(nm, sizeof nm, "%s.int8", onnx_name);
    const char *wq = cphil_onnx_init(x->g, nm, CPHIL_ONNX_INT8, 3, shape, q);
    snprintf(nm, sizeof nm, "%s.scale", onnx_name);
    const char *ws = cphil_onnx_init_f32(x->g, nm, 1, (int64_t[]){(int64_t)G * H}, scale);
    return cphil_onnx_op(x->g, "DequantizeLinear", 2, (const char *[]){wq, ws}, 1,
                         (cphil_onnx_attr[]){CPHIL_ONNX_AI("axis", 1)});
}

/* int8 dynamic LSTM weights for ONNX Runtime's com.microsoft DynamicQuantizeLSTM: the gate-
 * reordered [4H, cols] matrix quantized per row (= per output column after the transpose),
 * stored transposed [1, cols, 4H] int8 with scale [1, 4H] and zero point 0 (int8). */
static void lstm_qweight(xb *x, const char *name, int H, int cols, const int *perm, const char *onnx_name,
                         const char **wq, const char **ws, const char **wz) {
    *wq = *ws = *wz = NULL;
    const float *W = TP(x, name, (size_t)4 * H * cols);
    size_t n = (size_t)4 * H * cols;
    float *r = scratch(x, n + (size_t)4 * H + n / 2 + 4);
    if (!W || !r) return;
    for (int gi = 0; gi < 4; gi++)
        memcpy(r + (size_t)gi * H * cols, W + (size_t)perm[gi] * H * cols, sizeof(float) * (size_t)H * cols);
    float *scale = r + n;
    int8_t *q = (int8_t *)(scale + 4 * H), *qt = q + n;
    quant_rows(r, 4 * H, cols, q, scale);
    for (int o = 0; o < 4 * H; o++)
        for (int i = 0; i < cols; i++) qt[(size_t)i * 4 * H + o] = q[(size_t)o * cols + i];
    char nm[128];
    snprintf(nm, sizeof nm, "%s.int8", onnx_name);
    *wq = cphil_onnx_init(x->g, nm, CPHIL_ONNX_INT8, 3, (int64_t[]){1, cols, 4 * H}, qt);
    snprintf(nm, sizeof nm, "%s.scale", onnx_name);
    *ws = cphil_onnx_init_f32(x->g, nm, 2, (int64_t[]){1, 4 * H}, scale);
    memset(q, 0, (size_t)4 * H);
    snprintf(nm, sizeof nm, "%s.zero_point", onnx_name);
    *wz = cphil_onnx_init(x->g, nm, CPHIL_ONNX_INT8, 2, (int64_t[]){1, 4 * H}, q);
}

/* ONNX B = [Wb | Rb] (1 x 2GH) from PyTorch's bias_ih, bias_hh, gates permuted. */
static const char *rnn_bias(xb *x, const char *bih, const char *bhh, int G, int H, const int *perm, const char *onnx_name) {
    const float *a = TP(x, bih, (size_t)G * H), *b = TP(x, bhh, (size_t)G * H);
    float *r = scratch(x, (size_t)2 * G * H);
    if (!a || !b || !r) return NULL;
    for (int gi = 0; gi < G; gi++) {
        memcpy(r + (size_t)gi * H, a + (size_t)perm[gi] * H, sizeof(float) * (size_t)H);
        memcpy(r + (size_t)(G + gi) * H, b + (size_t)perm[gi] * H, sizeof(float) * (size_t)H);
    }
    return cphil_onnx_init_f32(x->g, onnx_name, 2, (int64_t[]){1, (int64_t)2 * G * H}, r);
}

static const char *axes(xb *x, int64_t a) { return cphil_onnx_init_i64(x->g, NULL, 1, &a); }

static const char *unsqueeze(xb *x, const char *v, int64_t a) {
    return CPHIL_ONNX_OP2(x->g, "Unsqueeze", v, axes(x, a));
}

static const char *squeeze(xb *x, const char *v, int64_t a) {
    return CPHIL_ONNX_OP2(x->g, "Squeeze", v, axes(x, a));
}

/* Gather index t along axis (drops the axis). */
static const char *take(xb *x, const char *v, int64_t t, int axis) {
    return cphil_onnx_op(x->g, "Gather", 2, (const char *[]){v, cphil_onnx_scalar_i64(x->g, t)}, 1,
                         (cphil_onnx_attr[]){CPHIL_ONNX_AI("axis", axis)});
}

static void split(xb *x, const char *v, int axis, int n, const int64_t *sizes, const char **outs) {
    const char *sp = cphil_onnx_init_i64(x->g, NULL, n, sizes);
    cphil_onnx_node(x->g, "Split", NULL, 2, (const char *[]){v, sp}, n, outs, 1,
                    (cphil_onnx_attr[]){CPHIL_ONNX_AI("axis", axis)});
}

static const char *silu(xb *x, const char *v) {
    return CPHIL_ONNX_OP2(x->g, "Mul", v, CPHIL_ONNX_OP1(x->g, "Sigmoid", v));
}

/* RMSNorm over the last axis: x * (mean(x^2) + eps)^-1/2 * g */
static const char *rmsnorm(xb *x, const char *v, const char *gname, int H) {
    cphil_onnx *g = x->g;
    const char *ms = cphil_onnx_op(g, "ReduceMean", 1, (const char *[]){CPHIL_ONNX_OP2(g, "Mul", v, v)}, 2,
                                   (cphil_onnx_attr[]){CPHIL_ONNX_AINTS("axes", ((int64_t[]){-1}), 1), CPHIL_ONNX_AI("keepdims", 1)});
    const char *rs = CPHIL_ONNX_OP1(g, "Reciprocal", CPHIL_ONNX_OP1(g, "Sqrt", CPHIL_ONNX_OP2(g, "Add", ms, cphil_onnx_scalar_f32(g, CPHIL_EXPORT_NORM_EPS))));
    const char *gw = init_param(x, gname, 1, (int64_t[]){H});
    return CPHIL_ONNX_OP2(g, "Mul", CPHIL_ONNX_OP2(g, "Mul", v, rs), gw);
}

static const char *layernorm(xb *x, const char *v, const char *prefix, int H) {
    char a[96], b[96];
    snprintf(a, sizeof a, "%s.weight", prefix);
    snprintf(b, sizeof b, "%s.bias", prefix);
    const char *gw = init_param(x, a, 1, (int64_t[]){H});
    const char *gb = init_param(x, b, 1, (int64_t[]){H});
    return cphil_onnx_op(x->g, "LayerNormalization", 3, (const char *[]){v, gw, gb}, 2,
                         (cphil_onnx_attr[]){CPHIL_ONNX_AI("axis", -1), CPHIL_ONNX_AF("epsilon", CPHIL_EXPORT_NORM_EPS)});
}

/* ---- backbones: each maps X [B, W, E] to the last frame's features [B, Hb] ------------------ */
static const char *bb_mlp(xb *x, const char *X) {
    const cphil_model_config *c = &x->m->cfg;
    const char *h = take(x, X, -1, 1); /* [B, E]: the last frame */
    h = CPHIL_ONNX_OP1(x->g, "Relu", linear(x, h, "input_proj", true, c->E, c->mlp_hidden[0]));
    char p[64];
    for (int i = 0; i + 1 < c->n_mlp; i++) {
        snprintf(p, sizeof p, "mlp.%d", i);
        h = CPHIL_ONNX_OP1(x->g, "Relu", linear(x, h, p, true, c->mlp_hidden[i], c->mlp_hidden[i + 1]));
    }
    return h;
}

static const char *bb_rnn(xb *x, const char *X, bool lstm) {
    const cphil_model_config *c = &x->m->cfg;
    const int H = c->hidden, G = lstm ? 4 : 3;
    /* PyTorch LSTM i f g o -> ONNX i o f c; PyTorch GRU r z n -> ONNX z r h */
    static const int perm_lstm[4] = {0, 3, 1, 2}, perm_gru[3] = {1, 0, 2};
    const int *perm = lstm ? perm_lstm : perm_gru;
    const char *nm = lstm ? "lstm" : "gru";
    const char *h = linear(x, X, "input_proj", true, c->E, H);             /* [B, W, H] */
    const char *seq = cphil_onnx_op(x->g, "Transpose", 1, (const char *[]){h}, 1,
                                    (cphil_onnx_attr[]){CPHIL_ONNX_AINTS("perm", ((int64_t[]){1, 0, 2}), 3)}); /* [W, B, H] */
    const char *last = NULL;
    for (int k = 0; k < c->num_layers; k++) {
        char a[64], b[64], on[64];
        if (lstm && x->o->quant == CPHIL_EXPORT_INT8_DYNAMIC) {
            /* ONNX has no int8 LSTM; ONNX Runtime's contrib op is what its own quantize_dynamic
             * emits for LSTM (int8 weights, activations quantized per call). */
            const char *w[3], *r[3];
            lstm_qweight(x, rnn_name(a, sizeof a, nm, "weight_ih", k), H, H, perm, rnn_name(on, sizeof on, nm, "W", k), &w[0], &w[1], &w[2]);
            lstm_qweight(x, rnn_name(a, sizeof a, nm, "weight_hh", k), H, H, perm, rnn_name(on, sizeof on, nm, "R", k), &r[0], &r[1], &r[2]);
            char bi[64], bh[64];
            rnn_name(bi, sizeof bi, nm, "bias_ih", k);
            rnn_name(bh, sizeof bh, nm, "bias_hh", k);
            const char *Bn = rnn_bias(x, bi, bh, 4, H, perm, rnn_name(b, sizeof b, nm, "B", k));
            const char *outs[2];
            cphil_onnx_attr at[1] = {CPHIL_ONNX_AI("hidden_size", H)};
            cphil_onnx_node(x->g, "DynamicQuantizeLSTM", "com.microsoft", 12,
                            (const char *[]){seq, w[0], r[0], Bn, "", "", "", "", w[1], w[2], r[1], r[2]}, 2, outs, 1, at);
            seq = squeeze(x, outs[0], 1);
            last = outs[1];
            continue;
        }
        const char *Wn = rnn_weight(x, rnn_name(a, sizeof a, nm, "weight_ih", k), G, H, H, perm, rnn_name(on, sizeof on, nm, "W", k));
        const char *Rn = rnn_weight(x, rnn_name(a, sizeof a, nm, "weight_hh", k), G, H, H, perm, rnn_name(on, sizeof on, nm, "R", k));
        char bi[64], bh[64];
        rnn_name(bi, sizeof bi, nm, "bias_ih", k);
        rnn_name(bh, sizeof bh, nm, "bias_hh", k);
        const char *Bn = rnn_bias(x, bi, bh, G, H, perm, rnn_name(b, sizeof b, nm, "B", k));
        const char *outs[2];
        cphil_onnx_attr at[2] = {CPHIL_ONNX_AI("hidden_size", H), CPHIL_ONNX_AI("linear_before_reset", 1)};
        cphil_onnx_node(x->g, lstm ? "LSTM" : "GRU", NULL, 4, (const char *[]){seq, Wn, Rn, Bn}, 2, outs, lstm ? 1 : 2, at);
        seq = squeeze(x, outs[0], 1);   /* Y [W, 1, B, H] -> [W, B, H] */
        last = outs[1];                 /* Y_h [1, B, H] */
    }
    return squeeze(x, last, 0);
}

static const char *bb_mamba(xb *x, const char *X) {
    const cphil_model_config *c = &x->m->cfg;
    cphil_onnx *g = x->g;
    const int H = c->hidden, I = cphil_mamba_inner(c), R = cphil_mamba_dt_rank(c), N = c->state_size,
              K = c->conv_size, W = c->window;
    const char *h = linear(x, X, "input_proj", true, c->E, H); /* [B, W, H] */
    char p[96], q[96];
    for (int k = 0; k < c->num_layers; k++) {
        snprintf(p, sizeof p, "layers.%d.norm.weight", k);
        const char *xn = rmsnorm(x, h, p, H);
        snprintf(p, sizeof p, "layers.%d.mixer.in_proj", k);
        const char *xz = linear(x, xn, p, false, H, 2 * I);
        const char *xs_z[2];
        split(x, xz, -1, 2, (int64_t[]){I, I}, xs_z);
        /* causal depthwise conv over time: [B, I, W] with K-1 zeros on the left */
        const char *xt = cphil_onnx_op(g, "Transpose", 1, (const char *[]){xs_z[0]}, 1,
                                       (cphil_onnx_attr[]){CPHIL_ONNX_AINTS("perm", ((int64_t[]){0, 2, 1}), 3)});
        snprintf(p, sizeof p, "layers.%d.mixer.conv1d.weight", k);
        const char *cw = init_param(x, p, 3, (int64_t[]){I, 1, K});
        snprintf(p, sizeof p, "layers.%d.mixer.conv1d.bias", k);
        const char *cb = init_param(x, p, 1, (int64_t[]){I});
        const char *xc = cphil_onnx_op(g, "Conv", 3, (const char *[]){xt, cw, cb}, 3,
                                       (cphil_onnx_attr[]){CPHIL_ONNX_AI("group", I), CPHIL_ONNX_AINTS("kernel_shape", ((int64_t[]){K}), 1),
                                                           CPHIL_ONNX_AINTS("pads", ((int64_t[]){K - 1, 0}), 2)});
        xc = cphil_onnx_op(g, "Transpose", 1, (const char *[]){xc}, 1,
                           (cphil_onnx_attr[]){CPHIL_ONNX_AINTS("perm", ((int64_t[]){0, 2, 1}), 3)}); /* [B, W, I] */
        const char *xa = silu(x, xc);
        snprintf(p, sizeof p, "layers.%d.mixer.x_proj", k);
        const char *xdbl = linear(x, xa, p, false, I, R + 2 * N);
        const char *dbc[3];
        split(x, xdbl, -1, 3, (int64_t[]){R, N, N}, dbc);
        snprintf(p, sizeof p, "layers.%d.mixer.dt_proj", k);
        const char *dt = CPHIL_ONNX_OP1(g, "Softplus", linear(x, dbc[0], p, true, R, I)); /* [B, W, I] */
        /* A = -exp(A_log) [I, N] */
        snprintf(p, sizeof p, "layers.%d.mixer.A_log", k);
        const float *alog = TP(x, p, (size_t)I * N);
        float *A = scratch(x, (size_t)I * N);
        if (!alog || !A) return NULL;
        for (size_t i = 0; i < (size_t)I * N; i++) A[i] = -expf(alog[i]);
        snprintf(q, sizeof q, "layers.%d.mixer.A", k);
        const char *An = cphil_onnx_init_f32(g, q, 2, (int64_t[]){I, N}, A);
        const char *dA = CPHIL_ONNX_OP1(g, "Exp", CPHIL_ONNX_OP2(g, "Mul", unsqueeze(x, dt, -1), An));       /* [B, W, I, N] */
        const char *dBx = CPHIL_ONNX_OP2(g, "Mul", unsqueeze(x, CPHIL_ONNX_OP2(g, "Mul", dt, xa), -1),
                                         unsqueeze(x, dbc[1], 2));                                         /* [B, W, I, N] */
        /* the scan, unrolled over the window: h_t = dA_t h_{t-1} + dBx_t, h_{-1} = 0 */
        const char **hs = cphil_calloc((size_t)W, sizeof *hs);
        if (!hs) {
            xerr(x, cphil_err(CPHIL_E_NOMEM, "export: out of memory"));
            return NULL;
        }
        const char *st = take(x, dBx, 0, 1);
        hs[0] = unsqueeze(x, st, 1);
        for (int t = 1; t < W; t++) {
            st = CPHIL_ONNX_OP2(g, "Add", CPHIL_ONNX_OP2(g, "Mul", take(x, dA, t, 1), st), take(x, dBx, t, 1));
            hs[t] = unsqueeze(x, st, 1);
        }
        const char *HS = W > 1 ? cphil_onnx_op(g, "Concat", W, hs, 1, (cphil_onnx_attr[]){CPHIL_ONNX_AI("axis", 1)}) : hs[0];
        cphil_free((void *)hs);
        const char *y = cphil_onnx_op(g, "ReduceSum", 2, (const char *[]){CPHIL_ONNX_OP2(g, "Mul", HS, unsqueeze(x, dbc[2], 2)), axes(x, -1)}, 1,
                                      (cphil_onnx_attr[]){CPHIL_ONNX_AI("keepdims", 0)});            /* [B, W, I] */
        snprintf(p, sizeof p, "layers.%d.mixer.D", k);
        y = CPHIL_ONNX_OP2(g, "Add", y, CPHIL_ONNX_OP2(g, "Mul", xa, init_param(x, p, 1, (int64_t[]){I})));
        const char *gated = CPHIL_ONNX_OP2(g, "Mul", y, silu(x, xs_z[1]));
        snprintf(p, sizeof p, "layers.%d.mixer.out_proj", k);
        h = CPHIL_ONNX_OP2(g, "Add", h, linear(x, gated, p, false, I, H));
    }
    h = rmsnorm(x, h, "norm_f.weight", H);
    return take(x, h, W - 1, 1);
}

static const char *bb_attention(xb *x, const char *X) {
    const cphil_model_config *c = &x->m->cfg;
    cphil_onnx *g = x->g;
    const int H = c->hidden, W = c->window, nh = c->num_heads, hd = H / nh, h2 = hd / 2;
    /* RoPE tables [W, hd] (cos | cos, sin | sin), the causal mask [W, W]. */
    float *tab = scratch(x, (size_t)2 * W * hd + (size_t)W * W);
    if (!tab) return NULL;
    float *cs = tab, *sn = tab + (size_t)W * hd, *mask = tab + (size_t)2 * W * hd;
    for (int t = 0; t < W; t++)
        for (int i = 0; i < h2; i++) {
            float inv = powf(10000.0f, -(float)(2 * i) / (float)hd);
            float a = (float)t * inv;
            cs[(size_t)t * hd + i] = cs[(size_t)t * hd + h2 + i] = cosf(a);
            sn[(size_t)t * hd + i] = sn[(size_t)t * hd + h2 + i] = sinf(a);
        }
    for (int t = 0; t < W; t++)
        for (int j = 0; j < W; j++) mask[(size_t)t * W + j] = j <= t ? 0.0f : -1e30f;
    const char *COS = cphil_onnx_init_f32(g, "rope.cos", 2, (int64_t[]){W, hd}, cs);
    const char *SIN = cphil_onnx_init_f32(g, "rope.sin", 2, (int64_t[]){W, hd}, sn);
    const char *MASK = cphil_onnx_init_f32(g, "causal_mask", 2, (int64_t[]){W, W}, mask);
    const char *shp4 = cphil_onnx_init_i64(g, NULL, 4, (int64_t[]){0, W, nh, hd});
    const char *shp3 = cphil_onnx_init_i64(g, NULL, 3, (int64_t[]){0, W, H});
    const char *isq = cphil_onnx_scalar_f32(g, 1.0f / sqrtf((float)hd));
    const char *half = cphil_onnx_scalar_f32(g, 0.5f), *one = cphil_onnx_scalar_f32(g, 1.0f);
    const char *rsqrt2 = cphil_onnx_scalar_f32(g, (float)(1.0 / sqrt(2.0)));
    const cphil_onnx_attr heads_first = CPHIL_ONNX_AINTS("perm", ((int64_t[]){0, 2, 1, 3}), 4);
    const char *h = linear(x, X, "input_proj", true, c->E, H);
    char p[96];
    for (int k = 0; k < c->num_layers; k++) {
        snprintf(p, sizeof p, "layers.%d.ln1", k);
        const char *a = layernorm(x, h, p, H);
        snprintf(p, sizeof p, "layers.%d.attn.qkv", k);
        const char *qkv[3];
        split(x, linear(x, a, p, true, H, 3 * H), -1, 3, (int64_t[]){H, H, H}, qkv);
        const char *hq[3];
        for (int i = 0; i < 3; i++)
            hq[i] = cphil_onnx_op(g, "Transpose", 1, (const char *[]){CPHIL_ONNX_OP2(g, "Reshape", qkv[i], shp4)}, 1, &heads_first); /* [B, nh, W, hd] */
        for (int i = 0; i < 2; i++) { /* RoPE on q and k: v*cos + rotate_half(v)*sin */
            const char *hh[2];
            split(x, hq[i], -1, 2, (int64_t[]){h2, h2}, hh);
            const char *rot = cphil_onnx_op(g, "Concat", 2, (const char *[]){CPHIL_ONNX_OP1(g, "Neg", hh[1]), hh[0]}, 1,
                                            (cphil_onnx_attr[]){CPHIL_ONNX_AI("axis", -1)});
            hq[i] = CPHIL_ONNX_OP2(g, "Add", CPHIL_ONNX_OP2(g, "Mul", hq[i], COS), CPHIL_ONNX_OP2(g, "Mul", rot, SIN));
        }
        const char *kt = cphil_onnx_op(g, "Transpose", 1, (const char *[]){hq[1]}, 1,
                                       (cphil_onnx_attr[]){CPHIL_ONNX_AINTS("perm", ((int64_t[]){0, 1, 3, 2}), 4)});
        const char *sc = CPHIL_ONNX_OP2(g, "Add", CPHIL_ONNX_OP2(g, "Mul", CPHIL_ONNX_OP2(g, "MatMul", hq[0], kt), isq), MASK);
        const char *P = cphil_onnx_op(g, "Softmax", 1, (const char *[]){sc}, 1, (cphil_onnx_attr[]){CPHIL_ONNX_AI("axis", -1)});
        const char *att = CPHIL_ONNX_OP2(g, "MatMul", P, hq[2]);
        att = CPHIL_ONNX_OP2(g, "Reshape", cphil_onnx_op(g, "Transpose", 1, (const char *[]){att}, 1, &heads_first), shp3);
        snprintf(p, sizeof p, "layers.%d.attn.out", k);
        h = CPHIL_ONNX_OP2(g, "Add", h, linear(x, att, p, true, H, H));
        snprintf(p, sizeof p, "layers.%d.ln2", k);
        const char *b = layernorm(x, h, p, H);
        snprintf(p, sizeof p, "layers.%d.ffn.fc1", k);
        const char *f = linear(x, b, p, true, H, 4 * H);
        /* GELU, erf form: 0.5 f (1 + erf(f / sqrt 2)) */
        f = CPHIL_ONNX_OP2(g, "Mul", CPHIL_ONNX_OP2(g, "Mul", f, half),
                           CPHIL_ONNX_OP2(g, "Add", one, CPHIL_ONNX_OP1(g, "Erf", CPHIL_ONNX_OP2(g, "Mul", f, rsqrt2))));
        snprintf(p, sizeof p, "layers.%d.ffn.fc2", k);
        h = CPHIL_ONNX_OP2(g, "Add", h, linear(x, f, p, true, 4 * H, H));
    }
    h = layernorm(x, h, "norm_f", H);
    return take(x, h, W - 1, 1);
}

cphil_status cphil_export_onnx(const cphil_model *m, const cphil_export_opts *opts, const char *path, int *n_nodes) {
    cphil_export_opts def = {CPHIL_EXPORT_F32, NULL, NULL, false};
    if (!opts) opts = &def;
    if ((unsigned)opts->quant > CPHIL_EXPORT_INT8_STATIC) return cphil_err(CPHIL_E_ARG, "export: bad quantization mode");
    if (m->cfg.heads == CPHIL_HEADS_AUTOREGRESSIVE && opts->quant != CPHIL_EXPORT_F32)
        return cphil_err(CPHIL_E_ARG, "%s: int8 ONNX export of autoregressive heads is not supported yet (not checked "
                         "against ONNX Runtime); export f32, or run int8 in cphil's engine (cphil quantize)", path);
    const cphil_model_config *c = &m->cfg;
    xb x = {0};
    x.m = m;
    x.o = opts;
    x.used = cphil_calloc((size_t)(m->n_tensors ? m->n_tensors : 1), sizeof(bool));
    if (!x.used) return cphil_err(CPHIL_E_NOMEM, "export: out of memory");
    cphil_status s = cphil_onnx_new("cphil_policy", 17, &x.g);
    if (s) {
        cphil_free(x.used);
        return s;
    }
    cphil_onnx *g = x.g;
    if (c->backbone == CPHIL_BACKBONE_LSTM && opts->quant == CPHIL_EXPORT_INT8_DYNAMIC) cphil_onnx_import_domain(g, "com.microsoft", 1);
    char cfg[2048];
    size_t cl = 0;
    if (cphil_model_config_to_json(c, cfg, sizeof cfg, &cl) == CPHIL_OK) cphil_onnx_add_meta(g, "cphil_config", cfg);
    cphil_onnx_add_meta(g, "quantization", opts->quant == CPHIL_EXPORT_F32 ? "none" : opts->quant == CPHIL_EXPORT_INT8_DYNAMIC ? "int8-dynamic" : "int8-static-qdq");
    cphil_onnx_set_doc(g, "cphil policy: state_sequence [batch, W, E] (dense embedding) -> logits of the last frame "
                          "(buttons 8 Bernoulli; main_x main_y c_x c_y 17 classes k/16; shoulder 5 classes k/4)");
    bool mlp = c->backbone == CPHIL_BACKBONE_MLP;
    const char *X = cphil_onnx_input(g, "state_sequence", 3,
                                     (cphil_onnx_dim[]){CPHIL_ONNX_SYM("batch"), mlp ? CPHIL_ONNX_SYM("window") : CPHIL_ONNX_FIX(c->window),
                                                        CPHIL_ONNX_FIX(c->E)});
    const char *feat = NULL;
    switch (c->backbone) {
    case CPHIL_BACKBONE_MLP: feat = bb_mlp(&x, X); break;
    case CPHIL_BACKBONE_LSTM: feat = bb_rnn(&x, X, true); break;
    case CPHIL_BACKBONE_GRU: feat = bb_rnn(&x, X, false); break;
    case CPHIL_BACKBONE_MAMBA: feat = bb_mamba(&x, X); break;
    case CPHIL_BACKBONE_ATTENTION: feat = bb_attention(&x, X); break;
    default: xerr(&x, cphil_err(CPHIL_E_UNSUPPORTED, "export: backbone %d", (int)c->backbone));
    }
    const int Hb = cphil_model_features(c);
    /* Autoregressive heads decode greedily inside the graph (as cphil predict and the engine's
     * default): head h adds (its earlier heads' choices as button bits and one-hot classes,
     * [batch, offset_h]) x ar.weight^T, f32 in every quantization (a gather of at most 12
     * columns); the choices are Greater(logits, 0) and ArgMax (the first on ties). */
    const bool ar = c->heads == CPHIL_HEADS_AUTOREGRESSIVE;
    const char *chosen[CPHIL_N_HEADS] = {NULL};
    for (int h = 0; h < CPHIL_N_HEADS && !x.err; h++) {
        char p[64];
        const int hh = cphil_head_hidden[h], C = cphil_head_classes[h];
        snprintf(p, sizeof p, "heads.%s.0", cphil_head_names[h]);
        const char *pre = linear(&x, feat, p, true, Hb, hh);
        if (ar && h > 0 && pre) {
            const int off = cphil_head_offset[h];
            const char *cv = chosen[0];
            if (h > 1) {
                const cphil_onnx_attr ax = CPHIL_ONNX_AI("axis", 1);
                cv = cphil_onnx_op(g, "Concat", h, chosen, 1, &ax);
            }
            snprintf(p, sizeof p, "heads.%s.ar.weight", cphil_head_names[h]);
            const float *A = TP(&x, p, (size_t)hh * off);
            float *at = A ? scratch(&x, (size_t)hh * off) : NULL;
            if (!at) break;
            for (int j = 0; j < hh; j++)
                for (int k = 0; k < off; k++) at[(size_t)k * hh + j] = A[(size_t)j * off + k];
            snprintf(p, sizeof p, "heads.%s.ar.weight.T", cphil_head_names[h]);
            const char *ai = cphil_onnx_init_f32(g, p, 2, (int64_t[]){off, hh}, at);
            pre = CPHIL_ONNX_OP2(g, "Add", pre, CPHIL_ONNX_OP2(g, "MatMul", cv, ai));
        }
        const char *a = CPHIL_ONNX_OP1(g, "Relu", pre);
        snprintf(p, sizeof p, "heads.%s.2", cphil_head_names[h]);
        const char *lg = linear(&x, a, p, true, hh, C);
        cphil_onnx_output(g, lg, cphil_head_names[h], 2,
                          (cphil_onnx_dim[]){CPHIL_ONNX_SYM("batch"), CPHIL_ONNX_FIX(C)});
        lg = cphil_head_names[h]; /* the output renamed its producer's value */
        if (ar && h + 1 < CPHIL_N_HEADS && !x.err) {
            const cphil_onnx_attr to_f = CPHIL_ONNX_AI("to", CPHIL_ONNX_FLOAT);
            const char *mask;
            if (h == 0) {
                mask = CPHIL_ONNX_OP2(g, "Greater", lg, cphil_onnx_scalar_f32(g, 0.0f));
            } else {
                const cphil_onnx_attr am_at[2] = {CPHIL_ONNX_AI("axis", 1), CPHIL_ONNX_AI("keepdims", 1)};
                const char *am = cphil_onnx_op(g, "ArgMax", 1, (const char *[]){lg}, 2, am_at);
                int64_t range[17];
                for (int k = 0; k < C; k++) range[k] = k;
                snprintf(p, sizeof p, "heads.%s.classes", cphil_head_names[h]);
                mask = CPHIL_ONNX_OP2(g, "Equal", am, cphil_onnx_init_i64(g, p, C, range));
            }
            chosen[h] = cphil_onnx_op(g, "Cast", 1, (const char *[]){mask}, 1, &to_f);
        }
    }
    for (int i = 0; i < m->n_tensors && !x.err; i++)
        if (!x.used[i])
            xerr(&x, cphil_err(CPHIL_E_INTERNAL, "export: tensor \"%s\" of the model is not used by the %s graph",
                               m->tensors[i].name, cphil_backbone_name(c->backbone)));
    s = x.err;
    if (!s) s = cphil_onnx_status(g);
    if (!s) s = cphil_onnx_write(g, path);
    if (!s && n_nodes) *n_nodes = cphil_onnx_node_count(g);
    cphil_onnx_free(g);
    cphil_free(x.used);
    cphil_free(x.tmp);
    return s;
}

int cphil_export_quant_points(const cphil_model *m, const char **names, int cap) {
    int n = 0;
    for (int i = 0; i < m->n_tensors; i++) {
        const cphil_tensor *t = &m->tensors[i];
        size_t l = strlen(t->name);
        /* Linears: 2-D ".weight" tensors, except the RNN matrices (weight-only int8 there). */
        if (t->ndim != 2 || l < 7 || strcmp(t->name + l - 7, ".weight") != 0) continue;
        if (n < cap) names[n] = t->name;
        n++;
    }
    return n;
}

cphil_status cphil_export_npz(const cphil_model *m, const char *path) {
    cphil_npz_writer *w = NULL;
    cphil_status s = cphil_npz_writer_open(path, &w);
    if (s) return s;
    for (int i = 0; i < m->n_tensors && !s; i++) {
        const cphil_tensor *t = &m->tensors[i];
        int64_t shape[CPHIL_TENSOR_MAX_DIMS];
        for (int d = 0; d < t->ndim; d++) shape[d] = t->shape[d];
        s = cphil_npz_writer_add(w, t->name, CPHIL_DT_F32, t->ndim, shape, m->params + t->offset);
    }
    char cfg[2048];
    size_t cl;
    if (!s) s = cphil_model_config_to_json(&m->cfg, cfg, sizeof cfg, &cl);
    if (!s) s = cphil_npz_writer_add_string(w, "config", cfg);
    if (s) {
        cphil_npz_writer_abort(w);
        return s;
    }
    return cphil_npz_writer_close(w);
}
