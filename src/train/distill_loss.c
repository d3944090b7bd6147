/* distill_loss.c — forward and backward of the distillation loss (formulas in distill_loss.h).
 * Computed in double per frame; gradients written as float. */
#include "train/distill_loss.h"

#include <math.h>

static double softplus(double x) { return x > 0 ? x + log1p(exp(-x)) : log1p(exp(x)); }
static double sigm(double x) { return x >= 0 ? 1 / (1 + exp(-x)) : exp(x) / (1 + exp(x)); }
static double xlogx(double x) { return x > 0 ? x * log(x) : 0; }

void cphil_soft_probs(const float *z, double T, float *p) {
    for (int k = 0; k < CPHIL_N_BUTTONS; k++) p[k] = (float)sigm((double)z[k] / T);
    for (int h = 0; h < CPHIL_N_CAT; h++) {
        int o = cphil_head_offset[1 + h], C = cphil_head_classes[1 + h];
        double mx = z[o];
        for (int k = 1; k < C; k++) mx = fmax(mx, (double)z[o + k]);
        double se = 0;
        for (int k = 0; k < C; k++) se += exp(((double)z[o + k] - mx) / T);
        for (int k = 0; k < C; k++) p[o + k] = (float)(exp(((double)z[o + k] - mx) / T) / se);
    }
}

void cphil_distill_loss(const float *z, const float *p, const uint8_t *btn, const uint8_t *cls, size_t n,
                        double T, double alpha, float *dz, cphil_distill_terms *out) {
    double soft = 0, hard = 0;
    double inv_n = n ? 1.0 / (double)n : 0;
    double ws = alpha * T * T, wh = 1 - alpha;
    for (size_t t = 0; t < n; t++) {
        const float *zt = z + t * CPHIL_N_LOGITS, *pt = p + t * CPHIL_N_LOGITS;
        float *dzt = dz ? dz + t * CPHIL_N_LOGITS : NULL;
        for (int k = 0; k < CPHIL_N_BUTTONS; k++) {
            double x = zt[k], pk = pt[k], y = btn[t * CPHIL_N_BUTTONS + k] != 0;
            /* KL_Bern(p || q), q = sigmoid(x/T): log q = -softplus(-x/T), log(1-q) = -softplus(x/T) */
            double kl = xlogx(pk) + xlogx(1 - pk) + pk * softplus(-x / T) + (1 - pk) * softplus(x / T);
            double bce = y ? softplus(-x) : softplus(x);
            soft += kl;
            hard += bce;
            if (dzt) dzt[k] = (float)(inv_n * (ws * (sigm(x / T) - pk) / T + wh * (sigm(x) - y)));
        }
        for (int h = 0; h < CPHIL_N_CAT; h++) {
            int o = cphil_head_offset[1 + h], C = cphil_head_classes[1 + h];
            int y = cls[t * CPHIL_N_CAT + h] < C ? cls[t * CPHIL_N_CAT + h] : C - 1;
            double mx = zt[o];
            for (int k = 1; k < C; k++) mx = fmax(mx, (double)zt[o + k]);
            double seT = 0, se1 = 0;
            for (int k = 0; k < C; k++) {
                seT += exp(((double)zt[o + k] - mx) / T);
                se1 += exp((double)zt[o + k] - mx);
            }
            double lseT = mx / T + log(seT), lse1 = mx + log(se1);
            double kl = 0;
            for (int k = 0; k < C; k++) {
                double pk = pt[o + k];
                kl += xlogx(pk) - pk * ((double)zt[o + k] / T - lseT);
            }
            soft += kl;
            hard += lse1 - (double)zt[o + y];
            if (dzt)
                for (int k = 0; k < C; k++) {
                    double qT = exp((double)zt[o + k] / T - lseT), q1 = exp((double)zt[o + k] - lse1);
                    dzt[o + k] = (float)(inv_n * (ws * (qT - (double)pt[o + k]) / T + wh * (q1 - (k == y))));
                }
        }
    }
    out->soft = soft * inv_n;
    out->hard = hard * inv_n;
    out->loss = ws * out->soft + wh * out->hard;
}
