/* dist_nccl.h — the GPU ranks' gradient exchange (CUDA build only; docs/distributed.md): one
 * NCCL communicator over the ranks of dist.h, its ncclUniqueId made by rank 0 and broadcast over
 * MPI (the rendezvous: no extra address or port to configure). The GPU policy (train_gpu.c) calls
 * it between backward and AdamW, on its stream, so the step stays one CUDA graph:
 *   host, before the step:  cphil_gpu_dist_begin_step (the ranks' frame-weight sum over MPI ->
 *                           this rank's share, written to pinned memory the graph reads)
 *   stream, during backward: cphil_gpu_dist_buckets_begin, then _ready(lo) at each of the
 *                           backward's stage boundaries: once [lo, hi) holds a bucket's worth
 *                           (CPHIL_GPU_BUCKET_MB, default 25; 0 = one exchange after the
 *                           backward), it is scaled by the share and all-reduced on a second
 *                           stream that waits for the backward up to there (an event), while
 *                           the backward goes on; _end joins that stream before AdamW. Inside
 *                           the captured graph these are edges, so the step stays one graph.
 *   stream, after backward: cphil_gpu_dist_enqueue (the unbucketed form: gradients x share,
 *                           ncclAllReduce sum in place)
 *   host, instead of a plain stream sync: cphil_gpu_dist_wait (polls the stream and NCCL's
 *                           asynchronous error with a deadline; on error or timeout it aborts the
 *                           communicator and names the silent ranks)
 *   host, after the step:   cphil_gpu_dist_loss (the global loss: sum of share x local loss).
 * With one rank every value is exact (share 1, an all-reduce of one), so the NCCL path gives the
 * plain GPU trainer's bits: the same code runs at every world size.
 */
#ifndef CPHIL_GPU_DIST_NCCL_H
#define CPHIL_GPU_DIST_NCCL_H

#include "dist/dist.h"
#include "kernels/cuda/cu.h"

typedef struct cphil_gpu_dist cphil_gpu_dist;

/* Join the NCCL communicator of d's ranks on the current device (d NULL: a world of one).
 * Bounded: a rank that never joins ends the process after the dist timeout with a message. */
cphil_status cphil_gpu_dist_create(cphil_dist *d, cphil_cu *cu, cphil_gpu_dist **out);
void cphil_gpu_dist_free(cphil_gpu_dist *g);
int cphil_gpu_dist_size(const cphil_gpu_dist *g);

cphil_status cphil_gpu_dist_begin_step(cphil_gpu_dist *g, double local_weight);
void cphil_gpu_dist_enqueue(cphil_gpu_dist *g, cphil_cu *cu, float *d_grads, size_t n);
/* Bucketed exchange overlapped with the backward (above); false from _begin = buckets are off
 * (CPHIL_GPU_BUCKET_MB=0): use cphil_gpu_dist_enqueue after the backward instead. */
bool cphil_gpu_dist_buckets_begin(cphil_gpu_dist *g, cphil_cu *cu, float *d_grads, size_t n);
void cphil_gpu_dist_buckets_ready(cphil_gpu_dist *g, size_t lo);
void cphil_gpu_dist_buckets_end(cphil_gpu_dist *g);
cphil_status cphil_gpu_dist_wait(cphil_gpu_dist *g, cphil_cu *cu);
cphil_status cphil_gpu_dist_loss(cphil_gpu_dist *g, double *loss);

/* Kernel (dist_scale.cu): x[i] *= *factor, the factor read from (pinned or device) memory when the
 * kernel runs, so a captured graph picks up each step's value. */
#ifdef __cplusplus
extern "C"
#endif
    void
    cphil_gpu_dist_scale(cudaStream_t s, float *x, size_t n, const float *factor);

#endif
