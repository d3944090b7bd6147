/* dist_mpi.c — dist.h over Open MPI (compiled only when mk/mpi.mk found mpicc: CPHIL_MPI=1).
 *
 * Every collective is the non-blocking MPI call (MPI_Iallreduce, MPI_Ibcast, MPI_Iallgather)
 * followed by a polling wait with a deadline (the gradient buckets start several and wait for
 * them together later), so no rank ever waits without bound: a peer that
 * died without taking the job down, or hangs (stopped, stuck in a driver, swapping), turns into
 * an error after the timeout. The error names the ranks that did not answer: on timeout a rank
 * sends "alive" to every peer on a second communicator and listens for theirs for a grace
 * period; the ranks whose word never comes are the dead or hung ones. Errors from MPI itself are
 * returned, not fatal (MPI_ERRORS_RETURN on both communicators); the caller ends the job with
 * cphil_dist_abort (MPI_Abort), which also takes down a hung rank.
 * Not launched by mpirun (no OMPI_COMM_WORLD_SIZE / PMI_SIZE), MPI is not initialized at all:
 * a plain `cphil train` stays a plain process.
 */
#include "dist/dist.h"

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct cphil_dist {
    int rank, size;
    double timeout;
    bool mpi;          /* MPI initialized by us (finalize on close) */
    MPI_Comm comm;     /* the collectives */
    MPI_Comm ctrl;     /* liveness probes after a timeout */
    /* sums started by cphil_dist_sum_f32_start, not yet waited for */
    MPI_Request pend[CPHIL_DIST_MAX_PENDING];
    int n_pend;
    const char *pend_what;
};

enum { TAG_ALIVE = 7001 };

bool cphil_dist_compiled(void) { return true; }

static cphil_status mpi_fail(const cphil_dist *d, int rc, const char *what) {
    char s[MPI_MAX_ERROR_STRING + 1] = "";
    int len = 0;
    if (MPI_Error_string(rc, s, &len) != MPI_SUCCESS) snprintf(s, sizeof s, "MPI error %d", rc);
    return cphil_err(CPHIL_E_IO, "rank %d of %d: %s failed: %s (a rank died or the interconnect failed)",
                     d ? d->rank : 0, d ? d->size : 1, what, s);
}

cphil_status cphil_dist_open(double timeout_s, cphil_dist **out) {
    *out = NULL;
    cphil_dist *d = cphil_calloc(1, sizeof *d);
    if (!d) return cphil_err(CPHIL_E_NOMEM, "out of memory");
    d->size = 1;
    d->timeout = timeout_s;
    if (d->timeout <= 0) {
        const char *v = getenv("CPHIL_DIST_TIMEOUT");
        d->timeout = v && *v ? strtod(v, NULL) : 600;
        if (!(d->timeout > 0) || d->timeout > 1e7) {
            cphil_free(d);
            return cphil_err(CPHIL_E_ARG, "CPHIL_DIST_TIMEOUT='%s': give the seconds a rank waits for the others "
                                          "(a number > 0, default 600)", v);
        }
    }
    if (cphil_dist_env_world() == 0) { /* not launched: one process, no MPI */
        *out = d;
        return CPHIL_OK;
    }
    int inited = 0, prov = 0, rc;
    MPI_Initialized(&inited);
    if (!inited) {
        /* FUNNELED: cphil's kernels use threads, but only the main thread calls MPI */
        if ((rc = MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &prov)) != MPI_SUCCESS) {
            cphil_free(d);
            return mpi_fail(NULL, rc, "MPI_Init");
        }
        d->mpi = true;
    }
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    if ((rc = MPI_Comm_dup(MPI_COMM_WORLD, &d->comm)) != MPI_SUCCESS ||
        (rc = MPI_Comm_dup(MPI_COMM_WORLD, &d->ctrl)) != MPI_SUCCESS) {
        cphil_status s = mpi_fail(d, rc, "MPI_Comm_dup");
        cphil_free(d);
        return s;
    }
    MPI_Comm_set_errhandler(d->comm, MPI_ERRORS_RETURN);
    MPI_Comm_set_errhandler(d->ctrl, MPI_ERRORS_RETURN);
    MPI_Comm_rank(d->comm, &d->rank);
    MPI_Comm_size(d->comm, &d->size);
    *out = d;
    return CPHIL_OK;
}

void cphil_dist_close(cphil_dist *d) {
    if (!d) return;
    if (d->size > 1 || d->mpi) {
        MPI_Comm_free(&d->comm);
        MPI_Comm_free(&d->ctrl);
    }
    if (d->mpi) MPI_Finalize();
    cphil_free(d);
}

void cphil_dist_abort(cphil_dist *d, int code) {
    fflush(stdout);
    fflush(stderr);
    if (d && (d->size > 1 || d->mpi)) MPI_Abort(MPI_COMM_WORLD, code);
    exit(code);
}

int cphil_dist_rank(const cphil_dist *d) { return d ? d->rank : 0; }
int cphil_dist_size(const cphil_dist *d) { return d ? d->size : 1; }
double cphil_dist_timeout(const cphil_dist *d) { return d ? d->timeout : 600; }

