/* test_cuda_train.c — the GPU kernels around the backbone against their CPU layers: the matrix
 * product (every transpose, f32 and bf16), Linear, activations, the gather input layer forward and
 * its index-based backward, the policy loss (dlogits and every part), and clipping + AdamW over
 * several steps; each twice for bit-identity. Needs a GPU (skips without one). */
#include "cu_test.h"

#include "kernels/cpu/kernels.h"
#include "kernels/cuda/cu_train.h"
#include "model/model.h"
#include "nn/nn.h"

#include <stdlib.h>
#include <string.h>

static const cphil_precision F32 = CPHIL_PREC_F32;

TEST(gemm_matches_cpu_every_transpose) {
    cphil_cu *cu = cu_ctx();
    const int M = 37, N = 53, K = 29;
    for (int prec = 0; prec < 2; prec++)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++) {
                int lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 5, ldc = N + 2;
                size_t na = (size_t)(ta ? K : M) * lda, nb = (size_t)(tb ? N : K) * ldb, nc = (size_t)M * ldc;
                float *A = rnd_host(na, 1 + ta, -1, 1), *Bm = rnd_host(nb, 2 + tb, -1, 1), *C = rnd_host(nc, 3, -1, 1);
                float *dA = dev_from(A, na), *dB = dev_from(Bm, nb), *dC = dev_from(C, nc);
                cphil_gemm((cphil_precision)prec, ta, tb, M, N, K, 0.5f, A, lda, Bm, ldb, 0.75f, C, ldc);
                cphil_cu_gemm(cu, (cphil_precision)prec, ta, tb, M, N, K, 0.5f, dA, lda, dB, ldb, 0.75f, dC, ldc);
                char name[64];
                snprintf(name, sizeof name, "gemm %s ta=%d tb=%d", prec ? "bf16" : "f32", ta, tb);
                /* bf16: both sides round the operands the same way; only the sum order differs */
                CHECK_DEV(name, dC, C, nc, prec ? 2e-2 : 1e-5);
                free(A), free(Bm), free(C);
                cphil_cu_free(dA), cphil_cu_free(dB), cphil_cu_free(dC);
            }
}

TEST(linear_and_activations_match_cpu) {
    cphil_cu *cu = cu_ctx();
    const int M = 45, N = 19, K = 33;
    float *x = rnd_host((size_t)M * K, 4, -2, 2), *W = rnd_host((size_t)N * K, 5, -1, 1), *b = rnd_host(N, 6, -1, 1);
    float *dy = rnd_host((size_t)M * N, 7, -1, 1), *dx = rnd_host((size_t)M * K, 8, -1, 1),
          *dW = rnd_host((size_t)N * K, 9, -1, 1), *db = rnd_host(N, 10, -1, 1), *y = malloc(sizeof(float) * M * N);
    float *gx = dev_from(x, (size_t)M * K), *gW = dev_from(W, (size_t)N * K), *gb = dev_from(b, N),
          *gdy = dev_from(dy, (size_t)M * N), *gdx = dev_from(dx, (size_t)M * K), *gdW = dev_from(dW, (size_t)N * K),
          *gdb = dev_from(db, N), *gy = dev_alloc((size_t)M * N);
    cphil_nn_linear_forward(F32, M, N, K, x, K, W, b, y, N);
    cphil_cu_linear_forward(cu, F32, M, N, K, gx, K, gW, gb, gy, N);
    CHECK_DEV("linear y", gy, y, (size_t)M * N, 1e-5);
    cphil_nn_linear_backward(F32, M, N, K, x, K, W, dy, N, dx, K, dW, db);
    cphil_cu_linear_backward(cu, F32, M, N, K, gx, K, gW, gdy, N, gdx, K, gdW, gdb);
    CHECK_DEV("linear dx", gdx, dx, (size_t)M * K, 1e-5);
    CHECK_DEV("linear dW", gdW, dW, (size_t)N * K, 1e-5);
    CHECK_DEV("linear db", gdb, db, N, 1e-5);
    for (int f = 0; f < CPHIL_N_ACTS; f++) {
        size_t n = (size_t)M * K;
        float *a = malloc(n * sizeof(float)), *da = rnd_host(n, 11, -1, 1);
        float *ga = dev_alloc(n), *gda = dev_from(da, n);
        cphil_nn_act_forward((cphil_act)f, n, x, a);
        cphil_cu_act_forward(cu, (cphil_act)f, n, gx, ga);
        CHECK_DEV("activation forward", ga, a, n, 2e-6);
        free(a), free(da);
        cphil_cu_free(ga), cphil_cu_free(gda);
    }
    free(x), free(W), free(b), free(dy), free(dx), free(dW), free(db), free(y);
    cphil_cu_free(gx), cphil_cu_free(gW), cphil_cu_free(gb), cphil_cu_free(gdy), cphil_cu_free(gdx);
    cphil_cu_free(gdW), cphil_cu_free(gdb), cphil_cu_free(gy);
}

