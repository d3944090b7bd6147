/* test_cuda_norm.c — the GPU LayerNorm and RMSNorm (src/kernels/cuda/cu_norm.cu) against the CPU
 * layers (cphil_nn_layernorm_*, cphil_nn_rmsnorm_*): forward outputs and saved mean/rstd, then
 * dx, dg, db ADDED into the same random starting values on both sides; ragged (M=7, C=13) and
 * realistic (M=3840 = B 64 x T 60, C=256) sizes, relative error <= 1e-4 (the norms are f32 on
 * both sides: there is no precision argument). Each GPU layer runs twice on the same inputs and
 * must give the same bits (the dg/db reductions are fixed-order, no atomics). Needs a GPU
 * (SKIPs without one). */
#include "cu_test.h"
#include "nn/nn.h"

#define TOL 1e-4


/* Both runs of the GPU layer: outputs [2] so they can be compared bit for bit. */
static void layernorm_case(int M, int C, uint64_t seed) {
    cphil_cu *cu = cu_ctx();
    const size_t n = (size_t)M * C;
    const float eps = 1e-5f;
    float *x = rnd_host(n, seed, -1.f, 3.f), *g = rnd_host((size_t)C, seed + 1, 0.5f, 1.5f),
          *b = rnd_host((size_t)C, seed + 2, -0.5f, 0.5f), *dy = rnd_host(n, seed + 3, -1.f, 1.f),
          *dx0 = rnd_host(n, seed + 4, -1.f, 1.f), *dg0 = rnd_host((size_t)C, seed + 5, -1.f, 1.f),
          *db0 = rnd_host((size_t)C, seed + 6, -1.f, 1.f);
    float *y = malloc(n * sizeof(float)), *mean = malloc((size_t)M * sizeof(float)),
          *rstd = malloc((size_t)M * sizeof(float));
    float *dx = copy_of(dx0, n), *dg = copy_of(dg0, (size_t)C), *db = copy_of(db0, (size_t)C);
    cphil_nn_layernorm_forward(M, C, x, g, b, eps, y, mean, rstd);
    cphil_nn_layernorm_backward(M, C, x, g, mean, rstd, dy, dx, dg, db);

    float *d_x = dev_from(x, n), *d_g = dev_from(g, (size_t)C), *d_b = dev_from(b, (size_t)C),
          *d_dy = dev_from(dy, n);
    float *d_scr = dev_alloc(cphil_cu_norm_scratch_floats(M, C));
    float *d_y[2], *d_mean[2], *d_rstd[2], *d_dx[2], *d_dg[2], *d_db[2];
    for (int r = 0; r < 2; r++) {
        d_y[r] = dev_alloc(n);
        d_mean[r] = dev_alloc((size_t)M);
        d_rstd[r] = dev_alloc((size_t)M);
        d_dx[r] = dev_from(dx0, n);
        d_dg[r] = dev_from(dg0, (size_t)C);
        d_db[r] = dev_from(db0, (size_t)C);
        cphil_cu_layernorm_forward(cu, M, C, d_x, d_g, d_b, eps, d_y[r], d_mean[r], d_rstd[r]);
        cphil_cu_layernorm_backward(cu, M, C, d_x, d_g, d_mean[r], d_rstd[r], d_dy, d_dx[r], d_dg[r], d_db[r],
                                    d_scr);
    }
    printf("  layernorm M=%d C=%d\n", M, C);
    CHECK_DEV("y", d_y[0], y, n, TOL);
    CHECK_DEV("mean", d_mean[0], mean, M, TOL);
    CHECK_DEV("rstd", d_rstd[0], rstd, M, TOL);
    CHECK_DEV("dx", d_dx[0], dx, n, TOL);
    CHECK_DEV("dg", d_dg[0], dg, C, TOL);
    CHECK_DEV("db", d_db[0], db, C, TOL);
    same_bits("y", d_y[0], d_y[1], n);
    same_bits("mean", d_mean[0], d_mean[1], (size_t)M);
    same_bits("rstd", d_rstd[0], d_rstd[1], (size_t)M);
    same_bits("dx", d_dx[0], d_dx[1], n);
    same_bits("dg", d_dg[0], d_dg[1], (size_t)C);
    same_bits("db", d_db[0], d_db[1], (size_t)C);
    for (int r = 0; r < 2; r++) {
        cphil_cu_free(d_y[r]);
        cphil_cu_free(d_mean[r]);
        cphil_cu_free(d_rstd[r]);
        cphil_cu_free(d_dx[r]);
        cphil_cu_free(d_dg[r]);
        cphil_cu_free(d_db[r]);
    }
    cphil_cu_free(d_x);
    cphil_cu_free(d_g);
    cphil_cu_free(d_b);
    cphil_cu_free(d_dy);
    cphil_cu_free(d_scr);
    free(x); free(g); free(b); free(dy); free(dx0); free(dg0); free(db0);
    free(y); free(mean); free(rstd); free(dx); free(dg); free(db);
}

