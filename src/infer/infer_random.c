/* infer_random.c — random policies for `cphil bench` and the engine's tests: the model's tensor
 * table (src/model, built from the spec) filled from a seed with PyTorch-like values (uniform
 * +-1/sqrt(fan_in); norm weights 1 +- 0.1 and norm biases +-0.05 so the engine's norms are
 * exercised; Mamba A_log = log(1..N), D = 1).
 * Does not: keep a second list of tensor names (the table is src/model's); replace
 * cphil_model_init_params (the training initialisation).
 */
#include "infer/infer.h"

#include <math.h>
#include <string.h>

struct cphil_infer_random {
    cphil_model m;
};

static uint64_t splitmix(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static bool ends_with(const char *s, const char *suf) {
    size_t n = strlen(s), m = strlen(suf);
    return n >= m && !strcmp(s + n - m, suf);
}

cphil_status cphil_infer_random_open(const cphil_infer_spec *sp, uint64_t seed, cphil_infer_random **out) {
    *out = NULL;
    cphil_model_config c;
    cphil_model_config_default(&c, sp->backbone);
    c.n_cont = sp->n_cont;
    c.n_ids = sp->n_ids;
    c.E = sp->E;
    c.hidden = sp->hidden;
    c.num_layers = sp->layers;
    c.window = sp->window;
    c.state_size = sp->state;
    c.expand = sp->expand;
    c.conv_size = sp->conv;
    c.num_heads = sp->heads;
    c.precision = CPHIL_PREC_F32;
    c.n_mlp = sp->n_mlp < CPHIL_MAX_MLP_LAYERS ? sp->n_mlp : CPHIL_MAX_MLP_LAYERS;
    for (int i = 0; i < c.n_mlp; i++) c.mlp_hidden[i] = sp->mlp[i];
    cphil_infer_random *r = cphil_calloc(1, sizeof *r);
    if (!r) return cphil_err(CPHIL_E_NOMEM, "out of memory");
    cphil_status s = cphil_model_init(&r->m, &c);
    if (s) {
        cphil_free(r);
        return cphil_err_prefix(s, "random policy: ");
    }
    uint64_t st = seed * 0x2545F4914F6CDD1Dull + 1;
    for (int i = 0; i < r->m.n_tensors; i++) {
        const cphil_tensor *t = &r->m.tensors[i];
        const char *nm = t->name;
        float *d = r->m.params + t->offset;
        float bound = t->init_fan > 0 ? 1.f / sqrtf((float)t->init_fan) : 0.1f;
        bool norm = strstr(nm, "norm") || strstr(nm, "ln");
        bool is_norm_w = norm && ends_with(nm, ".weight"), is_norm_b = norm && ends_with(nm, ".bias");
        for (size_t k = 0; k < t->numel; k++) {
            float u = (float)((splitmix(&st) >> 11) * (1.0 / 9007199254740992.0)) * 2.f - 1.f;
            float v = u * bound;
            if (is_norm_w) v = 1.f + 0.1f * u;
            else if (is_norm_b) v = 0.05f * u;
            else if (ends_with(nm, "A_log")) v = logf((float)(k % (size_t)t->shape[1] + 1));
            else if (ends_with(nm, ".D")) v = 1.f;
            else if (ends_with(nm, "dt_proj.bias")) v = logf(expm1f(0.001f + 0.05f * (u + 1.f)));
            d[k] = v;
        }
    }
    *out = r;
    return CPHIL_OK;
}

void cphil_infer_random_close(cphil_infer_random *r) {
    if (!r) return;
    cphil_model_free(&r->m);
    cphil_free(r);
}

cphil_status cphil_infer_random_lookup(void *ctx, const char *name, cphil_infer_tensor *out) {
    cphil_infer_random *r = ctx;
    return cphil_infer_model_lookup(&r->m, name, out);
}

int cphil_infer_random_count(const cphil_infer_random *r) { return r->m.n_tensors; }

const char *cphil_infer_random_name(const cphil_infer_random *r, int i, int *rank, int64_t *shape) {
    if (i < 0 || i >= r->m.n_tensors) return NULL;
    const cphil_tensor *t = &r->m.tensors[i];
    if (rank) *rank = t->ndim;
    if (shape)
        for (int k = 0; k < 4; k++) shape[k] = k < t->ndim ? t->shape[k] : 0;
    return t->name;
}

float *cphil_infer_random_data(cphil_infer_random *r, int i) {
    return i >= 0 && i < r->m.n_tensors ? r->m.params + r->m.tensors[i].offset : NULL;
}

#include "infer/infer_testing.h"

cphil_status cphil_write_test_policy(const char *path, const cphil_test_policy_opts *o) {
    cphil_backbone bb;
    cphil_status s = cphil_backbone_parse(o->backbone, &bb);
    if (s) return s;
    cphil_model_config c;
    cphil_model_config_default(&c, bb);
    c.n_cont = o->n_cont;
    c.n_ids = o->n_ids;
    c.E = o->E;
    c.layout_hash = o->layout_hash;
    if (o->hidden) c.hidden = o->hidden;
    if (o->layers) c.num_layers = o->layers;
    if (o->window) c.window = o->window;
    if (o->state) c.state_size = o->state;
    if (o->conv) c.conv_size = o->conv;
    if (o->heads) c.num_heads = o->heads;
    if (o->mlp0) {
        c.n_mlp = o->mlp1 ? 2 : 1;
        c.mlp_hidden[0] = o->mlp0;
        c.mlp_hidden[1] = o->mlp1;
    }
    cphil_model m;
    if ((s = cphil_model_init(&m, &c))) return s;
    cphil_model_init_params(&m, o->seed);
    s = cphil_policy_save(&m, path);
    cphil_model_free(&m);
    return s;
}