TEST(activation_backward_matches_cpu) {
    cphil_cu *cu = cu_ctx();
    const size_t n = 5000;
    float *x = rnd_host(n, 12, -25, 25), *dy = rnd_host(n, 13, -1, 1);
    float *gx = dev_from(x, n), *gdy = dev_from(dy, n);
    for (int f = 0; f < CPHIL_N_ACTS; f++) {
        float *dx = rnd_host(n, 14, -1, 1), *gdx = dev_from(dx, n);
        cphil_nn_act_backward((cphil_act)f, n, x, dy, dx);
        cphil_cu_act_backward(cu, (cphil_act)f, n, gx, gdy, gdx);
        CHECK_DEV("activation backward", gdx, dx, n, 2e-6);
        free(dx);
        cphil_cu_free(gdx);
    }
    free(x), free(dy);
    cphil_cu_free(gx), cphil_cu_free(gdy);
}

/* ids: n_ids slots, slot k drawing from its own block of columns (as the embedding does), with
 * a hot id (every frame) in slot 0 so one segment spans many chunks. */
static int32_t *make_ids(int M, int n_ids, int n_cont, int E, uint64_t seed) {
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)M * n_ids);
    float *r = rnd_host((size_t)M * n_ids, seed, 0, 1);
    int span = (E - n_cont) / n_ids;
    for (int m = 0; m < M; m++)
        for (int k = 0; k < n_ids; k++)
            ids[(size_t)m * n_ids + k] = k == 0 ? n_cont : n_cont + k * span + (int)(r[(size_t)m * n_ids + k] * (span - 1));
    free(r);
    return ids;
}

TEST(input_layer_matches_cpu) {
    cphil_cu *cu = cu_ctx();
    const int shapes[2][5] = {{37, 21, 150, 9, 4}, {3840, 256, 2185, 101, 10}}; /* M H0 E n_cont n_ids */
    for (int si = 0; si < 2; si++)
        for (int prec = 0; prec < 2; prec++) {
            const int M = shapes[si][0], H0 = shapes[si][1], E = shapes[si][2], nc = shapes[si][3], ni = shapes[si][4];
            float *cont = rnd_host((size_t)M * nc, 20, -1, 1), *W = rnd_host((size_t)H0 * E, 21, -0.1f, 0.1f),
                  *b = rnd_host(H0, 22, -1, 1), *WT = malloc(sizeof(float) * (size_t)E * H0),
                  *y = malloc(sizeof(float) * (size_t)M * H0), *dy = rnd_host((size_t)M * H0, 23, -1, 1),
                  *dW = rnd_host((size_t)H0 * E, 24, -1, 1), *db = rnd_host(H0, 25, -1, 1);
            int32_t *ids = make_ids(M, ni, nc, E, 26);
            float *gcont = dev_from(cont, (size_t)M * nc), *gW = dev_from(W, (size_t)H0 * E), *gb = dev_from(b, H0),
                  *gWT = dev_alloc((size_t)E * H0), *gy = dev_alloc((size_t)M * H0),
                  *gdy = dev_from(dy, (size_t)M * H0), *gdW = dev_from(dW, (size_t)H0 * E), *gdb = dev_from(db, H0);
            int32_t *gids = NULL;
            cudaMalloc((void **)&gids, sizeof(int32_t) * (size_t)M * ni);
            cudaMemcpy(gids, ids, sizeof(int32_t) * (size_t)M * ni, cudaMemcpyHostToDevice);
            cudaDeviceSynchronize();
            cphil_nn_input_forward((cphil_precision)prec, M, H0, E, nc, ni, cont, ids, W, b, WT, y);
            cphil_cu_input_forward(cu, (cphil_precision)prec, M, H0, E, nc, ni, gcont, gids, gW, gb, gWT, gy);
            CHECK_DEV(prec ? "input y bf16" : "input y", gy, y, (size_t)M * H0, prec ? 2e-2 : 1e-5);
            /* backward through the host-built index */
            size_t nint = cphil_cu_id_index_ints(M, ni, E, nc);
            int32_t *packed = malloc(sizeof(int32_t) * nint), *count = malloc(sizeof(int32_t) * cphil_cu_id_index_scratch_ints(E)), *gpacked = NULL;
            CHECK(cphil_cu_id_index_build(M, ni, E, nc, ids, packed, count) == CPHIL_OK);
            cudaMalloc((void **)&gpacked, sizeof(int32_t) * nint);
            cudaMemcpy(gpacked, packed, sizeof(int32_t) * nint, cudaMemcpyHostToDevice);
            cudaDeviceSynchronize();
            cphil_cu_id_index ix;
            cphil_cu_id_index_view(M, ni, E, nc, gpacked, &ix);
            float *gpart = dev_alloc((size_t)cphil_cu_id_index_max_chunks(M, ni, E, nc) * H0);
            cphil_nn_input_backward((cphil_precision)prec, M, H0, E, nc, ni, cont, ids, dy, dW, db, WT);
            cphil_cu_input_backward(cu, (cphil_precision)prec, M, H0, E, nc, ni, gcont, &ix, gdy, gdW, gdb, gpart);
            CHECK_DEV(prec ? "input dW bf16" : "input dW", gdW, dW, (size_t)H0 * E, prec ? 2e-2 : 1e-5);
            CHECK_DEV("input db", gdb, db, H0, 1e-5);
            /* determinism: the same backward again from the same start gives the same bits */
            float *once = malloc(sizeof(float) * (size_t)H0 * E), *twice = malloc(sizeof(float) * (size_t)H0 * E);
            float *dW0 = rnd_host((size_t)H0 * E, 24, -1, 1);
            dev_set(gdW, dW0, (size_t)H0 * E);
            cphil_cu_input_backward(cu, (cphil_precision)prec, M, H0, E, nc, ni, gcont, &ix, gdy, gdW, gdb, gpart);
            dev_to(once, gdW, (size_t)H0 * E);
            dev_set(gdW, dW0, (size_t)H0 * E);
            cphil_cu_input_backward(cu, (cphil_precision)prec, M, H0, E, nc, ni, gcont, &ix, gdy, gdW, gdb, gpart);
            dev_to(twice, gdW, (size_t)H0 * E);
            CHECK(memcmp(once, twice, sizeof(float) * (size_t)H0 * E) == 0);
            free(once), free(twice), free(dW0), free(packed), free(count);
            free(cont), free(W), free(b), free(WT), free(y), free(dy), free(dW), free(db), free(ids);
            cudaFree(gids), cudaFree(gpacked);
            cphil_cu_free(gcont), cphil_cu_free(gW), cphil_cu_free(gb), cphil_cu_free(gWT), cphil_cu_free(gy);
            cphil_cu_free(gdy), cphil_cu_free(gdW), cphil_cu_free(gdb), cphil_cu_free(gpart);
        }
}