static void rmsnorm_case(int M, int C, uint64_t seed) {
    cphil_cu *cu = cu_ctx();
    const size_t n = (size_t)M * C;
    const float eps = 1e-5f;
    float *x = rnd_host(n, seed, -2.f, 2.f), *g = rnd_host((size_t)C, seed + 1, 0.5f, 1.5f),
          *dy = rnd_host(n, seed + 3, -1.f, 1.f), *dx0 = rnd_host(n, seed + 4, -1.f, 1.f),
          *dg0 = rnd_host((size_t)C, seed + 5, -1.f, 1.f);
    float *y = malloc(n * sizeof(float)), *rstd = malloc((size_t)M * sizeof(float));
    float *dx = copy_of(dx0, n), *dg = copy_of(dg0, (size_t)C);
    cphil_nn_rmsnorm_forward(M, C, x, g, eps, y, rstd);
    cphil_nn_rmsnorm_backward(M, C, x, g, rstd, dy, dx, dg);

    float *d_x = dev_from(x, n), *d_g = dev_from(g, (size_t)C), *d_dy = dev_from(dy, n);
    float *d_scr = dev_alloc(cphil_cu_norm_scratch_floats(M, C));
    float *d_y[2], *d_rstd[2], *d_dx[2], *d_dg[2];
    for (int r = 0; r < 2; r++) {
        d_y[r] = dev_alloc(n);
        d_rstd[r] = dev_alloc((size_t)M);
        d_dx[r] = dev_from(dx0, n);
        d_dg[r] = dev_from(dg0, (size_t)C);
        cphil_cu_rmsnorm_forward(cu, M, C, d_x, d_g, eps, d_y[r], d_rstd[r]);
        cphil_cu_rmsnorm_backward(cu, M, C, d_x, d_g, d_rstd[r], d_dy, d_dx[r], d_dg[r], d_scr);
    }
    printf("  rmsnorm M=%d C=%d\n", M, C);
    CHECK_DEV("y", d_y[0], y, n, TOL);
    CHECK_DEV("rstd", d_rstd[0], rstd, M, TOL);
    CHECK_DEV("dx", d_dx[0], dx, n, TOL);
    CHECK_DEV("dg", d_dg[0], dg, C, TOL);
    same_bits("y", d_y[0], d_y[1], n);
    same_bits("rstd", d_rstd[0], d_rstd[1], (size_t)M);
    same_bits("dx", d_dx[0], d_dx[1], n);
    same_bits("dg", d_dg[0], d_dg[1], (size_t)C);
    for (int r = 0; r < 2; r++) {
        cphil_cu_free(d_y[r]);
        cphil_cu_free(d_rstd[r]);
        cphil_cu_free(d_dx[r]);
        cphil_cu_free(d_dg[r]);
    }
    cphil_cu_free(d_x);
    cphil_cu_free(d_g);
    cphil_cu_free(d_dy);
    cphil_cu_free(d_scr);
    free(x); free(g); free(dy); free(dx0); free(dg0);
    free(y); free(rstd); free(dx); free(dg);
}

/* dx = NULL (an input that needs no gradient) must still give dg/db. */
TEST(layernorm_no_dx) {
    cphil_cu *cu = cu_ctx();
    const int M = 70, C = 33; /* two partial-sum chunks of 35 rows; a 1-column second tile */
    const size_t n = (size_t)M * C;
    float *x = rnd_host(n, 11, -1.f, 1.f), *g = rnd_host((size_t)C, 12, 0.5f, 1.5f),
          *b = rnd_host((size_t)C, 13, -0.5f, 0.5f), *dy = rnd_host(n, 14, -1.f, 1.f);
    float *y = malloc(n * sizeof(float)), *mean = malloc((size_t)M * sizeof(float)),
          *rstd = malloc((size_t)M * sizeof(float)), *dg = calloc((size_t)C, sizeof(float)),
          *db = calloc((size_t)C, sizeof(float));
    cphil_nn_layernorm_forward(M, C, x, g, b, 1e-5f, y, mean, rstd);
    cphil_nn_layernorm_backward(M, C, x, g, mean, rstd, dy, NULL, dg, db);
    float *d_x = dev_from(x, n), *d_g = dev_from(g, (size_t)C), *d_b = dev_from(b, (size_t)C),
          *d_dy = dev_from(dy, n), *d_y = dev_alloc(n), *d_mean = dev_alloc((size_t)M),
          *d_rstd = dev_alloc((size_t)M), *d_scr = dev_alloc(cphil_cu_norm_scratch_floats(M, C));
    float *zc = calloc((size_t)C, sizeof(float));
    float *d_dg = dev_from(zc, (size_t)C), *d_db = dev_from(zc, (size_t)C);
    cphil_cu_layernorm_forward(cu, M, C, d_x, d_g, d_b, 1e-5f, d_y, d_mean, d_rstd);
    cphil_cu_layernorm_backward(cu, M, C, d_x, d_g, d_mean, d_rstd, d_dy, NULL, d_dg, d_db, d_scr);
    CHECK_DEV("dg", d_dg, dg, C, TOL);
    CHECK_DEV("db", d_db, db, C, TOL);
    float *bufs[] = {d_x, d_g, d_b, d_dy, d_y, d_mean, d_rstd, d_scr, d_dg, d_db};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) cphil_cu_free(bufs[i]);
    free(x); free(g); free(b); free(dy); free(y); free(mean); free(rstd); free(dg); free(db); free(zc);
}

TEST(layernorm_ragged) { layernorm_case(7, 13, 1); }
TEST(layernorm_realistic) { layernorm_case(3840, 256, 2); }
/* more rows than 1024 chunks of 64: chunks of ceil(M/1024) rows, the last ones short or empty */
TEST(layernorm_many_rows) { layernorm_case(70001, 20, 3); }
TEST(rmsnorm_ragged) { rmsnorm_case(7, 13, 4); }
TEST(rmsnorm_realistic) { rmsnorm_case(3840, 256, 5); }
TEST(rmsnorm_many_rows) { rmsnorm_case(70001, 20, 6); }

int main(void) {
    RUN(layernorm_ragged);
    RUN(layernorm_realistic);
    RUN(layernorm_many_rows);
    RUN(layernorm_no_dx);
    RUN(rmsnorm_ragged);
    RUN(rmsnorm_realistic);
    RUN(rmsnorm_many_rows);
    return cu_test_done();
}
