/* model.c — the model config (defaults, validation, JSON in and out), the tensor table of every
 * backbone, the parameter block and its PyTorch-style initialisation.
 *
 * The table built by build_table() is the only list of parameter names in cphil (see model.h);
 * docs/model.md documents it. Not here: the numerics (policy.c / src/nn), the policy file.
 * References: PyTorch nn.Linear / nn.LSTM / nn.GRU default initialisation; Gu & Dao, "Mamba"
 * (2023) and the reference mamba_simple.py for the S4D-real A_log and the dt bias init.
 */
#include "model/model.h"
#include "core/core.h"
#include "core/json.h"
#include "game/embed.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

const char *const cphil_head_names[CPHIL_N_HEADS] = {"buttons", "main_x", "main_y",
                                                     "c_x",     "c_y",    "shoulder"};
const int cphil_head_classes[CPHIL_N_HEADS] = {8, 17, 17, 17, 17, 5};
const int cphil_head_offset[CPHIL_N_HEADS] = {0, 8, 25, 42, 59, 76};
const int cphil_head_hidden[CPHIL_N_HEADS] = {64, 64, 64, 64, 64, 32};

static const char *const backbone_names[CPHIL_N_BACKBONES] = {"mlp", "lstm", "gru", "mamba",
                                                              "attention"};

const char *cphil_backbone_name(cphil_backbone b) {
    return (unsigned)b < CPHIL_N_BACKBONES ? backbone_names[b] : "?";
}

cphil_status cphil_backbone_parse(const char *s, cphil_backbone *out) {
    for (int i = 0; i < CPHIL_N_BACKBONES; i++)
        if (s && !strcmp(s, backbone_names[i])) {
            *out = (cphil_backbone)i;
            return CPHIL_OK;
        }
    return cphil_err(CPHIL_E_ARG, "unknown backbone '%s' (hint: mlp, lstm, gru, mamba, attention)",
                     s ? s : "(null)");
}

const char *cphil_heads_mode_name(cphil_heads_mode h) {
    return h == CPHIL_HEADS_AUTOREGRESSIVE ? "autoregressive" : "independent";
}

cphil_status cphil_heads_mode_parse(const char *s, cphil_heads_mode *out) {
    if (s && !strcmp(s, "independent")) *out = CPHIL_HEADS_INDEPENDENT;
    else if (s && (!strcmp(s, "autoregressive") || !strcmp(s, "ar"))) *out = CPHIL_HEADS_AUTOREGRESSIVE;
    else return cphil_err(CPHIL_E_ARG, "unknown heads mode '%s' (hint: independent, autoregressive)", s ? s : "(null)");
    return CPHIL_OK;
}

void cphil_model_config_default(cphil_model_config *c, cphil_backbone b) {
    memset(c, 0, sizeof *c);
    c->backbone = b;
    c->hidden = 256;
    c->n_mlp = 2;
    c->mlp_hidden[0] = 512;
    c->mlp_hidden[1] = 512;
    c->num_layers = 2;
    c->window = 60;
    c->state_size = 16;
    c->expand = 2;
    c->conv_size = 4;
    c->num_heads = 4;
    c->precision = CPHIL_PREC_BF16;
}

#define CFG_CHECK(cond, ...) \
    do { if (!(cond)) return cphil_err(CPHIL_E_ARG, __VA_ARGS__); } while (0)

typedef struct tbuilder tbuilder;
static void build_table(const cphil_model_config *c, tbuilder *b);
static size_t count_params(const cphil_model_config *c);

/* The bounds (docs/model.md "Limits") keep every command's memory and time proportional to what
 * a real policy needs: a policy file is untrusted input, and without them a 1 KB file could ask
 * for a 100 000-frame window (a workspace of tens of GB) or a 65 536-wide hidden layer. */
