/* test_cuda_rnn.c — the GPU LSTM and GRU layers (src/kernels/cuda/cu_rnn.cu) against the CPU
 * layers (cphil_nn_lstm_*, cphil_nn_gru_*): every forward output and saved buffer (y, gates, cs,
 * hprev, cprev0 / gh), every backward output (dx, dWih, dWhh, dbih, dbhh, the scratch dG / dGi /
 * dGh, and dh, dc = dL/dh0, dL/dc0), in f32 (relative error <= 1e-4) and bf16 (<= 2e-2), at a
 * ragged size with and without h0/c0 and at a realistic one (B 64, T 60, H 256), and the GPU run
 * twice on the same inputs for bit-identity. Gradients are ADDED into random starting values (the
 * add-into contract) and compared as the change from those values, so a layer that overwrote
 * instead of adding fails. bf16 runs both ways the GPU can run the recurrence: the per-step path
 * (CPHIL_CU_RNN_STEPS) and the weights-resident cluster kernel (cu_rnn_persist.cu), the latter
 * at ragged batches (a partly filled last cluster) too. Needs a CUDA GPU (SKIP otherwise). */

#include "cu_test.h"
#include "kernels/cuda/cu_rnn_persist.h"
#include "nn/nn.h"

#include <stdbool.h>

/* How the recurrence runs in the next case (the context's mode is set from it), and the tiles of
 * 16 rows per cluster of each of its two GPU runs (0: picked). */
static cphil_cu_rnn_mode g_mode = CPHIL_CU_RNN_AUTO;
static int g_tiles[2];

static void mode_name(char *buf, size_t n, cphil_cu *cu, int ng, int B, int T, int H, cphil_precision prec) {
    int t[2];
    for (int r = 0; r < 2; r++) {
        cphil_cu_set_rnn_tiles(cu, g_tiles[r]);
        t[r] = cphil_cu_rnn_persist_tiles(cu, ng, B, T, H, prec);
    }
    cphil_cu_set_rnn_tiles(cu, 0);
    for (int r = 0; r < 2; r++) /* a forced count must be what runs, or the case tests nothing new */
        CHECK_MSG(!g_tiles[r] || t[r] == g_tiles[r], "run %d: %d tiles forced, %d taken", r, g_tiles[r], t[r]);
    if (!t[0] && !t[1]) snprintf(buf, n, "per-step");
    else snprintf(buf, n, "persistent, %d then %d rows per cluster", 16 * t[0], 16 * t[1]);
}

/* Compare the change (result - start) of an add-into gradient with the CPU's. */
static void check_delta(const char *name, const float *d, const float *ref, const float *start, size_t n,
                        double tol) {
    float *h = (float *)malloc((n ? n : 1) * sizeof(float)), *r = (float *)malloc((n ? n : 1) * sizeof(float));
    dev_to(h, d, n);
    for (size_t i = 0; i < n; i++) {
        h[i] -= start[i];
        r[i] = ref[i] - start[i];
    }
    double e = rel_err(h, r, n);
    free(h);
    free(r);
    if (!(e <= tol)) h_fail_at(__FILE__, __LINE__, "%s: relative error %.3g > %.3g", name, e, tol);
    printf("  %-28s rel err %.2e\n", name, e);
}

/* Download two device buffers and require the same bits. */
static void check_same_bits(const char *name, const float *a, const float *b, size_t n) {
    float *ha = (float *)malloc((n ? n : 1) * sizeof(float)), *hb = (float *)malloc((n ? n : 1) * sizeof(float));
    dev_to(ha, a, n);
    dev_to(hb, b, n);
    int diff = memcmp(ha, hb, n * sizeof(float));
    free(ha);
    free(hb);
    CHECK_MSG(diff == 0, "%s: two GPU runs on the same inputs differ", name);
}

/* The GPU buffers of one LSTM run (outputs, saved values, gradients, scratch). */
typedef struct {
    float *y, *gates, *cs, *hprev, *cprev0, *dx, *dWih, *dWhh, *dbih, *dbhh, *dG, *dh, *dc;
} lstm_dev;

