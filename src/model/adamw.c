/* adamw.c — AdamW (Loshchilov & Hutter 2019) with global gradient-norm clipping and the learning
 * rate schedules, as single loops over the parameter block (gradients and moments share the
 * tensor table's layout). Matches torch.optim.AdamW (single-tensor path) after
 * torch.nn.utils.clip_grad_norm_: decoupled decay p *= 1 - lr*wd, then
 * p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps).
 * Not here: per-tensor decay groups (decay applies to every parameter, as AdamW(model.parameters())
 * does), gradient accumulation (the trainer sums into the same grads block). */
#include "model/model.h"
#include "core/core.h"

#include <math.h>
#include <string.h>

void cphil_adamw_config_default(cphil_adamw_config *c) {
    memset(c, 0, sizeof *c);
    c->lr = 1e-4f;
    c->beta1 = 0.9f;
    c->beta2 = 0.999f;
    c->eps = 1e-8f;
    c->weight_decay = 1e-5f;
    c->max_grad_norm = 1.0f;
    c->schedule = CPHIL_SCHED_CONSTANT;
}

float cphil_lr_at(const cphil_adamw_config *c, long s) {
    if (c->schedule == CPHIL_SCHED_CONSTANT) return c->lr;
    if (s < c->warmup_steps) return c->lr * (float)(s + 1) / (float)c->warmup_steps;
    long span = c->total_steps - c->warmup_steps;
    double p = span > 0 ? (double)(s - c->warmup_steps) / (double)span : 1.0;
    if (p > 1.0) p = 1.0;
    return (float)(c->min_lr + (c->lr - c->min_lr) * 0.5 * (1.0 + cos(M_PI * p)));
}

cphil_status cphil_adamw_init(cphil_adamw *opt, const cphil_adamw_config *cfg, size_t n) {
    memset(opt, 0, sizeof *opt);
    if (!(cfg->lr >= 0) || !(cfg->beta1 >= 0 && cfg->beta1 < 1) || !(cfg->beta2 >= 0 && cfg->beta2 < 1) ||
        !(cfg->eps > 0) || (cfg->schedule == CPHIL_SCHED_WARMUP_COSINE && cfg->warmup_steps < 0))
        return cphil_err(CPHIL_E_ARG, "adamw: bad hyper-parameters (lr %g, betas %g %g, eps %g)",
                         (double)cfg->lr, (double)cfg->beta1, (double)cfg->beta2, (double)cfg->eps);
    opt->cfg = *cfg;
    opt->n = n;
    opt->m = cphil_calloc(n ? n : 1, sizeof(float));
    opt->v = cphil_calloc(n ? n : 1, sizeof(float));
    if (!opt->m || !opt->v) {
        cphil_adamw_free(opt);
        return cphil_err(CPHIL_E_NOMEM, "adamw: cannot allocate moments for %zu parameters", n);
    }
    return CPHIL_OK;
}

void cphil_adamw_free(cphil_adamw *opt) {
    if (!opt) return;
    cphil_free(opt->m);
    cphil_free(opt->v);
    memset(opt, 0, sizeof *opt);
}

float cphil_adamw_step(cphil_adamw *opt, float *params, float *grads) {
    const cphil_adamw_config *c = &opt->cfg;
    double ss = 0;
    for (size_t i = 0; i < opt->n; i++) ss += (double)grads[i] * grads[i];
    double norm = sqrt(ss);
    if (!isfinite(norm)) return (float)norm;
    if (c->max_grad_norm > 0) {
        double coef = (double)c->max_grad_norm / (norm + 1e-6);
        if (coef < 1.0) {
            float cf = (float)coef;
            for (size_t i = 0; i < opt->n; i++) grads[i] *= cf;
        }
    }
    const float lr = cphil_lr_at(c, opt->step);
    opt->step++;
    const double bc1 = 1.0 - pow((double)c->beta1, (double)opt->step);
    const double bc2 = 1.0 - pow((double)c->beta2, (double)opt->step);
    const float step_size = (float)(lr / bc1), bc2s = (float)sqrt(bc2);
    const float decay = 1.0f - lr * c->weight_decay, b1 = c->beta1, b2 = c->beta2;
    float *m = opt->m, *v = opt->v;
    for (size_t i = 0; i < opt->n; i++) {
        float g = grads[i];
        params[i] *= decay;
        m[i] = b1 * m[i] + (1.0f - b1) * g;
        v[i] = b2 * v[i] + (1.0f - b2) * g * g;
        params[i] -= step_size * m[i] / (sqrtf(v[i]) / bc2s + c->eps);
    }
    return (float)norm;
}