cphil_status cphil_model_config_validate(const cphil_model_config *c) {
    CFG_CHECK((unsigned)c->backbone < CPHIL_N_BACKBONES, "model config: bad backbone %d", (int)c->backbone);
    CFG_CHECK((unsigned)c->heads <= CPHIL_HEADS_AUTOREGRESSIVE, "model config: bad heads mode %d", (int)c->heads);
    CFG_CHECK(c->n_cont >= 0 && c->n_ids >= 0 && c->E >= 1 && c->E <= CPHIL_MODEL_MAX_E,
              "model config: n_cont %d, n_ids %d, E %d out of range (E at most %d)", c->n_cont, c->n_ids, c->E,
              CPHIL_MODEL_MAX_E);
    CFG_CHECK(c->n_cont + c->n_ids <= c->E, "model config: n_cont + n_ids (%d) > E (%d)",
              c->n_cont + c->n_ids, c->E);
    CFG_CHECK(c->window >= 1 && c->window <= CPHIL_MODEL_MAX_WINDOW, "model config: window %d out of range (1..%d)",
              c->window, CPHIL_MODEL_MAX_WINDOW);
    CFG_CHECK(c->precision == CPHIL_PREC_F32 || c->precision == CPHIL_PREC_BF16,
              "model config: bad precision %d", (int)c->precision);
    if (c->backbone == CPHIL_BACKBONE_MLP) {
        CFG_CHECK(c->n_mlp >= 1 && c->n_mlp <= CPHIL_MAX_MLP_LAYERS,
                  "model config: mlp needs 1..%d hidden sizes (got %d)", CPHIL_MAX_MLP_LAYERS, c->n_mlp);
        for (int i = 0; i < c->n_mlp; i++)
            CFG_CHECK(c->mlp_hidden[i] >= 1 && c->mlp_hidden[i] <= CPHIL_MODEL_MAX_HIDDEN,
                      "model config: mlp hidden size %d out of range (1..%d)", c->mlp_hidden[i], CPHIL_MODEL_MAX_HIDDEN);
    } else {
        CFG_CHECK(c->hidden >= 1 && c->hidden <= CPHIL_MODEL_MAX_HIDDEN, "model config: hidden %d out of range (1..%d)",
                  c->hidden, CPHIL_MODEL_MAX_HIDDEN);
        CFG_CHECK(c->num_layers >= 1 && c->num_layers <= CPHIL_MODEL_MAX_LAYERS,
                  "model config: num_layers %d out of range (1..%d)", c->num_layers, CPHIL_MODEL_MAX_LAYERS);
    }
    if (c->backbone == CPHIL_BACKBONE_MAMBA) {
        CFG_CHECK(c->state_size >= 1 && c->state_size <= CPHIL_MODEL_MAX_STATE,
                  "model config: state_size %d out of range (1..%d)", c->state_size, CPHIL_MODEL_MAX_STATE);
        CFG_CHECK(c->expand >= 1 && c->expand <= CPHIL_MODEL_MAX_EXPAND, "model config: expand %d out of range (1..%d)",
                  c->expand, CPHIL_MODEL_MAX_EXPAND);
        CFG_CHECK(c->conv_size >= 1 && c->conv_size <= CPHIL_MODEL_MAX_CONV,
                  "model config: conv_size %d out of range (1..%d)", c->conv_size, CPHIL_MODEL_MAX_CONV);
        /* the scan keeps I x N state per frame of a window */
        CFG_CHECK((long long)c->expand * c->hidden * c->state_size <= CPHIL_MODEL_MAX_SCAN_STATE,
                  "model config: expand x hidden x state_size = %lld, at most %d",
                  (long long)c->expand * c->hidden * c->state_size, CPHIL_MODEL_MAX_SCAN_STATE);
    }
    if (c->backbone == CPHIL_BACKBONE_ATTENTION) {
        CFG_CHECK(c->num_heads >= 1 && c->num_heads <= CPHIL_MODEL_MAX_HEADS && c->hidden % c->num_heads == 0 &&
                      (c->hidden / c->num_heads) % 2 == 0,
                  "model config: hidden %d must split into num_heads %d (1..%d) heads of even size",
                  c->hidden, c->num_heads, CPHIL_MODEL_MAX_HEADS);
    }
    const size_t np = count_params(c);
    CFG_CHECK(np <= CPHIL_MODEL_MAX_PARAMS, "model config: %zu parameters, at most %d", np, CPHIL_MODEL_MAX_PARAMS);
    /* a window decision costs about 2 x parameters x window flops */
    CFG_CHECK((double)np * c->window <= CPHIL_MODEL_MAX_PARAM_FRAMES,
              "model config: parameters x window = %zu x %d, at most %.0f (a smaller window or model)", np, c->window,
              CPHIL_MODEL_MAX_PARAM_FRAMES);
    return CPHIL_OK;
}

