/* train_gpu.c — the GPU policy of gpu.h: the training loop's model table (cphil_tr_model_ops)
 * over policy_gpu.c, the twin of src/train/policy_train.c.
 *
 * One optimizer step: the batch (continuous features, ids, targets, frame weights, TBPTT resets
 * and the id index for the input layer's backward: about 0.3 KB a frame, never an E-wide dense
 * row) is packed on the host into one of two pinned staging slots; then ONE stream sequence copies
 * it to the GPU, runs forward, loss, backward, gradient-norm clipping and AdamW, and copies back
 * the loss, its per-head parts and the gradient norm (40 bytes). After two eager steps that
 * sequence is captured into a CUDA graph per slot and replayed, so a step costs one graph launch
 * and one wait. The trainer's loader thread (train/prefetch.h) builds batch i+1 and packs it into
 * the other slot (gp_prepare) while step i runs, so the host's work hides behind the GPU's.
 * Distillation batches (teacher probabilities) run the distillation loss on the host between a
 * forward and a backward launch (src/train/distill_loss.c, the CPU trainer's own code).
 *
 * Host mirrors: the parameter block, the AdamW moments and the TBPTT carry have host copies laid
 * out exactly as the CPU trainer's; the trainer's checkpoint code reads and writes those
 * (sections), so checkpoints are interchangeable between CPU and GPU. The mirrors are refreshed
 * from the GPU when sections or the policy file are asked for, and uploaded again before the next
 * step (the trainer may have written them: resume).
 * Step-varying AdamW values (bias corrections, decayed lr) are computed on the host exactly as
 * adamw.c computes them and travel with the batch, so the graph reads them from device memory.
 */
#include "gpu/gpu.h"
#include "gpu/dist_nccl.h"
#include "gpu/policy_gpu.h"

#include "core/core.h"
#include "kernels/cpu/kernels.h"
#include "train/distill_loss.h"

#include <cuda_runtime_api.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Fixed parts of a batch's staging copy (spread over cphil_parallel's threads). */
#define STAGE_PARTS 16

bool cphil_gpu_compiled(void) { return true; }

int cphil_gpu_describe_all(char *buf, size_t n) {
    int count = 0, drv = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess || count == 0) {
        cudaGetLastError();
        snprintf(buf, n, "compiled in; no GPU found (%s)",
                 e != cudaSuccess ? cudaGetErrorString(e) : "the driver reports 0 devices");
        return 0;
    }
    cudaDriverGetVersion(&drv);
    size_t used = 0;
    buf[0] = '\0';
    for (int d = 0; d < count && used < n; d++) {
        struct cudaDeviceProp p;
        if (cudaGetDeviceProperties(&p, d) != cudaSuccess) continue;
        int w = snprintf(buf + used, n - used, "%scuda:%d %s (sm_%d%d, %d SMs, %.1f GiB), driver CUDA %d.%d",
                         d ? "; " : "", d, p.name, p.major, p.minor, p.multiProcessorCount,
                         (double)p.totalGlobalMem / (1 << 30), drv / 1000, (drv % 1000) / 10);
        if (w < 0) break;
        used += (size_t)w;
    }
    return count;
}

cphil_status cphil_gpu_check(int device) {
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess || count == 0) {
        cudaGetLastError();
        return cphil_err(CPHIL_E_UNSUPPORTED,
                         "--device cuda: this cphil has CUDA but no GPU is usable here (%s): run it on a machine "
                         "with an NVIDIA GPU and driver, or drop --device to use the CPU",
                         e != cudaSuccess ? cudaGetErrorString(e) : "the driver reports 0 devices");
    }
    if (device < 0 || device >= count)
        return cphil_err(CPHIL_E_ARG, "--device cuda:%d: this machine has %d GPU%s (cuda:0..cuda:%d)", device, count,
                         count == 1 ? "" : "s", count - 1);
    return CPHIL_OK;
}

/* A pinned staging slot's layout (both slots and the device buffer share it): one copy per step. */
typedef struct stage_layout {
    size_t cont, ids, btn, cls, weight, reset, index, adamw, bytes;
} stage_layout;

