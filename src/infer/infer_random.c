/* infer_random.c — random policies for `cphil bench` and the engine's tests: every tensor the
 * engine reads for a spec, filled with PyTorch-like default initialization (uniform
 * +-1/sqrt(fan_in); norms 1, norm biases 0; Mamba A_log = log(1..N), D = 1), from a seed.
 * Does not: replace the model's tensor table (src/model) for training or files; the names here
 * are the documented ones (docs/interfaces.md) so a table-built policy loads the same way.
 */
#include "infer/infer.h"

#include <math.h>
#include <string.h>

#define MAXT 256

struct cphil_infer_random {
    int n;
    char names[MAXT][96];
    int rank[MAXT];
    int64_t shape[MAXT][4];
    float *data[MAXT];
};

static void add(cphil_infer_random *r, const char *name, int rank, int64_t a, int64_t b, int64_t c) {
    if (r->n >= MAXT) return;
    snprintf(r->names[r->n], sizeof r->names[0], "%s", name);
    r->rank[r->n] = rank;
    r->shape[r->n][0] = a;
    r->shape[r->n][1] = b;
    r->shape[r->n][2] = c;
    r->n++;
}

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
    cphil_infer_random *r = cphil_calloc(1, sizeof *r);
    if (!r) return cphil_err(CPHIL_E_NOMEM, "out of memory");
    char b[96];
    const int H = sp->hidden, L = sp->layers;
    int H0 = sp->backbone == CPHIL_BACKBONE_MLP ? sp->mlp[0] : H;
    int Hb = sp->backbone == CPHIL_BACKBONE_MLP ? sp->mlp[sp->n_mlp - 1] : H;
    add(r, "input_proj.weight", 2, H0, sp->E, 0);
    add(r, "input_proj.bias", 1, H0, 0, 0);
    switch (sp->backbone) {
    case CPHIL_BACKBONE_MLP:
        for (int i = 1; i < sp->n_mlp; i++) {
            snprintf(b, sizeof b, "mlp.%d.weight", i - 1);
            add(r, b, 2, sp->mlp[i], sp->mlp[i - 1], 0);
            snprintf(b, sizeof b, "mlp.%d.bias", i - 1);
            add(r, b, 1, sp->mlp[i], 0, 0);
        }
        break;
    case CPHIL_BACKBONE_LSTM:
    case CPHIL_BACKBONE_GRU: {
        const char *nm = sp->backbone == CPHIL_BACKBONE_LSTM ? "lstm" : "gru";
        int G = sp->backbone == CPHIL_BACKBONE_LSTM ? 4 : 3;
        for (int l = 0; l < L; l++) {
            snprintf(b, sizeof b, "%s.weight_ih_l%d", nm, l);
            add(r, b, 2, G * H, H, 0);
            snprintf(b, sizeof b, "%s.weight_hh_l%d", nm, l);
            add(r, b, 2, G * H, H, 0);
            snprintf(b, sizeof b, "%s.bias_ih_l%d", nm, l);
            add(r, b, 1, G * H, 0, 0);
            snprintf(b, sizeof b, "%s.bias_hh_l%d", nm, l);
            add(r, b, 1, G * H, 0, 0);
        }
        break;
    }
    case CPHIL_BACKBONE_MAMBA: {
        int I = sp->expand * H, R = (H + 15) / 16, N = sp->state, K = sp->conv;
        for (int l = 0; l < L; l++) {
#define A1(fmt, n) snprintf(b, sizeof b, fmt, l), add(r, b, 1, n, 0, 0)
#define A2(fmt, x, y) snprintf(b, sizeof b, fmt, l), add(r, b, 2, x, y, 0)
            A1("layers.%d.norm.weight", H);
            A2("layers.%d.mixer.in_proj.weight", 2 * I, H);
            snprintf(b, sizeof b, "layers.%d.mixer.conv1d.weight", l);
            add(r, b, 3, I, 1, K);
            A1("layers.%d.mixer.conv1d.bias", I);
            A2("layers.%d.mixer.x_proj.weight", R + 2 * N, I);
            A2("layers.%d.mixer.dt_proj.weight", I, R);
            A1("layers.%d.mixer.dt_proj.bias", I);
            A2("layers.%d.mixer.A_log", I, N);
            A1("layers.%d.mixer.D", I);
            A2("layers.%d.mixer.out_proj.weight", H, I);
        }
        add(r, "norm_f.weight", 1, H, 0, 0);
        break;
    }
    case CPHIL_BACKBONE_ATTENTION:
        for (int l = 0; l < L; l++) {
            A1("layers.%d.ln1.weight", H);
            A1("layers.%d.ln1.bias", H);
            A2("layers.%d.attn.qkv.weight", 3 * H, H);
            A1("layers.%d.attn.qkv.bias", 3 * H);
            A2("layers.%d.attn.out.weight", H, H);
            A1("layers.%d.attn.out.bias", H);
            A1("layers.%d.ln2.weight", H);
            A1("layers.%d.ln2.bias", H);
            A2("layers.%d.ffn.fc1.weight", 4 * H, H);
            A1("layers.%d.ffn.fc1.bias", 4 * H);
            A2("layers.%d.ffn.fc2.weight", H, 4 * H);
            A1("layers.%d.ffn.fc2.bias", H);
#undef A1
#undef A2
        }
        add(r, "norm_f.weight", 1, H, 0, 0);
        add(r, "norm_f.bias", 1, H, 0, 0);
        break;
    default: break;
    }
    for (int h = 0; h < INFER_N_HEADS; h++) {
        snprintf(b, sizeof b, "heads.%s.0.weight", cphil_head_names[h]);
        add(r, b, 2, cphil_head_hidden[h], Hb, 0);
        snprintf(b, sizeof b, "heads.%s.0.bias", cphil_head_names[h]);
        add(r, b, 1, cphil_head_hidden[h], 0, 0);
        snprintf(b, sizeof b, "heads.%s.2.weight", cphil_head_names[h]);
        add(r, b, 2, cphil_head_classes[h], cphil_head_hidden[h], 0);
        snprintf(b, sizeof b, "heads.%s.2.bias", cphil_head_names[h]);
        add(r, b, 1, cphil_head_classes[h], 0, 0);
    }
    uint64_t st = seed * 0x2545F4914F6CDD1Dull + 1;
    for (int i = 0; i < r->n; i++) {
        int64_t n = 1;
        for (int k = 0; k < r->rank[i]; k++) n *= r->shape[i][k];
        r->data[i] = cphil_alloc(sizeof(float) * (size_t)n);
        if (!r->data[i]) {
            cphil_infer_random_close(r);
            return cphil_err(CPHIL_E_NOMEM, "out of memory for a random policy");
        }
        const char *nm = r->names[i];
        int64_t fan_in = r->rank[i] >= 2 ? r->shape[i][1] * (r->rank[i] == 3 ? r->shape[i][2] : 1) : 0;
        /* biases take the fan-in of their weight: the previous tensor of the same layer */
        if (r->rank[i] == 1 && i > 0 && r->rank[i - 1] >= 2) fan_in = r->shape[i - 1][1];
        if (r->rank[i] == 1 && i > 1 && r->rank[i - 1] == 1 && r->rank[i - 2] >= 2) fan_in = r->shape[i - 2][1];
        float bound = fan_in > 0 ? 1.f / sqrtf((float)fan_in) : 0.1f;
        bool is_norm_w = (strstr(nm, "norm") || strstr(nm, "ln")) && ends_with(nm, ".weight");
        bool is_norm_b = (strstr(nm, "norm") || strstr(nm, "ln")) && ends_with(nm, ".bias");
        for (int64_t k = 0; k < n; k++) {
            float u = (float)((splitmix(&st) >> 11) * (1.0 / 9007199254740992.0)) * 2.f - 1.f;
            float v = u * bound;
            if (is_norm_w) v = 1.f + 0.1f * u;
            else if (is_norm_b) v = 0.05f * u;
            else if (ends_with(nm, "A_log")) v = logf((float)(k % r->shape[i][1] + 1));
            else if (ends_with(nm, ".D")) v = 1.f;
            else if (ends_with(nm, "dt_proj.bias")) v = logf(expm1f(0.001f + 0.05f * (u + 1.f)));
            r->data[i][k] = v;
        }
    }
    *out = r;
    return CPHIL_OK;
}

