/* infer_ref.h — a deliberately naive reference forward of a policy for the engine's tests:
 * dense one-hot input (the ONNX form), double precision, PyTorch semantics written out loop by
 * loop, whole sequence from a zero state, last position's 81 logits. Independent of src/infer's
 * code paths (it reads the tensors by name from the same lookup).
 */
#ifndef CPHIL_INFER_REF_H
#define CPHIL_INFER_REF_H

#include "infer/infer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#pragma GCC diagnostic ignored "-Wformat-nonliteral"

static const float *ref_t(cphil_infer_lookup lk, void *ctx, const char *fmt, int l) {
    char name[128];
    snprintf(name, sizeof name, fmt, l);
    cphil_infer_tensor t;
    if (lk(ctx, name, &t) != CPHIL_OK) {
        fprintf(stderr, "ref: missing %s\n", name);
        abort();
    }
    return t.data;
}

/* y[r] = b[r] + sum_k W[r][k] x[k] */
static void ref_lin(const float *W, const float *b, const double *x, double *y, int rows, int cols) {
    for (int r = 0; r < rows; r++) {
        double a = b ? b[r] : 0.0;
        for (int k = 0; k < cols; k++) a += (double)W[(size_t)r * cols + k] * x[k];
        y[r] = a;
    }
}
static double ref_sig(double x) { return 1.0 / (1.0 + exp(-x)); }

static void ref_norm(const double *x, const float *w, const float *b, double *y, int n, int rms, double eps) {
    double mu = 0, v = 0;
    if (!rms) {
        for (int i = 0; i < n; i++) mu += x[i];
        mu /= n;
    }
    for (int i = 0; i < n; i++) v += (x[i] - mu) * (x[i] - mu);
    v /= n;
    for (int i = 0; i < n; i++) y[i] = (x[i] - mu) / sqrt(v + eps) * w[i] + (b ? b[i] : 0.0);
}

/* frames: cont[T][n_cont], ids[T][n_ids]; out logits[81] of position T-1. band > 0: attention
 * sees only the last `band` positions (itself included) at every layer, the stream engine's
 * key/value ring of W entries run over a whole history; 0: full causal attention. */
