/* dist_none.c — dist.h for a build without MPI: a world of one process. Started by a launcher
 * as one of several ranks, it refuses instead of training N unaware copies that would overwrite
 * each other's files. */
#include "dist/dist.h"

#include <stdlib.h>
#include <string.h>

struct cphil_dist {
    double timeout;
};

bool cphil_dist_compiled(void) { return false; }

cphil_status cphil_dist_open(double timeout_s, cphil_dist **out) {
    *out = NULL;
    int w = cphil_dist_env_world();
    if (w > 1)
        return cphil_err(CPHIL_E_UNSUPPORTED,
                         "this cphil was built without MPI, but it was started as one of %d ranks (mpirun sets "
                         "OMPI_COMM_WORLD_SIZE or PMI_SIZE): it would train %d unaware copies. Install Open MPI "
                         "(scripts/setup.sh installs libopenmpi-dev) and rebuild (make clean && make), or run one "
                         "process without mpirun",
                         w, w);
    cphil_dist *d = cphil_calloc(1, sizeof *d);
    if (!d) return cphil_err(CPHIL_E_NOMEM, "out of memory");
    d->timeout = timeout_s > 0 ? timeout_s : 600;
    *out = d;
    return CPHIL_OK;
}

void cphil_dist_close(cphil_dist *d) { cphil_free(d); }
void cphil_dist_abort(cphil_dist *d, int code) {
    (void)d;
    exit(code);
}
int cphil_dist_rank(const cphil_dist *d) {
    (void)d;
    return 0;
}
int cphil_dist_size(const cphil_dist *d) {
    (void)d;
    return 1;
}
double cphil_dist_timeout(const cphil_dist *d) { return d ? d->timeout : 600; }

cphil_status cphil_dist_sum_f32(cphil_dist *d, float *x, size_t n, const char *what) {
    (void)d, (void)x, (void)n, (void)what;
    return CPHIL_OK;
}
cphil_status cphil_dist_sum_f64(cphil_dist *d, double *x, size_t n, const char *what) {
    (void)d, (void)x, (void)n, (void)what;
    return CPHIL_OK;
}
cphil_status cphil_dist_sum_f32_start(cphil_dist *d, float *x, size_t n, const char *what) {
    (void)d, (void)x, (void)n, (void)what;
    return CPHIL_OK;
}
void cphil_dist_progress(cphil_dist *d) { (void)d; }
cphil_status cphil_dist_wait_all(cphil_dist *d) {
    (void)d;
    return CPHIL_OK;
}
cphil_status cphil_dist_max_u64(cphil_dist *d, uint64_t *x, size_t n, const char *what) {
    (void)d, (void)x, (void)n, (void)what;
    return CPHIL_OK;
}
cphil_status cphil_dist_bcast(cphil_dist *d, void *buf, size_t bytes, const char *what) {
    (void)d, (void)buf, (void)bytes, (void)what;
    return CPHIL_OK;
}
cphil_status cphil_dist_allgather(cphil_dist *d, const void *mine, size_t bytes, void *all, const char *what) {
    (void)d, (void)what;
    if (bytes && all != mine) memmove(all, mine, bytes);
    return CPHIL_OK;
}
cphil_status cphil_dist_check_same(cphil_dist *d, uint64_t value, const char *what) {
    (void)d, (void)value, (void)what;
    return CPHIL_OK;
}
int cphil_dist_silent_ranks(cphil_dist *d, double grace, char *buf, size_t n) {
    (void)d, (void)grace;
    if (n) buf[0] = '\0';
    return 0;
}
