/* policy_io.h — the policy file as the export path reads it, and random policies.
 *
 * A policy file is what src/model's cphil_policy_save writes (safetensors, config JSON in
 * __metadata__["cphil_config"]); cphil_export_load_policy is cphil_policy_load that also
 * accepts "random:" specs (saving is cphil_policy_save).
 *
 * Random policies ("random:BACKBONE[:key=value,...]") are for tests, benchmarks and trying the
 * export path without training; keys: E n_cont n_ids hidden layers window state expand conv
 * heads mlp (sizes joined by 'x', e.g. mlp=512x512) seed layout (default|prev: the replay
 * embedding's E, n_cont, n_ids and layout hash). Unset keys take the seed's defaults
 * (cphil_model_config_default) and E=64 (n_cont=E, n_ids=0). Precision is f32.
 */
#ifndef CPHIL_POLICY_IO_H
#define CPHIL_POLICY_IO_H

#include "core/core.h"
#include "model/model.h"

/* Load path (or a "random:" spec) into m (initialised here; free with cphil_model_free).
 * Errors: CPHIL_E_IO, CPHIL_E_FORMAT (bad file, missing config), CPHIL_E_MISMATCH (a tensor
 * missing or misshapen), CPHIL_E_NUMERIC, CPHIL_E_ARG (bad random spec). */
cphil_status cphil_export_load_policy(const char *path, cphil_model *m);

#endif