/* The host's parallel counting sort against the definition (no GPU needed): for every id present,
 * in id order, its frames in pair order, cut into chunks of CPHIL_CU_ID_CHUNK; the same packed
 * index on 1 and 3 threads; one id with more pairs than a chunk. */
TEST(id_index_is_the_stable_sort_on_any_threads) {
    const int M = 700, NI = 10, NC = 40, E = 300;
    const size_t P = (size_t)M * NI, nint = cphil_cu_id_index_ints(M, NI, E, NC);
    int32_t *ids = malloc(P * sizeof *ids), *count = malloc(cphil_cu_id_index_scratch_ints(E) * sizeof *count);
    int32_t *one = malloc(nint * sizeof *one), *three = malloc(nint * sizeof *three);
    uint64_t st = 12345;
    for (size_t q = 0; q < P; q++) {
        st = st * 6364136223846793005ull + 1442695040888963407ull;
        int r = (int)(st >> 33);
        ids[q] = r % 5 == 0 ? 50 : NC + r % (E - NC); /* id 50: about 1,400 pairs, several chunks */
    }
    const int threads = cphil_threads_get();
    cphil_threads_set(1);
    CHECK(cphil_cu_id_index_build(M, NI, E, NC, ids, one, count) == CPHIL_OK);
    cphil_threads_set(3);
    CHECK(cphil_cu_id_index_build(M, NI, E, NC, ids, three, count) == CPHIL_OK);
    cphil_threads_set(threads);
    CHECK(!memcmp(one, three, nint * sizeof *one));
    cphil_cu_id_index ix;
    cphil_cu_id_index_view(M, NI, E, NC, one, &ix);
    int32_t at = 0, rows = 0, chunks = 0;
    int ok = 1;
    for (int e = NC; e < E; e++) {
        int32_t start = at;
        for (size_t q = 0; q < P; q++)
            if (ids[q] == e) ok &= ix.frames[at++] == (int32_t)(q / NI);
        if (at == start) continue;
        ok &= ix.row_id[rows] == e && ix.row_chunk[rows] == chunks;
        for (int32_t a = start; a < at; a += CPHIL_CU_ID_CHUNK) ok &= ix.chunk_begin[chunks++] == a;
        rows++;
    }
    CHECK(ok);
    CHECK(*ix.n_rows == rows && *ix.n_chunks == chunks && ix.chunk_begin[chunks] == (int32_t)P);
    CHECK(chunks > rows); /* id 50 took several chunks */
    free(ids), free(count), free(one), free(three);
}