/* ---- the policy's embedding vs the data's ------------------------------------------------ */
cphil_status cphil_model_check_embedding(const cphil_model_config *c, int n_cont, int n_ids, int E,
                                         uint64_t layout_hash, const char *what) {
    const bool sizes = c->n_cont == n_cont && c->n_ids == n_ids && c->E == E;
    const bool hash = !c->layout_hash || !layout_hash || c->layout_hash == layout_hash;
    if (sizes && hash) return CPHIL_OK;
    return cphil_err(CPHIL_E_MISMATCH,
                     "%s: the policy's embedding (n_cont %d, n_ids %d, E %d, layout %016llx) is not the data's "
                     "(n_cont %d, n_ids %d, E %d, layout %016llx) (hint: a policy trained by another cphil version "
                     "or with another --prev-action setting; retrain, or rebuild the data to match)",
                     what ? what : "policy", c->n_cont, c->n_ids, c->E, (unsigned long long)c->layout_hash, n_cont,
                     n_ids, E, (unsigned long long)layout_hash);
}

cphil_status cphil_model_find_layout(const cphil_model_config *c, cphil_embed_layout *L, const char *what) {
    for (int prev = 0; prev < 2; prev++) {
        cphil_embed_config ec = {.prev_action = prev != 0};
        cphil_embed_layout_init(L, &ec);
        const bool hash = c->layout_hash ? c->layout_hash == L->hash : true;
        if (hash && c->n_cont == L->n_cont && c->n_ids == L->n_ids && c->E == L->E) return CPHIL_OK;
    }
    cphil_embed_layout_init(L, NULL);
    return cphil_err(CPHIL_E_MISMATCH,
                     "%s: the policy's embedding (n_cont %d, n_ids %d, E %d, layout %016llx) is not one this build "
                     "of cphil makes (default: n_cont %d, n_ids %d, E %d, layout %016llx) (hint: retrain, or use the "
                     "cphil version that trained it)",
                     what ? what : "policy", c->n_cont, c->n_ids, c->E, (unsigned long long)c->layout_hash, L->n_cont,
                     L->n_ids, L->E, (unsigned long long)L->hash);
}

int cphil_model_features(const cphil_model_config *c) {
    return c->backbone == CPHIL_BACKBONE_MLP ? c->mlp_hidden[c->n_mlp - 1] : c->hidden;
}
int cphil_model_input_width(const cphil_model_config *c) {
    return c->backbone == CPHIL_BACKBONE_MLP ? c->mlp_hidden[0] : c->hidden;
}
int cphil_mamba_inner(const cphil_model_config *c) { return c->expand * c->hidden; }
int cphil_mamba_dt_rank(const cphil_model_config *c) { return (c->hidden + 15) / 16; }

/* ---- JSON ------------------------------------------------------------------------------- */
typedef struct sbuf {
    char *p;
    size_t cap, len;
    bool overflow;
} sbuf;

CPHIL_PRINTF(2, 3) static void sb_printf(sbuf *s, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    size_t room = s->len < s->cap ? s->cap - s->len : 0;
    int n = vsnprintf(room ? s->p + s->len : NULL, room, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= room) s->overflow = true;
    if (n > 0) s->len += (size_t)n;
}

cphil_status cphil_model_config_to_json(const cphil_model_config *c, char *buf, size_t cap,
                                        size_t *len) {
    sbuf s = {buf, cap, 0, false};
    sb_printf(&s, "{\"backbone\":\"%s\",\"n_cont\":%d,\"n_ids\":%d,\"E\":%d,\"layout_hash\":\"%016" PRIx64
                  "\",\"hidden\":%d,\"mlp_hidden\":[",
              cphil_backbone_name(c->backbone), c->n_cont, c->n_ids, c->E, c->layout_hash, c->hidden);
    for (int i = 0; i < c->n_mlp && i < CPHIL_MAX_MLP_LAYERS; i++)
        sb_printf(&s, "%s%d", i ? "," : "", c->mlp_hidden[i]);
    sb_printf(&s, "],\"num_layers\":%d,\"window\":%d,\"state_size\":%d,\"expand\":%d,"
                  "\"conv_size\":%d,\"num_heads\":%d,\"precision\":\"%s\"}",
              c->num_layers, c->window, c->state_size, c->expand, c->conv_size, c->num_heads,
              c->precision == CPHIL_PREC_F32 ? "f32" : "bf16");
    /* only when not the default, so files of independent heads keep their exact config text */
    if (c->heads == CPHIL_HEADS_AUTOREGRESSIVE && s.len > 0 && !s.overflow) {
        s.len--; /* reopen the object */
        sb_printf(&s, ",\"heads\":\"%s\"}", cphil_heads_mode_name(c->heads));
    }
    if (s.overflow) return cphil_err(CPHIL_E_ARG, "model config JSON needs %zu bytes, buffer has %zu",
                                     s.len + 1, cap);
    if (len) *len = s.len;
    return CPHIL_OK;
}

