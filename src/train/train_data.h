/* train_data.h — the training data of `cphil train`, `cphil eval` and `cphil distill`: a
 * dataset (a cache file, or replays embedded in memory) split by file into training and
 * held-out replays, served as batches for the training loop (cphil_tr_data_ops of trainer.h)
 * and as whole replays for evaluation. Binds src/data/ (dataset, filters, batcher) to the loop;
 * builds nothing itself.
 *
 * Batch modes: windows of W frames (stride S, never crossing replays, seeded shuffle; loss on
 * every position) or TBPTT streams (each batch slot walks one replay in consecutive chunks of T
 * frames; slot resets are reported so the model can zero that slot's carried state).
 */
#ifndef CPHIL_TRAIN_TRAIN_DATA_H
#define CPHIL_TRAIN_TRAIN_DATA_H

#include "train/softlabels.h"
#include "train/trainer.h"

#define CPHIL_TR_MAX_FILTER 32

typedef struct cphil_tr_data_opts {
    const char *replays;   /* a folder of .slp (embedded in memory) */
    const char *data;      /* or a dataset cache file (cphil dataset) */
    long long max_files;   /* 0 = all */
    const char *characters[CPHIL_TR_MAX_FILTER];
    int n_characters;
    const char *stages[CPHIL_TR_MAX_FILTER];
    int n_stages;
    long long player;      /* 0 = every port allowed by the dataset rules, else 1..4 */
    const char *train_character;
    bool dual_port;
    bool prev_action;
    long long frame_delay;
    double val_split;      /* fraction of files held out */
    int window, stride, batch, tbptt; /* tbptt > 0: chunk length T of the streams */
    int val_window;        /* window of the validation batches (default: window, or tbptt) */
    uint64_t seed;
    int threads;
    bool parallel_fill;    /* window batches filled on cphil_parallel's threads (cphil_batcher_opts) */
    bool quiet;
    bool all_files_eval;   /* eval: every file is "held out" (no training split) */
    /* Data-parallel ranks (docs/distributed.md): `batch` is per rank; each training step's global
     * batch of ranks x batch slots is the one a single process with that batch takes, and rank r
     * reads slots [r x batch, (r + 1) x batch) of it. Validation is not split (every rank
     * validates the whole held-out set, so all agree on the best epoch). 0 = one process. */
    int rank, ranks;
} cphil_tr_data_opts;

typedef struct cphil_tr_data cphil_tr_data;

typedef struct cphil_tr_data_summary {
    int files_found, files_used, files_skipped, train_files, val_files;
    uint64_t train_frames, val_frames;
    int n_cont, n_ids, E;
    uint64_t layout_hash;
    double button_rates[CPHIL_N_BUTTONS]; /* training frames */
    char skipped_note[256];
} cphil_tr_data_summary;

cphil_status cphil_tr_data_open(const cphil_tr_data_opts *o, cphil_tr_data **out);
void cphil_tr_data_close(cphil_tr_data *d);
void cphil_tr_data_get_summary(const cphil_tr_data *d, cphil_tr_data_summary *s);
extern const cphil_tr_data_ops cphil_tr_data_ops_impl;

/* Whole replays for evaluation: the number of held-out (or training) replays, replay i's frame
 * count, and its model inputs for frames [start, start + n) copied into cont [n, n_cont] and
 * ids [n, n_ids]. */
int cphil_tr_data_n_replays(const cphil_tr_data *d, bool held_out);
size_t cphil_tr_data_replay_frames(const cphil_tr_data *d, bool held_out, int i);
cphil_status cphil_tr_data_replay_inputs(cphil_tr_data *d, bool held_out, int i, size_t start, size_t n, float *cont,
                                         int32_t *ids);
/* Targets of replay i (frames x 8 buttons, frames x 5 classes, packed), pointers valid while d is open. */
cphil_status cphil_tr_data_replay_targets(cphil_tr_data *d, bool held_out, int i, const uint8_t **btn,
                                          const uint8_t **cls);

/* The dataset row of replay i's first frame (its frame f is row + f; targets at row + f + 1 + D). */
uint64_t cphil_tr_data_replay_row(const cphil_tr_data *d, bool held_out, int i);
/* Identity of the opened dataset (what a soft-label file refers to). */
void cphil_tr_data_identity(const cphil_tr_data *d, uint64_t *checksum, uint64_t *rows, uint32_t *flags,
                            uint32_t *frame_delay);

/* Distillation: serve the frames of a soft-label file (made on this dataset: refused otherwise)
 * as batches of B single frames (T = 1) with their teacher probabilities; frames of training
 * replays train (seeded shuffle per epoch), frames of held-out replays validate. Use with
 * cphil_tr_distill_ops. With ranks (the options' rank, ranks), B is per rank: each step's global
 * batch is the next ranks x B frames of the epoch's order and rank r trains on its r-th B of them;
 * validation is not split. */
cphil_status cphil_tr_data_attach_soft(cphil_tr_data *d, const cphil_softlabels *sl, const char *sl_path, int batch);
extern const cphil_tr_data_ops cphil_tr_distill_ops;

/* Load the policy at `policy` and run it over every frame of d's held-out (held_out) or other
 * replays like cphil eval, calling fn per frame (src/train/eval.c; declared here because the
 * callers include src/data/ and cannot include src/model/). Returns the policy's layout hash
 * and config JSON. */
typedef cphil_status (*cphil_tr_frame_fn)(void *user, int replay, size_t frame, const float *logits);
cphil_status cphil_tr_run_policy(const char *policy, cphil_tr_data *d, bool held_out, int batch, bool quiet,
                                 cphil_tr_frame_fn fn, void *user, uint64_t *layout_hash, char *config_json,
                                 size_t config_cap);

#endif
