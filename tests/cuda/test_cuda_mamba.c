/* test_cuda_mamba.c — the GPU Mamba mixer (src/kernels/cuda/cu_mamba.cu) against the CPU layer
 * (cphil_nn_mamba_forward/backward, f32) on random inputs: the output, every saved buffer (the
 * GPU policy relies on the CPU's layout), du and every parameter gradient (compared as the
 * change from random initial values, so the add-into contract is checked), at a ragged size,
 * at the realistic size (B 64, T 60, H 256, I 512, N 16, K 4, R 16), and with N > 32 over
 * several backward chunks; f32 to 1e-4 and bf16 to 2e-2 relative error; two GPU runs on the same
 * inputs must give identical bits. Needs a CUDA GPU (skips without one). */
#include "cu_test.h"

#include <stdlib.h>
#include <string.h>

#define NP 9  /* parameter tensors: Win conv_w conv_b Wx Wdt bdt A_log D Wout */
#define NS 8  /* saved: xz xc xa xdbl dtp dt y g */
#define NW 16 /* scratch: A h hs dxz dxa dxc dy dg ddt dxdbl dAs gtmp dAl zeros dAl_b dD_b (nthr 1) */

static const char *const PNAME[NP] = {"dWin", "dconv_w", "dconv_b", "dWx", "dWdt", "dbdt", "dA_log", "dD", "dWout"};
static const char *const SNAME[NS] = {"saved xz", "saved xc", "saved xa", "saved xdbl",
                                      "saved dtp", "saved dt", "saved y", "saved g"};

typedef struct mcase {
    int B, T, H, I, R, N, K;
} mcase;

static void sizes(const mcase *c, size_t np[NP], size_t ns[NS], size_t nw[NW]) {
    const size_t M = (size_t)c->B * c->T, I = (size_t)c->I, N = (size_t)c->N, XD = (size_t)c->R + 2 * N;
    const size_t p[NP] = {2 * I * c->H, I * c->K, I, XD * I, I * c->R, I, I * N, I, (size_t)c->H * I};
    const size_t s[NS] = {M * 2 * I, M * I, M * I, M * XD, M * I, M * I, M * I, M * I};
    const size_t w[NW] = {I * N, I * N, (size_t)c->T * I * N, M * 2 * I, M * I, M * I, M * I,
                          M * I, M * I, M * XD, (size_t)c->T * I * N, I, I * N, I, (size_t)c->B * I * N,
                          (size_t)c->B * I};
    memcpy(np, p, sizeof p);
    memcpy(ns, s, sizeof s);
    memcpy(nw, w, sizeof w);
}

static cphil_mamba_params mk_params(float *const a[NP]) {
    return (cphil_mamba_params){a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8]};
}
static cphil_mamba_grads mk_grads(float *const a[NP]) {
    return (cphil_mamba_grads){a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8]};
}
static cphil_mamba_saved mk_saved(float *const a[NS]) {
    return (cphil_mamba_saved){a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7]};
}
static cphil_mamba_scratch mk_scratch(float *const a[NW]) {
    return (cphil_mamba_scratch){a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7],  a[8],  a[9],  a[10],
                                 a[11], a[12], a[13], a[14], a[15], 1};
}

/* Host results of one run: out, saved, du, grads (each malloc'd). */
typedef struct mres {
    float *out, *du, *s[NS], *g[NP];
} mres;
static void mres_free(mres *r) {
    free(r->out);
    free(r->du);
    for (int k = 0; k < NS; k++) free(r->s[k]);
    for (int k = 0; k < NP; k++) free(r->g[k]);
}
static float *hdup(const float *x, size_t n) {
    float *y = malloc((n ? n : 1) * sizeof *y);
    memcpy(y, x, n * sizeof *y);
    return y;
}
static float *hdown(const float *d, size_t n) {
    float *h = malloc((n ? n : 1) * sizeof *h);
    dev_to(h, d, n);
    return h;
}

/* Host inputs shared by the CPU and GPU runs. */
typedef struct minputs {
    float *p[NP], *u, *dout, *g0[NP], *du0;
} minputs;

static void inputs_make(const mcase *c, minputs *in, uint64_t seed) {
    size_t np[NP], ns[NS], nw[NW];
    sizes(c, np, ns, nw);
    const float sH = 1.f / sqrtf((float)c->H), sI = 1.f / sqrtf((float)c->I), sR = 1.f / sqrtf((float)c->R);
    /* ranges like a trained mixer: dt = softplus(bdt + ...) in about [0.05, 1], A_log S4D-like */
    const float lo[NP] = {-sH, -0.5f, -0.2f, -sI, -sR, -3.f, 0.f, 0.5f, -sI};
    const float hi[NP] = {sH, 0.5f, 0.2f, sI, sR, 0.f, 2.5f, 1.5f, sI};
    const size_t M = (size_t)c->B * c->T, MH = M * c->H;
    for (int k = 0; k < NP; k++) {
        in->p[k] = rnd_host(np[k], seed + 1 + k, lo[k], hi[k]);
        in->g0[k] = rnd_host(np[k], seed + 101 + k, -0.01f, 0.01f);
    }
    in->u = rnd_host(MH, seed + 201, -1.f, 1.f);
    in->dout = rnd_host(MH, seed + 202, -1.f, 1.f);
    in->du0 = rnd_host(MH, seed + 203, -0.01f, 0.01f);
}
static void inputs_free(minputs *in) {
    for (int k = 0; k < NP; k++) {
        free(in->p[k]);
        free(in->g0[k]);
    }
    free(in->u);
    free(in->dout);
    free(in->du0);
}