struct cphil_gpu_policy {
    cphil_cu *cu;
    cphil_model model;   /* host: config, table, parameter mirror */
    cphil_adamw opt;     /* host: moment mirrors, step, hyper-parameters */
    cphil_tr_policy_opts o;
    cphil_cu_loss_params lp;
    cphil_gpu_ws *ws;
    char config_json[4096], device_desc[256];
    int B, T, M;
    size_t n;            /* floats in the parameter block */
    float *d_params, *d_grads, *d_m, *d_v, *d_carry, *h_carry;
    size_t carry_floats;
    stage_layout L;
    /* Two pinned slots: step i's graph copies slot i % 2 while the loader packs batch i+1 into
     * the other. prep_slot: where gp_prepare packs next; run_slot: what the next step reads;
     * slot_ready/slot_weight: packed by gp_prepare, not yet stepped (and its frame weight). */
    unsigned char *h_slot[2], *d_stage;
    int prep_slot, run_slot, cur; /* cur: the slot the next upload reads */
    bool slot_ready[2];
    double slot_weight[2];
    int32_t *h_count;    /* the id index's counting sort (cphil_cu_id_index_scratch_ints) */
    float *h_out, *d_out; /* pinned / device: loss[8] then the gradient norm (double) */
    void *d_loss_scratch, *d_adamw_scratch;
    float *h_logits, *h_dlogits; /* pinned, M * 81: eval and distillation */
    bool host_dirty;     /* mirrors handed out: upload before the next step */
    bool device_newer;   /* the GPU has updates the mirrors lack */
    bool use_graph;
    cudaGraphExec_t graph[2]; /* the step, captured once per staging slot */
    int eager_steps;
    cphil_gpu_dist *gd;  /* NCCL gradient exchange between the ranks (o.nccl), or NULL */
};

static void layout(cphil_gpu_policy *p) {
    const cphil_model_config *c = &p->model.cfg;
    size_t off = 0, M = (size_t)p->M;
#define PLACE(field, bytes)                     \
    do {                                        \
        p->L.field = off;                       \
        off += ((size_t)(bytes) + 255) & ~(size_t)255; \
    } while (0)
    PLACE(cont, M * (size_t)c->n_cont * sizeof(float));
    PLACE(ids, M * (size_t)c->n_ids * sizeof(int32_t));
    PLACE(btn, M * CPHIL_N_BUTTONS);
    PLACE(cls, M * CPHIL_N_CAT_HEADS);
    PLACE(weight, M * sizeof(float));
    PLACE(reset, (size_t)p->B);
    PLACE(index, cphil_cu_id_index_ints(p->M, c->n_ids, c->E, c->n_cont) * sizeof(int32_t));
    PLACE(adamw, sizeof(cphil_cu_adamw_params));
#undef PLACE
    p->L.bytes = off;
}

cphil_model *cphil_gpu_policy_model(cphil_gpu_policy *p) { return &p->model; }
const char *cphil_gpu_policy_device(const cphil_gpu_policy *p) { return p->device_desc; }

void cphil_gpu_policy_free(cphil_gpu_policy *p) {
    if (!p) return;
    if (p->cu) cphil_cu_sync(p->cu);
    for (int k = 0; k < 2; k++)
        if (p->graph[k]) cudaGraphExecDestroy(p->graph[k]);
    cphil_gpu_ws_free(p->ws);
    cphil_cu_free(p->d_params);
    cphil_gpu_dist_free(p->gd);
    cphil_cu_free(p->d_grads);
    cphil_cu_free(p->d_m);
    cphil_cu_free(p->d_v);
    cphil_cu_free(p->d_carry);
    cphil_cu_free(p->d_stage);
    cphil_cu_free(p->d_out);
    cphil_cu_free(p->d_loss_scratch);
    cphil_cu_free(p->d_adamw_scratch);
    for (int k = 0; k < 2; k++)
        if (p->h_slot[k]) cudaFreeHost(p->h_slot[k]);
    if (p->h_out) cudaFreeHost(p->h_out);
    if (p->h_logits) cudaFreeHost(p->h_logits);
    if (p->h_dlogits) cudaFreeHost(p->h_dlogits);
    cphil_free(p->h_count);
    cphil_free(p->h_carry);
    cphil_adamw_free(&p->opt);
    cphil_model_free(&p->model);
    cphil_cu_destroy(p->cu);
    cphil_free(p);
}

static cphil_status pinned(void **ptr, size_t bytes, const char *what) {
    if (cudaMallocHost(ptr, bytes ? bytes : 1) != cudaSuccess) {
        cudaGetLastError();
        *ptr = NULL;
        return cphil_err(CPHIL_E_NOMEM, "cannot allocate %.1f MiB of pinned host memory for %s",
                         (double)bytes / (1 << 20), what);
    }
    return CPHIL_OK;
}

/* Host <-> device copies of the mirrors, on the context's stream (a plain cudaMemcpy runs on the
 * legacy stream, which the non-blocking stream does not wait for), waited for. */
static cphil_status copy_sync(cphil_gpu_policy *p, void *dst, const void *src, size_t bytes, enum cudaMemcpyKind k) {
    cudaError_t e = cudaMemcpyAsync(dst, src, bytes, k, cphil_cu_stream(p->cu));
    if (e == cudaSuccess) e = cudaStreamSynchronize(cphil_cu_stream(p->cu));
    if (e != cudaSuccess)
        return cphil_err(CPHIL_E_INTERNAL, "copy %s %s failed: %s", k == cudaMemcpyHostToDevice ? "to" : "from",
                         p->device_desc, cudaGetErrorString(e));
    return CPHIL_OK;
}
static cphil_status upload(cphil_gpu_policy *p, void *dst, const void *src, size_t bytes) {
    return copy_sync(p, dst, src, bytes, cudaMemcpyHostToDevice);
}
static cphil_status download(cphil_gpu_policy *p, void *dst, const void *src, size_t bytes) {
    return copy_sync(p, dst, src, bytes, cudaMemcpyDeviceToHost);
}

