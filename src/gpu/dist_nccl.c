/* dist_nccl.c — the GPU ranks' gradient exchange over NCCL (see dist_nccl.h). CUDA build only.
 *
 * Rendezvous: rank 0 calls ncclGetUniqueId and broadcasts the 128 bytes over MPI (dist.h), which
 * every rank already joined through mpirun; no address, port or shared file to configure.
 * Faults: NCCL kernels wait for their peers without bound, so nothing here waits on the stream
 * blindly: cphil_gpu_dist_wait polls cudaStreamQuery and ncclCommGetAsyncError with the dist
 * timeout, and on an NCCL error or a timeout aborts the communicator (which releases the
 * kernels), asks dist.h which ranks are silent and returns an error naming them; the caller ends
 * the job (MPI_Abort). ncclCommInitRank itself cannot be polled in blocking mode, so a watchdog
 * thread bounds it: a rank whose peers never join prints why and exits, and mpirun ends the rest.
 */
#include "gpu/dist_nccl.h"

#include "core/core.h"

#include <cuda_runtime_api.h>
/* nccl.h (and the fp16/bf16 headers it pulls in) is not clean under -Wundef/-Wstrict-prototypes */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wundef"
#pragma GCC diagnostic ignored "-Wstrict-prototypes"
#include <nccl.h>
#pragma GCC diagnostic pop
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct cphil_gpu_dist {
    cphil_dist *d;
    ncclComm_t comm;
    int rank, size;
    double timeout;
    float *h_share;   /* pinned: [0] this step's weight share (read by the captured graph) */
    double share;
    /* buckets overlapped with the backward: the exchange stream, the fork event (the backward
     * up to a stage boundary) and the join event (every bucket's all-reduce) */
    size_t bucket_floats; /* 0 = buckets off */
    cudaStream_t comm_stream;
    cudaEvent_t fork, join;
    cphil_cu *cu;
    float *grads;
    size_t hi; /* gradients [hi, n) are being exchanged; [lo, hi) wait for the next bucket */
};

int cphil_gpu_dist_size(const cphil_gpu_dist *g) { return g ? g->size : 1; }

/* ---- a watchdog for the one blocking call (ncclCommInitRank) ------------------------------ */
typedef struct init_watch {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
    double timeout;
    int rank, size;
} init_watch;

static void *watch_main(void *arg) {
    init_watch *w = arg;
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += (time_t)w->timeout + 1;
    pthread_mutex_lock(&w->mu);
    int rc = 0;
    while (!w->done && rc == 0) rc = pthread_cond_timedwait(&w->cv, &w->mu, &until);
    bool late = !w->done;
    pthread_mutex_unlock(&w->mu);
    if (late) {
        /* the main thread is stuck inside NCCL: the only bounded way out is to end this rank;
         * mpirun then ends the others (a rank exiting non-zero aborts the job) */
        fprintf(stderr,
                "cphil: rank %d of %d: joining the NCCL communicator took more than %.0f s (a rank died or hung "
                "before joining, or the GPUs cannot reach each other: NCCL_DEBUG=WARN says more); stopping\n",
                w->rank, w->size, w->timeout);
        fflush(stderr);
        _exit(3);
    }
    return NULL;
}

static cphil_status nccl_fail(const cphil_gpu_dist *g, ncclResult_t r, const char *what) {
    return cphil_err(CPHIL_E_IO, "rank %d of %d: %s failed: %s (%s)", g ? g->rank : 0, g ? g->size : 1, what,
                     ncclGetErrorString(r), ncclGetLastError(g ? g->comm : NULL));
}

