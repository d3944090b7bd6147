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
    /* How often the controller state changes from the previous frame of the same replay
     * (metrics.h, cphil_change_sums): the policy's chosen state (what the agent would press,
     * argmax / sigmoid > 0.5) and the human's; per head and of the whole state. */
    double change_model[CPHIL_TR_N_HEADS], change_model_all;
    double change_human[CPHIL_TR_N_HEADS], change_human_all;
} cphil_eval_result;

/* Run policy m over every frame of d's held-out replays (held_out=false: the other list) with
 * the scoring scheme above, calling fn(user, replay, frame, logits[81]) once per frame, in
 * order within each replay (replays in order). Returns fn's first non-OK status.
 * Autoregressive heads: the logits are the greedy ones (each head conditioned on the policy's
 * own choices for the heads before it: what the agent decides). cphil_eval_policy scores their
 * likelihood on the teacher-forced logits instead (the joint NLL) and their accuracy on the
 * greedy ones. */
typedef cphil_status (*cphil_frame_logits_fn)(void *user, int replay, size_t frame, const float *logits);
cphil_status cphil_policy_foreach_frame(const cphil_model *m, cphil_tr_data *d, bool held_out, int batch, bool quiet,
                                        const char *label, cphil_frame_logits_fn fn, void *user);

/* Where the functions below run the policy: -1 = the CPU (default), N = GPU N (needs the CUDA
 * build; a failure to open it is returned by the first call). A process-wide choice made once by
 * the command line (--device), like cphil_threads_set. */
void cphil_eval_use_device(int gpu);

/* Score policy m on d's held-out replays (held_out=false: on every replay of d). batch: windows
 * per forward call. progress may be NULL. */
cphil_status cphil_eval_policy(const cphil_model *m, cphil_tr_data *d, bool held_out, int batch, bool quiet,
                               cphil_eval_result *out);

/* Agreement of m's decisions (buttons sigmoid > 0.5, argmax of each categorical head) with
 * those of `other` on the same frames: per head, and of the whole action (all six heads). */
cphil_status cphil_eval_agreement(const cphil_model *m, const cphil_model *other, cphil_tr_data *d, bool held_out,
                                  int batch, bool quiet, double agree[CPHIL_TR_N_HEADS], double *agree_all);

#endif