static void nap(int spins) {
    /* spin a little (a step's collectives usually finish within microseconds of the last rank's
     * arrival), then sleep so a waiting rank does not take a core from the ranks still working */
    if (spins < 200) return;
    struct timespec ts = {0, spins < 2000 ? 20000 : 200000};
    nanosleep(&ts, NULL);
}

/* After a timeout: which peers are alive? Exchange a word with every peer on the control
 * communicator and wait `grace` seconds for theirs. Writes the silent ranks to buf. */
static int silent_ranks(cphil_dist *d, double grace, char *buf, size_t n) {
    if (!d || d->size <= 1) {
        if (n) buf[0] = '\0';
        return 0;
    }
    int P = d->size, me = d->rank, silent = 0;
    MPI_Request *rq = calloc((size_t)P * 2, sizeof *rq);
    int *in = calloc((size_t)P, sizeof *in), *got = calloc((size_t)P, sizeof *got);
    buf[0] = '\0';
    if (!rq || !in || !got) {
        free(rq), free(in), free(got);
        snprintf(buf, n, "(unknown: out of memory)");
        return -1;
    }
    for (int p = 0; p < P; p++) {
        rq[2 * p] = rq[2 * p + 1] = MPI_REQUEST_NULL;
        if (p == me) continue;
        MPI_Irecv(&in[p], 1, MPI_INT, p, TAG_ALIVE, d->ctrl, &rq[2 * p]);
        MPI_Isend(&me, 1, MPI_INT, p, TAG_ALIVE, d->ctrl, &rq[2 * p + 1]);
    }
    double end = cphil_now_sec() + grace;
    for (int spins = 0;; spins++) {
        int pending = 0;
        for (int p = 0; p < P; p++) {
            if (p == me || got[p]) continue;
            int done = 0;
            if (MPI_Test(&rq[2 * p], &done, MPI_STATUS_IGNORE) == MPI_SUCCESS && done) got[p] = 1;
            else pending++;
        }
        if (!pending || cphil_now_sec() > end) break;
        nap(spins + 200);
    }
    size_t k = 0;
    for (int p = 0; p < P; p++)
        if (p != me && !got[p]) {
            int w = snprintf(buf + k, n - k, "%s%d", silent ? ", " : "", p);
            if (w > 0 && (size_t)w < n - k) k += (size_t)w;
            silent++;
        }
    /* the requests stay posted: the job is about to be aborted */
    free(rq), free(in), free(got);
    return silent;
}

int cphil_dist_silent_ranks(cphil_dist *d, double grace, char *buf, size_t n) { return silent_ranks(d, grace, buf, n); }

/* Wait for n requests together, bounded by the timeout (one deadline for all of them). */
static cphil_status wait_reqs(cphil_dist *d, MPI_Request *r, int n, const char *what) {
    double t0 = cphil_now_sec();
    for (int spins = 0;; spins++) {
        int done = 0, rc = MPI_Testall(n, r, &done, MPI_STATUSES_IGNORE);
        if (rc != MPI_SUCCESS) return mpi_fail(d, rc, what);
        if (done) return CPHIL_OK;
        if ((spins & 63) == 0 && cphil_now_sec() - t0 > d->timeout) break;
        nap(spins);
    }
    char who[512];
    double grace = d->timeout / 2 < 10 ? d->timeout / 2 : 10;
    int silent = silent_ranks(d, grace, who, sizeof who);
    if (silent > 0)
        return cphil_err(CPHIL_E_IO,
                         "rank %d of %d: the %s waited %.0f s for the other ranks; rank%s %s did not answer (died or "
                         "hung): stopping every rank (CPHIL_DIST_TIMEOUT sets the wait)",
                         d->rank, d->size, what, d->timeout, silent == 1 ? "" : "s", who);
    return cphil_err(CPHIL_E_IO,
                     "rank %d of %d: the %s waited %.0f s for the other ranks, which are alive but not in the same "
                     "exchange (the ranks are out of step; report this as a cphil bug): stopping every rank",
                     d->rank, d->size, what, d->timeout);
}

static cphil_status wait_req(cphil_dist *d, MPI_Request *r, const char *what) { return wait_reqs(d, r, 1, what); }

static bool single(const cphil_dist *d) { return !d || d->size <= 1; }

/* MPI counts are int: reduce in chunks of at most 2^30 elements. */
#define CHUNK ((size_t)1 << 30)

static cphil_status reduce(cphil_dist *d, void *x, size_t n, size_t esize, MPI_Datatype t, MPI_Op op,
                           const char *what) {
    if (single(d)) return CPHIL_OK;
    for (size_t at = 0; at < n; at += CHUNK) {
        size_t c = n - at < CHUNK ? n - at : CHUNK;
        MPI_Request r;
        int rc = MPI_Iallreduce(MPI_IN_PLACE, (char *)x + at * esize, (int)c, t, op, d->comm, &r);
        if (rc != MPI_SUCCESS) return mpi_fail(d, rc, what);
        cphil_status s = wait_req(d, &r, what);
        if (s) return s;
    }
    return CPHIL_OK;
}