void cphil_infer_random_close(cphil_infer_random *r) {
    if (!r) return;
    for (int i = 0; i < r->n; i++) cphil_free(r->data[i]);
    cphil_free(r);
}

cphil_status cphil_infer_random_lookup(void *ctx, const char *name, cphil_infer_tensor *out) {
    cphil_infer_random *r = ctx;
    for (int i = 0; i < r->n; i++)
        if (!strcmp(r->names[i], name)) {
            memset(out, 0, sizeof *out);
            out->dtype = INFER_F32;
            out->rank = r->rank[i];
            for (int k = 0; k < 4; k++) out->shape[k] = r->shape[i][k];
            out->data = r->data[i];
            return CPHIL_OK;
        }
    return cphil_err(CPHIL_E_MISMATCH, "tensor '%s' is missing", name);
}

int cphil_infer_random_count(const cphil_infer_random *r) { return r->n; }

const char *cphil_infer_random_name(const cphil_infer_random *r, int i, int *rank, int64_t *shape) {
    if (i < 0 || i >= r->n) return NULL;
    if (rank) *rank = r->rank[i];
    if (shape)
        for (int k = 0; k < 4; k++) shape[k] = r->shape[i][k];
    return r->names[i];
}

float *cphil_infer_random_data(cphil_infer_random *r, int i) { return i >= 0 && i < r->n ? r->data[i] : NULL; }

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
