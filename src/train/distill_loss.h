/* distill_loss.h — the knowledge-distillation loss and its gradient with respect to the
 * student's logits (Hinton et al. 2015, "Distilling the Knowledge in a Neural Network").
 *
 * Per frame, with student logits z (81, head order of metrics.h), teacher probabilities p made
 * at temperature T (buttons sigmoid(z_teacher/T), categorical heads softmax(z_teacher/T)) and
 * the human's targets y:
 *
 *   soft = sum_{b=1..8} KL_Bern(p_b || sigmoid(z_b / T)) + sum_{h=1..5} KL(p_h || softmax(z_h / T))
 *   hard = sum_{b=1..8} BCE(z_b, y_b)                    + sum_{h=1..5} CE(z_h, y_h)
 *   loss = alpha * T^2 * soft + (1 - alpha) * hard
 *
 * and the batch loss is the mean over frames. Sums (not means) over the 8 buttons, as in the
 * training loss's per-head NLL. The T^2 keeps the soft gradients' scale independent of T
 * (d soft / dz = (q_T - p) / T). alpha = 1 ignores the human targets; alpha = 0 ignores the
 * teacher (the plain imitation loss without label smoothing or positive weights).
 * Deliberately not here: the student's forward/backward (the nn module), the soft-label file.
 */
#ifndef CPHIL_TRAIN_DISTILL_LOSS_H
#define CPHIL_TRAIN_DISTILL_LOSS_H

#include "train/metrics.h"

typedef struct cphil_distill_terms {
    double loss, soft, hard; /* means over frames */
} cphil_distill_terms;

/* z, p: n x 81; btn: n x 8; cls: n x 5. dz (n x 81, may be NULL) receives d(mean loss)/dz. */
void cphil_distill_loss(const float *z, const float *p, const uint8_t *btn, const uint8_t *cls, size_t n,
                        double T, double alpha, float *dz, cphil_distill_terms *out);

/* Teacher probabilities at temperature T from teacher logits (81 -> 81). */
void cphil_soft_probs(const float *z_teacher, double T, float *p);

#endif