cphil_status cphil_gpu_policy_create(int device, const cphil_model_config *cfg, const cphil_tr_policy_opts *o,
                                     cphil_gpu_policy **out) {
    *out = NULL;
    cphil_status s = cphil_gpu_check(device);
    if (s) return s;
    cphil_gpu_policy *p = cphil_calloc(1, sizeof *p);
    if (!p) return cphil_err(CPHIL_E_NOMEM, "out of memory for the GPU policy");
    p->o = *o;
    p->B = o->B;
    p->T = o->T;
    p->M = o->B * o->T;
    if ((s = cphil_cu_create(device, &p->cu)) != CPHIL_OK) goto fail;
    cphil_cu_describe(p->cu, p->device_desc, sizeof p->device_desc);
    if ((s = cphil_model_init(&p->model, cfg)) != CPHIL_OK) goto fail;
    cphil_model_init_params(&p->model, o->seed); /* the CPU trainer's initial bits */
    p->n = p->model.n_floats;
    cphil_adamw_config ac;
    cphil_adamw_config_default(&ac);
    ac.weight_decay = (float)o->weight_decay;
    ac.max_grad_norm = (float)o->max_grad_norm;
    ac.schedule = CPHIL_SCHED_CONSTANT;
    if ((s = cphil_adamw_init(&p->opt, &ac, p->n)) != CPHIL_OK) goto fail;
    const size_t pb = p->n * sizeof(float);
    if ((s = cphil_cu_malloc(p->cu, (void **)&p->d_params, pb, "the parameters")) ||
        (s = cphil_cu_malloc(p->cu, (void **)&p->d_grads, pb, "the gradients")) ||
        (s = cphil_cu_malloc(p->cu, (void **)&p->d_m, pb, "the AdamW moments")) ||
        (s = cphil_cu_malloc(p->cu, (void **)&p->d_v, pb, "the AdamW moments")))
        goto fail;
    if ((s = cphil_gpu_ws_create(p->cu, &p->model, p->B, p->T, &p->ws)) != CPHIL_OK) goto fail;
    if (o->tbptt) {
        p->carry_floats = cphil_model_carry_floats(cfg, o->B);
        if (p->carry_floats == 0) {
            s = cphil_err(CPHIL_E_ARG, "--tbptt needs a recurrent backbone (lstm or gru), not %s",
                          cphil_backbone_name(cfg->backbone));
            goto fail;
        }
        p->h_carry = cphil_calloc(p->carry_floats, sizeof(float));
        if (!p->h_carry) {
            s = cphil_err(CPHIL_E_NOMEM, "out of memory for the carried state");
            goto fail;
        }
        if ((s = cphil_cu_malloc(p->cu, (void **)&p->d_carry, p->carry_floats * sizeof(float), "the carried state")))
            goto fail;
    }
    layout(p);
    if ((s = pinned((void **)&p->h_slot[0], p->L.bytes, "the batch staging buffers")) ||
        (s = pinned((void **)&p->h_slot[1], p->L.bytes, "the batch staging buffers")) ||
        (s = cphil_cu_malloc(p->cu, (void **)&p->d_stage, p->L.bytes, "the batch")) ||
        (s = pinned((void **)&p->h_out, 16 * sizeof(float), "the loss")) ||
        (s = cphil_cu_malloc(p->cu, (void **)&p->d_out, 16 * sizeof(float), "the loss")) ||
        (s = cphil_cu_malloc(p->cu, &p->d_loss_scratch, cphil_cu_loss_scratch_bytes(p->M), "the loss terms")) ||
        (s = cphil_cu_malloc(p->cu, &p->d_adamw_scratch, cphil_cu_adamw_scratch_bytes(), "the gradient norm")) ||
        (s = pinned((void **)&p->h_logits, (size_t)p->M * CPHIL_N_LOGITS * sizeof(float), "logits")) ||
        (s = pinned((void **)&p->h_dlogits, (size_t)p->M * CPHIL_N_LOGITS * sizeof(float), "logit gradients")))
        goto fail;
    memset(p->h_slot[0], 0, p->L.bytes);
    memset(p->h_slot[1], 0, p->L.bytes);
    p->h_count = cphil_calloc(cphil_cu_id_index_scratch_ints(cfg->E), sizeof(int32_t));
    if (!p->h_count) {
        s = cphil_err(CPHIL_E_NOMEM, "out of memory for the id index");
        goto fail;
    }
    cphil_loss_config lc;
    cphil_loss_config_default(&lc);
    for (int j = 0; j < CPHIL_N_BUTTONS; j++) p->lp.pos_weight[j] = lc.pos_weight[j];
    p->lp.label_smoothing = (float)o->label_smoothing;
    p->lp.button_weight = (float)o->button_weight;
    size_t jl;
    if ((s = cphil_model_config_to_json(cfg, p->config_json, sizeof p->config_json, &jl)) != CPHIL_OK) goto fail;
    p->host_dirty = true; /* parameters and zero moments go up before the first step */
    const char *g = getenv("CPHIL_CUDA_GRAPH");
    p->use_graph = !(g && !strcmp(g, "0"));
    if (o->nccl && (s = cphil_gpu_dist_create(o->dist, p->cu, &p->gd)) != CPHIL_OK) goto fail;
    *out = p;
    return CPHIL_OK;
fail:
    cphil_gpu_policy_free(p);
    return s;
}

