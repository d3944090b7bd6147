/* bench_train_gpu.c — GPU training throughput of the whole policy (cphil train --device cuda's
 * step: batch copy, forward, loss on every window position, backward, clipping, AdamW), at the
 * seed's sizes (hidden 256, 2 layers, window 60, Mamba state 16 expand 2 conv 4, 4 attention
 * heads, the default embedding: E 2185, 99 continuous features, 10 ids per frame).
 * Per backbone and batch: the median and p90 of the GPU step time (CUDA events around each whole
 * step, one graph launch), frames/s = B x W / median, the end-to-end step (host staging of a
 * fresh batch + the step, wall clock), the same with the trainer's loader thread staging batch
 * i+1 while step i runs ("overlap"), and the GPU memory the policy holds.
 * With --data DS (a `cphil dataset` cache), also the trainer's own path end to end: batches of
 * windows (stride 2) built from the memory-mapped cache, staged and stepped, serially and with the
 * loader thread ("data_serial" / "data_loader" frames/s, wall clock over --steps steps). One JSON object per
 * line (bench/gpu_train.sh runs this beside the PyTorch twin and prints the ratio table).
 *
 *   build/cuda/bench/cuda/bench_train_gpu [--backbones lstm,gru,mamba,attention,mlp]
 *       [--batches 64,512] [--precision bf16|f32] [--steps 30] [--warmup 3] [--device N] [--data DS]
 *       [--threads N]   (the loader's CPU threads: 0 = all cores but one, as cphil train --device cuda)
 */
#include "core/core.h"
#include "kernels/cpu/kernels.h"
#include "gpu/gpu.h"
#include "model/model.h"
#include "train/prefetch.h"
#include "train/train_data.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum { N_CONT = 99, N_IDS = 10, E_W = 2185, W = 60 };

/* A data source that hands out the same staged batch again (the overlap measurement). */
static cphil_status same_next(void *self, cphil_tr_batch *out) {
    *out = *(const cphil_tr_batch *)self;
    return CPHIL_OK;
}
static const cphil_tr_data_ops same_batch_ops = {.next = same_next};

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}
static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}
/* The trainer's path on a real dataset: wall-clock frames/s over `steps` steps after `warmup`,
 * batches from the cache (next), staged and stepped one after the other or with the loader
 * thread staging batch i+1 during step i. -1 when the epoch is shorter than warmup + steps. */
static cphil_status data_e2e(cphil_gpu_policy *p, cphil_tr_data *d, int warmup, int steps, bool loader, double *fps) {
    const cphil_tr_data_ops *dops = &cphil_tr_data_ops_impl;
    size_t nb = 0;
    cphil_status s = dops->begin_epoch(d, 1, 0, &nb);
    *fps = -1;
    if (s != CPHIL_OK || nb < (size_t)(warmup + steps + 1)) return s;
    cphil_prefetch *pf = NULL;
    if (loader && (s = cphil_prefetch_open(dops, d, &cphil_gpu_policy_ops, p, &pf)) != CPHIL_OK) return s;
    cphil_tr_batch b;
    bool staged = false;
    size_t frames = 0, total = 0;
    double t0 = 0;
    if ((s = dops->next(d, &b)) == CPHIL_OK && loader) s = cphil_gpu_policy_ops.prepare(p, &b, &staged);
    for (int i = 0; i < warmup + steps && s == CPHIL_OK; i++) {
        if (i == warmup) t0 = now_ms(), total = 0;
        double loss = 0;
        total += (size_t)b.B * (size_t)b.T;
        if (loader) {
            cphil_prefetch_start(pf);
            s = cphil_gpu_policy_ops.train_step(p, &b, 1e-4, &loss);
            cphil_status s2 = cphil_prefetch_wait(pf, &b, &staged, &frames);
            if (s == CPHIL_OK) s = s2;
        } else {
            s = cphil_gpu_policy_ops.train_step(p, &b, 1e-4, &loss);
            if (s == CPHIL_OK) s = dops->next(d, &b);
        }
    }
    cphil_prefetch_close(pf);
    if (s == CPHIL_OK) *fps = (double)total / ((now_ms() - t0) / 1e3);
    return s;
}

static uint64_t rng_state = 88172645463325252ull;
static double urand(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (double)(rng_state >> 11) / 9007199254740992.0;
}

