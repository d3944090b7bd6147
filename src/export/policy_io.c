/* policy_io.c — policy file load/save over safetensors, and "random:" policies (policy_io.h).
 * Deliberately not: checkpoints (optimizer state; src/train), int8 policy files (src/infer). */
#include "export/policy_io.h"
#include "core/safetensors.h"

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
    char *save = NULL;
    for (char *kv = opts ? strtok_r(opts, ",", &save) : NULL; kv; kv = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(kv, '=');
        if (!eq) return cphil_err(CPHIL_E_ARG, "%s: '%s' is not key=value", spec, kv);
        *eq = '\0';
        const char *v = eq + 1;
        char *end;
        long long n = strtoll(v, &end, 10);
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
        else return cphil_err(CPHIL_E_ARG, "%s: unknown key '%s' (E n_cont n_ids hidden layers window state expand conv heads mlp seed)", spec, kv);
    }
    if (c.n_cont < 0) c.n_cont = c.E - c.n_ids;
    cphil_status s = cphil_model_init(m, &c);
    if (s) return cphil_err_prefix(s, "%s: ", spec);
    cphil_model_init_params(m, seed);
    return CPHIL_OK;
}

cphil_status cphil_export_load_policy(const char *path, cphil_model *m) {
    memset(m, 0, sizeof *m);
    if (!strncmp(path, "random:", 7)) return random_policy(path, m);
    cphil_st_file *f = NULL;
    cphil_status s = cphil_st_open(path, CPHIL_ST_MMAP, &f);
    if (s) return s;
    const char *cj = cphil_st_meta(f, "cphil_config");
    if (!cj) {
        cphil_st_close(f);
        return cphil_err(CPHIL_E_FORMAT, "%s: no \"cphil_config\" in the safetensors metadata: not a cphil policy file", path);
    }
    cphil_model_config c;
    s = cphil_model_config_from_json(cj, strlen(cj), &c);
    if (s) {
        cphil_st_close(f);
        return cphil_err_prefix(s, "%s: config: ", path);
    }
    s = cphil_model_init(m, &c);
    for (int i = 0; i < m->n_tensors && !s; i++) {
        const cphil_tensor *t = &m->tensors[i];
        int64_t shape[CPHIL_TENSOR_MAX_DIMS];
        for (int d = 0; d < t->ndim; d++) shape[d] = t->shape[d];
        const cphil_st_tensor *st = cphil_st_find(f, t->name);
        s = cphil_st_expect(f, st, t->name, t->ndim, shape);
        if (!s) s = cphil_st_to_f32(st, m->params + t->offset, t->numel, true);
        if (s) cphil_err_prefix(s, "%s: ", path);
    }
    cphil_st_close(f);
    if (s) cphil_model_free(m);
    return s;
}

cphil_status cphil_export_save_policy(const cphil_model *m, const char *path) {
    cphil_st_writer *w = NULL;
    cphil_status s = cphil_st_writer_new(&w);
    if (s) return s;
    char cfg[2048];
    size_t cl;
    s = cphil_model_config_to_json(&m->cfg, cfg, sizeof cfg, &cl);
    if (!s) s = cphil_st_writer_meta(w, "cphil_config", cfg);
    if (!s) s = cphil_st_writer_meta(w, "format", "pt");
    for (int i = 0; i < m->n_tensors && !s; i++) {
        const cphil_tensor *t = &m->tensors[i];
        int64_t shape[CPHIL_TENSOR_MAX_DIMS];
        for (int d = 0; d < t->ndim; d++) shape[d] = t->shape[d];
        s = cphil_st_writer_add(w, t->name, CPHIL_DT_F32, t->ndim, shape, m->params + t->offset);
    }
    if (!s) s = cphil_st_writer_write(w, path);
    cphil_st_writer_free(w);
    return s;
}