static void lstm_case(int B, int T, int In, int H, bool with_init, cphil_precision prec, double tol, uint64_t seed) {
    cphil_cu *cu = cu_ctx();
    cphil_cu_set_rnn_mode(cu, g_mode);
    char how[96];
    mode_name(how, sizeof how, cu, 4, B, T, H, prec);
    printf(" lstm B=%d T=%d In=%d H=%d h0/c0 %s %s %s\n", B, T, In, H, with_init ? "given" : "NULL",
           prec == CPHIL_PREC_BF16 ? "bf16" : "f32", how);
    const int G = 4 * H;
    const size_t nx = (size_t)B * T * In, ny = (size_t)B * T * H, ng = (size_t)B * T * G, nbh = (size_t)B * H;
    const size_t nwi = (size_t)G * In, nwh = (size_t)G * H;
    const float k = 1.0f / sqrtf((float)H); /* PyTorch's init range */
    float *x = rnd_host(nx, seed, -1, 1), *Wih = rnd_host(nwi, seed + 1, -k, k), *Whh = rnd_host(nwh, seed + 2, -k, k);
    float *bih = rnd_host(G, seed + 3, -k, k), *bhh = rnd_host(G, seed + 4, -k, k);
    float *h0 = rnd_host(nbh, seed + 5, -1, 1), *c0 = rnd_host(nbh, seed + 6, -1, 1);
    float *dy = rnd_host(ny, seed + 7, -1, 1);
    /* starting values of the add-into gradients */
    float *dx0 = rnd_host(nx, seed + 8, -1, 1), *dWih0 = rnd_host(nwi, seed + 9, -1, 1);
    float *dWhh0 = rnd_host(nwh, seed + 10, -1, 1), *dbih0 = rnd_host(G, seed + 11, -1, 1);
    float *dbhh0 = rnd_host(G, seed + 12, -1, 1);

    /* CPU reference */
    float *y = malloc(ny * 4), *gates = malloc(ng * 4), *cs = malloc(ny * 4), *hprev = malloc(ny * 4),
          *cprev0 = malloc(nbh * 4), *dG = malloc(ng * 4), *dh = malloc(nbh * 4), *dc = malloc(nbh * 4);
    float *dx = malloc(nx * 4), *dWih = malloc(nwi * 4), *dWhh = malloc(nwh * 4), *dbih = malloc(G * 4),
          *dbhh = malloc(G * 4);
    memcpy(dx, dx0, nx * 4);
    memcpy(dWih, dWih0, nwi * 4);
    memcpy(dWhh, dWhh0, nwh * 4);
    memcpy(dbih, dbih0, G * 4);
    memcpy(dbhh, dbhh0, G * 4);
    const float *ph0 = with_init ? h0 : NULL, *pc0 = with_init ? c0 : NULL;
    cphil_nn_lstm_forward(prec, B, T, In, H, x, Wih, Whh, bih, bhh, ph0, pc0, y, gates, cs, hprev, cprev0);
    cphil_nn_lstm_backward(prec, B, T, In, H, x, Wih, Whh, gates, cs, hprev, cprev0, dy, dx, dWih, dWhh, dbih,
                           dbhh, dG, dh, dc);

    /* GPU: inputs once, two runs into fresh (NaN-poisoned) buffers */
    float *gx = dev_from(x, nx), *gWih = dev_from(Wih, nwi), *gWhh = dev_from(Whh, nwh), *gbih = dev_from(bih, G),
          *gbhh = dev_from(bhh, G), *gh0 = dev_from(h0, nbh), *gc0 = dev_from(c0, nbh), *gdy = dev_from(dy, ny);
    lstm_dev run[2];
    for (int r = 0; r < 2; r++) {
        lstm_dev *d = &run[r];
        d->y = dev_alloc(ny);
        d->gates = dev_alloc(ng);
        d->cs = dev_alloc(ny);
        d->hprev = dev_alloc(ny);
        d->cprev0 = dev_alloc(nbh);
        d->dG = dev_alloc(ng);
        d->dh = dev_alloc(nbh);
        d->dc = dev_alloc(nbh);
        d->dx = dev_from(dx0, nx);
        d->dWih = dev_from(dWih0, nwi);
        d->dWhh = dev_from(dWhh0, nwh);
        d->dbih = dev_from(dbih0, G);
        d->dbhh = dev_from(dbhh0, G);
        /* the helpers' poison memsets and uploads run on the legacy default stream, which the
         * context's non-blocking stream does not wait for */
        cudaDeviceSynchronize();
        cphil_cu_set_rnn_tiles(cu, g_tiles[r]);
        cphil_cu_lstm_forward(cu, prec, B, T, In, H, gx, gWih, gWhh, gbih, gbhh, with_init ? gh0 : NULL,
                              with_init ? gc0 : NULL, d->y, d->gates, d->cs, d->hprev, d->cprev0);
        cphil_cu_lstm_backward(cu, prec, B, T, In, H, gx, gWih, gWhh, d->gates, d->cs, d->hprev, d->cprev0, gdy,
                               d->dx, d->dWih, d->dWhh, d->dbih, d->dbhh, d->dG, d->dh, d->dc);
    }
    CHECK_MSG(cphil_cu_sync(cu) == CPHIL_OK, "GPU error: %s", cphil_last_error());
    cphil_cu_set_rnn_tiles(cu, 0);
    lstm_dev *d = &run[0];
    CHECK_DEV("y", d->y, y, ny, tol);
    CHECK_DEV("gates (saved)", d->gates, gates, ng, tol);
    CHECK_DEV("cs (saved)", d->cs, cs, ny, tol);
    CHECK_DEV("hprev (saved)", d->hprev, hprev, ny, tol);
    CHECK_DEV("cprev0 (saved)", d->cprev0, cprev0, nbh, tol);
    CHECK_DEV("dG (scratch)", d->dG, dG, ng, tol);
    check_delta("dx", d->dx, dx, dx0, nx, tol);
    check_delta("dWih", d->dWih, dWih, dWih0, nwi, tol);
    check_delta("dWhh", d->dWhh, dWhh, dWhh0, nwh, tol);
    check_delta("dbih", d->dbih, dbih, dbih0, G, tol);
    check_delta("dbhh", d->dbhh, dbhh, dbhh0, G, tol);
    CHECK_DEV("dh = dL/dh0", d->dh, dh, nbh, tol);
    CHECK_DEV("dc = dL/dc0", d->dc, dc, nbh, tol);
    const lstm_dev *e = &run[1];
    check_same_bits("y", d->y, e->y, ny);
    check_same_bits("gates", d->gates, e->gates, ng);
    check_same_bits("cs", d->cs, e->cs, ny);
    check_same_bits("hprev", d->hprev, e->hprev, ny);
    check_same_bits("cprev0", d->cprev0, e->cprev0, nbh);
    check_same_bits("dG", d->dG, e->dG, ng);
    check_same_bits("dx", d->dx, e->dx, nx);
    check_same_bits("dWih", d->dWih, e->dWih, nwi);
    check_same_bits("dWhh", d->dWhh, e->dWhh, nwh);
    check_same_bits("dbih", d->dbih, e->dbih, G);
    check_same_bits("dbhh", d->dbhh, e->dbhh, G);
    check_same_bits("dh", d->dh, e->dh, nbh);
    check_same_bits("dc", d->dc, e->dc, nbh);

    for (int r = 0; r < 2; r++) {
        float **p = (float **)&run[r];
        for (size_t i = 0; i < sizeof(lstm_dev) / sizeof(float *); i++) cphil_cu_free(p[i]);
    }
    float *gall[] = {gx, gWih, gWhh, gbih, gbhh, gh0, gc0, gdy};
    for (size_t i = 0; i < sizeof gall / sizeof *gall; i++) cphil_cu_free(gall[i]);
    float *hall[] = {x, Wih, Whh, bih, bhh, h0, c0, dy, dx0, dWih0, dWhh0, dbih0, dbhh0, y, gates, cs, hprev,
                     cprev0, dG, dh, dc, dx, dWih, dWhh, dbih, dbhh};
    for (size_t i = 0; i < sizeof hall / sizeof *hall; i++) free(hall[i]);
}