/* --data: the trainer's path end to end on a dataset cache, per backbone at batch B. */
static cphil_status bench_data(const char *path, int device, int B, const char *backbones, const char *prec,
                               int warmup, int steps) {
    cphil_tr_data_opts o;
    memset(&o, 0, sizeof o);
    o.data = path;
    o.window = W;
    o.stride = 2; /* enough windows for the steps from a small cache */
    o.batch = B;
    o.val_split = 0.1;
    o.seed = 1;
    o.threads = 2;
    o.parallel_fill = true; /* as cphil train --device cuda */
    o.quiet = true;
    cphil_tr_data *d = NULL;
    cphil_status s = cphil_tr_data_open(&o, &d);
    if (s != CPHIL_OK) return s;
    cphil_tr_data_summary sum;
    cphil_tr_data_get_summary(d, &sum);
    char list[128];
    snprintf(list, sizeof list, "%s", backbones);
    char *save = NULL;
    for (char *name = strtok_r(list, ",", &save); name && s == CPHIL_OK; name = strtok_r(NULL, ",", &save)) {
        cphil_backbone bb;
        if ((s = cphil_backbone_parse(name, &bb)) != CPHIL_OK) break;
        cphil_model_config c;
        cphil_model_config_default(&c, bb);
        c.n_cont = sum.n_cont, c.n_ids = sum.n_ids, c.E = sum.E, c.window = W;
        c.precision = strcmp(prec, "f32") ? CPHIL_PREC_BF16 : CPHIL_PREC_F32;
        cphil_tr_policy_opts po;
        cphil_tr_policy_opts_default(&po);
        po.B = B, po.T = W;
        cphil_gpu_policy *p = NULL;
        if ((s = cphil_gpu_policy_create(device, &c, &po, &p)) != CPHIL_OK) break;
        double serial = -1, loaded = -1;
        s = data_e2e(p, d, warmup, steps, false, &serial);
        if (s == CPHIL_OK) s = data_e2e(p, d, warmup, steps, true, &loaded);
        if (s == CPHIL_OK)
            printf("{\"side\":\"cphil\",\"backbone\":\"%s\",\"batch\":%d,\"precision\":\"%s\",\"data\":true,"
                   "\"data_serial_frames_per_s\":%.0f,\"data_loader_frames_per_s\":%.0f}\n",
                   name, B, prec, serial, loaded);
        fflush(stdout);
        cphil_gpu_policy_free(p);
    }
    cphil_tr_data_close(d);
    return s;
}