/* The config is one JSON object (parsed by the strict reader of core/json.h). Known keys are
 * checked for type; unknown keys are ignored; missing keys take the backbone's defaults. */
static cphil_status cfg_bad(const cphil_json_value *v, const char *key, const char *what) {
    return cphil_err(CPHIL_E_FORMAT, "model config JSON: byte %zu: \"%s\" must be %s", v->offset, key, what);
}
static cphil_status cfg_int(const cphil_json_value *v, const char *key, int *out) {
    double d;
    if (!cphil_json_as_double(v, &d) || d != floor(d) || d < -2147483647.0 || d > 2147483647.0)
        return cfg_bad(v, key, "an integer");
    *out = (int)d;
    return CPHIL_OK;
}

static cphil_status cfg_from_doc(const cphil_json_value *root, cphil_model_config *cfg) {
    if (!root || root->type != CPHIL_JSON_OBJECT)
        return cphil_err(CPHIL_E_FORMAT, "model config JSON: expected an object");
    /* The backbone first, so missing keys take that backbone's defaults. */
    const cphil_json_value *bv = cphil_json_get(root, "backbone");
    if (!bv) return cphil_err(CPHIL_E_FORMAT, "model config JSON: no \"backbone\" key");
    const char *bs = cphil_json_as_string(bv);
    if (!bs) return cfg_bad(bv, "backbone", "a string");
    cphil_backbone b = CPHIL_BACKBONE_LSTM;
    if (cphil_backbone_parse(bs, &b))
        return cphil_err(CPHIL_E_FORMAT, "model config JSON: unknown backbone '%s'", bs);
    cphil_model_config_default(cfg, b);

    struct { const char *k; int *p; } ints[] = {
        {"n_cont", &cfg->n_cont},         {"n_ids", &cfg->n_ids},
        {"E", &cfg->E},                   {"hidden", &cfg->hidden},
        {"num_layers", &cfg->num_layers}, {"window", &cfg->window},
        {"state_size", &cfg->state_size}, {"expand", &cfg->expand},
        {"conv_size", &cfg->conv_size},   {"num_heads", &cfg->num_heads}};
    cphil_status st;
    for (size_t q = 0; q < CPHIL_ARRAY_LEN(ints); q++) {
        const cphil_json_value *v = cphil_json_get(root, ints[q].k);
        if (v && (st = cfg_int(v, ints[q].k, ints[q].p))) return st;
    }
    const cphil_json_value *v = cphil_json_get(root, "mlp_hidden");
    if (v) {
        if (v->type != CPHIL_JSON_ARRAY) return cfg_bad(v, "mlp_hidden", "an array of integers");
        if (v->len > CPHIL_MAX_MLP_LAYERS)
            return cphil_err(CPHIL_E_FORMAT, "model config JSON: more than %d mlp_hidden sizes",
                             CPHIL_MAX_MLP_LAYERS);
        cfg->n_mlp = 0;
        for (size_t i = 0; i < v->len; i++)
            if ((st = cfg_int(&v->items[i], "mlp_hidden", &cfg->mlp_hidden[cfg->n_mlp++]))) return st;
    }
    if ((v = cphil_json_get(root, "precision"))) {
        const char *p = cphil_json_as_string(v);
        if (!p) return cfg_bad(v, "precision", "a string");
        if (!strcmp(p, "f32")) cfg->precision = CPHIL_PREC_F32;
        else if (!strcmp(p, "bf16")) cfg->precision = CPHIL_PREC_BF16;
        else return cphil_err(CPHIL_E_FORMAT, "model config JSON: precision '%s' (hint: f32, bf16)", p);
    }
    if ((v = cphil_json_get(root, "heads"))) {
        const char *h = cphil_json_as_string(v);
        if (!h) return cfg_bad(v, "heads", "a string");
        if (cphil_heads_mode_parse(h, &cfg->heads))
            return cphil_err(CPHIL_E_FORMAT, "model config JSON: heads '%s' (hint: independent, autoregressive)", h);
    }
    if ((v = cphil_json_get(root, "layout_hash"))) {
        const char *h = cphil_json_as_string(v);
        if (!h) return cfg_bad(v, "layout_hash", "a hex string");
        char *end;
        errno = 0;
        unsigned long long x = strtoull(h, &end, 16);
        if (!h[0] || *end || errno || strlen(h) != v->len)
            return cphil_err(CPHIL_E_FORMAT, "model config JSON: layout_hash '%s' is not hex", h);
        cfg->layout_hash = (uint64_t)x;
    }
    return CPHIL_OK;
}

