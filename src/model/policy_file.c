/* policy_file.c — the policy file: a safetensors file (src/core/safetensors.h) holding every
 * tensor of the model's table under its PyTorch-style name (F32, shape as in the table) and, in
 * __metadata__, "format" = "cphil-policy", "format_version" = "1" and "cphil_config" = the config
 * JSON (cphil_model_config_to_json), plus "cphil_train" (the training run) when the trainer
 * writes it (cphil_policy_save_meta). It opens in Python with safetensors.torch.load_file and its
 * names match a PyTorch module built like tools/gen_nn_fixtures.py's Policy.
 * Not here: optimizer state and training progress (checkpoints, src/train), quantized weights
 * (src/infer). Loading accepts F32, BF16, F16 or F64 tensors (converted to f32).
 */
#include "core/safetensors.h"
#include "model/model.h"

#include <string.h>

cphil_status cphil_policy_save(const cphil_model *m, const char *path) {
    return cphil_policy_save_meta(m, path, NULL);
}

cphil_status cphil_policy_save_meta(const cphil_model *m, const char *path, const char *train_meta_json) {
    char cfg[4096];
    cphil_status st = cphil_model_config_to_json(&m->cfg, cfg, sizeof cfg, NULL);
    if (st) return st;
    cphil_st_writer *w;
    if ((st = cphil_st_writer_new(&w))) return st;
    st = cphil_st_writer_meta(w, "format", "cphil-policy");
    if (!st) st = cphil_st_writer_meta(w, "format_version", "1");
    if (!st) st = cphil_st_writer_meta(w, "cphil_config", cfg);
    if (!st && train_meta_json) st = cphil_st_writer_meta(w, "cphil_train", train_meta_json);
    for (int i = 0; i < m->n_tensors && !st; i++) {
        const cphil_tensor *t = &m->tensors[i];
        int64_t shape[CPHIL_TENSOR_MAX_DIMS];
        for (int d = 0; d < t->ndim; d++) shape[d] = t->shape[d];
        st = cphil_st_writer_add(w, t->name, CPHIL_DT_F32, t->ndim, shape, m->params + t->offset);
    }
    if (!st) st = cphil_st_writer_write(w, path);
    cphil_st_writer_free(w);
    return st;
}

cphil_status cphil_policy_check_format(const cphil_st_file *f) {
    const char *fmt = cphil_st_meta(f, "format"), *ver = cphil_st_meta(f, "format_version");
    if (!fmt || strcmp(fmt, "cphil-policy") || !cphil_st_meta(f, "cphil_config"))
        return cphil_err(CPHIL_E_FORMAT,
                         "%s: not a cphil policy (no __metadata__ format \"cphil-policy\" and cphil_config)"
                         " (hint: make one with cphil train)", cphil_st_name(f));
    if (!ver || strcmp(ver, "1"))
        return cphil_err(CPHIL_E_FORMAT,
                         "%s: policy format_version %s%s%s, this cphil reads \"1\" (hint: a newer cphil wrote it; "
                         "use that version)", cphil_st_name(f), ver ? "\"" : "", ver ? ver : "missing", ver ? "\"" : "");
    return CPHIL_OK;
}

cphil_status cphil_policy_load_file(const cphil_st_file *f, cphil_model *m) {
    memset(m, 0, sizeof *m);
    cphil_status st = cphil_policy_check_format(f);
    if (st) return st;
    const char *cfg = cphil_st_meta(f, "cphil_config");
    cphil_model_config c;
    st = cphil_model_config_from_json(cfg, strlen(cfg), &c);
    if (st) return cphil_err_prefix(st, "%s: ", cphil_st_name(f));
    if ((st = cphil_model_init(m, &c))) return cphil_err_prefix(st, "%s: ", cphil_st_name(f));
    for (int i = 0; i < m->n_tensors; i++) {
        const cphil_tensor *t = &m->tensors[i];
        int64_t shape[CPHIL_TENSOR_MAX_DIMS];
        for (int d = 0; d < t->ndim; d++) shape[d] = t->shape[d];
        const cphil_st_tensor *s = cphil_st_find(f, t->name);
        if ((st = cphil_st_expect(f, s, t->name, t->ndim, shape)) ||
            (st = cphil_st_to_f32(s, m->params + t->offset, t->numel, true))) {
            cphil_model_free(m);
            return cphil_err_prefix(st, "%s: %s backbone: ", cphil_st_name(f), cphil_backbone_name(c.backbone));
        }
    }
    if (cphil_st_count(f) != (size_t)m->n_tensors) {
        for (size_t i = 0; i < cphil_st_count(f); i++) {
            const cphil_st_tensor *s = cphil_st_at(f, i);
            if (!cphil_model_find(m, s->name)) {
                cphil_model_free(m);
                return cphil_err(CPHIL_E_MISMATCH, "%s: tensor '%s' is not part of a %s policy with this config",
                                 cphil_st_name(f), s->name, cphil_backbone_name(c.backbone));
            }
        }
    }
    return CPHIL_OK;
}

cphil_status cphil_policy_load(const char *path, cphil_model *m) {
    memset(m, 0, sizeof *m);
    cphil_st_file *f;
    cphil_status st = cphil_st_open(path, 0, &f);
    if (st) return st;
    st = cphil_policy_load_file(f, m);
    cphil_st_close(f);
    return st;
}