int main(int argc, char **argv) {
    char backbones[128] = "lstm,gru,mamba,attention,mlp", batches[64] = "64,512";
    const char *prec = "bf16";
    int steps = 30, warmup = 3, device = 0, threads = 0;
    const char *data_path = NULL;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--backbones")) snprintf(backbones, sizeof backbones, "%s", argv[i + 1]);
        else if (!strcmp(argv[i], "--batches")) snprintf(batches, sizeof batches, "%s", argv[i + 1]);
        else if (!strcmp(argv[i], "--precision")) prec = argv[i + 1];
        else if (!strcmp(argv[i], "--steps")) steps = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--warmup")) warmup = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--device")) device = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--data")) data_path = argv[i + 1];
        else if (!strcmp(argv[i], "--threads")) threads = atoi(argv[i + 1]);
        else {
            fprintf(stderr, "bench_train_gpu: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (steps < 1 || steps > 10000 || warmup < 0 || threads < 0 || threads > 64) {
        fprintf(stderr, "bench_train_gpu: bad --steps/--warmup/--threads\n");
        return 2;
    }
    cphil_threads_set(threads > 0 ? threads : (int)sysconf(_SC_NPROCESSORS_ONLN) - 1); /* clamped to 1..64 */
    char desc[1024];
    if (cphil_gpu_describe_all(desc, sizeof desc) < 1) {
        fprintf(stderr, "bench_train_gpu: %s\n", desc);
        return 1;
    }
    printf("{\"side\":\"cphil\",\"gpu\":\"%s\"}\n", desc);
    for (char *bs = strtok(batches, ","); bs; bs = strtok(NULL, ",")) {
        int B = atoi(bs);
        if (B < 1) continue;
        const size_t M = (size_t)B * W;
        float *cont = malloc(M * N_CONT * sizeof(float)), *wt = malloc(M * sizeof(float));
        int32_t *ids = malloc(M * N_IDS * sizeof(int32_t));
        uint8_t *btn = malloc(M * 8), *cls = malloc(M * 5);
        if (!cont || !wt || !ids || !btn || !cls) return 1;
        const int span = (E_W - N_CONT) / N_IDS;
        for (size_t m = 0; m < M; m++) {
            for (int j = 0; j < N_CONT; j++) cont[m * N_CONT + j] = (float)(urand() * 2 - 1);
            for (int k = 0; k < N_IDS; k++) ids[m * N_IDS + k] = N_CONT + k * span + (int)(urand() * (span - 1));
            for (int j = 0; j < 8; j++) btn[m * 8 + j] = urand() < 0.2;
            for (int h = 0; h < 5; h++) cls[m * 5 + h] = (uint8_t)(urand() * (h == 4 ? 5 : 17));
            wt[m] = 1.0f;
        }
        cphil_tr_batch tb = {.B = B, .T = W, .cont = cont, .ids = ids, .btn = btn, .cls = cls, .weight = wt};
        char list[128];
        snprintf(list, sizeof list, "%s", backbones);
        char *save = NULL;
        for (char *name = strtok_r(list, ",", &save); name; name = strtok_r(NULL, ",", &save)) {
            cphil_backbone bb;
            if (cphil_backbone_parse(name, &bb) != CPHIL_OK) {
                fprintf(stderr, "bench_train_gpu: unknown backbone %s\n", name);
                return 2;
            }
            cphil_model_config c;
            cphil_model_config_default(&c, bb);
            c.n_cont = N_CONT, c.n_ids = N_IDS, c.E = E_W, c.window = W;
            c.precision = strcmp(prec, "f32") ? CPHIL_PREC_BF16 : CPHIL_PREC_F32;
            cphil_tr_policy_opts o;
            cphil_tr_policy_opts_default(&o);
            o.B = B, o.T = W;
            cphil_gpu_policy *p = NULL;
            if (cphil_gpu_policy_create(device, &c, &o, &p) != CPHIL_OK) {
                printf("{\"side\":\"cphil\",\"backbone\":\"%s\",\"batch\":%d,\"error\":\"%s\"}\n", name, B,
                       cphil_last_error());
                continue;
            }
            double *ms = malloc(sizeof(double) * (size_t)steps), e2e[10], ovl[10];
            cphil_status s = cphil_gpu_policy_time(p, &tb, 1e-4, warmup, steps, ms);
            for (int i = 0; i < 10 && s == CPHIL_OK; i++) { /* end to end: staging + step + wait */
                double t0 = now_ms(), loss = 0;
                s = cphil_gpu_policy_ops.train_step(p, &tb, 1e-4, &loss);
                e2e[i] = now_ms() - t0;
            }
            /* end to end as the trainer runs it: the loader thread stages batch i+1 while step i
             * runs (train/prefetch.h) */
            cphil_prefetch *pf = NULL;
            if (s == CPHIL_OK) s = cphil_prefetch_open(&same_batch_ops, &tb, &cphil_gpu_policy_ops, p, &pf);
            bool staged = false;
            if (s == CPHIL_OK) s = cphil_gpu_policy_ops.prepare(p, &tb, &staged);
            for (int i = 0; i < 10 && s == CPHIL_OK; i++) {
                double t0 = now_ms(), loss = 0;
                cphil_tr_batch next;
                size_t frames;
                cphil_prefetch_start(pf);
                s = cphil_gpu_policy_ops.train_step(p, &tb, 1e-4, &loss);
                cphil_status s2 = cphil_prefetch_wait(pf, &next, &staged, &frames);
                if (s == CPHIL_OK) s = s2;
                ovl[i] = now_ms() - t0;
            }
            cphil_prefetch_close(pf);
            if (s != CPHIL_OK) {
                printf("{\"side\":\"cphil\",\"backbone\":\"%s\",\"batch\":%d,\"error\":\"%s\"}\n", name, B,
                       cphil_last_error());
            } else {
                qsort(ms, (size_t)steps, sizeof *ms, cmp_d);
                qsort(e2e, 10, sizeof *e2e, cmp_d);
                qsort(ovl, 10, sizeof *ovl, cmp_d);
                double med = ms[steps / 2], p90 = ms[(int)(0.9 * (steps - 1))];
                printf("{\"side\":\"cphil\",\"backbone\":\"%s\",\"batch\":%d,\"precision\":\"%s\",\"step_ms\":%.4f,"
                       "\"p90_ms\":%.4f,\"frames_per_s\":%.0f,\"e2e_step_ms\":%.4f,\"e2e_frames_per_s\":%.0f,"
                       "\"overlap_step_ms\":%.4f,\"overlap_frames_per_s\":%.0f,\"device_mib\":%.1f}\n",
                       name, B, prec, med, p90, (double)M / (med / 1e3), e2e[5], (double)M / (e2e[5] / 1e3), ovl[5],
                       (double)M / (ovl[5] / 1e3),
                       (double)cphil_gpu_policy_device_bytes(p) / (1 << 20));
            }
            fflush(stdout);
            free(ms);
            cphil_gpu_policy_free(p);
        }
        free(cont), free(wt), free(ids), free(btn), free(cls);
        if (data_path && bench_data(data_path, device, B, backbones, prec, warmup, steps) != CPHIL_OK) {
            fprintf(stderr, "bench_train_gpu: %s: %s\n", data_path, cphil_last_error());
            return 1;
        }
    }
    return 0;
}
