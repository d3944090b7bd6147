/* test_cuda_policy.c — whole policies on the GPU against the CPU trainer: for every backbone,
 * 20 AdamW steps through the training loop's model table (cphil_gpu_policy_ops vs
 * cphil_tr_policy_ops) from the same seed on the same batches: the losses track within 1e-4
 * relative in f32 and 2% in bf16; two GPU runs give the same bits (losses and every parameter,
 * through the CUDA graph path); the GPU's checkpoint sections continue on the CPU (and TBPTT for
 * the recurrent backbones); the backward's "gradients [lo, n) are final" announcements (the
 * ranks' bucketed exchange starts on them) are never followed by a write into [lo, n). Needs a
 * GPU (skips without one). */
#include "cu_test.h"

#include "gpu/gpu.h"
#include "gpu/policy_gpu.h"
#include "kernels/cuda/cu_train.h"
#include "train/policy_train.h"

#include <stdlib.h>
#include <string.h>

enum { B = 6, T = 12, E = 130, NC = 10, NI = 4, STEPS = 20 };

typedef struct batch_buf {
    float cont[B * T * NC], weight[B * T];
    int32_t ids[B * T * NI];
    uint8_t btn[B * T * CPHIL_N_BUTTONS], cls[B * T * CPHIL_N_CAT_HEADS], reset[B];
    cphil_tr_batch tb;
} batch_buf;

static void make_batch(batch_buf *b, int step, bool tbptt) {
    rnd_fill(b->cont, B * T * NC, 100 + (uint64_t)step, -1, 1);
    float r[B * T * 20];
    rnd_fill(r, B * T * 20, 200 + (uint64_t)step, 0, 1);
    const int span = (E - NC) / NI;
    for (int m = 0; m < B * T; m++) {
        for (int k = 0; k < NI; k++) b->ids[m * NI + k] = NC + k * span + (int)(r[m * 20 + k] * (span - 1));
        for (int j = 0; j < CPHIL_N_BUTTONS; j++) b->btn[m * CPHIL_N_BUTTONS + j] = r[m * 20 + 4 + j] < 0.3f;
        for (int h = 1; h < CPHIL_N_HEADS; h++)
            b->cls[m * CPHIL_N_CAT_HEADS + h - 1] = (uint8_t)(r[m * 20 + 12 + h] * cphil_head_classes[h] * 0.999f);
        b->weight[m] = (m % 17 == 5) ? 0.0f : 1.0f;
    }
    for (int s = 0; s < B; s++) b->reset[s] = tbptt ? (uint8_t)(step == 0 || (step + s) % 7 == 0) : 1;
    memset(&b->tb, 0, sizeof b->tb);
    b->tb.B = B;
    b->tb.T = T;
    b->tb.cont = b->cont;
    b->tb.ids = b->ids;
    b->tb.btn = b->btn;
    b->tb.cls = b->cls;
    b->tb.weight = b->weight;
    b->tb.reset = tbptt ? b->reset : NULL;
}

static void config(cphil_model_config *c, cphil_backbone bb, cphil_precision prec) {
    cphil_model_config_default(c, bb);
    c->n_cont = NC;
    c->n_ids = NI;
    c->E = E;
    c->hidden = 32;
    c->num_layers = 2;
    c->window = T;
    c->state_size = 8;
    c->conv_size = 4;
    c->expand = 2;
    c->num_heads = 4;
    c->n_mlp = 2;
    c->mlp_hidden[0] = 48;
    c->mlp_hidden[1] = 32;
    c->precision = prec;
}

static void opts(cphil_tr_policy_opts *o, bool tbptt) {
    cphil_tr_policy_opts_default(o);
    o->seed = 11;
    o->B = B;
    o->T = T;
    o->tbptt = tbptt;
    o->label_smoothing = 0.05;
}

