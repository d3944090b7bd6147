/* metrics.h — held-out evaluation of the six action heads: per-head accuracy and negative
 * log-likelihood of a policy's logits, beside two baselines fitted on training frames:
 *  - most frequent class: always predict the training set's most frequent class of each head
 *    (for the buttons: each button's more frequent state), likelihood = the training class
 *    frequencies (add-one smoothed; per-button press rates for the buttons);
 *  - repeat previous input: predict the previous frame's target of the same replay (neutral for
 *    a replay's first frame); likelihood = r on the repeated class and (1 - r)/(C - 1) on each
 *    other, r = the training rate at which the head repeats (per button for the buttons).
 *
 * Head accuracy: categorical heads argmax == target; buttons = all 8 right (sigmoid > 0.5), with
 * per-button accuracies beside. NLL in nats per frame: categorical -log softmax[target]; buttons
 * the sum over the 8 of the binary cross-entropy. Every frame counts once, weight 1.
 *
 * Logits of one frame are 81 floats in head order: buttons 8 | main_x 17 | main_y 17 | c_x 17 |
 * c_y 17 | shoulder 5 (docs/interfaces.md). A target frame is buttons[8] (0/1) and cls[5].
 * Deliberately not here: running the model (eval.c) and loss gradients (the nn module).
 */
#ifndef CPHIL_TRAIN_METRICS_H
#define CPHIL_TRAIN_METRICS_H

#include "core/core.h"
#include "model/model.h" /* head order, sizes and offsets; cphil_head_names */

#define CPHIL_TR_N_HEADS CPHIL_N_HEADS
#define CPHIL_N_CAT CPHIL_N_AXES

extern const char *const cphil_button_names[CPHIL_N_BUTTONS]; /* A B X Y Z L R D-up */
extern const uint8_t cphil_cat_neutral[CPHIL_N_CAT];         /* 8 8 8 8 0 */

/* Statistics of training targets that define the baselines. */
typedef struct cphil_baseline_fit {
    double frames;
    double press[CPHIL_N_BUTTONS];
    double cls[CPHIL_N_CAT][17];
    double btn_repeat[CPHIL_N_BUTTONS], cls_repeat[CPHIL_N_CAT]; /* repeat counts */
} cphil_baseline_fit;

/* One stream of accuracy / NLL sums for a predictor. */
typedef struct cphil_head_sums {
    double frames;
    double correct[CPHIL_TR_N_HEADS];
    double nll[CPHIL_TR_N_HEADS];
    double btn_correct[CPHIL_N_BUTTONS];
    double all_correct; /* frames where all six heads are right (the whole action) */
} cphil_head_sums;

typedef struct cphil_eval_acc {
    cphil_head_sums model, most_frequent, repeat_prev;
} cphil_eval_acc;

/* Per-head results (means). */
typedef struct cphil_head_report {
    double frames;
    double acc[CPHIL_TR_N_HEADS], nll[CPHIL_TR_N_HEADS], btn_acc[CPHIL_N_BUTTONS];
    double nll_total; /* sum of the six heads' NLL */
    double acc_all;   /* fraction of frames whose whole action (all six heads) is right */
} cphil_head_report;

void cphil_baseline_fit_init(cphil_baseline_fit *f);
/* Targets of n frames are read as btn + t*stride (8 bytes) and cls + t*stride (5 bytes): with an
 * array of cphil_target (src/game/controller.h) pass &t[0].buttons[0], &t[0].cls[0],
 * sizeof(cphil_target); with packed arrays btn n x 8 and cls n x 5 pass stride 0 (= packed). */
/* Add one replay's targets in order. Repeat rates use consecutive frames of this replay; the
 * first frame repeats "neutral". */
void cphil_baseline_fit_add(cphil_baseline_fit *f, const uint8_t *btn, const uint8_t *cls, size_t stride, size_t n);

void cphil_eval_acc_init(cphil_eval_acc *a);
/* Score n consecutive frames of one replay. logits: n x 81 (NULL to score only the baselines).
 * prev_btn/prev_cls: the targets of the frame before the first one (NULL: neutral). */
void cphil_eval_acc_add(cphil_eval_acc *a, const cphil_baseline_fit *fit, const float *logits,
                        const uint8_t *btn, const uint8_t *cls, size_t stride, size_t n,
                        const uint8_t *prev_btn, const uint8_t *prev_cls);
void cphil_head_sums_report(const cphil_head_sums *s, cphil_head_report *r);

/* Score one frame's logits against its targets (used by the trainer's validation pass too). */
void cphil_head_sums_add_logits(cphil_head_sums *s, const float *logits, const uint8_t *btn, const uint8_t *cls);
/* The same with the likelihood from `logits` and the decisions (accuracy) from `decide_logits`:
 * autoregressive heads score the teacher-forced logits (the joint NLL) and the greedy ones. */
void cphil_head_sums_add_logits2(cphil_head_sums *s, const float *logits, const float *decide_logits,
                                 const uint8_t *btn, const uint8_t *cls);

/* How often a controller state changes from one frame to the next within a replay: per head
 * (the buttons head changes when any of the 8 does) and of the whole state (any head). The
 * first frame of a replay starts the chain and counts no pair. A state is the six head values:
 * the button bits as a mask, then the five classes. */
typedef struct cphil_change_sums {
    double pairs;                              /* consecutive frame pairs counted */
    double changed[CPHIL_TR_N_HEADS], changed_all;
    uint8_t prev[CPHIL_TR_N_HEADS];
    bool have_prev;
} cphil_change_sums;
void cphil_change_begin_replay(cphil_change_sums *c);
void cphil_change_add(cphil_change_sums *c, const uint8_t state[CPHIL_TR_N_HEADS]);
/* Rates (changes / pairs; 0 when there is no pair). */
void cphil_change_rates(const cphil_change_sums *c, double rate[CPHIL_TR_N_HEADS], double *rate_all);
/* The state a policy chooses from one frame's logits (buttons sigmoid > 0.5, argmax of each
 * categorical head, the first on ties) and the state of a target frame. */
void cphil_decide_logits(const float *z, uint8_t out[CPHIL_TR_N_HEADS]);
void cphil_target_state(const uint8_t *btn, const uint8_t *cls, uint8_t out[CPHIL_TR_N_HEADS]);

/* The baseline predictions as logits (for tests and for scoring through the same code). */
void cphil_baseline_most_frequent_logits(const cphil_baseline_fit *f, float out[CPHIL_N_LOGITS]);
void cphil_baseline_repeat_logits(const cphil_baseline_fit *f, const uint8_t *prev_btn, const uint8_t *prev_cls,
                                  float out[CPHIL_N_LOGITS]);

#endif