typedef struct {
    float *y, *gates, *gh, *hprev, *dx, *dWih, *dWhh, *dbih, *dbhh, *dGi, *dGh, *dh;
} gru_dev;

static void gru_case(int B, int T, int In, int H, bool with_init, cphil_precision prec, double tol, uint64_t seed) {
    cphil_cu *cu = cu_ctx();
    cphil_cu_set_rnn_mode(cu, g_mode);
    char how[96];
    mode_name(how, sizeof how, cu, 3, B, T, H, prec);
    printf(" gru B=%d T=%d In=%d H=%d h0 %s %s %s\n", B, T, In, H, with_init ? "given" : "NULL",
           prec == CPHIL_PREC_BF16 ? "bf16" : "f32", how);
    const int G = 3 * H;
    const size_t nx = (size_t)B * T * In, ny = (size_t)B * T * H, ng = (size_t)B * T * G, nbh = (size_t)B * H;
    const size_t nwi = (size_t)G * In, nwh = (size_t)G * H;
    const float k = 1.0f / sqrtf((float)H);
    float *x = rnd_host(nx, seed, -1, 1), *Wih = rnd_host(nwi, seed + 1, -k, k), *Whh = rnd_host(nwh, seed + 2, -k, k);
    float *bih = rnd_host(G, seed + 3, -k, k), *bhh = rnd_host(G, seed + 4, -k, k);
    float *h0 = rnd_host(nbh, seed + 5, -1, 1), *dy = rnd_host(ny, seed + 7, -1, 1);
    float *dx0 = rnd_host(nx, seed + 8, -1, 1), *dWih0 = rnd_host(nwi, seed + 9, -1, 1);
    float *dWhh0 = rnd_host(nwh, seed + 10, -1, 1), *dbih0 = rnd_host(G, seed + 11, -1, 1);
    float *dbhh0 = rnd_host(G, seed + 12, -1, 1);

    float *y = malloc(ny * 4), *gates = malloc(ng * 4), *gh = malloc(ng * 4), *hprev = malloc(ny * 4),
          *dGi = malloc(ng * 4), *dGh = malloc(ng * 4), *dh = malloc(nbh * 4);
    float *dx = malloc(nx * 4), *dWih = malloc(nwi * 4), *dWhh = malloc(nwh * 4), *dbih = malloc(G * 4),
          *dbhh = malloc(G * 4);
    memcpy(dx, dx0, nx * 4);
    memcpy(dWih, dWih0, nwi * 4);
    memcpy(dWhh, dWhh0, nwh * 4);
    memcpy(dbih, dbih0, G * 4);
    memcpy(dbhh, dbhh0, G * 4);
    cphil_nn_gru_forward(prec, B, T, In, H, x, Wih, Whh, bih, bhh, with_init ? h0 : NULL, y, gates, gh, hprev);
    cphil_nn_gru_backward(prec, B, T, In, H, x, Wih, Whh, gates, gh, hprev, dy, dx, dWih, dWhh, dbih, dbhh, dGi,
                          dGh, dh);

    float *gx = dev_from(x, nx), *gWih = dev_from(Wih, nwi), *gWhh = dev_from(Whh, nwh), *gbih = dev_from(bih, G),
          *gbhh = dev_from(bhh, G), *gh0 = dev_from(h0, nbh), *gdy = dev_from(dy, ny);
    gru_dev run[2];
    for (int r = 0; r < 2; r++) {
        gru_dev *d = &run[r];
        d->y = dev_alloc(ny);
        d->gates = dev_alloc(ng);
        d->gh = dev_alloc(ng);
        d->hprev = dev_alloc(ny);
        d->dGi = dev_alloc(ng);
        d->dGh = dev_alloc(ng);
        d->dh = dev_alloc(nbh);
        d->dx = dev_from(dx0, nx);
        d->dWih = dev_from(dWih0, nwi);
        d->dWhh = dev_from(dWhh0, nwh);
        d->dbih = dev_from(dbih0, G);
        d->dbhh = dev_from(dbhh0, G);
        /* the helpers' poison memsets and uploads run on the legacy default stream, which the
         * context's non-blocking stream does not wait for */
        cudaDeviceSynchronize();
        cphil_cu_set_rnn_tiles(cu, g_tiles[r]);
        cphil_cu_gru_forward(cu, prec, B, T, In, H, gx, gWih, gWhh, gbih, gbhh, with_init ? gh0 : NULL, d->y,
                             d->gates, d->gh, d->hprev);
        cphil_cu_gru_backward(cu, prec, B, T, In, H, gx, gWih, gWhh, d->gates, d->gh, d->hprev, gdy, d->dx, d->dWih,
                              d->dWhh, d->dbih, d->dbhh, d->dGi, d->dGh, d->dh);
    }
    CHECK_MSG(cphil_cu_sync(cu) == CPHIL_OK, "GPU error: %s", cphil_last_error());
    cphil_cu_set_rnn_tiles(cu, 0);
    gru_dev *d = &run[0];
    CHECK_DEV("y", d->y, y, ny, tol);
    CHECK_DEV("gates (saved)", d->gates, gates, ng, tol);
    CHECK_DEV("gh (saved)", d->gh, gh, ng, tol);
    CHECK_DEV("hprev (saved)", d->hprev, hprev, ny, tol);
    CHECK_DEV("dGi (scratch)", d->dGi, dGi, ng, tol);
    CHECK_DEV("dGh (scratch)", d->dGh, dGh, ng, tol);
    check_delta("dx", d->dx, dx, dx0, nx, tol);
    check_delta("dWih", d->dWih, dWih, dWih0, nwi, tol);
    check_delta("dWhh", d->dWhh, dWhh, dWhh0, nwh, tol);
    check_delta("dbih", d->dbih, dbih, dbih0, G, tol);
    check_delta("dbhh", d->dbhh, dbhh, dbhh0, G, tol);
    CHECK_DEV("dh = dL/dh0", d->dh, dh, nbh, tol);
    const gru_dev *e = &run[1];
    check_same_bits("y", d->y, e->y, ny);
    check_same_bits("gates", d->gates, e->gates, ng);
    check_same_bits("gh", d->gh, e->gh, ng);
    check_same_bits("hprev", d->hprev, e->hprev, ny);
    check_same_bits("dGi", d->dGi, e->dGi, ng);
    check_same_bits("dGh", d->dGh, e->dGh, ng);
    check_same_bits("dx", d->dx, e->dx, nx);
    check_same_bits("dWih", d->dWih, e->dWih, nwi);
    check_same_bits("dWhh", d->dWhh, e->dWhh, nwh);
    check_same_bits("dbih", d->dbih, e->dbih, G);
    check_same_bits("dbhh", d->dbhh, e->dbhh, G);
    check_same_bits("dh", d->dh, e->dh, nbh);

    for (int r = 0; r < 2; r++) {
        float **p = (float **)&run[r];
        for (size_t i = 0; i < sizeof(gru_dev) / sizeof(float *); i++) cphil_cu_free(p[i]);
    }
    float *gall[] = {gx, gWih, gWhh, gbih, gbhh, gh0, gdy};
    for (size_t i = 0; i < sizeof gall / sizeof *gall; i++) cphil_cu_free(gall[i]);
    float *hall[] = {x, Wih, Whh, bih, bhh, h0, dy, dx0, dWih0, dWhh0, dbih0, dbhh0, y, gates, gh, hprev,
                     dGi, dGh, dh, dx, dWih, dWhh, dbih, dbhh};
    for (size_t i = 0; i < sizeof hall / sizeof *hall; i++) free(hall[i]);
}

