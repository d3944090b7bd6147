/* cu_test.h — helpers for the GPU tests (tests/cuda/test_cuda_*.c, built with make CUDA=1 and run
 * by scripts/test_cuda.sh on a machine with a GPU): a shared context, host<->device copies,
 * seeded random fills, the relative error ||gpu - cpu|| / ||cpu|| used by every comparison, and
 * a skip when no GPU is present. Header-only, on top of tests/harness.h. */
#ifndef CPHIL_CU_TEST_H
#define CPHIL_CU_TEST_H

#include "harness.h"
#include "core/core.h"
#include "kernels/cuda/cu.h"

#include <cuda_runtime_api.h>
#include <math.h>
#include <stdint.h>

static cphil_cu *g_cu;

/* The shared context; SKIPs the current test when there is no GPU. */
H_UNUSED static cphil_cu *cu_ctx(void) {
    if (!g_cu && cphil_cu_create(0, &g_cu) != CPHIL_OK) SKIP("no CUDA GPU: %s", cphil_last_error());
    return g_cu;
}

H_UNUSED static float *dev_alloc(size_t n) {
    float *p = NULL;
    if (cphil_cu_malloc(cu_ctx(), (void **)&p, (n ? n : 1) * sizeof(float), "test buffer") != CPHIL_OK)
        h_fail_at(__FILE__, __LINE__, "cudaMalloc of %zu floats failed", n);
    /* poison: NaN everywhere, so an element nobody wrote is caught */
    cudaMemset(p, 0xff, (n ? n : 1) * sizeof(float));
    cudaDeviceSynchronize(); /* the legacy stream's work is done before the context stream runs */
    return p;
}
H_UNUSED static float *dev_from(const float *h, size_t n) {
    float *p = dev_alloc(n);
    if (n) cudaMemcpy(p, h, n * sizeof(float), cudaMemcpyHostToDevice);
    cudaDeviceSynchronize();
    return p;
}
H_UNUSED static void dev_to(float *h, const float *d, size_t n) {
    CHECK_MSG(cphil_cu_sync(cu_ctx()) == CPHIL_OK, "GPU error: %s", cphil_last_error());
    if (n) cudaMemcpy(h, d, n * sizeof(float), cudaMemcpyDeviceToHost);
}
H_UNUSED static void dev_set(float *d, const float *h, size_t n) {
    cphil_cu_sync(cu_ctx()); /* nothing queued may still read d */
    if (n) cudaMemcpy(d, h, n * sizeof(float), cudaMemcpyHostToDevice);
    cudaDeviceSynchronize();
}

/* splitmix64-based uniform floats in [lo, hi) */
H_UNUSED static void rnd_fill(float *x, size_t n, uint64_t seed, float lo, float hi) {
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
    for (size_t i = 0; i < n; i++) {
        uint64_t z = (s += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        z ^= z >> 31;
        x[i] = lo + (hi - lo) * (float)((double)(z >> 40) / (double)(1ull << 24));
    }
}
H_UNUSED static float *rnd_host(size_t n, uint64_t seed, float lo, float hi) {
    float *x = (float *)malloc((n ? n : 1) * sizeof(float));
    rnd_fill(x, n, seed, lo, hi);
    return x;
}

/* ||a - b|| / max(||b||, tiny); NaN anywhere gives +inf. */
H_UNUSED static double rel_err(const float *a, const float *b, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(a[i]) || !isfinite(b[i])) return INFINITY;
        double d = (double)a[i] - (double)b[i];
        num += d * d;
        den += (double)b[i] * (double)b[i];
    }
    return sqrt(num) / (den > 1e-30 ? sqrt(den) : 1e-15);
}
/* Download n floats of d and compare with the CPU's ref: rel_err <= tol. */
#define CHECK_DEV(name, d, ref, n, tol) do { \
    size_t n_ = (size_t)(n); float *h_ = (float *)malloc((n_ ? n_ : 1) * sizeof(float)); \
    dev_to(h_, (d), n_); double e_ = rel_err(h_, (ref), n_); free(h_); \
    if (!(e_ <= (tol))) h_fail_at(__FILE__, __LINE__, "%s: relative error %.3g > %.3g", (name), e_, (double)(tol)); \
    printf("  %-28s rel err %.2e\n", (name), e_); } while (0)

/* A device buffer copied to a fresh host array (caller frees). */
H_UNUSED static float *host_of(const float *d, size_t n) {
    float *h = (float *)malloc((n ? n : 1) * sizeof(float));
    dev_to(h, d, n);
    return h;
}
/* Two device buffers hold the same bits (determinism checks). */
H_UNUSED static void same_bits(const char *what, const float *d1, const float *d2, size_t n) {
    float *a = host_of(d1, n), *b = host_of(d2, n);
    int same = memcmp(a, b, n * sizeof(float)) == 0;
    free(a);
    free(b);
    CHECK_MSG(same, "%s: two GPU runs on the same inputs differ", what);
}
/* A copy of a host array (caller frees). */
H_UNUSED static float *copy_of(const float *h, size_t n) {
    float *c = (float *)malloc((n ? n : 1) * sizeof(float));
    memcpy(c, h, n * sizeof(float));
    return c;
}

H_UNUSED static int cu_test_done(void) {
    if (g_cu) cphil_cu_destroy(g_cu);
    return harness_done();
}
#endif