cphil_status cphil_model_config_from_json(const char *json, size_t n, cphil_model_config *c) {
    cphil_json_doc *doc = NULL;
    cphil_status st = cphil_json_parse(json, n, &doc);
    if (st) return st == CPHIL_E_NOMEM ? st : cphil_err_prefix(CPHIL_E_FORMAT, "model config JSON: ");
    cphil_model_config cfg;
    st = cfg_from_doc(cphil_json_root(doc), &cfg);
    cphil_json_free(doc);
    if (st) return st;
    if (cphil_model_config_validate(&cfg)) return cphil_err_prefix(CPHIL_E_FORMAT, "model config JSON: ");
    *c = cfg;
    return CPHIL_OK;
}

/* ---- the tensor table ------------------------------------------------------------------- */
struct tbuilder {
    cphil_tensor *t; /* NULL: count only */
    int n;
    size_t off, weights;
};

CPHIL_PRINTF(5, 6)
static void add(tbuilder *b, int ndim, const int *shape, cphil_init init, const char *fmt, ...) {
    size_t numel = 1;
    for (int i = 0; i < ndim; i++) numel *= (size_t)shape[i];
    if (b->t) {
        cphil_tensor *t = &b->t[b->n];
        memset(t, 0, sizeof *t);
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(t->name, sizeof t->name, fmt, ap);
        va_end(ap);
        t->ndim = ndim;
        for (int i = 0; i < ndim; i++) t->shape[i] = shape[i];
        t->numel = numel;
        t->offset = b->off;
        t->init = init;
        t->init_fan = ndim >= 2 ? shape[ndim - 1] * (ndim == 3 ? shape[1] : 1) : 1;
    }
    b->n++;
    b->off += (numel + 15) & ~(size_t)15;
    b->weights += numel;
}
#define T1(b, a, init, ...) add(b, 1, (int[]){a}, init, __VA_ARGS__)
#define T2(b, a, c, init, ...) add(b, 2, (int[]){a, c}, init, __VA_ARGS__)
#define T3(b, a, c, d, init, ...) add(b, 3, (int[]){a, c, d}, init, __VA_ARGS__)

/* A Linear's weight and bias; the bias shares the weight's fan_in. */
static void add_linear(tbuilder *b, int out, int in, bool bias, const char *prefix) {
    T2(b, out, in, CPHIL_INIT_UNIFORM_FANIN, "%s.weight", prefix);
    if (bias) {
        T1(b, out, CPHIL_INIT_UNIFORM_FANIN, "%s.bias", prefix);
        if (b->t) b->t[b->n - 1].init_fan = in;
    }
}

