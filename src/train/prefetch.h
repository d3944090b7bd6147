/* prefetch.h — the training loop's loader thread: while step i runs on an accelerator, build
 * batch i+1 (the data source's `next`) and hand it to the model's `prepare` (the GPU policy packs
 * it into its second pinned staging slot), so the host's batch work and the GPU's step overlap.
 *
 * One persistent thread, one job at a time: prefetch_start() hands it "fetch and prepare the next
 * batch", prefetch_wait() waits for that job and returns its batch. The data order is unchanged
 * (the loop still asks for every batch in order, one ahead at most), so results are bit-identical
 * with and without it. An error on the loader thread comes back from prefetch_wait with its
 * message. Used only with models that have `prepare`; CPHIL_PREFETCH=0 turns it off.
 */
#ifndef CPHIL_TRAIN_PREFETCH_H
#define CPHIL_TRAIN_PREFETCH_H

#include "train/trainer.h"

typedef struct cphil_prefetch cphil_prefetch;

/* NULL with a message when the thread cannot start (the loop then runs without it). */
cphil_status cphil_prefetch_open(const cphil_tr_data_ops *dops, void *data, const cphil_tr_model_ops *mops, void *model,
                                 cphil_prefetch **out);
/* Start fetching and preparing the data source's next batch. */
void cphil_prefetch_start(cphil_prefetch *pf);
/* Wait for the job started last: its batch (valid until the data source's next `next`), whether
 * the model took it (staged), and its frames with weight > 0 (counted on the loader thread). */
cphil_status cphil_prefetch_wait(cphil_prefetch *pf, cphil_tr_batch *b, bool *staged, size_t *frames);
/* Wait for a job still running, stop the thread, free. NULL is fine. */
void cphil_prefetch_close(cphil_prefetch *pf);

/* Frames with weight > 0 in a batch (the loop's frames/s counts these). */
size_t cphil_tr_batch_frames(const cphil_tr_batch *b);

#endif