#define F32 CPHIL_PREC_F32
#define BF16 CPHIL_PREC_BF16

TEST(lstm_ragged_f32) {
    lstm_case(3, 5, 7, 9, false, F32, 1e-4, 11);
    lstm_case(3, 5, 7, 9, true, F32, 1e-4, 12);
}
TEST(lstm_ragged_bf16) {
    lstm_case(3, 5, 7, 9, false, BF16, 2e-2, 13);
    lstm_case(3, 5, 7, 9, true, BF16, 2e-2, 14);
}
TEST(lstm_b64_t60_h256_f32) { lstm_case(64, 60, 256, 256, true, F32, 1e-4, 15); }
/* the context's mode now and for the cases that follow */
static void use_mode(cphil_cu_rnn_mode m) {
    g_mode = m;
    cphil_cu_set_rnn_mode(cu_ctx(), m);
    g_tiles[0] = g_tiles[1] = 0; /* also after a failed case that forced them */
    cphil_cu_set_rnn_tiles(cu_ctx(), 0);
}

TEST(lstm_b64_t60_h256_bf16) {
    use_mode(CPHIL_CU_RNN_STEPS);
    lstm_case(64, 60, 256, 256, true, BF16, 2e-2, 16);
    use_mode(CPHIL_CU_RNN_AUTO);
    for (int mt = 1; mt <= 3; mt++)
        printf("  resident clusters of %d rows (H 256): lstm forward %d, backward %d; gru forward %d, backward %d\n",
               16 * mt, cphil_cu_rnn_persist_max_clusters(cu_ctx(), 4, 256, mt, 0),
               cphil_cu_rnn_persist_max_clusters(cu_ctx(), 4, 256, mt, 1),
               cphil_cu_rnn_persist_max_clusters(cu_ctx(), 3, 256, mt, 0),
               cphil_cu_rnn_persist_max_clusters(cu_ctx(), 3, 256, mt, 1));
    for (int B = 64; B <= 512; B *= 2)
        printf("  rows per cluster picked at B %d (H 256): lstm %d, gru %d\n", B,
               16 * cphil_cu_rnn_persist_tiles(cu_ctx(), 4, B, 60, 256, BF16),
               16 * cphil_cu_rnn_persist_tiles(cu_ctx(), 3, B, 60, 256, BF16));
    CHECK(cphil_cu_rnn_persist_fits(cu_ctx(), 4, 64, 60, 256, BF16));
    lstm_case(64, 60, 256, 256, true, BF16, 2e-2, 16);
}
/* the cluster kernel where a cluster's 16 rows are partly filled, several clusters, small H */
TEST(lstm_persistent_ragged_bf16) {
    use_mode(CPHIL_CU_RNN_AUTO);
    CHECK(cphil_cu_rnn_persist_fits(cu_ctx(), 4, 37, 9, 64, BF16));
    lstm_case(37, 9, 13, 64, false, BF16, 2e-2, 17);
    lstm_case(37, 9, 13, 64, true, BF16, 2e-2, 18);
    lstm_case(5, 3, 7, 32, true, BF16, 2e-2, 19);
    CHECK(!cphil_cu_rnn_persist_fits(cu_ctx(), 4, 37, 9, 64, F32)); /* f32 keeps IEEE products */
}
/* 16, 32 and 48 rows per cluster (forced), each against the CPU and twice with the same bits
 * (the cluster size is a function of the batch and the card, so same-seed runs take the same one;
 * across sizes the bits may differ: the compiler contracts the cell's products into FMAs per
 * instantiation). Then batch 512 as a training step has it: one wave of clusters (the point of
 * the larger clusters), against the CPU. */
