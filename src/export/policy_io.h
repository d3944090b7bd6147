/* policy_io.h — the policy file as the export path reads it, and random policies.
 *
 * A policy file is what src/model's cphil_policy_save writes (safetensors, config JSON in
 * __metadata__["cphil_config"]); cphil_export_load_policy is cphil_policy_load that also
 * accepts "random:" specs (saving is cphil_policy_save).
 *
 * Quantized policy files (what `cphil quantize` writes, src/infer/infer_policy.h) load through
 * cphil_export_load_policy_quant as f32: bf16 weights exactly; int8 matrices as q * scale per
 * row, which every int8 path here (the ONNX exporter, cphil's int8 engine) re-quantizes per row
 * with scale max|w| / 127 back to the same q (the file's rows reach |q| = 127, so the scale
 * comes back to within a rounding of the stored one). The int8 activation mode and, for static
 * files, the stored activation scales are kept (cphil_policy_quant_amax).
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

typedef enum cphil_policy_weights {
    CPHIL_POLICY_W_F32 = 0,      /* a trained (or random:) policy */
    CPHIL_POLICY_W_BF16,         /* cphil quantize --precision bf16 */
    CPHIL_POLICY_W_INT8_DYNAMIC, /* cphil quantize --mode dynamic */
    CPHIL_POLICY_W_INT8_STATIC   /* cphil quantize --mode static: activation scales stored */
} cphil_policy_weights;

typedef struct cphil_policy_quant {
    cphil_policy_weights weights;
    int n;                                /* int8 static: matrices with a stored input scale */
    char (*names)[CPHIL_TENSOR_NAME_MAX]; /* their weight names */
    float *act_scale;                     /* [n] */
    bool has_ids;                         /* one-hot columns: input_proj's input reaches 1 */
} cphil_policy_quant;

/* cphil_export_load_policy for any policy file, quantized ones included (above); q receives
 * what the file's weights are (free with cphil_policy_quant_free; a zeroed q is fine). */
cphil_status cphil_export_load_policy_quant(const char *path, cphil_model *m, cphil_policy_quant *q);
void cphil_policy_quant_free(cphil_policy_quant *q);
/* "f32", "bf16", "int8 dynamic", "int8 static". */
const char *cphil_policy_weights_name(cphil_policy_weights w);
/* cphil_export_amax_fn over a static int8 file's scales (ctx = the cphil_policy_quant): the
 * max |input| the scale stands for (act_scale * 127; for input_proj at least 1 when the layout
 * has one-hot columns, so that a one-hot 1 is representable in a dense graph); false for a
 * matrix the file gives no scale (the engine quantizes its input per call). */
bool cphil_policy_quant_amax(void *ctx, const char *weight_name, float *amax);

#endif