/* Run STEPS steps on the GPU; losses out, parameters (host copy) out. */
static void run_gpu(const cphil_model_config *c, bool tbptt, double *loss, float **params, size_t *n) {
    cphil_tr_policy_opts o;
    opts(&o, tbptt);
    cphil_gpu_policy *g = NULL;
    CHECK_MSG(cphil_gpu_policy_create(0, c, &o, &g) == CPHIL_OK, "gpu policy: %s", cphil_last_error());
    batch_buf bb;
    for (int s = 0; s < STEPS; s++) {
        make_batch(&bb, s, tbptt);
        CHECK_MSG(cphil_gpu_policy_ops.train_step(g, &bb.tb, 1e-3, &loss[s]) == CPHIL_OK, "gpu step: %s",
                  cphil_last_error());
    }
    cphil_tr_section sec[8];
    int ns = cphil_gpu_policy_ops.sections(g, sec, 8);
    CHECK(ns >= 4);
    *n = sec[0].size / sizeof(float);
    *params = malloc(sec[0].size);
    memcpy(*params, sec[0].data, sec[0].size);
    cphil_gpu_policy_free(g);
}

TEST(every_backbone_tracks_the_cpu_trainer) {
    cu_ctx();
    for (int bb = 0; bb < CPHIL_N_BACKBONES; bb++)
        for (int prec = 0; prec < 2; prec++) {
            const bool tbptt = false;
            cphil_model_config c;
            config(&c, (cphil_backbone)bb, prec ? CPHIL_PREC_BF16 : CPHIL_PREC_F32);
            CHECK(cphil_model_config_validate(&c) == CPHIL_OK);
            cphil_tr_policy_opts o;
            opts(&o, tbptt);
            cphil_tr_policy *cpu = NULL;
            CHECK(cphil_tr_policy_create(&c, &o, &cpu) == CPHIL_OK);
            double lc[STEPS], lg[STEPS], lg2[STEPS], worst = 0;
            batch_buf bbuf;
            for (int s = 0; s < STEPS; s++) {
                make_batch(&bbuf, s, tbptt);
                CHECK(cphil_tr_policy_ops.train_step(cpu, &bbuf.tb, 1e-3, &lc[s]) == CPHIL_OK);
            }
            float *p1 = NULL, *p2 = NULL;
            size_t n1 = 0, n2 = 0;
            run_gpu(&c, tbptt, lg, &p1, &n1);
            run_gpu(&c, tbptt, lg2, &p2, &n2);
            for (int s = 0; s < STEPS; s++) {
                double r = fabs(lg[s] - lc[s]) / fabs(lc[s]);
                worst = r > worst ? r : worst;
            }
            double perr = rel_err(p1, cphil_tr_policy_model(cpu)->params, n1);
            printf("  %-9s %s: loss %.5f -> %.5f (cpu %.5f -> %.5f), worst step rel diff %.2e, params rel err %.2e\n",
                   cphil_backbone_name((cphil_backbone)bb), prec ? "bf16" : "f32 ", lg[0], lg[STEPS - 1], lc[0],
                   lc[STEPS - 1], worst, perr);
            CHECK_MSG(worst <= (prec ? 2e-2 : 1e-4), "%s %s: GPU loss differs from the CPU's by %.3g relative",
                      cphil_backbone_name((cphil_backbone)bb), prec ? "bf16" : "f32", worst);
            CHECK(n1 == n2 && memcmp(lg, lg2, sizeof lg) == 0);
            CHECK_MSG(memcmp(p1, p2, n1 * sizeof(float)) == 0, "%s: two GPU runs differ",
                      cphil_backbone_name((cphil_backbone)bb));
            free(p1), free(p2);
            cphil_tr_policy_free(cpu);
        }
}