TEST(lstm_persistent_tiles_bf16) {
    use_mode(CPHIL_CU_RNN_AUTO);
    for (int mt = 1; mt <= 3; mt++) {
        g_tiles[0] = g_tiles[1] = mt;
        lstm_case(100, 7, 13, 256, true, BF16, 2e-2, 40 + (uint64_t)mt);
    }
    g_tiles[0] = g_tiles[1] = 3;
    lstm_case(37, 9, 13, 64, false, BF16, 2e-2, 44);
    lstm_case(37, 5, 13, 96, true, BF16, 2e-2, 46); /* U 12: h goes out in 8-byte pieces */
    g_tiles[0] = g_tiles[1] = 0;
    CHECK(cphil_cu_rnn_persist_tiles(cu_ctx(), 4, 512, 20, 256, BF16) > 0);
    lstm_case(512, 20, 256, 256, true, BF16, 2e-2, 45);
}
TEST(gru_ragged_f32) {
    gru_case(3, 5, 7, 9, false, F32, 1e-4, 21);
    gru_case(3, 5, 7, 9, true, F32, 1e-4, 22);
}
TEST(gru_ragged_bf16) {
    gru_case(3, 5, 7, 9, false, BF16, 2e-2, 23);
    gru_case(3, 5, 7, 9, true, BF16, 2e-2, 24);
}
TEST(gru_b64_t60_h256_f32) { gru_case(64, 60, 256, 256, true, F32, 1e-4, 25); }
TEST(gru_b64_t60_h256_bf16) {
    use_mode(CPHIL_CU_RNN_STEPS);
    gru_case(64, 60, 256, 256, true, BF16, 2e-2, 26);
    use_mode(CPHIL_CU_RNN_AUTO);
    CHECK(cphil_cu_rnn_persist_fits(cu_ctx(), 3, 64, 60, 256, BF16));
    gru_case(64, 60, 256, 256, true, BF16, 2e-2, 26);
}
TEST(gru_persistent_ragged_bf16) {
    use_mode(CPHIL_CU_RNN_AUTO);
    CHECK(cphil_cu_rnn_persist_fits(cu_ctx(), 3, 37, 9, 128, BF16));
    CHECK(!cphil_cu_rnn_persist_fits(cu_ctx(), 3, 37, 9, 64, BF16)); /* 3 H / 8 not a multiple of 16 */
    gru_case(37, 9, 13, 128, false, BF16, 2e-2, 27);
    gru_case(37, 9, 13, 128, true, BF16, 2e-2, 28);
}

