/* prefetch.c — the training loop's loader thread (prefetch.h). */
#include "train/prefetch.h"

#include "core/core.h"

#include <pthread.h>
#include <string.h>

enum { PF_IDLE, PF_WORK, PF_DONE, PF_QUIT };

struct cphil_prefetch {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int state;
    const cphil_tr_data_ops *dops;
    void *data;
    const cphil_tr_model_ops *mops;
    void *model;
    /* the job's result, read by the loop after PF_DONE */
    cphil_tr_batch batch;
    bool staged;
    size_t frames;
    cphil_status st;
    char msg[1024];
};

size_t cphil_tr_batch_frames(const cphil_tr_batch *b) {
    size_t n = (size_t)b->B * (size_t)b->T;
    if (!b->weight) return n;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) k += b->weight[i] > 0;
    return k;
}

static void run_job(cphil_prefetch *pf) {
    pf->staged = false;
    pf->frames = 0;
    pf->st = pf->dops->next(pf->data, &pf->batch);
    if (pf->st == CPHIL_OK) {
        pf->frames = cphil_tr_batch_frames(&pf->batch);
        pf->st = pf->mops->prepare(pf->model, &pf->batch, &pf->staged);
    }
    /* error messages are per thread: carry this one to the loop's thread */
    if (pf->st != CPHIL_OK) snprintf(pf->msg, sizeof pf->msg, "%s", cphil_last_error());
}

static void *loader(void *arg) {
    cphil_prefetch *pf = arg;
    pthread_mutex_lock(&pf->mu);
    for (;;) {
        while (pf->state != PF_WORK && pf->state != PF_QUIT) pthread_cond_wait(&pf->cv, &pf->mu);
        if (pf->state == PF_QUIT) break;
        pthread_mutex_unlock(&pf->mu);
        run_job(pf);
        pthread_mutex_lock(&pf->mu);
        pf->state = PF_DONE;
        pthread_cond_broadcast(&pf->cv);
    }
    pthread_mutex_unlock(&pf->mu);
    return NULL;
}

cphil_status cphil_prefetch_open(const cphil_tr_data_ops *dops, void *data, const cphil_tr_model_ops *mops, void *model,
                                 cphil_prefetch **out) {
    *out = NULL;
    cphil_prefetch *pf = cphil_calloc(1, sizeof *pf);
    if (!pf) return cphil_err(CPHIL_E_NOMEM, "out of memory for the batch loader");
    pf->dops = dops;
    pf->data = data;
    pf->mops = mops;
    pf->model = model;
    pf->state = PF_IDLE;
    if (pthread_mutex_init(&pf->mu, NULL)) {
        cphil_free(pf);
        return cphil_err(CPHIL_E_INTERNAL, "cannot create the batch loader's mutex");
    }
    if (pthread_cond_init(&pf->cv, NULL)) {
        pthread_mutex_destroy(&pf->mu);
        cphil_free(pf);
        return cphil_err(CPHIL_E_INTERNAL, "cannot create the batch loader's condition variable");
    }
    if (pthread_create(&pf->thread, NULL, loader, pf)) {
        pthread_cond_destroy(&pf->cv);
        pthread_mutex_destroy(&pf->mu);
        cphil_free(pf);
        return cphil_err(CPHIL_E_INTERNAL, "cannot start the batch loader thread");
    }
    *out = pf;
    return CPHIL_OK;
}

void cphil_prefetch_start(cphil_prefetch *pf) {
    pthread_mutex_lock(&pf->mu);
    CPHIL_ASSERT(pf->state == PF_IDLE);
    pf->state = PF_WORK;
    pthread_cond_broadcast(&pf->cv);
    pthread_mutex_unlock(&pf->mu);
}

/* The job runs local code only (memory-mapped data, host packing): it ends on its own, so the
 * wait needs no time bound of its own. */
static void wait_done(cphil_prefetch *pf) {
    while (pf->state == PF_WORK) pthread_cond_wait(&pf->cv, &pf->mu);
}

cphil_status cphil_prefetch_wait(cphil_prefetch *pf, cphil_tr_batch *b, bool *staged, size_t *frames) {
    pthread_mutex_lock(&pf->mu);
    CPHIL_ASSERT(pf->state == PF_WORK || pf->state == PF_DONE);
    wait_done(pf);
    pf->state = PF_IDLE;
    pthread_mutex_unlock(&pf->mu);
    if (pf->st != CPHIL_OK) return cphil_err(pf->st, "%s", pf->msg);
    *b = pf->batch;
    *staged = pf->staged;
    *frames = pf->frames;
    return CPHIL_OK;
}

void cphil_prefetch_close(cphil_prefetch *pf) {
    if (!pf) return;
    pthread_mutex_lock(&pf->mu);
    wait_done(pf);
    pf->state = PF_QUIT;
    pthread_cond_broadcast(&pf->cv);
    pthread_mutex_unlock(&pf->mu);
    pthread_join(pf->thread, NULL);
    pthread_cond_destroy(&pf->cv);
    pthread_mutex_destroy(&pf->mu);
    cphil_free(pf);
}