cphil_status cphil_gpu_dist_create(cphil_dist *d, cphil_cu *cu, cphil_gpu_dist **out) {
    (void)cu; /* the communicator binds to the current device, which cphil_cu_create set */
    *out = NULL;
    cphil_gpu_dist *g = cphil_calloc(1, sizeof *g);
    if (!g) return cphil_err(CPHIL_E_NOMEM, "out of memory");
    g->d = d;
    g->rank = cphil_dist_rank(d);
    g->size = cphil_dist_size(d);
    g->timeout = cphil_dist_timeout(d);
    g->share = 1.0;
    cphil_status s;
    if (cudaMallocHost((void **)&g->h_share, 4 * sizeof(float)) != cudaSuccess) {
        cudaGetLastError();
        cphil_free(g);
        return cphil_err(CPHIL_E_NOMEM, "out of pinned host memory for the gradient exchange");
    }
    g->h_share[0] = 1.0f;
    ncclUniqueId id;
    memset(&id, 0, sizeof id);
    ncclResult_t r;
    if (g->rank == 0 && (r = ncclGetUniqueId(&id)) != ncclSuccess) {
        s = nccl_fail(g, r, "ncclGetUniqueId");
        goto fail;
    }
    if ((s = cphil_dist_bcast(d, &id, sizeof id, "NCCL id broadcast")) != CPHIL_OK) goto fail;
    init_watch w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, g->timeout, g->rank, g->size};
    pthread_t th;
    bool watching = pthread_create(&th, NULL, watch_main, &w) == 0;
    r = ncclCommInitRank(&g->comm, g->size, id, g->rank);
    if (watching) {
        pthread_mutex_lock(&w.mu);
        w.done = true;
        pthread_cond_signal(&w.cv);
        pthread_mutex_unlock(&w.mu);
        pthread_join(th, NULL);
    }
    if (r != ncclSuccess) {
        g->comm = NULL;
        s = nccl_fail(g, r, "ncclCommInitRank");
        goto fail;
    }
    const char *mb = getenv("CPHIL_GPU_BUCKET_MB");
    double bucket_mb = mb && *mb ? atof(mb) : 25.0;
    if (bucket_mb > 0) {
        g->bucket_floats = (size_t)(bucket_mb * (1 << 20) / sizeof(float));
        if (g->bucket_floats == 0) g->bucket_floats = 1;
        if (cudaStreamCreateWithFlags(&g->comm_stream, cudaStreamNonBlocking) != cudaSuccess ||
            cudaEventCreateWithFlags(&g->fork, cudaEventDisableTiming) != cudaSuccess ||
            cudaEventCreateWithFlags(&g->join, cudaEventDisableTiming) != cudaSuccess) {
            cudaGetLastError();
            s = cphil_err(CPHIL_E_INTERNAL, "rank %d: cannot create the gradient exchange's stream and events",
                          g->rank);
            goto fail;
        }
    }
    *out = g;
    return CPHIL_OK;
fail:
    cphil_gpu_dist_free(g);
    return s;
}

void cphil_gpu_dist_free(cphil_gpu_dist *g) {
    if (!g) return;
    if (g->comm) ncclCommDestroy(g->comm); /* after an error it was aborted and cleared */
    if (g->h_share) cudaFreeHost(g->h_share);
    if (g->fork) cudaEventDestroy(g->fork);
    if (g->join) cudaEventDestroy(g->join);
    if (g->comm_stream) cudaStreamDestroy(g->comm_stream);
    cphil_free(g);
}

cphil_status cphil_gpu_dist_begin_step(cphil_gpu_dist *g, double local_weight) {
    double w = local_weight;
    cphil_status s = cphil_dist_sum_f64(g->d, &w, 1, "frame-weight sum");
    if (s) return s;
    g->share = w > 0 ? local_weight / w : 0.0;
    g->h_share[0] = (float)g->share; /* the graph's scale kernel reads it when it runs */
    return CPHIL_OK;
}

void cphil_gpu_dist_enqueue(cphil_gpu_dist *g, cphil_cu *cu, float *d_grads, size_t n) {
    cudaStream_t st = cphil_cu_stream(cu);
    cphil_gpu_dist_scale(st, d_grads, n, g->h_share);
    cphil_cu_record(cu, (int)cudaGetLastError(), "gradient share scale", __FILE__, __LINE__);
    ncclResult_t r = ncclAllReduce(d_grads, d_grads, n, ncclFloat32, ncclSum, g->comm, st);
    if (r != ncclSuccess) cphil_cu_record(cu, (int)cudaErrorUnknown, "ncclAllReduce of the gradients", __FILE__, __LINE__);
}

bool cphil_gpu_dist_buckets_begin(cphil_gpu_dist *g, cphil_cu *cu, float *d_grads, size_t n) {
    if (!g->bucket_floats) return false;
    g->cu = cu;
    g->grads = d_grads;
    g->hi = n;
    return true;
}

