/* cu_train.h — GPU kernels around the backbone (cu_train.cu): gather input layer, policy loss,
 * gradient-norm clipping + AdamW, TBPTT carry; and the host-built id index that makes the input
 * layer's backward deterministic. Device pointers unless said otherwise; enqueued on the
 * context's stream; nothing allocates or synchronizes (graph-capturable).
 */
#ifndef CPHIL_CU_TRAIN_H
#define CPHIL_CU_TRAIN_H

#include "kernels/cuda/cu.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- the id index: (id, frame) pairs sorted by id, cut into chunks of at most CHUNK frames ----
 * Built on the host from the batch's ids (cphil_cu_id_index_build) into one int32 array that is
 * copied to the GPU with the batch; the views below point into the device copy. */
#define CPHIL_CU_ID_CHUNK 256
typedef struct cphil_cu_id_index {
    const int32_t *n_chunks;    /* [1] live chunks */
    const int32_t *n_rows;      /* [1] distinct ids present */
    const int32_t *chunk_begin; /* [cap_chunks + 1] offsets into frames */
    const int32_t *row_id;      /* [E - n_cont] the distinct ids, increasing */
    const int32_t *row_chunk;   /* [E - n_cont + 1] chunk range of each row */
    const int32_t *frames;      /* [M * n_ids] frame index of each pair, grouped by id, frames increasing */
} cphil_cu_id_index;
int cphil_cu_id_index_max_chunks(int M, int n_ids, int E, int n_cont);
/* int32 elements of the packed index for this shape. */
size_t cphil_cu_id_index_ints(int M, int n_ids, int E, int n_cont);
/* Fixed parts of the host's counting sort (the result does not depend on the thread count). */
#define CPHIL_CU_ID_PARTS 16
/* int32 elements of the host scratch cphil_cu_id_index_build needs: CPHIL_CU_ID_PARTS (E + 1). */
size_t cphil_cu_id_index_scratch_ints(int E);
/* Host: build the packed index of ids [M, n_ids] (absolute columns in [n_cont, E), checked: an id
 * out of range is CPHIL_E_FORMAT) into `packed` (cphil_cu_id_index_ints elements); `count` is
 * host scratch of cphil_cu_id_index_scratch_ints(E) ints. Runs on cphil_parallel's threads. */
cphil_status cphil_cu_id_index_build(int M, int n_ids, int E, int n_cont, const int32_t *ids, int32_t *packed,
                                     int32_t *count);
/* Device views into a packed index at `dev` (same shape). */
void cphil_cu_id_index_view(int M, int n_ids, int E, int n_cont, const int32_t *dev, cphil_cu_id_index *ix);

/* ---- input layer (cphil_nn_input_*) ---------------------------------------------------------- */
void cphil_cu_input_forward(cphil_cu *cu, cphil_precision prec, int M, int H0, int E, int n_cont, int n_ids,
                            const float *cont, const int32_t *ids, const float *W, const float *b, float *WT,
                            float *y);
/* dW[:, :n_cont] += dy^T cont; dW[:, id] += sum of dy over the frames holding id; db += colsum.
 * partial: cphil_cu_id_index_max_chunks(...) * H0 floats of scratch. */
void cphil_cu_input_backward(cphil_cu *cu, cphil_precision prec, int M, int H0, int E, int n_cont, int n_ids,
                             const float *cont, const cphil_cu_id_index *ix, const float *dy, float *dW,
                             float *db, float *partial);

/* ---- loss (cphil_nn_policy_loss) -------------------------------------------------------------- */
typedef struct cphil_cu_loss_params {
    float pos_weight[CPHIL_N_BUTTONS];
    float button_weight, label_smoothing;
} cphil_cu_loss_params;
size_t cphil_cu_loss_scratch_bytes(int M);
/* dlogits [M, 81] overwritten; out[0] = loss, out[1..6] = per-head terms, out[7] = weight sum
 * (device floats). buttons [M, 8], cls [M, 5] bytes; weight [M] or NULL. */
void cphil_cu_policy_loss(cphil_cu *cu, int M, const float *logits, const uint8_t *buttons, const uint8_t *cls,
                          const float *weight, const cphil_cu_loss_params *lp, float *dlogits, float *out,
                          void *scratch);

/* ---- clip + AdamW ------------------------------------------------------------------------------- */
/* Step-varying values, computed on the host exactly as adamw.c does and copied to the device
 * before the step (so a captured graph reads them from memory). */
typedef struct cphil_cu_adamw_params {
    float step_size, bc2s, decay, beta1, beta2, eps;
} cphil_cu_adamw_params;
size_t cphil_cu_adamw_scratch_bytes(void);
/* Global norm of grads (double, fixed order) -> clip coefficient -> AdamW on every float. A
 * non-finite norm updates nothing. ap_dev is a device pointer. */
void cphil_cu_adamw_step(cphil_cu *cu, size_t n, float *params, float *grads, float *m, float *v,
                         float max_grad_norm, const cphil_cu_adamw_params *ap_dev, void *scratch);
/* Device address of the norm (double) inside the scratch, to read it back with the loss. */
const double *cphil_cu_adamw_norm_ptr(const void *scratch);

/* ---- TBPTT carry ---------------------------------------------------------------------------------- */
void cphil_cu_carry_reset(cphil_cu *cu, int blocks, int B, int H, const uint8_t *reset, float *carry);
void cphil_cu_last_step(cphil_cu *cu, int B, int T, int H, const float *src, float *dst);

#ifdef __cplusplus
}
#endif
#endif
