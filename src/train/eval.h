/* eval.h — `cphil eval`: a policy's per-head accuracy and NLL on held-out replays beside the
 * most-frequent-class and repeat-previous-input baselines (metrics.h), fitted on the training
 * replays of the same split.
 *
 * How frames are scored: every frame of every held-out replay exactly once. The MLP sees each
 * frame alone. Temporal policies run windows of W frames stepping by W/2 and score the second
 * half of each window (the first window of a replay scores all its positions), so every scored
 * frame has at least W/2 frames of history (all of it up to W for the replay's first W frames),
 * at twice the cost of one pass. (The inference engine's window mode gives each frame its full
 * W-frame history; the difference is documented in docs/training.md.)
 */
#ifndef CPHIL_TRAIN_EVAL_H
#define CPHIL_TRAIN_EVAL_H

#include "model/model.h"
#include "train/metrics.h"
#include "train/train_data.h"

typedef struct cphil_eval_result {
    cphil_head_report model, most_frequent, repeat_prev;
    int files;
    uint64_t frames;
    double seconds;
    uint64_t fit_frames; /* training frames the baselines were fitted on */
} cphil_eval_result;

/* Score policy m on d's held-out replays (held_out=false: on every replay of d). batch: windows
 * per forward call. progress may be NULL. */
cphil_status cphil_eval_policy(const cphil_model *m, cphil_tr_data *d, bool held_out, int batch, bool quiet,
                               cphil_eval_result *out);

#endif
