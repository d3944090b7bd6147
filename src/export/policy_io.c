/* policy_io.c — policy file load that also accepts "random:" policies (policy_io.h).
 * Deliberately not: checkpoints (optimizer state; src/train), int8 policy files (src/infer). */
#include "export/policy_io.h"
#include "game/embed.h"

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
        else return cphil_err(CPHIL_E_ARG, "%s: unknown key '%s' (E n_cont n_ids hidden layers window state expand conv heads mlp seed layout)", spec, kv);
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
    return cphil_policy_load(path, m);
}
