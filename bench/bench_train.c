/* bench_train.c — training throughput of the whole policy: forward + loss + backward + AdamW
 * update, in frames/s (a step trains on B x W frames: the loss covers every window position),
 * per backbone, f32 and bf16, at the seed's sizes (hidden 256, 2 layers, window 60, batch 64,
 * the default embedding: E 2185 with 10 ids per frame), on `--threads` worker threads.
 * Reports the median and the best of `--steps` timed steps after one warm-up step, and the share
 * of time in forward / backward. Noisy on a shared machine: read the medians as estimates.
 * tools/bench_torch_train.py runs this binary and the same models in PyTorch and prints ratios.
 *
 *   build/rel/bench/bench_train [--backbone mlp|lstm|gru|mamba|attention|all] [--precision
 *     f32|bf16|both] [--threads 2] [--steps 5] [--batch 64] [--window 60] [--hidden 256]
 *     [--layers 2] [--json]
 */
#include "core/core.h"
#include "game/embed.h"
#include "kernels/cpu/kernels.h"
#include "model/model.h"

#include <stdlib.h>
#include <string.h>

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    const char *bb_arg = "all", *prec_arg = "both";
    int threads = 2, steps = 5, B = 64, W = 60, H = 256, L = 2;
    bool json = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--json")) { json = true; continue; }
        if (!v) { fprintf(stderr, "bench_train: %s needs a value\n", a); return 2; }
        if (!strcmp(a, "--backbone")) bb_arg = v;
        else if (!strcmp(a, "--precision")) prec_arg = v;
        else if (!strcmp(a, "--threads")) threads = atoi(v);
        else if (!strcmp(a, "--steps")) steps = atoi(v);
        else if (!strcmp(a, "--batch")) B = atoi(v);
        else if (!strcmp(a, "--window")) W = atoi(v);
        else if (!strcmp(a, "--hidden")) H = atoi(v);
        else if (!strcmp(a, "--layers")) L = atoi(v);
        else { fprintf(stderr, "bench_train: unknown option %s\n", a); return 2; }
        i++;
    }
    if (steps < 1 || steps > 1000 || B < 1 || W < 1 || H < 2 || L < 1) {
        fprintf(stderr, "bench_train: bad sizes\n");
        return 2;
    }
    if (cphil_isa_init() != CPHIL_OK) fprintf(stderr, "bench_train: %s\n", cphil_last_error());
    cphil_threads_set(threads);
    cphil_embed_layout lay;
    cphil_embed_layout_init(&lay, NULL);

    /* a random batch: continuous N(0,1)-ish, one valid id per one-hot block */
    const size_t M = (size_t)B * W;
    float *cont = cphil_alloc(M * lay.n_cont * sizeof(float));
    int32_t *ids = cphil_alloc(M * (size_t)lay.n_ids * sizeof(int32_t));
    uint8_t *buttons = cphil_alloc(M * 8), *cls = cphil_alloc(M * 5);
    float *weight = cphil_alloc(M * sizeof(float));
    if (!cont || !ids || !buttons || !cls || !weight) { fprintf(stderr, "bench_train: out of memory\n"); return 1; }
    uint64_t s = 12345;
