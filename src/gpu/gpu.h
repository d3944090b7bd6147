/* gpu.h — the GPU training path as the rest of cphil sees it, with no CUDA type in sight: the
 * CLI and the trainer setup include this in every build. With `make CUDA=1` it is implemented by
 * the src/gpu/ files over src/kernels/cuda/; in the plain build by gpu_none.c, which answers every
 * request with CPHIL_E_UNSUPPORTED and "built without CUDA".
 *
 * The GPU policy is the GPU twin of src/train/policy_train.c: the same options, the same
 * checkpoint sections (params, adamw_m, adamw_v, adamw_step, carry: host mirrors, refreshed from
 * the GPU when the trainer asks for them and uploaded again before the next step), the same
 * policy file. So a checkpoint written on the GPU resumes on the CPU and the other way round.
 */
#ifndef CPHIL_GPU_H
#define CPHIL_GPU_H

#include "model/model.h"
#include "train/policy_train.h"
#include "train/trainer.h"

#include <stdbool.h>
#include <stddef.h>

/* true when this binary has the CUDA path compiled in. */
bool cphil_gpu_compiled(void);
/* Parse a --device value: "cpu" -> -1, "cuda" -> 0, "cuda:N" -> N. CPHIL_E_ARG otherwise. */
cphil_status cphil_device_parse(const char *s, int *gpu_index);
/* A human-readable line per GPU (name, memory, compute capability, driver), or why there is none
 * ("built without CUDA", "no CUDA driver", "0 devices"). Returns the number of GPUs found. */
int cphil_gpu_describe_all(char *buf, size_t n);
/* Check that `device` can be used by this build on this machine (CPHIL_E_UNSUPPORTED with a
 * message saying which of the two is missing and what to do). */
cphil_status cphil_gpu_check(int device);

typedef struct cphil_gpu_policy cphil_gpu_policy;
/* The GPU twin of cphil_tr_policy_create: the model initialised from o->seed on the host (the
 * same bits as the CPU trainer), copied to GPU `device`, with the workspace, gradients and AdamW
 * moments there. Out of GPU memory: CPHIL_E_NOMEM naming the size and the batch. */
cphil_status cphil_gpu_policy_create(int device, const cphil_model_config *cfg,
                                     const cphil_tr_policy_opts *o, cphil_gpu_policy **out);
void cphil_gpu_policy_free(cphil_gpu_policy *p);
/* The host copy of the model (parameters as of the last sync: after a checkpoint or policy save). */
cphil_model *cphil_gpu_policy_model(cphil_gpu_policy *p);
/* One line naming the GPU in use. */
const char *cphil_gpu_policy_device(const cphil_gpu_policy *p);
extern const cphil_tr_model_ops cphil_gpu_policy_ops;
/* Benchmark: stage one batch, run `warmup` steps, then time `steps` whole steps (batch copy,
 * forward, loss, backward, AdamW; one graph launch each) with CUDA events: gpu_ms[steps]. */
cphil_status cphil_gpu_policy_time(cphil_gpu_policy *p, const cphil_tr_batch *tb, double lr, int warmup, int steps,
                                   double *gpu_ms);
/* Device memory held by the policy (parameters, gradients, moments, workspace, batch). */
size_t cphil_gpu_policy_device_bytes(const cphil_gpu_policy *p);

/* Forward only, on the GPU, of a loaded policy for batches of B windows of T frames (eval,
 * soft-labels, agreement): host inputs cont [B*T, n_cont], ids [B*T, n_ids] (checked against
 * [n_cont, E)); *logits [B*T, 81] host memory owned by the object, valid until the next run. */
typedef struct cphil_gpu_forward cphil_gpu_forward;
cphil_status cphil_gpu_forward_create(int device, const cphil_model *m, int B, int T, cphil_gpu_forward **out);
cphil_status cphil_gpu_forward_run(cphil_gpu_forward *f, const float *cont, const int32_t *ids, const float **logits);
void cphil_gpu_forward_free(cphil_gpu_forward *f);

#endif
