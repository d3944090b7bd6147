/* policy_io.c — policy file load that also accepts "random:" policies and the quantized files
 * `cphil quantize` writes (read through src/infer's policy reader, dequantized) (policy_io.h).
 * Deliberately not: checkpoints (optimizer state; src/train). */
#include "export/policy_io.h"
#include "core/safetensors.h"
#include "game/embed.h"
#include "infer/infer_policy.h"

#include <math.h>

#include <stdlib.h>
#include <string.h>

static cphil_status random_policy(const char *spec, cphil_model *m) {
    char buf[256];
    snprintf(buf, sizeof buf, "%s", spec + 7);
    char *opts = strchr(buf, ':');
    if (opts) *opts++ = '\0';
    cphil_backbone b;
    if (cphil_backbone_parse(buf, &b))
        return cphil_err(CPHIL_E_ARG, "%s: unknown backbone '%s' (mlp, lstm, gru, mamba, attention)", spec, buf);
    cphil_model_config c;
    cphil_model_config_default(&c, b);
    c.precision = CPHIL_PREC_F32;
    c.E = 64;
    c.n_cont = -1;
    if (b == CPHIL_BACKBONE_MLP) c.window = 1;
    unsigned long long seed = 1;
    bool ar = false;
    char *save = NULL;
    for (char *kv = opts ? strtok_r(opts, ",", &save) : NULL; kv; kv = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(kv, '=');
        if (!eq) return cphil_err(CPHIL_E_ARG, "%s: '%s' is not key=value", spec, kv);
        *eq = '\0';
        const char *v = eq + 1;
        char *end;
        long long n = strtoll(v, &end, 10);
        if (!strcmp(kv, "layout")) { /* the replay embedding: E, n_cont, n_ids and its hash */
            cphil_embed_config ec = {.prev_action = !strcmp(v, "prev")};
            if (strcmp(v, "default") && strcmp(v, "prev"))
                return cphil_err(CPHIL_E_ARG, "%s: layout=%s (default or prev)", spec, v);
            cphil_embed_layout L;
            cphil_embed_layout_init(&L, &ec);
            c.E = L.E;
            c.n_cont = L.n_cont;
            c.n_ids = L.n_ids;
            c.layout_hash = L.hash;
            continue;
        }
        if (!strcmp(kv, "mlp")) {
            c.n_mlp = 0;
            for (const char *p = v; *p && c.n_mlp < CPHIL_MAX_MLP_LAYERS;) {
                c.mlp_hidden[c.n_mlp++] = (int)strtol(p, &end, 10);
                if (end == p) return cphil_err(CPHIL_E_ARG, "%s: bad mlp sizes '%s'", spec, v);
                p = *end == 'x' ? end + 1 : end;
                if (*end && *end != 'x') return cphil_err(CPHIL_E_ARG, "%s: bad mlp sizes '%s'", spec, v);
            }
            continue;
        }
        if (end == v || *end || n < 0 || n > (1 << 24)) return cphil_err(CPHIL_E_ARG, "%s: bad value '%s' for %s", spec, v, kv);
        int iv = (int)n;
        if (!strcmp(kv, "E")) c.E = iv;
        else if (!strcmp(kv, "n_cont")) c.n_cont = iv;
        else if (!strcmp(kv, "n_ids")) c.n_ids = iv;
        else if (!strcmp(kv, "hidden")) c.hidden = iv;
        else if (!strcmp(kv, "layers")) c.num_layers = iv;
        else if (!strcmp(kv, "window")) c.window = iv;
        else if (!strcmp(kv, "state")) c.state_size = iv;
        else if (!strcmp(kv, "expand")) c.expand = iv;
        else if (!strcmp(kv, "conv")) c.conv_size = iv;
        else if (!strcmp(kv, "heads")) c.num_heads = iv;
        else if (!strcmp(kv, "seed")) seed = (unsigned long long)n;
        else if (!strcmp(kv, "ar")) ar = n != 0;
        else return cphil_err(CPHIL_E_ARG, "%s: unknown key '%s' (E n_cont n_ids hidden layers window state expand conv heads mlp seed layout ar)", spec, kv);
    }
    if (c.n_cont < 0) c.n_cont = c.E - c.n_ids;
    if (ar) c.heads = CPHIL_HEADS_AUTOREGRESSIVE;
    cphil_status s = cphil_model_init(m, &c);
    if (s) return cphil_err_prefix(s, "%s: ", spec);
    cphil_model_init_params(m, seed);
    /* ar=1: autoregressive heads, with tables that make the conditioning matter (training
     * starts them at zero, which would make the conditioning invisible in a test) */
    uint64_t z = seed * 0x9E3779B97F4A7C15ull + 17;
    for (int i = 0; ar && i < m->n_tensors; i++) {
        const cphil_tensor *t = &m->tensors[i];
        if (!strstr(t->name, ".ar.weight")) continue;
        for (size_t k = 0; k < t->numel; k++) {
            z = z * 6364136223846793005ull + 1442695040888963407ull;
            m->params[t->offset + k] = ((float)(z >> 40) / (float)(1u << 24) - 0.5f) * 2.0f;
        }
    }
    return CPHIL_OK;
}