/* Exchange [lo, hi) on the exchange stream once the main stream has finished writing it. */
static void bucket_flush(cphil_gpu_dist *g, size_t lo) {
    cphil_cu *cu = g->cu;
    cudaStream_t st = cphil_cu_stream(cu);
    size_t n = g->hi - lo;
    if (n == 0) return;
    cphil_cu_record(cu, (int)cudaEventRecord(g->fork, st), "bucket fork", __FILE__, __LINE__);
    cphil_cu_record(cu, (int)cudaStreamWaitEvent(g->comm_stream, g->fork, 0), "bucket wait", __FILE__, __LINE__);
    cphil_gpu_dist_scale(g->comm_stream, g->grads + lo, n, g->h_share);
    cphil_cu_record(cu, (int)cudaGetLastError(), "gradient share scale", __FILE__, __LINE__);
    ncclResult_t r = ncclAllReduce(g->grads + lo, g->grads + lo, n, ncclFloat32, ncclSum, g->comm, g->comm_stream);
    if (r != ncclSuccess)
        cphil_cu_record(cu, (int)cudaErrorUnknown, "ncclAllReduce of a gradient bucket", __FILE__, __LINE__);
    g->hi = lo;
}

void cphil_gpu_dist_buckets_ready(cphil_gpu_dist *g, size_t lo) {
    if (lo >= g->hi) return;
    if (g->hi - lo >= g->bucket_floats || lo == 0) bucket_flush(g, lo);
}

void cphil_gpu_dist_buckets_end(cphil_gpu_dist *g) {
    cphil_cu *cu = g->cu;
    if (g->hi > 0) bucket_flush(g, 0); /* a backward that never announced 0: exchange the rest */
    cphil_cu_record(cu, (int)cudaEventRecord(g->join, g->comm_stream), "bucket join", __FILE__, __LINE__);
    cphil_cu_record(cu, (int)cudaStreamWaitEvent(cphil_cu_stream(cu), g->join, 0), "bucket join wait", __FILE__,
                    __LINE__);
}

cphil_status cphil_gpu_dist_wait(cphil_gpu_dist *g, cphil_cu *cu) {
    cudaStream_t st = cphil_cu_stream(cu);
    double t0 = cphil_now_sec();
    for (int spins = 0;; spins++) {
        cudaError_t e = cudaStreamQuery(st);
        if (e != cudaErrorNotReady) break; /* done, or a CUDA error cphil_cu_sync reports */
        ncclResult_t ar = ncclSuccess;
        if (ncclCommGetAsyncError(g->comm, &ar) == ncclSuccess && ar != ncclSuccess && ar != ncclInProgress) {
            ncclCommAbort(g->comm);
            g->comm = NULL;
            char who[256];
            int silent = cphil_dist_silent_ranks(g->d, g->timeout / 2 < 10 ? g->timeout / 2 : 10, who, sizeof who);
            return cphil_err(CPHIL_E_IO, "rank %d of %d: the NCCL gradient all-reduce failed: %s%s%s%s", g->rank,
                             g->size, ncclGetErrorString(ar), silent ? "; rank(s) " : "", silent ? who : "",
                             silent ? " did not answer (died or hung)" : "");
        }
        if (cphil_now_sec() - t0 > g->timeout) {
            ncclCommAbort(g->comm);
            g->comm = NULL;
            char who[256];
            int silent = cphil_dist_silent_ranks(g->d, g->timeout / 2 < 10 ? g->timeout / 2 : 10, who, sizeof who);
            return cphil_err(CPHIL_E_IO,
                             "rank %d of %d: the GPU step (NCCL gradient all-reduce) waited %.0f s; %s%s: stopping "
                             "every rank (CPHIL_DIST_TIMEOUT sets the wait)",
                             g->rank, g->size, g->timeout, silent ? "silent rank(s): " : "every rank answered (",
                             silent ? who : "a GPU is stuck)");
        }
        if (spins > 100) {
            struct timespec ts = {0, spins < 2000 ? 20000 : 200000};
            nanosleep(&ts, NULL);
        }
    }
    return cphil_cu_sync(cu);
}

cphil_status cphil_gpu_dist_loss(cphil_gpu_dist *g, double *loss) {
    /* share x local loss, summed: one rank gives the loss itself, bit for bit */
    double v = g->share == 1.0 ? *loss : g->share * *loss;
    cphil_status s = cphil_dist_sum_f64(g->d, &v, 1, "loss sum");
    if (s) return s;
    *loss = v;
    return CPHIL_OK;
}