static void ref_forward_band(const cphil_infer_spec *sp, cphil_infer_lookup lk, void *ctx, int T, const float *cont,
                             const int32_t *ids, int band, float *logits) {
    const int H = sp->hidden, L = sp->layers, E = sp->E;
    int H0 = sp->backbone == CPHIL_BACKBONE_MLP ? sp->mlp[0] : H;
    int Hb = sp->backbone == CPHIL_BACKBONE_MLP ? sp->mlp[sp->n_mlp - 1] : H;
    int big = 8 * (H > 64 ? H : 64) + 4 * sp->expand * H + 1024;
    if (sp->backbone == CPHIL_BACKBONE_MLP)
        for (int i = 0; i < sp->n_mlp; i++) big = big > sp->mlp[i] ? big : sp->mlp[i] + 64;
    double *X = calloc((size_t)T * big, sizeof(double)); /* per-position activations */
    double *Y = calloc((size_t)T * big, sizeof(double));
    double *dense = calloc((size_t)E, sizeof(double));
    double *t1 = calloc((size_t)big * 4, sizeof(double)), *t2 = calloc((size_t)big * 4, sizeof(double));
    const float *Wi = ref_t(lk, ctx, "input_proj.weight", 0), *bi = ref_t(lk, ctx, "input_proj.bias", 0);
    for (int t = 0; t < T; t++) {
        memset(dense, 0, sizeof(double) * E);
        for (int c = 0; c < sp->n_cont; c++) dense[c] = cont[t * sp->n_cont + c];
        for (int k = 0; k < sp->n_ids; k++) dense[ids[t * sp->n_ids + k]] += 1.0;
        ref_lin(Wi, bi, dense, X + (size_t)t * big, H0, E);
    }
    double eps = sp->norm_eps > 0 ? sp->norm_eps : 1e-5;
    double *feat = calloc((size_t)big, sizeof(double));
    if (sp->backbone == CPHIL_BACKBONE_MLP) {
        double *x = X + (size_t)(T - 1) * big;
        for (int i = 0; i < H0; i++) x[i] = x[i] > 0 ? x[i] : 0;
        int w = H0;
        for (int i = 1; i < sp->n_mlp; i++) {
            ref_lin(ref_t(lk, ctx, "mlp.%d.weight", i - 1), ref_t(lk, ctx, "mlp.%d.bias", i - 1), x, t1, sp->mlp[i], w);
            for (int j = 0; j < sp->mlp[i]; j++) x[j] = t1[j] > 0 ? t1[j] : 0;
            w = sp->mlp[i];
        }
        memcpy(feat, x, sizeof(double) * Hb);
    } else if (sp->backbone == CPHIL_BACKBONE_LSTM || sp->backbone == CPHIL_BACKBONE_GRU) {
        int lstm = sp->backbone == CPHIL_BACKBONE_LSTM, G = lstm ? 4 : 3;
        const char *nm = lstm ? "lstm" : "gru";
        char f[64];
        for (int l = 0; l < L; l++) {
            snprintf(f, sizeof f, "%s.weight_ih_l%%d", nm);
            const float *wih = ref_t(lk, ctx, f, l);
            snprintf(f, sizeof f, "%s.weight_hh_l%%d", nm);
            const float *whh = ref_t(lk, ctx, f, l);
            snprintf(f, sizeof f, "%s.bias_ih_l%%d", nm);
            const float *bih = ref_t(lk, ctx, f, l);
            snprintf(f, sizeof f, "%s.bias_hh_l%%d", nm);
            const float *bhh = ref_t(lk, ctx, f, l);
            double h[4096] = {0}, c[4096] = {0};
            for (int t = 0; t < T; t++) {
                ref_lin(wih, bih, X + (size_t)t * big, t1, G * H, H);
                ref_lin(whh, bhh, h, t2, G * H, H);
                for (int j = 0; j < H; j++) {
                    if (lstm) {
                        double i_ = ref_sig(t1[j] + t2[j]), f_ = ref_sig(t1[H + j] + t2[H + j]);
                        double g_ = tanh(t1[2 * H + j] + t2[2 * H + j]), o_ = ref_sig(t1[3 * H + j] + t2[3 * H + j]);
                        c[j] = f_ * c[j] + i_ * g_;
                        h[j] = o_ * tanh(c[j]);
                    } else {
                        double r_ = ref_sig(t1[j] + t2[j]), z_ = ref_sig(t1[H + j] + t2[H + j]);
                        double n_ = tanh(t1[2 * H + j] + r_ * t2[2 * H + j]);
                        h[j] = (1 - z_) * n_ + z_ * h[j];
                    }
                }
                memcpy(Y + (size_t)t * big, h, sizeof(double) * H);
            }
            double *sw = X; X = Y; Y = sw;
        }
        memcpy(feat, X + (size_t)(T - 1) * big, sizeof(double) * H);
    } else if (sp->backbone == CPHIL_BACKBONE_MAMBA) {
        int I = sp->expand * H, R = (H + 15) / 16, N = sp->state, K = sp->conv;
        double *xz = calloc((size_t)T * 2 * I, sizeof(double)), *xc = calloc((size_t)T * I, sizeof(double));
        double *hs = calloc((size_t)I * N, sizeof(double)), *dbl = calloc((size_t)R + 2 * N, sizeof(double));
        double *dt = calloc((size_t)I, sizeof(double)), *y = calloc((size_t)I, sizeof(double));
        for (int l = 0; l < L; l++) {
            const float *nw = ref_t(lk, ctx, "layers.%d.norm.weight", l);
            const float *inw = ref_t(lk, ctx, "layers.%d.mixer.in_proj.weight", l);
            const float *cw = ref_t(lk, ctx, "layers.%d.mixer.conv1d.weight", l);
            const float *cb = ref_t(lk, ctx, "layers.%d.mixer.conv1d.bias", l);
            const float *xw = ref_t(lk, ctx, "layers.%d.mixer.x_proj.weight", l);
            const float *dw = ref_t(lk, ctx, "layers.%d.mixer.dt_proj.weight", l);
            const float *db = ref_t(lk, ctx, "layers.%d.mixer.dt_proj.bias", l);
            const float *al = ref_t(lk, ctx, "layers.%d.mixer.A_log", l);
            const float *D = ref_t(lk, ctx, "layers.%d.mixer.D", l);
            const float *ow = ref_t(lk, ctx, "layers.%d.mixer.out_proj.weight", l);
            for (int t = 0; t < T; t++) {
                ref_norm(X + (size_t)t * big, nw, NULL, t1, H, 1, eps);
                ref_lin(inw, NULL, t1, xz + (size_t)t * 2 * I, 2 * I, H);
            }
            for (int t = 0; t < T; t++)
                for (int i = 0; i < I; i++) {
                    double a = cb[i];
                    for (int j = 0; j < K; j++) {
                        int tt = t - (K - 1) + j;
                        if (tt >= 0) a += cw[i * K + j] * xz[(size_t)tt * 2 * I + i];
                    }
                    xc[(size_t)t * I + i] = a * ref_sig(a);
                }
            memset(hs, 0, sizeof(double) * I * N);
            for (int t = 0; t < T; t++) {
                double *u = xc + (size_t)t * I;
                ref_lin(xw, NULL, u, dbl, R + 2 * N, I);
                ref_lin(dw, db, dbl, dt, I, R);
                for (int i = 0; i < I; i++) dt[i] = dt[i] > 20 ? dt[i] : log1p(exp(dt[i]));
                for (int i = 0; i < I; i++) {
                    double acc = 0;
                    for (int n = 0; n < N; n++) {
                        double A = -exp((double)al[i * N + n]);
                        hs[i * N + n] = exp(dt[i] * A) * hs[i * N + n] + dt[i] * dbl[R + n] * u[i];
                        acc += hs[i * N + n] * dbl[R + N + n];
                    }
                    double z = xz[(size_t)t * 2 * I + I + i];
                    y[i] = (acc + D[i] * u[i]) * z * ref_sig(z);
                }
                ref_lin(ow, NULL, y, t2, H, I);
                for (int j = 0; j < H; j++) X[(size_t)t * big + j] += t2[j];
            }
        }
        ref_norm(X + (size_t)(T - 1) * big, ref_t(lk, ctx, "norm_f.weight", 0), NULL, feat, H, 1, eps);
        free(xz); free(xc); free(hs); free(dbl); free(dt); free(y);
    } else {
        int nh = sp->heads, dh = H / nh;
        double base = sp->rope_base > 0 ? sp->rope_base : 10000.0;
        double *qkv = calloc((size_t)T * 3 * H, sizeof(double)), *o = calloc((size_t)H, sizeof(double));
        double *sc = calloc((size_t)T, sizeof(double));
        for (int l = 0; l < L; l++) {
            for (int t = 0; t < T; t++) {
                ref_norm(X + (size_t)t * big, ref_t(lk, ctx, "layers.%d.ln1.weight", l), ref_t(lk, ctx, "layers.%d.ln1.bias", l), t1, H, 0, eps);
                ref_lin(ref_t(lk, ctx, "layers.%d.attn.qkv.weight", l), ref_t(lk, ctx, "layers.%d.attn.qkv.bias", l), t1,
                        qkv + (size_t)t * 3 * H, 3 * H, H);
                for (int part = 0; part < 2; part++)
                    for (int hd = 0; hd < nh; hd++) {
                        double *p = qkv + (size_t)t * 3 * H + part * H + hd * dh;
                        for (int i = 0; i < dh / 2; i++) {
                            double th = t * pow(base, -2.0 * i / dh), a = p[i], b = p[i + dh / 2];
                            p[i] = a * cos(th) - b * sin(th);
                            p[i + dh / 2] = a * sin(th) + b * cos(th);
                        }
                    }
            }
            for (int t = 0; t < T; t++) {
                for (int hd = 0; hd < nh; hd++) {
                    double mx = -1e300, sum = 0;
                    const int j0 = band > 0 && t - band + 1 > 0 ? t - band + 1 : 0;
                    for (int j = j0; j <= t; j++) {
                        double d = 0;
                        for (int i = 0; i < dh; i++) d += qkv[(size_t)t * 3 * H + hd * dh + i] * qkv[(size_t)j * 3 * H + H + hd * dh + i];
                        sc[j] = d / sqrt((double)dh);
                        mx = sc[j] > mx ? sc[j] : mx;
                    }
                    for (int j = j0; j <= t; j++) sum += (sc[j] = exp(sc[j] - mx));
                    for (int i = 0; i < dh; i++) {
                        double a = 0;
                        for (int j = j0; j <= t; j++) a += sc[j] / sum * qkv[(size_t)j * 3 * H + 2 * H + hd * dh + i];
                        o[hd * dh + i] = a;
                    }
                }
                double *x = X + (size_t)t * big;
                ref_lin(ref_t(lk, ctx, "layers.%d.attn.out.weight", l), ref_t(lk, ctx, "layers.%d.attn.out.bias", l), o, t2, H, H);
                for (int j = 0; j < H; j++) x[j] += t2[j];
                ref_norm(x, ref_t(lk, ctx, "layers.%d.ln2.weight", l), ref_t(lk, ctx, "layers.%d.ln2.bias", l), t1, H, 0, eps);
                ref_lin(ref_t(lk, ctx, "layers.%d.ffn.fc1.weight", l), ref_t(lk, ctx, "layers.%d.ffn.fc1.bias", l), t1, t2, 4 * H, H);
                for (int j = 0; j < 4 * H; j++) t2[j] = 0.5 * t2[j] * (1 + erf(t2[j] / sqrt(2.0)));
                ref_lin(ref_t(lk, ctx, "layers.%d.ffn.fc2.weight", l), ref_t(lk, ctx, "layers.%d.ffn.fc2.bias", l), t2, t1, H, 4 * H);
                for (int j = 0; j < H; j++) x[j] += t1[j];
            }
        }
        ref_norm(X + (size_t)(T - 1) * big, ref_t(lk, ctx, "norm_f.weight", 0), ref_t(lk, ctx, "norm_f.bias", 0), feat, H, 0, eps);
        free(qkv); free(o); free(sc);
    }
    /* heads */
    for (int h = 0; h < INFER_N_HEADS; h++) {
        char f[96];
        snprintf(f, sizeof f, "heads.%s.0.weight", cphil_head_names[h]);
        const float *w0 = ref_t(lk, ctx, f, 0);
        snprintf(f, sizeof f, "heads.%s.0.bias", cphil_head_names[h]);
        const float *b0 = ref_t(lk, ctx, f, 0);
        snprintf(f, sizeof f, "heads.%s.2.weight", cphil_head_names[h]);
        const float *w2 = ref_t(lk, ctx, f, 0);
        snprintf(f, sizeof f, "heads.%s.2.bias", cphil_head_names[h]);
        const float *b2 = ref_t(lk, ctx, f, 0);
        ref_lin(w0, b0, feat, t1, cphil_head_hidden[h], Hb);
        for (int j = 0; j < cphil_head_hidden[h]; j++) t1[j] = t1[j] > 0 ? t1[j] : 0;
        ref_lin(w2, b2, t1, t2, cphil_head_classes[h], cphil_head_hidden[h]);
        for (int j = 0; j < cphil_head_classes[h]; j++) logits[cphil_head_offset[h] + j] = (float)t2[j];
    }
    free(X); free(Y); free(dense); free(t1); free(t2); free(feat);
}

static void ref_forward(const cphil_infer_spec *sp, cphil_infer_lookup lk, void *ctx, int T, const float *cont,
                        const int32_t *ids, float *logits) {
    ref_forward_band(sp, lk, ctx, T, cont, ids, 0, logits);
}

#endif