/* Mirrors -> GPU (after the trainer may have written them). */
static cphil_status push_mirrors(cphil_gpu_policy *p) {
    if (!p->host_dirty) return CPHIL_OK;
    const size_t pb = p->n * sizeof(float);
    cphil_status s;
    if ((s = upload(p, p->d_params, p->model.params, pb)) || (s = upload(p, p->d_m, p->opt.m, pb)) ||
        (s = upload(p, p->d_v, p->opt.v, pb)))
        return s;
    if (p->d_carry && (s = upload(p, p->d_carry, p->h_carry, p->carry_floats * sizeof(float)))) return s;
    p->host_dirty = false;
    return CPHIL_OK;
}

/* GPU -> mirrors. */
static cphil_status pull_mirrors(cphil_gpu_policy *p) {
    cphil_status s = cphil_cu_sync(p->cu);
    if (s) return s;
    if (!p->device_newer) return CPHIL_OK;
    const size_t pb = p->n * sizeof(float);
    if ((s = download(p, p->model.params, p->d_params, pb)) || (s = download(p, p->opt.m, p->d_m, pb)) ||
        (s = download(p, p->opt.v, p->d_v, pb)))
        return s;
    if (p->d_carry && (s = download(p, p->h_carry, p->d_carry, p->carry_floats * sizeof(float)))) return s;
    p->device_newer = false;
    return CPHIL_OK;
}

/* Pack the batch into pinned staging slot `slot`. */
/* stage()'s copy of rows [M part / parts, M (part + 1) / parts) into the pinned slot, with the
 * class targets checked (the first bad one of the part kept). */
typedef struct stage_copy {
    const cphil_gpu_policy *p;
    const cphil_tr_batch *tb;
    unsigned char *h;
    size_t bad[STAGE_PARTS]; /* per part: the first class target out of range, or M x heads */
} stage_copy;

static void stage_rows(void *ctx, int part, int parts) {
    stage_copy *sc = ctx;
    const cphil_gpu_policy *p = sc->p;
    const cphil_tr_batch *tb = sc->tb;
    const size_t M = (size_t)p->M, nc = (size_t)p->model.cfg.n_cont, ni = (size_t)p->model.cfg.n_ids;
    const size_t a = M * (size_t)part / (size_t)parts, z = M * (size_t)(part + 1) / (size_t)parts;
    unsigned char *h = sc->h;
    memcpy((float *)(h + p->L.cont) + a * nc, tb->cont + a * nc, (z - a) * nc * sizeof(float));
    memcpy((int32_t *)(h + p->L.ids) + a * ni, tb->ids + a * ni, (z - a) * ni * sizeof(int32_t));
    memcpy(h + p->L.btn + a * CPHIL_N_BUTTONS, tb->btn + a * CPHIL_N_BUTTONS, (z - a) * CPHIL_N_BUTTONS);
    memcpy(h + p->L.cls + a * CPHIL_N_CAT_HEADS, tb->cls + a * CPHIL_N_CAT_HEADS, (z - a) * CPHIL_N_CAT_HEADS);
    float *wt = (float *)(h + p->L.weight);
    for (size_t m = a; m < z; m++) wt[m] = tb->weight ? tb->weight[m] : 1.0f;
    sc->bad[part] = M * CPHIL_N_CAT_HEADS;
    for (size_t m = a * CPHIL_N_CAT_HEADS; m < z * CPHIL_N_CAT_HEADS; m++)
        if (tb->cls[m] >= cphil_head_classes[(int)(m % CPHIL_N_CAT_HEADS) + 1]) {
            sc->bad[part] = m;
            break;
        }
}

/* Pack a batch into pinned slot `slot`: the rows (spread over cphil_parallel's threads: this is
 * the loader's work, and the CPU is otherwise idle while the GPU trains), the reset flags and the
 * id index. */
