/* policy_io.c — policy safetensors write/read over the tensor table (see policy_io.h). */
#include "train/policy_io.h"

#include "core/safetensors.h"

#include <string.h>

cphil_status cphil_train_policy_write(const cphil_model *m, const char *path, const char *train_meta_json) {
    cphil_st_writer *w = NULL;
    cphil_status s = cphil_st_writer_new(&w);
    if (s) return s;
    char cfg[4096];
    size_t n;
    if ((s = cphil_model_config_to_json(&m->cfg, cfg, sizeof cfg, &n)) != CPHIL_OK) goto out;
    if ((s = cphil_st_writer_meta(w, "format", "cphil-policy")) != CPHIL_OK) goto out;
    if ((s = cphil_st_writer_meta(w, "cphil_config", cfg)) != CPHIL_OK) goto out;
    if (train_meta_json && (s = cphil_st_writer_meta(w, "cphil_train", train_meta_json)) != CPHIL_OK) goto out;
    for (int i = 0; i < m->n_tensors; i++) {
        const cphil_tensor *t = &m->tensors[i];
        int64_t shape[CPHIL_TENSOR_MAX_DIMS];
        for (int d = 0; d < t->ndim; d++) shape[d] = t->shape[d];
        if ((s = cphil_st_writer_add(w, t->name, CPHIL_DT_F32, t->ndim, shape, m->params + t->offset)) != CPHIL_OK)
            goto out;
    }
    s = cphil_st_writer_write(w, path);
out:
    cphil_st_writer_free(w);
    return s;
}

cphil_status cphil_train_policy_read(const char *path, cphil_model *m) {
    memset(m, 0, sizeof *m);
    cphil_st_file *f = NULL;
    cphil_status s = cphil_st_open(path, 0, &f);
    if (s) return s;
    const char *cfg = cphil_st_meta(f, "cphil_config");
    if (!cfg) {
        s = cphil_err(CPHIL_E_FORMAT, "%s: not a cphil policy (no cphil_config in __metadata__)", path);
        goto out;
    }
    cphil_model_config c;
    if ((s = cphil_model_config_from_json(cfg, strlen(cfg), &c)) != CPHIL_OK) {
        cphil_err_prefix(s, "%s: cphil_config: ", path);
        goto out;
    }
    if ((s = cphil_model_init(m, &c)) != CPHIL_OK) goto out;
    for (int i = 0; i < m->n_tensors; i++) {
        const cphil_tensor *t = &m->tensors[i];
        int64_t shape[CPHIL_TENSOR_MAX_DIMS];
        for (int d = 0; d < t->ndim; d++) shape[d] = t->shape[d];
        const cphil_st_tensor *st = cphil_st_find(f, t->name);
        if ((s = cphil_st_expect(f, st, t->name, t->ndim, shape)) != CPHIL_OK) goto out;
        if ((s = cphil_st_to_f32(st, m->params + t->offset, t->numel, true)) != CPHIL_OK) {
            cphil_err_prefix(s, "%s: tensor %s: ", path, t->name);
            goto out;
        }
    }
out:
    cphil_st_close(f);
    if (s) cphil_model_free(m);
    return s;
}