TEST(tbptt_and_checkpoint_sections_move_between_gpu_and_cpu) {
    cu_ctx();
    for (int bb = CPHIL_BACKBONE_LSTM; bb <= CPHIL_BACKBONE_GRU; bb++) {
        cphil_model_config c;
        config(&c, (cphil_backbone)bb, CPHIL_PREC_F32);
        cphil_tr_policy_opts o;
        opts(&o, true);
        cphil_tr_policy *cpu = NULL;
        cphil_gpu_policy *gpu = NULL;
        CHECK(cphil_tr_policy_create(&c, &o, &cpu) == CPHIL_OK);
        CHECK(cphil_gpu_policy_create(0, &c, &o, &gpu) == CPHIL_OK);
        batch_buf b;
        double lc = 0, lg = 0, worst = 0;
        for (int s = 0; s < 10; s++) {
            make_batch(&b, s, true);
            CHECK(cphil_tr_policy_ops.train_step(cpu, &b.tb, 1e-3, &lc) == CPHIL_OK);
            CHECK(cphil_gpu_policy_ops.train_step(gpu, &b.tb, 1e-3, &lg) == CPHIL_OK);
            double r = fabs(lg - lc) / fabs(lc);
            worst = r > worst ? r : worst;
        }
        printf("  %s tbptt: worst step rel diff %.2e\n", cphil_backbone_name((cphil_backbone)bb), worst);
        CHECK(worst <= 1e-4);
        /* GPU state -> a fresh CPU policy (what a checkpoint carries), then one more step on both */
        cphil_tr_section gs[8], cs[8];
        int ng = cphil_gpu_policy_ops.sections(gpu, gs, 8);
        cphil_tr_policy *cpu2 = NULL;
        CHECK(cphil_tr_policy_create(&c, &o, &cpu2) == CPHIL_OK);
        int nc = cphil_tr_policy_ops.sections(cpu2, cs, 8);
        CHECK_EQ_INT(ng, nc);
        for (int i = 0; i < ng; i++) {
            CHECK_STR(gs[i].name, cs[i].name);
            CHECK_EQ_INT(gs[i].size, cs[i].size);
            memcpy(cs[i].data, gs[i].data, gs[i].size);
        }
        /* and CPU state -> the GPU (resume on the GPU from a CPU checkpoint) */
        int nc1 = cphil_tr_policy_ops.sections(cpu, cs, 8);
        CHECK_EQ_INT(nc1, ng);
        for (int i = 0; i < ng; i++) memcpy(gs[i].data, cs[i].data, cs[i].size);
        make_batch(&b, 10, true);
        double l1 = 0, l2 = 0, l3 = 0;
        CHECK(cphil_tr_policy_ops.train_step(cpu, &b.tb, 1e-3, &l1) == CPHIL_OK);
        CHECK(cphil_tr_policy_ops.train_step(cpu2, &b.tb, 1e-3, &l2) == CPHIL_OK);
        CHECK(cphil_gpu_policy_ops.train_step(gpu, &b.tb, 1e-3, &l3) == CPHIL_OK);
        CHECK_NEAR(l2, l1, 0, 1e-4);
        CHECK_NEAR(l3, l1, 0, 1e-4);
        cphil_tr_policy_free(cpu), cphil_tr_policy_free(cpu2);
        cphil_gpu_policy_free(gpu);
    }
}

/* The hook's record: every announced lo with a copy of the gradients [lo, n) at that moment. */
typedef struct grads_log {
    const float *G;
    size_t n;
    int calls;
    size_t lo[64];
    float *snap[64];
} grads_log;

static void log_ready(void *user, size_t lo) {
    grads_log *g = user;
    if (g->calls >= 64) return;
    float *h = malloc((g->n - lo + 1) * sizeof(float));
    dev_to(h, g->G + lo, g->n - lo); /* waits for the backward enqueued so far */
    g->lo[g->calls] = lo;
    g->snap[g->calls++] = h;
}