static cphil_status stage(cphil_gpu_policy *p, int slot, const cphil_tr_batch *tb, bool with_index) {
    const cphil_model_config *c = &p->model.cfg;
    if (tb->B != p->B || tb->T != p->T)
        return cphil_err(CPHIL_E_INTERNAL, "batch %dx%d does not match the GPU workspace %dx%d", tb->B, tb->T, p->B,
                         p->T);
    if (tb->tstride != 0 && tb->tstride != CPHIL_N_BUTTONS)
        return cphil_err(CPHIL_E_INTERNAL, "GPU batches need packed targets (stride %zu)", tb->tstride);
    unsigned char *h = p->h_slot[slot];
    stage_copy sc = {.p = p, .tb = tb, .h = h};
    cphil_parallel(STAGE_PARTS, stage_rows, &sc);
    for (int t = 0; t < STAGE_PARTS; t++)
        if (sc.bad[t] < (size_t)p->M * CPHIL_N_CAT_HEADS) {
            const size_t m = sc.bad[t];
            const int head = (int)(m % CPHIL_N_CAT_HEADS) + 1;
            return cphil_err(CPHIL_E_FORMAT, "batch target %d of head %s is out of range", tb->cls[m],
                             cphil_head_names[head]);
        }
    uint8_t *rs = h + p->L.reset;
    for (int b = 0; b < p->B; b++) rs[b] = (uint8_t)(!tb->reset || tb->reset[b]);
    if (with_index)
        return cphil_cu_id_index_build(p->M, c->n_ids, c->E, c->n_cont, tb->ids, (int32_t *)(h + p->L.index),
                                       p->h_count);
    return CPHIL_OK;
}

/* The step's AdamW values, as adamw.c computes them for step index opt.step. */
static void stage_adamw(cphil_gpu_policy *p, double lr) {
    const cphil_adamw_config *c = &p->opt.cfg;
    p->opt.cfg.lr = (float)lr;
    const float lrf = (float)lr;
    const long step = p->opt.step + 1;
    const double bc1 = 1.0 - pow((double)c->beta1, (double)step);
    const double bc2 = 1.0 - pow((double)c->beta2, (double)step);
    cphil_cu_adamw_params *ap = (cphil_cu_adamw_params *)(p->h_slot[p->cur] + p->L.adamw);
    ap->step_size = (float)(lrf / bc1);
    ap->bc2s = (float)sqrt(bc2);
    ap->decay = 1.0f - lrf * c->weight_decay;
    ap->beta1 = c->beta1;
    ap->beta2 = c->beta2;
    ap->eps = c->eps;
}

static void enqueue_upload(cphil_gpu_policy *p) {
    cphil_cu_record(p->cu,
                    (int)cudaMemcpyAsync(p->d_stage, p->h_slot[p->cur], p->L.bytes, cudaMemcpyHostToDevice,
                                         cphil_cu_stream(p->cu)),
                    "batch copy", __FILE__, __LINE__);
}

#define D(field, type) ((type)(p->d_stage + p->L.field))

static void enqueue_forward(cphil_gpu_policy *p, bool carry) {
    cphil_gpu_ws *w = p->ws;
    const cphil_model_config *c = &p->model.cfg;
    w->carry = carry ? p->d_carry : NULL;
    if (w->carry) {
        int blocks = (int)(p->carry_floats / ((size_t)p->B * (size_t)c->hidden));
        cphil_cu_carry_reset(p->cu, blocks, p->B, c->hidden, D(reset, const uint8_t *), p->d_carry);
    }
    cphil_gpu_ws_forward(w, p->d_params, D(cont, const float *), D(ids, const int32_t *));
}

static void enqueue_loss(cphil_gpu_policy *p) {
    cphil_cu_policy_loss(p->cu, p->M, p->ws->logits, D(btn, const uint8_t *), D(cls, const uint8_t *),
                         D(weight, const float *), &p->lp, p->ws->dlogits, p->d_out, p->d_loss_scratch);
}

static void grads_ready(void *user, size_t lo) { cphil_gpu_dist_buckets_ready(user, lo); }

static void enqueue_backward_update(cphil_gpu_policy *p) {
    const cphil_model_config *c = &p->model.cfg;
    cphil_cu_id_index ix;
    cphil_cu_id_index_view(p->M, c->n_ids, c->E, c->n_cont, D(index, const int32_t *), &ix);
    cphil_cu_zero(p->cu, p->d_grads, p->n * sizeof(float));
    /* ranks: gradients x this rank's weight share, summed over the ranks (one graph still), in
     * buckets on a second stream while the backward goes on, or after it */
    bool buckets = p->gd && cphil_gpu_dist_buckets_begin(p->gd, p->cu, p->d_grads, p->n);
    p->ws->grads_ready = buckets ? grads_ready : NULL;
    p->ws->grads_user = p->gd;
    cphil_gpu_ws_backward(p->ws, p->d_params, D(cont, const float *), &ix, p->d_grads);
    if (buckets) cphil_gpu_dist_buckets_end(p->gd);
    else if (p->gd) cphil_gpu_dist_enqueue(p->gd, p->cu, p->d_grads, p->n);
    cphil_cu_adamw_step(p->cu, p->n, p->d_params, p->d_grads, p->d_m, p->d_v, p->opt.cfg.max_grad_norm,
                        D(adamw, const cphil_cu_adamw_params *), p->d_adamw_scratch);
    cudaStream_t s = cphil_cu_stream(p->cu);
    cphil_cu_record(p->cu,
                    (int)cudaMemcpyAsync(p->d_out + 8, cphil_cu_adamw_norm_ptr(p->d_adamw_scratch), sizeof(double),
                                         cudaMemcpyDeviceToDevice, s),
                    "norm copy", __FILE__, __LINE__);
}

