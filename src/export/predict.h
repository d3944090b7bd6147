/* predict.h — run a policy in window mode on dense inputs [N, W, E] (any floats, not only valid
 * embeddings): the reference side of every runtime comparison (`cphil predict`).
 *
 * The input layer does the dense product W @ x + b (the policy is run as a twin model whose
 * config has n_cont = E and n_ids = 0, sharing the parameters), so arbitrary inputs work; for a
 * real embedding this equals the gather that training and the agent use. Precision f32. The
 * backbone runs from a zero state over the W frames and the last frame's logits are kept, as
 * the ONNX graph does. The MLP sees the last frame only.
 */
#ifndef CPHIL_PREDICT_H
#define CPHIL_PREDICT_H

#include "core/core.h"
#include "model/model.h"

/* X [N, W, E] -> logits [N, CPHIL_N_LOGITS] (heads in order, docs/interfaces.md). W must equal
 * the policy's window for temporal backbones (any W >= 1 for the MLP). Errors: CPHIL_E_ARG
 * (shape), CPHIL_E_NOMEM. */
cphil_status cphil_predict_dense(const cphil_model *m, const float *X, int N, int W, int E, float *logits);

#endif

/* The dense windows [N, W, E] of replay `path` for port (1..4) that end at frame numbers A..B
 * (inclusive; frame numbers as in the replay, -123 first), W = the policy's window, each window
 * left-padded with the replay's first frame where it would start before it (window mode's
 * padding). The embedding layout is the one whose hash the policy carries (with or without the
 * previous-controller block); a policy from another layout is CPHIL_E_MISMATCH. *X is
 * cphil_alloc'd (caller frees). Errors: CPHIL_E_IO/FORMAT (replay), CPHIL_E_ARG (port not a
 * player, frames outside the replay). */
/* max_windows > 0 keeps at most that many windows, their ends spread evenly over A..B; A =
 * INT32_MIN and B = INT32_MAX stand for the replay's first and last frames. */
cphil_status cphil_predict_replay_windows(const cphil_model *m, const char *path, int port, int32_t A, int32_t B,
                                          int max_windows, float **X, int *N, int *W);
