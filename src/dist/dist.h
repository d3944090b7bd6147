/* dist.h — data-parallel ranks for `cphil train` (docs/distributed.md): which process of how
 * many this is, and the few collectives the training loop needs (sums of the gradient block and
 * of the step's loss terms, a per-step agreement, a cross-rank check of a value).
 *
 * The interface names neither MPI nor CUDA: src/dist/dist_mpi.c implements it over Open MPI
 * (compiled in when mk/mpi.mk finds `mpicc`; CPHIL_MPI=1), src/dist/dist_none.c over one
 * process. A NULL cphil_dist is one process of one (rank 0, every collective the identity), so
 * callers need no special case. Every collective waits at most the timeout given to
 * cphil_dist_open: a rank that died or hung makes the others return CPHIL_E_IO with a message
 * naming the ranks that did not answer, never a silent hang; the caller then calls
 * cphil_dist_abort, which ends every rank. Library code: nothing here prints or exits (except
 * cphil_dist_abort, which is asked to end the job).
 */
#ifndef CPHIL_DIST_DIST_H
#define CPHIL_DIST_DIST_H

#include "core/core.h"

#include <stddef.h>
#include <stdint.h>

typedef struct cphil_dist cphil_dist;

/* True when this cphil was built with MPI (CPHIL_MPI=1). */
bool cphil_dist_compiled(void);
/* The world size a launcher announced in the environment (Open MPI's OMPI_COMM_WORLD_SIZE,
 * PMI/Slurm's PMI_SIZE), or 0 when the process was not started by one. */
int cphil_dist_env_world(void);
/* This process's index among the ranks on its machine (OMPI_COMM_WORLD_LOCAL_RANK,
 * MPI_LOCALRANKID, SLURM_LOCALID), or 0: which GPU a rank takes under `--device cuda`. */
int cphil_dist_env_local_rank(void);
/* How many ranks run on this machine (OMPI_COMM_WORLD_LOCAL_SIZE, MPI_LOCALNRANKS,
 * SLURM_NTASKS_PER_NODE), or 0: the default thread count of a rank is the cores divided by it. */
int cphil_dist_env_local_size(void);

/* The gradient bucket size of CPU ranks from CPHIL_DIST_BUCKET_KB (KiB; 0 = one sum after the
 * backward), or `def` bytes when unset. A value that is not a whole number 0..4194304 fails.
 * The default is 0: on the 2-core machine the buckets measured no faster (docs/distributed.md). */
cphil_status cphil_dist_env_bucket_bytes(size_t def, size_t *bytes);
#define CPHIL_DIST_BUCKET_DEFAULT ((size_t)0)

/* Join the ranks the launcher started (MPI_Init), or make a world of one when none did.
 * timeout_s bounds every collective (<= 0: CPHIL_DIST_TIMEOUT from the environment, else 600).
 * A build without MPI started as one of several ranks fails with CPHIL_E_UNSUPPORTED. */
cphil_status cphil_dist_open(double timeout_s, cphil_dist **out);
/* Leave cleanly (MPI_Finalize). */
void cphil_dist_close(cphil_dist *d);
/* End every rank of the job now with exit code `code` (MPI_Abort); a world of one just exits. */
void cphil_dist_abort(cphil_dist *d, int code);

int cphil_dist_rank(const cphil_dist *d);
int cphil_dist_size(const cphil_dist *d);
double cphil_dist_timeout(const cphil_dist *d);

/* In-place sums over the ranks (every rank gets the same result). `what` names the exchange in
 * a timeout message ("gradient all-reduce"). */
cphil_status cphil_dist_sum_f32(cphil_dist *d, float *x, size_t n, const char *what);
cphil_status cphil_dist_sum_f64(cphil_dist *d, double *x, size_t n, const char *what);
/* The same in-place f32 sum, started now and finished later, so the exchange runs while the
 * caller computes (the gradient buckets of docs/distributed.md): every rank starts the same sums
 * in the same order; cphil_dist_progress lets MPI move them on (call it now and then: Open MPI
 * progresses only inside MPI calls); cphil_dist_wait_all waits for every started sum, bounded by
 * the timeout like every collective (the message names the silent ranks). x must not be read or
 * written until then. At most CPHIL_DIST_MAX_PENDING sums are in flight: another start first
 * waits for them. A world of one: nothing to do. */
#define CPHIL_DIST_MAX_PENDING 64
cphil_status cphil_dist_sum_f32_start(cphil_dist *d, float *x, size_t n, const char *what);
void cphil_dist_progress(cphil_dist *d);
cphil_status cphil_dist_wait_all(cphil_dist *d);
/* In-place maxima (flags: stop requests, errors). */
cphil_status cphil_dist_max_u64(cphil_dist *d, uint64_t *x, size_t n, const char *what);
/* Rank 0's `bytes` bytes at buf to every rank (an NCCL unique id). */
cphil_status cphil_dist_bcast(cphil_dist *d, void *buf, size_t bytes, const char *what);
/* Every rank's `bytes` bytes at `mine` to every rank: `all` receives ranks x bytes, rank r's at
 * r x bytes (per-rank state such as TBPTT's carried recurrent state, gathered for a checkpoint);
 * mine and all must not overlap. */
cphil_status cphil_dist_allgather(cphil_dist *d, const void *mine, size_t bytes, void *all, const char *what);
/* Every rank's `value` must be rank 0's: CPHIL_E_MISMATCH naming the ranks that differ. */
cphil_status cphil_dist_check_same(cphil_dist *d, uint64_t value, const char *what);
/* After a wait elsewhere timed out (the GPU's NCCL exchange): which ranks are dead or hung? Every
 * live rank that also calls this answers within `grace` seconds; the others are written to buf
 * ("1, 3"). Returns their count (0 for a world of one). */
int cphil_dist_silent_ranks(cphil_dist *d, double grace, char *buf, size_t n);

#endif
