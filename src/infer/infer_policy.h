/* infer_policy.h — policy files for the inference engine: open any cphil policy (safetensors
 * with "cphil_config" in __metadata__; f32 as the trainer writes it, or the bf16 / int8 files
 * `cphil quantize` writes), detect backbone, sizes, window, embedding layout (n_cont, n_ids, E,
 * layout hash) and weight precision from it, check every tensor's shape, and build engines.
 *
 * Quantized files (written by cphil_infer_policy_write_quantized) keep every tensor name of the
 * f32 file. bf16: matrices stored BF16, vectors F32. int8: every matrix of a Linear stored I8
 * [out, in] (symmetric, q in [-127, 127]) with "<name>_scale" F32 [out] (per output channel:
 * w = q * scale) and, for static activation quantization, "<name>_act_scale" F32 [1] (the input's
 * calibrated scale: x_q = clamp(round(x / s))); vectors and the Mamba conv/A_log/D stay F32.
 * __metadata__ "cphil_quant" = {"weights":"int8"|"bf16","activations":"dynamic"|"static"}.
 * A malformed file, a tensor of the wrong shape or dtype, a missing tensor or a non-finite
 * weight is refused with a message naming the file and the tensor.
 */
#ifndef CPHIL_INFER_POLICY_H
#define CPHIL_INFER_POLICY_H

#include "infer/infer.h"

typedef struct cphil_infer_policy cphil_infer_policy;

cphil_status cphil_infer_policy_open(const char *path, cphil_infer_policy **out);
void cphil_infer_policy_close(cphil_infer_policy *p);
const cphil_infer_spec *cphil_infer_policy_spec(const cphil_infer_policy *p);
const cphil_model_config *cphil_infer_policy_config(const cphil_infer_policy *p);
/* Precision of the stored weights (f32, bf16 or int8). */
cphil_wtype cphil_infer_policy_precision(const cphil_infer_policy *p);
/* True when an int8 file carries static activation scales. */
bool cphil_infer_policy_is_static(const cphil_infer_policy *p);
const char *cphil_infer_policy_path(const cphil_infer_policy *p);
/* Build an engine model with `precision` weights (an int8 file builds only int8; f32 and bf16
 * files build any precision, quantizing at load). */
cphil_status cphil_infer_policy_build(const cphil_infer_policy *p, cphil_wtype precision, cphil_infer_model **out);
/* The lookup over the file's tensors (for cphil_infer_model_build); ctx = the policy. */
cphil_status cphil_infer_policy_lookup(void *ctx, const char *name, cphil_infer_tensor *out);

/* Write a quantized copy of an f32 or bf16 policy: dt CPHIL_W_BF16 or CPHIL_W_I8. For int8,
 * act_names/act_scales (n_act entries, may be 0) give static activation scales per matrix name
 * ("heads.*.0.weight" stands for the six first head layers). */
cphil_status cphil_infer_policy_write_quantized(const cphil_infer_policy *p, const char *path, cphil_wtype dt,
                                                int n_act, const char *const *act_names, const float *act_scales);

#endif