cphil_status cphil_export_load_policy(const char *path, cphil_model *m) {
    memset(m, 0, sizeof *m);
    if (!strncmp(path, "random:", 7)) return random_policy(path, m);
    return cphil_policy_load(path, m);
}

const char *cphil_policy_weights_name(cphil_policy_weights w) {
    switch (w) {
    case CPHIL_POLICY_W_BF16: return "bf16";
    case CPHIL_POLICY_W_INT8_DYNAMIC: return "int8 dynamic";
    case CPHIL_POLICY_W_INT8_STATIC: return "int8 static";
    default: return "f32";
    }
}

void cphil_policy_quant_free(cphil_policy_quant *q) {
    if (!q) return;
    cphil_free(q->names);
    cphil_free(q->act_scale);
    memset(q, 0, sizeof *q);
}

bool cphil_policy_quant_amax(void *ctx, const char *weight_name, float *amax) {
    const cphil_policy_quant *q = ctx;
    /* the engine's fused first head layers share one input: the file stores its scale under
     * every head's name, the engine reads the buttons head's (src/infer/infer.c) */
    if (!strcmp(weight_name, "heads.*.0.weight")) weight_name = "heads.buttons.0.weight";
    for (int i = 0; q && i < q->n; i++)
        if (!strcmp(q->names[i], weight_name)) {
            float a = q->act_scale[i] * 127.0f;
            if (q->has_ids && !strcmp(weight_name, "input_proj.weight") && a < 1.0f) a = 1.0f;
            *amax = a;
            return true;
        }
    return false;
}

/* m's tensors from an open quantized policy file, as f32; static scales into q. */
static cphil_status dequantize(const cphil_infer_policy *p, cphil_model *m, cphil_policy_quant *q) {
    cphil_status s = cphil_model_init(m, cphil_infer_policy_config(p));
    if (s) return cphil_err_prefix(s, "%s: ", cphil_infer_policy_path(p));
    q->names = cphil_calloc((size_t)m->n_tensors, sizeof *q->names);
    q->act_scale = cphil_calloc((size_t)m->n_tensors, sizeof *q->act_scale);
    if (!q->names || !q->act_scale) return cphil_err(CPHIL_E_NOMEM, "out of memory");
    for (int i = 0; i < m->n_tensors; i++) {
        const cphil_tensor *mt = &m->tensors[i];
        cphil_infer_tensor t;
        if ((s = cphil_infer_policy_lookup((void *)p, mt->name, &t))) return s;
        int64_t n = 1;
        for (int d = 0; d < t.rank; d++) n *= t.shape[d];
        if (t.rank != mt->ndim || (size_t)n != mt->numel) /* the reader checked; stay safe */
            return cphil_err(CPHIL_E_MISMATCH, "%s: tensor '%s' does not fit the config", cphil_infer_policy_path(p), mt->name);
        float *dst = m->params + mt->offset;
        if (t.dtype == CPHIL_W_F32) memcpy(dst, t.data, sizeof(float) * (size_t)n);
        else if (t.dtype == CPHIL_W_BF16)
            for (int64_t k = 0; k < n; k++) dst[k] = infer_bf16_to_f32(((const uint16_t *)t.data)[k]);
        else {
            const int8_t *qv = t.data;
            int64_t cols = n / t.shape[0];
            for (int64_t k = 0; k < n; k++) dst[k] = (float)qv[k] * t.scale[k / cols];
            if (t.act_scale > 0.f && isfinite(t.act_scale)) {
                snprintf(q->names[q->n], sizeof q->names[q->n], "%s", mt->name);
                q->act_scale[q->n++] = t.act_scale;
            }
        }
    }
    return CPHIL_OK;
}

cphil_status cphil_export_load_policy_quant(const char *path, cphil_model *m, cphil_policy_quant *q) {
    memset(q, 0, sizeof *q);
    memset(m, 0, sizeof *m);
    if (!strncmp(path, "random:", 7)) return cphil_export_load_policy(path, m);
    /* One open decides: a file without "cphil_quant" in its metadata (an f32 policy, or not a
     * policy at all) goes through the trainer's loader and its messages on that same open; only
     * a quantized copy is read again, by the engine's reader. */
    cphil_st_file *f = NULL;
    cphil_status s = cphil_st_open(path, CPHIL_ST_MMAP, &f);
    if (s) return s;
    if (!cphil_st_meta(f, "cphil_quant")) {
        s = cphil_policy_load_file(f, m);
        cphil_st_close(f);
        return s;
    }
    cphil_st_close(f);
    cphil_infer_policy *p = NULL;
    if ((s = cphil_infer_policy_open(path, &p))) return s;
    cphil_wtype prec = cphil_infer_policy_precision(p);
    q->weights = prec == CPHIL_W_BF16 ? CPHIL_POLICY_W_BF16
                 : cphil_infer_policy_is_static(p) ? CPHIL_POLICY_W_INT8_STATIC
                                                   : CPHIL_POLICY_W_INT8_DYNAMIC;
    q->has_ids = cphil_infer_policy_config(p)->n_ids > 0;
    s = dequantize(p, m, q);
    cphil_infer_policy_close(p);
    if (s) {
        cphil_model_free(m);
        cphil_policy_quant_free(q);
    }
    return s;
}
