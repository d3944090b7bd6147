/* policy_train.h — binds a cphil policy (src/model/model.h: parameters, workspace, forward,
 * loss, backward, AdamW) to the training loop's model table (cphil_tr_model_ops).
 *
 * Checkpoint sections: "params" (the parameter block), "adamw_m", "adamw_v" (moments, same
 * layout), "adamw_step" (u64 little-endian), and with TBPTT "carry" (the recurrent state of every
 * batch slot; with several ranks, of every slot of the global batch, as one process lays it out). Distillation: when a batch carries teacher probabilities (batch->soft), the loss
 * is the distillation loss of distill_loss.h and its gradient is fed to the backward.
 */
#ifndef CPHIL_TRAIN_POLICY_TRAIN_H
#define CPHIL_TRAIN_POLICY_TRAIN_H

#include "model/model.h"
#include "train/trainer.h"

typedef struct cphil_tr_policy_opts {
    uint64_t seed;
    double weight_decay, max_grad_norm, label_smoothing, button_weight;
    int B, T;          /* training batch shape */
    bool tbptt;        /* carry recurrent state between consecutive batches, per slot */
    int threads;
    double distill_T, distill_alpha; /* distillation temperature and alpha (when batches carry soft labels) */
    /* Data-parallel ranks (docs/distributed.md; NULL = one process): each step the ranks sum
     * their frame weights, scale their gradients by local / global weight, sum the gradient
     * block (and the loss) over the ranks, then every rank clips and updates the same way, so N
     * ranks with batch B compute what one process with batch N x B computes. */
    cphil_dist *dist;
    /* CPU ranks: > 0 sums the gradient block in buckets of at least this many floats, each started
     * as soon as the backward has finished it (the layers finish from the last to the first) and
     * all waited for before the optimizer step; 0 = one sum after the backward. */
    size_t bucket_floats;
    /* GPU policy only: exchange the gradients through NCCL (src/gpu/dist_nccl.c) over dist's
     * ranks. Set for every GPU run with ranks; also with one rank (dist NULL) to run the path a
     * multi-GPU run takes, which gives the plain GPU trainer's bits. */
    bool nccl;
} cphil_tr_policy_opts;

void cphil_tr_policy_opts_default(cphil_tr_policy_opts *o);

typedef struct cphil_tr_policy cphil_tr_policy;
/* Build the model for cfg, initialise it from seed, and allocate the training workspace and the
 * optimizer. */
cphil_status cphil_tr_policy_create(const cphil_model_config *cfg, const cphil_tr_policy_opts *o,
                                    cphil_tr_policy **out);
void cphil_tr_policy_free(cphil_tr_policy *p);
cphil_model *cphil_tr_policy_model(cphil_tr_policy *p);
extern const cphil_tr_model_ops cphil_tr_policy_ops;
/* The trainer's rank_state hook (trainer.h) for TBPTT with several ranks: gather = true collects
 * every rank's carried state into the "carry" section (a collective: every rank calls it);
 * false deals a loaded section's slots back to this rank. Nothing to do in one process. */
cphil_status cphil_tr_policy_rank_state(void *self, bool gather);

#endif