static void enqueue_readback(cphil_gpu_policy *p) {
    cphil_cu_record(p->cu,
                    (int)cudaMemcpyAsync(p->h_out, p->d_out, 16 * sizeof(float), cudaMemcpyDeviceToHost,
                                         cphil_cu_stream(p->cu)),
                    "loss copy", __FILE__, __LINE__);
}

/* Wait for a step: with ranks, a polling wait bounded by the dist timeout (NCCL kernels wait
 * for their peers without end). */
static cphil_status step_sync(cphil_gpu_policy *p) {
    return p->gd ? cphil_gpu_dist_wait(p->gd, p->cu) : cphil_cu_sync(p->cu);
}

/* The whole imitation step, eager or as one graph (captured after two eager steps). */
static cphil_status run_step(cphil_gpu_policy *p) {
    cudaStream_t s = cphil_cu_stream(p->cu);
    cudaGraphExec_t *graph = &p->graph[p->cur];
    if (*graph) {
        cudaError_t e = cudaGraphLaunch(*graph, s);
        if (e != cudaSuccess) cphil_cu_record(p->cu, (int)e, "graph launch", __FILE__, __LINE__);
        return step_sync(p);
    }
    bool capture = p->use_graph && p->eager_steps >= 2;
    cudaGraph_t g = NULL;
    if (capture && cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal) != cudaSuccess) {
        cudaGetLastError();
        capture = false;
        p->use_graph = false;
    }
    enqueue_upload(p);
    enqueue_forward(p, p->d_carry != NULL);
    enqueue_loss(p);
    enqueue_backward_update(p);
    enqueue_readback(p);
    if (capture) {
        cudaError_t e = cudaStreamEndCapture(s, &g);
        if (e == cudaSuccess) e = cudaGraphInstantiate(graph, g, 0);
        if (g) cudaGraphDestroy(g);
        if (e != cudaSuccess) {
            /* capture is an optimization: fall back to eager steps, saying nothing is lost */
            cudaGetLastError();
            *graph = NULL;
            p->use_graph = false;
            enqueue_upload(p);
            enqueue_forward(p, p->d_carry != NULL);
            enqueue_loss(p);
            enqueue_backward_update(p);
            enqueue_readback(p);
            return step_sync(p);
        }
        e = cudaGraphLaunch(*graph, s);
        if (e != cudaSuccess) cphil_cu_record(p->cu, (int)e, "graph launch", __FILE__, __LINE__);
        return step_sync(p);
    }
    p->eager_steps++;
    return step_sync(p);
}

/* Distillation: forward, the host's distillation loss, backward + update. */
static cphil_status run_distill_step(cphil_gpu_policy *p, const cphil_tr_batch *tb, double *loss) {
    const size_t nl = (size_t)p->M * CPHIL_N_LOGITS;
    cudaStream_t s = cphil_cu_stream(p->cu);
    enqueue_upload(p);
    enqueue_forward(p, p->d_carry != NULL);
    cphil_cu_record(p->cu,
                    (int)cudaMemcpyAsync(p->h_logits, p->ws->logits, nl * sizeof(float), cudaMemcpyDeviceToHost, s),
                    "logits copy", __FILE__, __LINE__);
    cphil_status st = cphil_cu_sync(p->cu);
    if (st) return st;
    cphil_distill_terms t;
    cphil_distill_loss(p->h_logits, tb->soft, tb->btn, tb->cls, (size_t)p->M, p->o.distill_T, p->o.distill_alpha,
                       p->h_dlogits, &t);
    *loss = t.loss;
    if (!isfinite(*loss)) return CPHIL_OK;
    cphil_cu_record(p->cu,
                    (int)cudaMemcpyAsync(p->ws->dlogits, p->h_dlogits, nl * sizeof(float), cudaMemcpyHostToDevice, s),
                    "logit gradient copy", __FILE__, __LINE__);
    enqueue_backward_update(p);
    enqueue_readback(p);
    return step_sync(p);
}

static double batch_weight(const cphil_tr_batch *tb) {
    size_t nw = (size_t)tb->B * (size_t)tb->T;
    if (!tb->weight) return (double)nw;
    double w = 0;
    for (size_t i = 0; i < nw; i++) w += tb->weight[i];
    return w;
}

/* The loader thread's half of a step (cphil_tr_model_ops.prepare): pack the next step's batch
 * into the slot the running step does not read. Touches only that slot, the id index scratch and
 * prep_slot. Distillation batches stay with their step (the host loss reads the teacher's
 * probabilities after the forward). */
