/* policy_gpu.h — the policy forward/backward on the GPU (policy_gpu.c): the twin of
 * src/model/policy_impl.h over the same tensor table. Device pointers; enqueued on the context's
 * stream. Internal to src/gpu/. */
#ifndef CPHIL_POLICY_GPU_H
#define CPHIL_POLICY_GPU_H

#include "kernels/cuda/cu.h"
#include "kernels/cuda/cu_train.h"
#include "model/model.h"

#define CPHIL_GPU_MAXL 64

/* The workspace: the CPU workspace's buffers (same names, same sizes) in one device block, plus
 * the GPU layers' scratch for deterministic sums. */
typedef struct cphil_gpu_ws {
    cphil_cu *cu;
    cphil_model_config cfg;
    int B, T, M;
    float *block;
    size_t n_floats;
    /* tensor offsets (floats from the parameter block's start) */
    size_t o_in_w, o_in_b, o_nf_w, o_nf_b;
    size_t o_head[CPHIL_N_HEADS][4];
    size_t o_layer[CPHIL_GPU_MAXL][12];
    int head_off[CPHIL_N_HEADS];
    /* common */
    float *WT, *x0, *dx0, *hpre, *hact, *dhid, *dhpre, *logits, *dlogits, *dfeat;
    float *hw0, *hb0, *dhw0, *dhb0, *feat, *id_partial;
    float *carry; /* lstm/gru TBPTT state on the device (NULL = zero state) */
    /* ranks (dist_nccl.h): called while the backward is enqueued, each time the gradients
     * [lo, n_floats) are final (heads, backbone layers last to first, input layer: lo decreasing,
     * 0 last), so their exchange can be enqueued on a second stream (NULL = no calls) */
    void (*grads_ready)(void *user, size_t lo);
    void *grads_user;
    /* mlp */
    float *mz[CPHIL_MAX_MLP_LAYERS], *ma[CPHIL_MAX_MLP_LAYERS], *md0, *md1;
    /* lstm / gru */
    float *ry[CPHIL_GPU_MAXL], *rgates[CPHIL_GPU_MAXL], *rcs[CPHIL_GPU_MAXL], *rhprev[CPHIL_GPU_MAXL],
        *rc0[CPHIL_GPU_MAXL], *rgh[CPHIL_GPU_MAXL];
    float *rd0, *rd1, *rdG, *rdGh, *rdh, *rdc;
    /* residual stream */
    float *xs[CPHIL_GPU_MAXL + 1], *nu[CPHIL_GPU_MAXL], *nr[CPHIL_GPU_MAXL], *nm[CPHIL_GPU_MAXL], *frstd, *fmean,
        *tmp, *dstream, *dnu, *norm_scratch;
    /* mamba */
    cphil_mamba_saved ms[CPHIL_GPU_MAXL];
    cphil_mamba_scratch mw;
    float *mextra;
    /* attention */
    float *qkv[CPHIL_GPU_MAXL], *P[CPHIL_GPU_MAXL], *att[CPHIL_GPU_MAXL], *xmid[CPHIL_GPU_MAXL],
        *ln2[CPHIL_GPU_MAXL], *m2[CPHIL_GPU_MAXL], *r2[CPHIL_GPU_MAXL], *f1[CPHIL_GPU_MAXL], *f1a[CPHIL_GPU_MAXL],
        *rope, *datt, *dqkv, *dP, *df1, *df1a;
} cphil_gpu_ws;

cphil_status cphil_gpu_ws_create(cphil_cu *cu, const cphil_model *m, int B, int T, cphil_gpu_ws **out);
void cphil_gpu_ws_free(cphil_gpu_ws *w);
size_t cphil_gpu_ws_bytes(const cphil_gpu_ws *w);
/* Forward over the batch (cont [M, n_cont], ids [M, n_ids] on the device); returns the device
 * logits [M, 81] (in the workspace). P: the device parameter block. */
const float *cphil_gpu_ws_forward(cphil_gpu_ws *w, const float *P, const float *cont, const int32_t *ids);
/* Backward of the last forward from w->dlogits: ADDS into G (device, laid out like P); calls
 * w->grads_ready (if set) at the stage boundaries of the CPU backward (policy_impl.h). */
void cphil_gpu_ws_backward(cphil_gpu_ws *w, const float *P, const float *cont, const cphil_cu_id_index *ix,
                        float *G);

#endif