static void build_table(const cphil_model_config *c, tbuilder *b) {
    const int H = c->hidden, L = c->num_layers;
    char p[CPHIL_TENSOR_NAME_MAX];
    add_linear(b, cphil_model_input_width(c), c->E, true, "input_proj");
    switch (c->backbone) {
    case CPHIL_BACKBONE_MLP:
        for (int i = 0; i + 1 < c->n_mlp; i++) {
            snprintf(p, sizeof p, "mlp.%d", i);
            add_linear(b, c->mlp_hidden[i + 1], c->mlp_hidden[i], true, p);
        }
        break;
    case CPHIL_BACKBONE_LSTM:
    case CPHIL_BACKBONE_GRU: {
        const char *nm = c->backbone == CPHIL_BACKBONE_LSTM ? "lstm" : "gru";
        int G = c->backbone == CPHIL_BACKBONE_LSTM ? 4 : 3;
        for (int k = 0; k < L; k++) {
            /* PyTorch: every RNN parameter is U(-1/sqrt(H), 1/sqrt(H)). */
            T2(b, G * H, H, CPHIL_INIT_UNIFORM_FANIN, "%s.weight_ih_l%d", nm, k);
            if (b->t) b->t[b->n - 1].init_fan = H;
            T2(b, G * H, H, CPHIL_INIT_UNIFORM_FANIN, "%s.weight_hh_l%d", nm, k);
            if (b->t) b->t[b->n - 1].init_fan = H;
            T1(b, G * H, CPHIL_INIT_UNIFORM_FANIN, "%s.bias_ih_l%d", nm, k);
            if (b->t) b->t[b->n - 1].init_fan = H;
            T1(b, G * H, CPHIL_INIT_UNIFORM_FANIN, "%s.bias_hh_l%d", nm, k);
            if (b->t) b->t[b->n - 1].init_fan = H;
        }
        break;
    }
    case CPHIL_BACKBONE_MAMBA: {
        const int I = cphil_mamba_inner(c), R = cphil_mamba_dt_rank(c), N = c->state_size,
                  K = c->conv_size;
        for (int k = 0; k < L; k++) {
            T1(b, H, CPHIL_INIT_ONE, "layers.%d.norm.weight", k);
            snprintf(p, sizeof p, "layers.%d.mixer.in_proj", k);
            add_linear(b, 2 * I, H, false, p);
            T3(b, I, 1, K, CPHIL_INIT_UNIFORM_FANIN, "layers.%d.mixer.conv1d.weight", k);
            T1(b, I, CPHIL_INIT_UNIFORM_FANIN, "layers.%d.mixer.conv1d.bias", k);
            if (b->t) b->t[b->n - 1].init_fan = K;
            snprintf(p, sizeof p, "layers.%d.mixer.x_proj", k);
            add_linear(b, R + 2 * N, I, false, p);
            snprintf(p, sizeof p, "layers.%d.mixer.dt_proj", k);
            add_linear(b, I, R, false, p);
            T1(b, I, CPHIL_INIT_MAMBA_DT_BIAS, "layers.%d.mixer.dt_proj.bias", k);
            T2(b, I, N, CPHIL_INIT_MAMBA_A_LOG, "layers.%d.mixer.A_log", k);
            T1(b, I, CPHIL_INIT_ONE, "layers.%d.mixer.D", k);
            snprintf(p, sizeof p, "layers.%d.mixer.out_proj", k);
            add_linear(b, H, I, false, p);
        }
        T1(b, H, CPHIL_INIT_ONE, "norm_f.weight");
        break;
    }
    case CPHIL_BACKBONE_ATTENTION:
        for (int k = 0; k < L; k++) {
            T1(b, H, CPHIL_INIT_ONE, "layers.%d.ln1.weight", k);
            T1(b, H, CPHIL_INIT_ZERO, "layers.%d.ln1.bias", k);
            snprintf(p, sizeof p, "layers.%d.attn.qkv", k);
            add_linear(b, 3 * H, H, true, p);
            snprintf(p, sizeof p, "layers.%d.attn.out", k);
            add_linear(b, H, H, true, p);
            T1(b, H, CPHIL_INIT_ONE, "layers.%d.ln2.weight", k);
            T1(b, H, CPHIL_INIT_ZERO, "layers.%d.ln2.bias", k);
            snprintf(p, sizeof p, "layers.%d.ffn.fc1", k);
            add_linear(b, 4 * H, H, true, p);
            snprintf(p, sizeof p, "layers.%d.ffn.fc2", k);
            add_linear(b, H, 4 * H, true, p);
        }
        T1(b, H, CPHIL_INIT_ONE, "norm_f.weight");
        T1(b, H, CPHIL_INIT_ZERO, "norm_f.bias");
        break;
    default:
        break;
    }
    const int Hb = cphil_model_features(c);
    for (int h = 0; h < CPHIL_N_HEADS; h++) {
        snprintf(p, sizeof p, "heads.%s.0", cphil_head_names[h]);
        add_linear(b, cphil_head_hidden[h], Hb, true, p);
        snprintf(p, sizeof p, "heads.%s.2", cphil_head_names[h]);
        add_linear(b, cphil_head_classes[h], cphil_head_hidden[h], true, p);
    }
    /* Autoregressive: head h's hidden layer also reads the values chosen for heads 0..h-1, as
     * the 8 button bits and the one-hot classes (offset_h columns: the logit layout). Zero at
     * the start, so training begins from the independent policy. Last in the table, so the
     * tensors of independent policies keep their order and offsets. */
    if (c->heads == CPHIL_HEADS_AUTOREGRESSIVE)
        for (int h = 1; h < CPHIL_N_HEADS; h++)
            T2(b, cphil_head_hidden[h], cphil_head_offset[h], CPHIL_INIT_ZERO, "heads.%s.ar.weight", cphil_head_names[h]);
}

