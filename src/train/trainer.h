/* trainer.h — the training loop of `cphil train` and `cphil distill`: epochs over a batch
 * source, optimizer steps through a model, validation with per-head accuracy, best-epoch
 * tracking and early stopping, the full checkpoint (model state sections + trainer state + data
 * position) written atomically, exact resume, Ctrl-C and NaN handling, curves.
 *
 * The loop talks to the model and to the data through two small tables of functions
 * (cphil_tr_model_ops, cphil_tr_data_ops): src/train/model_adapter.c binds them to src/model/
 * and src/data/, and tests bind them to a toy model, so the loop's behaviour (resume bit-exact,
 * NaN stop, best files) is tested on its own. Library code: it never prints; progress and the
 * per-epoch report go through the optional callbacks the CLI installs.
 * Deliberately not here: the model maths, batching, option parsing and printing.
 */
#ifndef CPHIL_TRAIN_TRAINER_H
#define CPHIL_TRAIN_TRAINER_H

#include "dist/dist.h"
#include "train/ckpt.h"
#include "train/curves.h"
#include "train/metrics.h"

#include <signal.h>

/* One batch: B slots x T steps. Targets of (slot b, step t) are btn/cls at index b*T + t with
 * byte stride tstride (see metrics.h). reset[b] = 1 when slot b starts a new replay (TBPTT;
 * NULL = every slot starts fresh, the window mode). */
typedef struct cphil_tr_batch {
    int B, T;
    const float *cont;        /* [B, T, n_cont] model inputs (see docs/interfaces.md) */
    const int32_t *ids;       /* [B, T, n_ids] absolute dense columns */
    const void *inputs;       /* other model input views (tests' toy models) */
    const uint8_t *btn, *cls; /* targets */
    size_t tstride;
    const float *weight;      /* [B*T] frame weights (NULL = 1); 0 marks padding */
    const uint8_t *reset;     /* [B] or NULL */
    const float *soft;        /* distillation: teacher probabilities [B*T*81] or NULL */
} cphil_tr_batch;

typedef struct cphil_tr_data_ops {
    /* Start epoch `epoch` (0-based); the order must depend only on (seed, epoch). */
    cphil_status (*begin_epoch)(void *self, uint64_t seed, int epoch, size_t *n_batches);
    /* The next batch of the current epoch (valid until the next call). */
    cphil_status (*next)(void *self, cphil_tr_batch *out);
    /* Validation batches: begin, then next until *done. */
    cphil_status (*val_begin)(void *self, size_t *n_batches);
    cphil_status (*val_next)(void *self, cphil_tr_batch *out);
    size_t frames_per_batch; /* for frames/s */
} cphil_tr_data_ops;

/* What a section's bytes must satisfy when a checkpoint is loaded (anything else is refused). */
enum {
    CPHIL_TR_SEC_BYTES = 0,     /* opaque bytes: only the size is checked */
    CPHIL_TR_SEC_F32_FINITE,    /* f32 values, none NaN or infinite (parameters, first moments, state) */
    CPHIL_TR_SEC_F32_NONNEG,    /* f32 values, finite and >= 0 (AdamW second moments) */
    CPHIL_TR_SEC_I64_NONNEG     /* one host-order int64 >= 0 (a step counter) */
};

typedef struct cphil_tr_section {
    const char *name;
    void *data;
    size_t size;
    int check; /* CPHIL_TR_SEC_* */
} cphil_tr_section;

/* Largest epoch count the loop accepts (in options and in a checkpoint). */
#define CPHIL_TR_MAX_EPOCHS 1000000

typedef struct cphil_tr_model_ops {
    /* Forward, backward and one optimizer step at learning rate lr; returns the batch loss
     * (before the update). Must be deterministic. */
    cphil_status (*train_step)(void *self, const cphil_tr_batch *b, double lr, double *loss);
    /* Forward only: logits [B*T*81] and the batch loss (same formula as train_step). */
    cphil_status (*eval_batch)(void *self, const cphil_tr_batch *b, float *logits, double *loss);
    /* Everything that must be saved for an exact resume (parameters, optimizer moments and step,
     * carried recurrent state...). The pointers stay valid for the model's life. */
    int (*sections)(void *self, cphil_tr_section *out, int cap);
    /* Write the policy file (safetensors with the config and `meta_json` in __metadata__). */
    cphil_status (*save_policy)(void *self, const char *path, const char *meta_json);
    /* The model's config as JSON (stored in the checkpoint; resume refuses a different one). */
    const char *(*config_json)(void *self);
    /* Optional (NULL: the loop builds each batch, then steps). Take batch b, which the next
     * train_step will receive, into the model's own staging memory: the loop calls it on its
     * loader thread (train/prefetch.h) while the previous step still runs on an accelerator, in
     * batch order and one batch ahead at most. After it sets *staged, train_step must not read
     * b's arrays (the data source may have refilled them). *staged = false: the model cannot
     * take this batch (distillation targets, say); the loop then stops prefetching. It must not
     * touch what a running train_step uses. */
    cphil_status (*prepare)(void *self, const cphil_tr_batch *b, bool *staged);
} cphil_tr_model_ops;