TEST(id_index_rejects_out_of_range_ids) {
    int32_t ids[4] = {5, 6, 7, 99}, packed[256], count[CPHIL_CU_ID_PARTS * 11];
    CHECK(cphil_cu_id_index_ints(2, 2, 10, 5) < 256);
    CHECK(cphil_cu_id_index_build(2, 2, 10, 5, ids, packed, count) == CPHIL_E_FORMAT);
    ids[3] = 4; /* below n_cont */
    CHECK(cphil_cu_id_index_build(2, 2, 10, 5, ids, packed, count) == CPHIL_E_FORMAT);
    /* bad pairs in two of the sort's parts: the message names the first */
    int32_t many[40], big[CPHIL_CU_ID_PARTS * 11], bigpack[512];
    for (int q = 0; q < 40; q++) many[q] = 5 + q % 5;
    many[5] = 99;
    many[25] = 1;
    CHECK(cphil_cu_id_index_ints(20, 2, 10, 5) < 512);
    CHECK(cphil_cu_id_index_build(20, 2, 10, 5, many, bigpack, big) == CPHIL_E_FORMAT);
    CHECK_MSG(strstr(cphil_last_error(), "batch id 99 at pair 5 ") != NULL, "%s", cphil_last_error());
}

TEST(policy_loss_matches_cpu) {
    cphil_cu *cu = cu_ctx();
    const int M = 1000;
    float *logits = rnd_host((size_t)M * CPHIL_N_LOGITS, 30, -4, 4), *w = rnd_host(M, 31, 0, 2);
    uint8_t *btn = malloc((size_t)M * CPHIL_N_BUTTONS), *cls = malloc((size_t)M * CPHIL_N_CAT_HEADS);
    float *r = rnd_host((size_t)M * 13, 32, 0, 1);
    for (int m = 0; m < M; m++) {
        for (int j = 0; j < CPHIL_N_BUTTONS; j++) btn[m * CPHIL_N_BUTTONS + j] = r[m * 13 + j] < 0.3f;
        for (int h = 1; h < CPHIL_N_HEADS; h++)
            cls[m * CPHIL_N_CAT_HEADS + h - 1] = (uint8_t)(r[m * 13 + 7 + h] * cphil_head_classes[h] * 0.999f);
    }
    w[3] = 0; /* padding frames */
    cphil_loss_config lc;
    cphil_loss_config_default(&lc);
    lc.label_smoothing = 0.1f;
    lc.button_weight = 1.5f;
    for (int j = 0; j < CPHIL_N_BUTTONS; j++) lc.pos_weight[j] = 1.0f + 0.25f * (float)j;
    cphil_cu_loss_params lp;
    memcpy(lp.pos_weight, lc.pos_weight, sizeof lp.pos_weight);
    lp.button_weight = lc.button_weight;
    lp.label_smoothing = lc.label_smoothing;
    float *dl = malloc(sizeof(float) * (size_t)M * CPHIL_N_LOGITS);
    cphil_loss_parts parts;
    float loss = cphil_nn_policy_loss(M, logits, btn, cls, w, &lc, dl, &parts);
    float *glog = dev_from(logits, (size_t)M * CPHIL_N_LOGITS), *gw = dev_from(w, M),
          *gdl = dev_alloc((size_t)M * CPHIL_N_LOGITS), *gout = dev_alloc(16);
    uint8_t *gbtn = NULL, *gcls = NULL;
    void *scr = NULL;
    cudaMalloc((void **)&gbtn, (size_t)M * CPHIL_N_BUTTONS);
    cudaMalloc((void **)&gcls, (size_t)M * CPHIL_N_CAT_HEADS);
    cudaMalloc(&scr, cphil_cu_loss_scratch_bytes(M));
    cudaMemcpy(gbtn, btn, (size_t)M * CPHIL_N_BUTTONS, cudaMemcpyHostToDevice);
    cudaMemcpy(gcls, cls, (size_t)M * CPHIL_N_CAT_HEADS, cudaMemcpyHostToDevice);
    cudaDeviceSynchronize();
    cphil_cu_policy_loss(cu, M, glog, gbtn, gcls, gw, &lp, gdl, gout, scr);
    float out[16];
    dev_to(out, gout, 8);
    CHECK_NEAR(out[0], loss, 0, 1e-5);
    for (int h = 0; h < CPHIL_N_HEADS; h++) CHECK_NEAR(out[1 + h], parts.head[h], 1e-7, 1e-5);
    CHECK_NEAR(out[7], parts.weight_sum, 0, 1e-6);
    CHECK_DEV("dlogits", gdl, dl, (size_t)M * CPHIL_N_LOGITS, 1e-5);
    free(logits), free(w), free(btn), free(cls), free(r), free(dl);
    cphil_cu_free(glog), cphil_cu_free(gw), cphil_cu_free(gdl), cphil_cu_free(gout);
    cudaFree(gbtn), cudaFree(gcls), cudaFree(scr);
}