TEST(backward_announces_only_final_gradients) {
    cphil_cu *cu = cu_ctx();
    for (int bb = 0; bb < CPHIL_N_BACKBONES; bb++) {
        cphil_model_config c;
        config(&c, (cphil_backbone)bb, CPHIL_PREC_F32);
        cphil_model m;
        CHECK(cphil_model_init(&m, &c) == CPHIL_OK);
        cphil_model_init_params(&m, 5);
        cphil_gpu_ws *w = NULL;
        CHECK_MSG(cphil_gpu_ws_create(cu, &m, B, T, &w) == CPHIL_OK, "%s", cphil_last_error());
        const size_t n = m.n_floats;
        float *P = dev_from(m.params, n), *G = dev_alloc(n);
        batch_buf b;
        make_batch(&b, 0, false);
        float *cont = dev_from(b.cont, (size_t)B * T * NC);
        int32_t *ids = (int32_t *)dev_from((const float *)b.ids, (size_t)B * T * NI);
        size_t ni = cphil_cu_id_index_ints(B * T, NI, E, NC);
        int32_t *packed = malloc(ni * sizeof(int32_t)), *count = malloc(cphil_cu_id_index_scratch_ints(E) * sizeof(int32_t));
        CHECK(cphil_cu_id_index_build(B * T, NI, E, NC, b.ids, packed, count) == CPHIL_OK);
        int32_t *d_index = (int32_t *)dev_from((const float *)packed, ni);
        cphil_cu_id_index ix;
        cphil_cu_id_index_view(B * T, NI, E, NC, d_index, &ix);
        cphil_gpu_ws_forward(w, P, cont, ids);
        float *dl = rnd_host((size_t)B * T * CPHIL_N_LOGITS, 77 + (uint64_t)bb, -1, 1);
        dev_set(w->dlogits, dl, (size_t)B * T * CPHIL_N_LOGITS);
        cphil_cu_zero(cu, G, n * sizeof(float));
        grads_log lg = {.G = G, .n = n};
        w->grads_ready = log_ready;
        w->grads_user = &lg;
        cphil_gpu_ws_backward(w, P, cont, &ix, G);
        float *fin = malloc(n * sizeof(float));
        dev_to(fin, G, n);
        CHECK_MSG(lg.calls >= 3 && lg.lo[lg.calls - 1] == 0, "%s: %d announcements, last lo %zu",
                  cphil_backbone_name((cphil_backbone)bb), lg.calls, lg.calls ? lg.lo[lg.calls - 1] : (size_t)-1);
        for (int k = 0; k < lg.calls; k++) {
            CHECK_MSG(k == 0 || lg.lo[k] < lg.lo[k - 1], "%s: lo not decreasing", cphil_backbone_name((cphil_backbone)bb));
            CHECK_MSG(!memcmp(lg.snap[k], fin + lg.lo[k], (n - lg.lo[k]) * sizeof(float)),
                      "%s: gradients [%zu, %zu) changed after they were announced final",
                      cphil_backbone_name((cphil_backbone)bb), lg.lo[k], n);
            free(lg.snap[k]);
        }
        free(fin), free(dl), free(packed), free(count);
        cphil_cu_free(P), cphil_cu_free(G), cphil_cu_free(cont), cphil_cu_free(ids), cphil_cu_free(d_index);
        cphil_gpu_ws_free(w);
        cphil_model_free(&m);
    }
}

TEST(eval_batch_matches_the_cpu) {
    cu_ctx();
    for (int bb = 0; bb < CPHIL_N_BACKBONES; bb++) {
        cphil_model_config c;
        config(&c, (cphil_backbone)bb, CPHIL_PREC_F32);
        cphil_tr_policy_opts o;
        opts(&o, false);
        cphil_tr_policy *cpu = NULL;
        cphil_gpu_policy *gpu = NULL;
        CHECK(cphil_tr_policy_create(&c, &o, &cpu) == CPHIL_OK);
        CHECK(cphil_gpu_policy_create(0, &c, &o, &gpu) == CPHIL_OK);
        batch_buf b;
        make_batch(&b, 3, false);
        static float l1[B * T * CPHIL_N_LOGITS], l2[B * T * CPHIL_N_LOGITS];
        double a = 0, z = 0;
        CHECK(cphil_tr_policy_ops.eval_batch(cpu, &b.tb, l1, &a) == CPHIL_OK);
        CHECK(cphil_gpu_policy_ops.eval_batch(gpu, &b.tb, l2, &z) == CPHIL_OK);
        double e = rel_err(l2, l1, B * T * CPHIL_N_LOGITS);
        printf("  %-9s eval logits rel err %.2e, loss %.6f vs %.6f\n", cphil_backbone_name((cphil_backbone)bb), e, z,
               a);
        CHECK(e <= 1e-5);
        CHECK_NEAR(z, a, 0, 1e-5);
        cphil_tr_policy_free(cpu);
        cphil_gpu_policy_free(gpu);
    }
}

int main(void) {
    RUN(eval_batch_matches_the_cpu);
    RUN(backward_announces_only_final_gradients);
    RUN(every_backbone_tracks_the_cpu_trainer);
    RUN(tbptt_and_checkpoint_sections_move_between_gpu_and_cpu);
    return cu_test_done();
}