static void run_cpu(const mcase *c, cphil_precision prec, const minputs *in, mres *r) {
    size_t np[NP], ns[NS], nw[NW];
    sizes(c, np, ns, nw);
    const size_t MH = (size_t)c->B * c->T * c->H;
    float *sv[NS], *wv[NW];
    for (int k = 0; k < NS; k++) sv[k] = calloc(ns[k], sizeof(float));
    for (int k = 0; k < NW; k++) wv[k] = calloc(nw[k] ? nw[k] : 1, sizeof(float)); /* zeros stays 0 */
    for (int k = 0; k < NP; k++) r->g[k] = hdup(in->g0[k], np[k]);
    r->out = calloc(MH, sizeof(float));
    r->du = hdup(in->du0, MH);
    cphil_mamba_params p = mk_params(in->p);
    cphil_mamba_saved s = mk_saved(sv);
    cphil_mamba_scratch w = mk_scratch(wv);
    cphil_mamba_grads g = mk_grads(r->g);
    cphil_nn_mamba_forward(prec, c->B, c->T, c->H, c->I, c->R, c->N, c->K, in->u, &p, &s, &w, r->out);
    cphil_nn_mamba_backward(prec, c->B, c->T, c->H, c->I, c->R, c->N, c->K, in->u, &p, &s, &w, in->dout, r->du, &g);
    for (int k = 0; k < NS; k++) r->s[k] = sv[k];
    for (int k = 0; k < NW; k++) free(wv[k]);
}

/* One GPU forward + backward on fresh NaN-poisoned saved/scratch/extra buffers. */
static void run_gpu(const mcase *c, cphil_precision prec, const minputs *in, mres *r) {
    cphil_cu *cu = cu_ctx();
    size_t np[NP], ns[NS], nw[NW];
    sizes(c, np, ns, nw);
    const size_t MH = (size_t)c->B * c->T * c->H;
    float *pd[NP], *gd[NP], *sd[NS], *wd[NW];
    for (int k = 0; k < NP; k++) {
        pd[k] = dev_from(in->p[k], np[k]);
        gd[k] = dev_from(in->g0[k], np[k]);
    }
    for (int k = 0; k < NS; k++) sd[k] = dev_alloc(ns[k]);
    for (int k = 0; k < NW; k++) wd[k] = dev_alloc(nw[k]);
    float *u = dev_from(in->u, MH), *dout = dev_from(in->dout, MH), *du = dev_from(in->du0, MH);
    float *out = dev_alloc(MH), *extra = dev_alloc(cphil_cu_mamba_extra_floats(c->B, c->T, c->I, c->N));
    /* the uploads and NaN fills run on the legacy default stream, which the context's
     * non-blocking stream does not wait for */
    CHECK(cudaDeviceSynchronize() == cudaSuccess);
    cphil_mamba_params p = mk_params(pd);
    cphil_mamba_saved s = mk_saved(sd);
    cphil_mamba_scratch w = mk_scratch(wd);
    cphil_mamba_grads g = mk_grads(gd);
    cphil_cu_mamba_forward(cu, prec, c->B, c->T, c->H, c->I, c->R, c->N, c->K, u, &p, &s, &w, extra, out);
    r->out = hdown(out, MH);
    for (int k = 0; k < NS; k++) r->s[k] = hdown(sd[k], ns[k]);
    cphil_cu_mamba_backward(cu, prec, c->B, c->T, c->H, c->I, c->R, c->N, c->K, u, &p, &s, &w, extra, dout, du, &g);
    r->du = hdown(du, MH);
    for (int k = 0; k < NP; k++) r->g[k] = hdown(gd[k], np[k]);
    CHECK_MSG(cphil_cu_sync(cu) == CPHIL_OK, "GPU error: %s", cphil_last_error());
    for (int k = 0; k < NP; k++) {
        cphil_cu_free(pd[k]);
        cphil_cu_free(gd[k]);
    }
    for (int k = 0; k < NS; k++) cphil_cu_free(sd[k]);
    for (int k = 0; k < NW; k++) cphil_cu_free(wd[k]);
    cphil_cu_free(u);
    cphil_cu_free(dout);
    cphil_cu_free(du);
    cphil_cu_free(out);
    cphil_cu_free(extra);
}