TEST(adamw_with_clipping_matches_cpu) {
    cphil_cu *cu = cu_ctx();
    const size_t n = 100003;
    cphil_adamw_config ac;
    cphil_adamw_config_default(&ac);
    ac.weight_decay = 0.01f;
    ac.max_grad_norm = 1.0f;
    cphil_adamw opt;
    CHECK(cphil_adamw_init(&opt, &ac, n) == CPHIL_OK);
    float *p = rnd_host(n, 40, -1, 1), *gp = dev_from(p, n), *gm = dev_alloc(n), *gv = dev_alloc(n);
    cphil_cu_zero(cu, gm, n * sizeof(float));
    cphil_cu_zero(cu, gv, n * sizeof(float));
    void *scr = NULL;
    cphil_cu_adamw_params *gap = NULL;
    cudaMalloc(&scr, cphil_cu_adamw_scratch_bytes());
    cudaMalloc((void **)&gap, sizeof *gap);
    for (int step = 0; step < 5; step++) {
        /* step 0..2: a large gradient (clipped); 3..4: a small one (not clipped) */
        float *g = rnd_host(n, 41 + step, step < 3 ? -1.f : -1e-4f, step < 3 ? 1.f : 1e-4f), *gg = dev_from(g, n);
        float lr = 1e-3f * (float)(step + 1);
        cphil_cu_adamw_params ap;
        long st = opt.step + 1;
        double bc1 = 1.0 - pow((double)ac.beta1, (double)st), bc2 = 1.0 - pow((double)ac.beta2, (double)st);
        ap.step_size = (float)(lr / bc1);
        ap.bc2s = (float)sqrt(bc2);
        ap.decay = 1.0f - lr * ac.weight_decay;
        ap.beta1 = ac.beta1, ap.beta2 = ac.beta2, ap.eps = ac.eps;
        cudaMemcpy(gap, &ap, sizeof ap, cudaMemcpyHostToDevice);
        cudaDeviceSynchronize();
        opt.cfg.lr = lr;
        cphil_adamw_step(&opt, p, g);
        cphil_cu_adamw_step(cu, n, gp, gg, gm, gv, ac.max_grad_norm, gap, scr);
        free(g);
        cphil_cu_free(gg);
    }
    CHECK_DEV("adamw params", gp, p, n, 1e-6);
    CHECK_DEV("adamw m", gm, opt.m, n, 1e-5);
    CHECK_DEV("adamw v", gv, opt.v, n, 1e-5);
    /* a non-finite gradient updates nothing */
    float *before = malloc(n * sizeof(float)), *after = malloc(n * sizeof(float));
    dev_to(before, gp, n);
    float *g = rnd_host(n, 50, -1, 1);
    g[7] = NAN;
    float *gg = dev_from(g, n);
    cphil_cu_adamw_step(cu, n, gp, gg, gm, gv, ac.max_grad_norm, gap, scr);
    dev_to(after, gp, n);
    CHECK(memcmp(before, after, n * sizeof(float)) == 0);
    free(before), free(after), free(g), free(p);
    cphil_cu_free(gg), cphil_cu_free(gp), cphil_cu_free(gm), cphil_cu_free(gv);
    cudaFree(scr), cudaFree(gap);
    cphil_adamw_free(&opt);
}

int main(void) {
    RUN(gemm_matches_cpu_every_transpose);
    RUN(linear_and_activations_match_cpu);
    RUN(activation_backward_matches_cpu);
    RUN(input_layer_matches_cpu);
    RUN(id_index_is_the_stable_sort_on_any_threads);
    RUN(id_index_rejects_out_of_range_ids);
    RUN(policy_loss_matches_cpu);
    RUN(adamw_with_clipping_matches_cpu);
    return cu_test_done();
}
