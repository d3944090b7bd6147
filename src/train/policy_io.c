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
    if ((s = cphil_st_writer_meta(w, "format_version", "1")) != CPHIL_OK) goto out;
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

cphil_status cphil_train_policy_read(const char *path, cphil_model *m) { return cphil_policy_load(path, m); }