/* rel_err of (a - base) against (b - base): the gradient each side added */
static void check_delta(const char *name, const float *a, const float *b, const float *base, size_t n, double tol) {
    float *da = malloc((n ? n : 1) * sizeof *da), *db = malloc((n ? n : 1) * sizeof *db);
    for (size_t q = 0; q < n; q++) {
        da[q] = a[q] - base[q];
        db[q] = b[q] - base[q];
    }
    double e = rel_err(da, db, n);
    free(da);
    free(db);
    if (!(e <= tol)) h_fail_at(__FILE__, __LINE__, "%s: relative error %.3g > %.3g", name, e, tol);
    printf("  %-28s rel err %.2e\n", name, e);
}
static void check_rel(const char *name, const float *a, const float *b, size_t n, double tol) {
    double e = rel_err(a, b, n);
    if (!(e <= tol)) h_fail_at(__FILE__, __LINE__, "%s: relative error %.3g > %.3g", name, e, tol);
    printf("  %-28s rel err %.2e\n", name, e);
}
static void check_same(const char *name, const float *a, const float *b, size_t n) {
    CHECK_MSG(memcmp(a, b, n * sizeof *a) == 0, "%s differs between two GPU runs on the same inputs", name);
}

static void mamba_case(mcase c, cphil_precision prec, double tol, uint64_t seed) {
    cu_ctx();
    size_t np[NP], ns[NS], nw[NW];
    sizes(&c, np, ns, nw);
    const size_t MH = (size_t)c.B * c.T * c.H;
    minputs in;
    inputs_make(&c, &in, seed);
    mres cpu, gpu, gpu2;
    run_cpu(&c, prec, &in, &cpu);
    run_gpu(&c, prec, &in, &gpu);
    run_gpu(&c, prec, &in, &gpu2);
    check_rel("out", gpu.out, cpu.out, MH, tol);
    for (int k = 0; k < NS; k++) check_rel(SNAME[k], gpu.s[k], cpu.s[k], ns[k], tol);
    check_delta("du", gpu.du, cpu.du, in.du0, MH, tol);
    for (int k = 0; k < NP; k++) check_delta(PNAME[k], gpu.g[k], cpu.g[k], in.g0[k], np[k], tol);
    /* determinism: bit-identical second run */
    check_same("out", gpu.out, gpu2.out, MH);
    for (int k = 0; k < NS; k++) check_same(SNAME[k], gpu.s[k], gpu2.s[k], ns[k]);
    check_same("du", gpu.du, gpu2.du, MH);
    for (int k = 0; k < NP; k++) check_same(PNAME[k], gpu.g[k], gpu2.g[k], np[k]);
    mres_free(&cpu);
    mres_free(&gpu);
    mres_free(&gpu2);
    inputs_free(&in);
}

static const mcase RAGGED = {2, 7, 12, 24, 1, 5, 3};
static const mcase REAL = {64, 60, 256, 512, 16, 16, 4};
/* N > 32: a channel's states span two warps (shared-memory sums); T = 37 crosses several chunk
 * boundaries of the backward's recomputation (chunks of 8 steps) with a short last chunk */
static const mcase WIDE = {3, 37, 20, 40, 2, 40, 4};

TEST(mamba_ragged_f32) { mamba_case(RAGGED, CPHIL_PREC_F32, 1e-4, 11); }
TEST(mamba_ragged_bf16) { mamba_case(RAGGED, CPHIL_PREC_BF16, 2e-2, 12); }
TEST(mamba_realistic_f32) { mamba_case(REAL, CPHIL_PREC_F32, 1e-4, 13); }
TEST(mamba_realistic_bf16) { mamba_case(REAL, CPHIL_PREC_BF16, 2e-2, 14); }
TEST(mamba_wide_states_multichunk_f32) { mamba_case(WIDE, CPHIL_PREC_F32, 1e-4, 15); }

/* Sizes the kernels do not support are reported through the context, not run. A context of its
 * own, since errors are sticky. */
TEST(mamba_unsupported_state_size_is_an_error) {
    cu_ctx();
    cphil_cu *cu = NULL;
    CHECK(cphil_cu_create(0, &cu) == CPHIL_OK);
    cphil_mamba_params p = {0};
    cphil_mamba_saved s = {0};
    cphil_mamba_scratch w = {0};
    cphil_cu_mamba_forward(cu, CPHIL_PREC_F32, 2, 3, 4, 8, 1, 600, 3, NULL, &p, &s, &w, NULL, NULL);
    CHECK(cphil_cu_sync(cu) != CPHIL_OK);
    CHECK_MSG(strstr(cphil_last_error(), "state size") != NULL, "message: %s", cphil_last_error());
    cphil_cu_destroy(cu);
}

int main(void) {
    RUN(mamba_ragged_f32);
    RUN(mamba_ragged_bf16);
    RUN(mamba_realistic_f32);
    RUN(mamba_realistic_bf16);
    RUN(mamba_wide_states_multichunk_f32);
    RUN(mamba_unsupported_state_size_is_an_error);
    return cu_test_done();
}