cphil_status cphil_dist_sum_f32(cphil_dist *d, float *x, size_t n, const char *what) {
    return reduce(d, x, n, sizeof(float), MPI_FLOAT, MPI_SUM, what);
}
cphil_status cphil_dist_wait_all(cphil_dist *d) {
    if (!d || d->n_pend == 0) return CPHIL_OK;
    cphil_status s = wait_reqs(d, d->pend, d->n_pend, d->pend_what ? d->pend_what : "exchange");
    if (s == CPHIL_OK) d->n_pend = 0; /* on failure the job is aborted; the requests stay */
    return s;
}

void cphil_dist_progress(cphil_dist *d) {
    int done = 0;
    if (d && d->n_pend > 0 && MPI_Testall(d->n_pend, d->pend, &done, MPI_STATUSES_IGNORE) == MPI_SUCCESS && done)
        d->n_pend = 0;
}

cphil_status cphil_dist_sum_f32_start(cphil_dist *d, float *x, size_t n, const char *what) {
    if (single(d)) return CPHIL_OK;
    for (size_t at = 0; at < n; at += CHUNK) {
        if (d->n_pend == CPHIL_DIST_MAX_PENDING) {
            cphil_status s = cphil_dist_wait_all(d);
            if (s) return s;
        }
        size_t c = n - at < CHUNK ? n - at : CHUNK;
        int rc = MPI_Iallreduce(MPI_IN_PLACE, x + at, (int)c, MPI_FLOAT, MPI_SUM, d->comm, &d->pend[d->n_pend]);
        if (rc != MPI_SUCCESS) return mpi_fail(d, rc, what);
        d->n_pend++;
        d->pend_what = what;
    }
    return CPHIL_OK;
}

cphil_status cphil_dist_sum_f64(cphil_dist *d, double *x, size_t n, const char *what) {
    return reduce(d, x, n, sizeof(double), MPI_DOUBLE, MPI_SUM, what);
}
cphil_status cphil_dist_max_u64(cphil_dist *d, uint64_t *x, size_t n, const char *what) {
    return reduce(d, x, n, sizeof(uint64_t), MPI_UINT64_T, MPI_MAX, what);
}

cphil_status cphil_dist_bcast(cphil_dist *d, void *buf, size_t bytes, const char *what) {
    if (single(d)) return CPHIL_OK;
    if (bytes > CHUNK) return cphil_err(CPHIL_E_ARG, "%s: %zu bytes is too large for one broadcast", what, bytes);
    MPI_Request r;
    int rc = MPI_Ibcast(buf, (int)bytes, MPI_BYTE, 0, d->comm, &r);
    if (rc != MPI_SUCCESS) return mpi_fail(d, rc, what);
    return wait_req(d, &r, what);
}

cphil_status cphil_dist_allgather(cphil_dist *d, const void *mine, size_t bytes, void *all, const char *what) {
    if (single(d)) {
        if (bytes && all != mine) memmove(all, mine, bytes);
        return CPHIL_OK;
    }
    if (bytes > CHUNK) return cphil_err(CPHIL_E_ARG, "%s: %zu bytes a rank is too large for one gather", what, bytes);
    MPI_Request r;
    int rc = MPI_Iallgather(mine, (int)bytes, MPI_BYTE, all, (int)bytes, MPI_BYTE, d->comm, &r);
    if (rc != MPI_SUCCESS) return mpi_fail(d, rc, what);
    return wait_req(d, &r, what);
}

cphil_status cphil_dist_check_same(cphil_dist *d, uint64_t value, const char *what) {
    if (single(d)) return CPHIL_OK;
    uint64_t *all = cphil_calloc((size_t)d->size, sizeof *all);
    if (!all) return cphil_err(CPHIL_E_NOMEM, "out of memory");
    MPI_Request r;
    int rc = MPI_Iallgather(&value, 1, MPI_UINT64_T, all, 1, MPI_UINT64_T, d->comm, &r);
    cphil_status s = rc != MPI_SUCCESS ? mpi_fail(d, rc, what) : wait_req(d, &r, what);
    if (s == CPHIL_OK) {
        char who[512] = "";
        size_t k = 0;
        int bad = 0;
        for (int p = 1; p < d->size; p++)
            if (all[p] != all[0]) {
                int w = snprintf(who + k, sizeof who - k, "%s%d (%016llx)", bad ? ", " : "", p,
                                 (unsigned long long)all[p]);
                if (w > 0 && (size_t)w < sizeof who - k) k += (size_t)w;
                bad++;
            }
        if (bad)
            s = cphil_err(CPHIL_E_MISMATCH,
                          "the ranks diverged: %s differ%s from rank 0's (%016llx) on rank%s %s; stopping rather "
                          "than train %d different models (a cphil bug, or a rank with faulty memory)",
                          what, bad == 1 ? "s" : "", (unsigned long long)all[0], bad == 1 ? "" : "s", who, d->size);
    }
    cphil_free(all);
    return s;
}