static size_t count_params(const cphil_model_config *c) {
    tbuilder cnt = {0};
    build_table(c, &cnt);
    return cnt.off;
}

cphil_status cphil_model_init(cphil_model *m, const cphil_model_config *cfg) {
    memset(m, 0, sizeof *m);
    cphil_status st = cphil_model_config_validate(cfg);
    if (st) return st;
    tbuilder cnt = {0};
    build_table(cfg, &cnt);
    m->cfg = *cfg;
    m->tensors = cphil_calloc((size_t)cnt.n, sizeof *m->tensors);
    m->params = cphil_calloc(cnt.off ? cnt.off : 1, sizeof(float));
    if (!m->tensors || !m->params) {
        cphil_model_free(m);
        return cphil_err(CPHIL_E_NOMEM, "model: cannot allocate %zu parameters", cnt.off);
    }
    tbuilder b = {m->tensors, 0, 0, 0};
    build_table(cfg, &b);
    m->n_tensors = b.n;
    m->n_floats = b.off;
    m->n_weights = b.weights;
    return CPHIL_OK;
}

void cphil_model_free(cphil_model *m) {
    if (!m) return;
    cphil_free(m->tensors);
    cphil_free(m->params);
    memset(m, 0, sizeof *m);
}

const cphil_tensor *cphil_model_find(const cphil_model *m, const char *name) {
    for (int i = 0; i < m->n_tensors; i++)
        if (!strcmp(m->tensors[i].name, name)) return &m->tensors[i];
    return NULL;
}

/* splitmix64 -> uniform doubles in [0, 1). */
static uint64_t rng_next(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static double rng_unif(uint64_t *s) { return (double)(rng_next(s) >> 11) * (1.0 / 9007199254740992.0); }

void cphil_model_init_params(cphil_model *m, uint64_t seed) {
    uint64_t s = seed ^ 0x6370686C6E6E3031ull;
    memset(m->params, 0, m->n_floats * sizeof(float));
    for (int i = 0; i < m->n_tensors; i++) {
        const cphil_tensor *t = &m->tensors[i];
        float *p = m->params + t->offset;
        switch (t->init) {
        case CPHIL_INIT_UNIFORM_FANIN: {
            double bound = 1.0 / sqrt((double)(t->init_fan > 0 ? t->init_fan : 1));
            for (size_t k = 0; k < t->numel; k++) p[k] = (float)((2.0 * rng_unif(&s) - 1.0) * bound);
            break;
        }
        case CPHIL_INIT_ZERO: break;
        case CPHIL_INIT_ONE:
            for (size_t k = 0; k < t->numel; k++) p[k] = 1.0f;
            break;
        case CPHIL_INIT_MAMBA_A_LOG: /* [I, N]: A_log[c, n] = log(n + 1) */
            for (int c = 0; c < t->shape[0]; c++)
                for (int n = 0; n < t->shape[1]; n++) p[(size_t)c * t->shape[1] + n] = (float)log(n + 1.0);
            break;
        case CPHIL_INIT_MAMBA_DT_BIAS: /* dt = exp(U(log 1e-3, log 1e-1)), clamp >= 1e-4 */
            for (size_t k = 0; k < t->numel; k++) {
                double dt = exp(rng_unif(&s) * (log(0.1) - log(0.001)) + log(0.001));
                if (dt < 1e-4) dt = 1e-4;
                p[k] = (float)(dt + log(-expm1(-dt))); /* softplus^-1 */
            }
            break;
        }
    }
}