TEST(gru_persistent_tiles_bf16) {
    use_mode(CPHIL_CU_RNN_AUTO);
    for (int mt = 1; mt <= 3; mt++) {
        g_tiles[0] = g_tiles[1] = mt;
        gru_case(100, 7, 13, mt == 2 ? 128 : 256, true, BF16, 2e-2, 50 + (uint64_t)mt);
    }
    g_tiles[0] = g_tiles[1] = 0;
    CHECK(cphil_cu_rnn_persist_tiles(cu_ctx(), 3, 512, 20, 256, BF16) > 0);
    gru_case(512, 20, 256, 256, true, BF16, 2e-2, 54);
}

/* RUN, then back to the defaults (a failed case leaves what it forced); the context only if one
 * was made (no GPU: every test skipped) */
static void fresh(void) {
    g_mode = CPHIL_CU_RNN_AUTO;
    g_tiles[0] = g_tiles[1] = 0;
    if (g_cu) {
        cphil_cu_set_rnn_mode(g_cu, g_mode);
        cphil_cu_set_rnn_tiles(g_cu, 0);
    }
}
#define RUN_FRESH(t) \
    do {             \
        RUN(t);      \
        fresh();     \
    } while (0)

int main(void) {
    cphil_threads_set(8); /* the CPU reference at the realistic size */
    RUN_FRESH(lstm_ragged_f32);
    RUN_FRESH(lstm_ragged_bf16);
    RUN_FRESH(lstm_b64_t60_h256_f32);
    RUN_FRESH(lstm_b64_t60_h256_bf16);
    RUN_FRESH(lstm_persistent_ragged_bf16);
    RUN_FRESH(lstm_persistent_tiles_bf16);
    RUN_FRESH(gru_ragged_f32);
    RUN_FRESH(gru_ragged_bf16);
    RUN_FRESH(gru_b64_t60_h256_f32);
    RUN_FRESH(gru_b64_t60_h256_bf16);
    RUN_FRESH(gru_persistent_ragged_bf16);
    RUN_FRESH(gru_persistent_tiles_bf16);
    return cu_test_done();
}