/* Same values as model.h's cphil_schedule (this header does not include model.h). */
enum { CPHIL_TR_SCHED_CONSTANT = 0, CPHIL_TR_SCHED_COSINE = 1 };

typedef struct cphil_trainer_opts {
    int epochs;
    double lr;
    int schedule;              /* CPHIL_TR_SCHED_*: constant, or warmup then cosine to 0 */
    long long warmup_steps;
    uint64_t seed;
    const char *out_dir, *name; /* DIR/NAME_policy.safetensors, DIR/NAME.ckpt, _best, curves */
    const char *resume;         /* checkpoint path or NULL */
    long long save_every;       /* also write NAME.ckpt every N steps (0 = at epoch ends only) */
    bool early_stopping;
    int patience;               /* epochs without validation improvement before stopping */
    double min_delta;           /* improvement = best - val > min_delta */
    long long max_steps;        /* stop after this many steps in total (0 = no limit); a run stopped
                                 * here saves its exact position, and a resume with a larger
                                 * max_steps continues from it */
    long long stop_after_steps; /* test hook: act as if Ctrl-C arrived after this step (0 = off) */
    const char *meta_json;      /* extra metadata for the policy file and checkpoint (JSON object) */
    const char *title;          /* for the SVG plot */
    /* Data-parallel ranks (docs/distributed.md; NULL = one process). Every rank runs the loop on
     * its share of each global batch (the model's train_step exchanges the gradients); only rank
     * 0 writes files and calls the callbacks' output; the ranks agree on stopping every step and
     * check at every epoch end that their model sections are identical. */
    cphil_dist *dist;
    long long global_batch;     /* batch slots per step over all ranks (checkpoint metadata: a
                                 * resume with another count maps the epoch position; 0 = unknown) */
    /* Model state that each rank holds for its own slots (TBPTT's carried recurrent state), or
     * NULL: called with gather = true on every rank before rank 0 writes a checkpoint (collect the
     * ranks' parts into the model's sections: a collective), and with false after a checkpoint
     * was loaded (take this rank's part of the sections). */
    cphil_status (*rank_state)(void *model, bool gather);
} cphil_trainer_opts;

void cphil_trainer_opts_default(cphil_trainer_opts *o);

/* Progress and report callbacks (all optional). */
typedef struct cphil_tr_epoch_report {
    int epoch, epochs;
    uint64_t step;
    double train_loss, val_loss, seconds, frames_per_sec;
    cphil_head_report val;  /* per-head validation accuracy and NLL */
    bool has_val, best, early_stop;
    int epochs_without_improvement;
} cphil_tr_epoch_report;

typedef struct cphil_tr_callbacks {
    void *user;
    /* After each step: batch index in the epoch, batches in the epoch, smoothed loss, frames/s. */
    void (*on_step)(void *user, int epoch, size_t batch, size_t n_batches, double loss_ema, double fps);
    void (*on_epoch)(void *user, const cphil_tr_epoch_report *r);
    void (*on_note)(void *user, const char *msg); /* "resumed at epoch 2 step 120", checkpoint saved... */
} cphil_tr_callbacks;

/* The outcome of a run. */
typedef struct cphil_tr_result {
    int epochs_done;
    uint64_t steps;
    double best_val_loss;
    int best_epoch;         /* 1-based, 0 if none */
    bool interrupted;       /* stopped by Ctrl-C (checkpoint saved) */
    bool stopped_early;
    double seconds;
    cphil_curve_row *rows;  /* epochs_done rows (owned; free with cphil_tr_result_free) */
} cphil_tr_result;
void cphil_tr_result_free(cphil_tr_result *r);

/* The interrupt flag the CLI's SIGINT handler sets; the loop checks it between steps. */
extern volatile sig_atomic_t cphil_train_interrupt;

/* Learning rate at optimizer step `step` (0-based) of `total` steps. */
double cphil_tr_lr_at(const cphil_trainer_opts *o, uint64_t step, uint64_t total);

/* Run the loop. Returns CPHIL_OK (also when interrupted: result->interrupted), CPHIL_E_NUMERIC
 * when the loss became NaN or infinite (message says where; the last good checkpoint stays),
 * or the error of a failing step or write. */
cphil_status cphil_train_run(const cphil_trainer_opts *o, const cphil_tr_model_ops *mops, void *model,
                             const cphil_tr_data_ops *dops, void *data, const cphil_tr_callbacks *cb,
                             cphil_tr_result *result);

/* Paths derived from out_dir and name: kind is "policy", "ckpt", "best_policy", "best_ckpt",
 * "csv", "svg". */
void cphil_tr_path(const cphil_trainer_opts *o, const char *kind, char *buf, size_t n);

#endif
