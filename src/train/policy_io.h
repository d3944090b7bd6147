/* policy_io.h — the policy file as the trainer writes and `cphil eval` reads it: safetensors
 * with every tensor of the model's tensor table (f32, PyTorch names and shapes) and, in
 * __metadata__, "cphil_config" (the model config JSON, src/model/model.h) and "cphil_train" (a
 * JSON object describing the training run). Reading validates every tensor's shape against the
 * table built from the stored config and refuses non-finite weights.
 * The file is exactly src/model/'s (cphil_policy_save: "format", "format_version", "cphil_config")
 * plus the "cphil_train" key, which cphil_policy_save has no argument for; reading is
 * cphil_policy_load.
 */
#ifndef CPHIL_TRAIN_POLICY_IO_H
#define CPHIL_TRAIN_POLICY_IO_H

#include "model/model.h"

cphil_status cphil_train_policy_write(const cphil_model *m, const char *path, const char *train_meta_json);
/* Load a policy into *m (initialised here; free with cphil_model_free). */
cphil_status cphil_train_policy_read(const char *path, cphil_model *m);

#endif