static cphil_status gp_prepare(void *self, const cphil_tr_batch *tb, bool *staged) {
    cphil_gpu_policy *p = self;
    *staged = false;
    if (tb->soft) return CPHIL_OK;
    const int slot = p->prep_slot;
    cphil_status s = stage(p, slot, tb, true);
    if (s != CPHIL_OK) return s;
    p->slot_weight[slot] = batch_weight(tb);
    p->slot_ready[slot] = true;
    p->prep_slot = slot ^ 1;
    *staged = true;
    return CPHIL_OK;
}

static cphil_status gp_train_step(void *self, const cphil_tr_batch *tb, double lr, double *loss) {
    cphil_gpu_policy *p = self;
    cphil_status s;
    if ((s = push_mirrors(p)) != CPHIL_OK) return s;
    double w;
    p->cur = p->run_slot;
    if (p->slot_ready[p->cur]) { /* packed by gp_prepare: tb's arrays may be refilled already */
        p->slot_ready[p->cur] = false;
        w = p->slot_weight[p->cur];
        p->run_slot ^= 1;
    } else { /* nothing pending (prep_slot == run_slot): pack it here */
        if ((s = stage(p, p->cur, tb, true)) != CPHIL_OK) return s;
        w = batch_weight(tb);
    }
    stage_adamw(p, lr);
    /* ranks: this rank's share of the global frame weight, before the step's graph reads it */
    if (p->gd && (s = cphil_gpu_dist_begin_step(p->gd, w)) != CPHIL_OK) return s;
    if (tb->soft) {
        if ((s = run_distill_step(p, tb, loss)) != CPHIL_OK) return s;
        if (!isfinite(*loss) && !p->gd) return CPHIL_OK;
    } else {
        if ((s = run_step(p)) != CPHIL_OK) return s;
        *loss = p->h_out[0];
    }
    /* ranks: the global loss (a NaN on any rank reaches all, so all stop together) */
    if (p->gd && (s = cphil_gpu_dist_loss(p->gd, loss)) != CPHIL_OK) return s;
    if (tb->soft && !isfinite(*loss)) return CPHIL_OK;
    p->device_newer = true;
    double norm;
    memcpy(&norm, p->h_out + 8, sizeof norm);
    if (!isfinite(*loss)) return CPHIL_OK; /* the loop stops with a message */
    if (!isfinite(norm)) {
        *loss = NAN; /* non-finite gradient: AdamW updated nothing; stop */
        return CPHIL_OK;
    }
    p->opt.step++;
    return CPHIL_OK;
}

static cphil_status gp_eval(void *self, const cphil_tr_batch *tb, float *logits_out, double *loss) {
    cphil_gpu_policy *p = self;
    cphil_status s;
    if ((s = push_mirrors(p)) != CPHIL_OK) return s;
    p->cur = p->run_slot; /* nothing is pending between epochs */
    if ((s = stage(p, p->cur, tb, false)) != CPHIL_OK) return s;
    const size_t nl = (size_t)p->M * CPHIL_N_LOGITS;
    enqueue_upload(p);
    enqueue_forward(p, false); /* validation windows start from zero state */
    if (!tb->soft) enqueue_loss(p);
    cudaStream_t st = cphil_cu_stream(p->cu);
    cphil_cu_record(p->cu,
                    (int)cudaMemcpyAsync(p->h_logits, p->ws->logits, nl * sizeof(float), cudaMemcpyDeviceToHost, st),
                    "logits copy", __FILE__, __LINE__);
    enqueue_readback(p);
    if ((s = cphil_cu_sync(p->cu)) != CPHIL_OK) return s;
    memcpy(logits_out, p->h_logits, nl * sizeof(float));
    if (tb->soft) {
        cphil_distill_terms t;
        cphil_distill_loss(p->h_logits, tb->soft, tb->btn, tb->cls, (size_t)p->M, p->o.distill_T, p->o.distill_alpha,
                           p->h_dlogits, &t);
        *loss = t.loss;
    } else {
        *loss = p->h_out[0];
    }
    return CPHIL_OK;
}

static int gp_sections(void *self, cphil_tr_section *out, int cap) {
    cphil_gpu_policy *p = self;
    if (cap < 4) return 0;
    if (pull_mirrors(p) != CPHIL_OK) return 0; /* the trainer reports a failed save/load */
    p->host_dirty = true; /* the trainer may write them (resume): upload before the next step */
    size_t bytes = p->n * sizeof(float);
    out[0] = (cphil_tr_section){"params", p->model.params, bytes, CPHIL_TR_SEC_F32_FINITE};
    out[1] = (cphil_tr_section){"adamw_m", p->opt.m, bytes, CPHIL_TR_SEC_F32_FINITE};
    out[2] = (cphil_tr_section){"adamw_v", p->opt.v, bytes, CPHIL_TR_SEC_F32_NONNEG};
    out[3] = (cphil_tr_section){"adamw_step", &p->opt.step, sizeof p->opt.step,
                                 sizeof p->opt.step == 8 ? CPHIL_TR_SEC_I64_NONNEG : CPHIL_TR_SEC_BYTES};
    if (p->h_carry && cap > 4) {
        out[4] = (cphil_tr_section){"carry", p->h_carry, p->carry_floats * sizeof(float), CPHIL_TR_SEC_F32_FINITE};
        return 5;
    }
    return 4;
}