#define RND() ((s = s * 6364136223846793005ull + 1442695040888963407ull) >> 33)
    for (size_t i = 0; i < M * lay.n_cont; i++) cont[i] = (float)((int)(RND() % 2001) - 1000) / 1000.0f;
    for (size_t m = 0; m < M; m++) {
        for (int b = 0; b < lay.n_blocks; b++) {
            const cphil_embed_block *bl = &lay.blocks[b];
            if (bl->kind != CPHIL_EMBED_ONEHOT) continue;
            ids[m * lay.n_ids + bl->id_index] = bl->offset + (int)(RND() % (uint64_t)bl->width);
        }
        for (int j = 0; j < 8; j++) buttons[m * 8 + j] = RND() % 5 == 0;
        for (int h = 0; h < 5; h++) cls[m * 5 + h] = (uint8_t)(RND() % (uint64_t)cphil_head_classes[h + 1]);
        weight[m] = 1.0f;
    }
    cphil_model_batch batch = {B, W, cont, ids, buttons, cls, weight};
    cphil_loss_config lc;
    cphil_loss_config_default(&lc);

    if (!json)
        printf("bench_train: B %d, window %d, hidden %d, layers %d, E %d (%d cont + %d ids), %d threads, isa %s\n"
               "%-10s %-5s %10s %10s %12s %12s %7s %7s\n",
               B, W, H, L, lay.E, lay.n_cont, lay.n_ids, threads, cphil_isa_name(cphil_isa_active()), "backbone",
               "prec", "params", "ms/step", "frames/s", "best fr/s", "fwd %", "bwd %");
    else
        printf("[");
    bool first = true;
    for (int b = 0; b < CPHIL_N_BACKBONES; b++) {
        if (strcmp(bb_arg, "all") && strcmp(bb_arg, cphil_backbone_name((cphil_backbone)b))) continue;
        for (int p = 0; p < 2; p++) {
            cphil_precision prec = p ? CPHIL_PREC_BF16 : CPHIL_PREC_F32;
            if (!strcmp(prec_arg, "f32") && prec != CPHIL_PREC_F32) continue;
            if (!strcmp(prec_arg, "bf16") && prec != CPHIL_PREC_BF16) continue;
            cphil_model_config c;
            cphil_model_config_default(&c, (cphil_backbone)b);
            c.n_cont = lay.n_cont;
            c.n_ids = lay.n_ids;
            c.E = lay.E;
            c.layout_hash = lay.hash;
            c.hidden = H;
            c.num_layers = L;
            c.window = W;
            c.precision = prec;
            cphil_model m;
            cphil_model_ws *ws;
            cphil_adamw opt;
            cphil_adamw_config ac;
            cphil_adamw_config_default(&ac);
            if (cphil_model_init(&m, &c) || cphil_model_ws_create(&m, B, W, &ws) ||
                cphil_adamw_init(&opt, &ac, m.n_floats)) {
                fprintf(stderr, "bench_train: %s\n", cphil_last_error());
                return 1;
            }
            cphil_model_init_params(&m, 1);
            float *grads = cphil_calloc(m.n_floats, sizeof(float));
            double *t_step = cphil_calloc((size_t)steps, sizeof(double));
            double t_fwd = 0, t_bwd = 0, t_all = 0;
            for (int it = 0; it <= steps; it++) {
                double t0 = cphil_now_sec();
                memset(grads, 0, m.n_floats * sizeof(float));
                cphil_model_forward(&m, ws, &batch);
                cphil_model_loss(&m, ws, &batch, &lc, NULL);
                double t1 = cphil_now_sec();
                cphil_model_backward(&m, ws, &batch, grads);
                double t2 = cphil_now_sec();
                cphil_adamw_step(&opt, m.params, grads);
                double t3 = cphil_now_sec();
                if (it == 0) continue; /* warm-up */
                t_step[it - 1] = t3 - t0;
                t_fwd += t1 - t0;
                t_bwd += t2 - t1;
                t_all += t3 - t0;
            }
            qsort(t_step, (size_t)steps, sizeof(double), cmp_d);
            double med = t_step[steps / 2], best = t_step[0];
            if (json)
                printf("%s{\"backbone\":\"%s\",\"precision\":\"%s\",\"params\":%zu,\"ms_per_step\":%.3f,"
                       "\"frames_per_s\":%.1f,\"best_frames_per_s\":%.1f,\"threads\":%d,\"batch\":%d,\"window\":%d}",
                       first ? "" : ",", cphil_backbone_name((cphil_backbone)b), p ? "bf16" : "f32", m.n_weights,
                       med * 1e3, (double)M / med, (double)M / best, threads, B, W);
            else
                printf("%-10s %-5s %10zu %10.1f %12.0f %12.0f %7.1f %7.1f\n", cphil_backbone_name((cphil_backbone)b),
                       p ? "bf16" : "f32", m.n_weights, med * 1e3, (double)M / med, (double)M / best,
                       100 * t_fwd / t_all, 100 * t_bwd / t_all);
            fflush(stdout);
            first = false;
            cphil_free(t_step);
            cphil_free(grads);
            cphil_adamw_free(&opt);
            cphil_model_ws_free(ws);
            cphil_model_free(&m);
        }
    }
    if (json) printf("]\n");
    cphil_free(cont);
    cphil_free(ids);
    cphil_free(buttons);
    cphil_free(cls);
    cphil_free(weight);
    return 0;
}