static cphil_status gp_save(void *self, const char *path, const char *meta_json) {
    cphil_gpu_policy *p = self;
    cphil_status s = pull_mirrors(p);
    if (s) return s;
    return cphil_policy_save_meta(&p->model, path, meta_json);
}

static const char *gp_config(void *self) { return ((cphil_gpu_policy *)self)->config_json; }

const cphil_tr_model_ops cphil_gpu_policy_ops = {gp_train_step, gp_eval, gp_sections, gp_save, gp_config, gp_prepare};

/* ---- benchmark hook (bench/cuda/bench_train_gpu.c) ----------------------------------------- */
cphil_status cphil_gpu_policy_time(cphil_gpu_policy *p, const cphil_tr_batch *tb, double lr, int warmup, int steps,
                                   double *gpu_ms) {
    cphil_status s;
    if ((s = push_mirrors(p)) != CPHIL_OK) return s;
    p->cur = p->run_slot;
    if ((s = stage(p, p->cur, tb, true)) != CPHIL_OK) return s;
    stage_adamw(p, lr);
    for (int i = 0; i < warmup; i++)
        if ((s = run_step(p)) != CPHIL_OK) return s;
    cudaEvent_t a, b;
    if (cudaEventCreate(&a) != cudaSuccess || cudaEventCreate(&b) != cudaSuccess)
        return cphil_err(CPHIL_E_INTERNAL, "cannot create CUDA events");
    cudaStream_t st = cphil_cu_stream(p->cu);
    for (int i = 0; i < steps && s == CPHIL_OK; i++) {
        cudaEventRecord(a, st);
        s = run_step(p); /* a graph launch (or the eager sequence) and a wait */
        cudaEventRecord(b, st);
        cudaEventSynchronize(b);
        float ms = 0;
        cudaEventElapsedTime(&ms, a, b);
        gpu_ms[i] = ms;
    }
    cudaEventDestroy(a);
    cudaEventDestroy(b);
    p->device_newer = true;
    return s;
}

size_t cphil_gpu_policy_device_bytes(const cphil_gpu_policy *p) {
    return cphil_gpu_ws_bytes(p->ws) + 4 * p->n * sizeof(float) + p->L.bytes; /* the device's staging copy */
}

/* ---- forward only (eval, soft-labels, agreement on the GPU) --------------------------------- */
struct cphil_gpu_forward {
    cphil_gpu_policy *p;
};

cphil_status cphil_gpu_forward_create(int device, const cphil_model *m, int B, int T, cphil_gpu_forward **out) {
    *out = NULL;
    cphil_tr_policy_opts o;
    cphil_tr_policy_opts_default(&o);
    o.B = B;
    o.T = T;
    cphil_gpu_forward *f = cphil_calloc(1, sizeof *f);
    if (!f) return cphil_err(CPHIL_E_NOMEM, "out of memory");
    cphil_status s = cphil_gpu_policy_create(device, &m->cfg, &o, &f->p);
    if (s) {
        cphil_free(f);
        return s;
    }
    memcpy(f->p->model.params, m->params, m->n_floats * sizeof(float));
    f->p->host_dirty = true;
    *out = f;
    return CPHIL_OK;
}

void cphil_gpu_forward_free(cphil_gpu_forward *f) {
    if (!f) return;
    cphil_gpu_policy_free(f->p);
    cphil_free(f);
}

cphil_status cphil_gpu_forward_run(cphil_gpu_forward *f, const float *cont, const int32_t *ids, const float **logits) {
    cphil_gpu_policy *p = f->p;
    const cphil_model_config *c = &p->model.cfg;
    cphil_status s = push_mirrors(p);
    if (s) return s;
    const size_t M = (size_t)p->M, nl = M * CPHIL_N_LOGITS;
    for (size_t q = 0; q < M * (size_t)c->n_ids; q++)
        if (ids[q] < c->n_cont || ids[q] >= c->E)
            return cphil_err(CPHIL_E_FORMAT, "input id %d outside [%d, %d)", (int)ids[q], c->n_cont, c->E);
    p->cur = p->run_slot;
    memcpy(p->h_slot[p->cur] + p->L.cont, cont, M * (size_t)c->n_cont * sizeof(float));
    memcpy(p->h_slot[p->cur] + p->L.ids, ids, M * (size_t)c->n_ids * sizeof(int32_t));
    enqueue_upload(p);
    enqueue_forward(p, false);
    cphil_cu_record(p->cu,
                    (int)cudaMemcpyAsync(p->h_logits, p->ws->logits, nl * sizeof(float), cudaMemcpyDeviceToHost,
                                         cphil_cu_stream(p->cu)),
                    "logits copy", __FILE__, __LINE__);
    if ((s = cphil_cu_sync(p->cu)) != CPHIL_OK) return s;
    *logits = p->h_logits;
    return CPHIL_OK;
}
