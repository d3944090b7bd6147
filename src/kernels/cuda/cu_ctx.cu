/* cu_ctx.cu — the CUDA context of cu.h: device, stream, sticky errors, device allocation, and the
 * matrix product through cuBLASLt (row-major over column-major, algorithm cache, deterministic
 * reduction schemes).
 *
 * Row-major over cuBLASLt's column-major: a row-major X[r, c] (ld) is the column-major X^T[c, r]
 * (same ld). So row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: call cuBLASLt
 * with the operands swapped (B first), m = N, n = M, and the transpose flags as given.
 * Reference: cuBLASLt API (cublasLt.h, CUDA 13.0): cublasLtMatmul, matmul descriptor attributes
 * TRANSA/TRANSB, CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK; llm.c's llmc/matmul.cuh.
 * Not here: kernels (cu_elem.cu and one file per layer).
 */
extern "C" {
#include "core/core.h"
}
#include "kernels/cuda/cu.h"

#include <cublasLt.h>
#include <cuda_runtime.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GEMM_CACHE 256
#define WORKSPACE_BYTES ((size_t)32 << 20) /* Hopper wants 32 MiB (llm.c, cuBLAS docs) */

typedef struct gemm_key {
    int prec, ta, tb, M, N, K, lda, ldb, ldc, beta_zero;
    int bias; /* 1: cuBLASLt's bias epilogue adds a vector of N to every row (cphil_cu_gemm_bias) */
    int align_a, align_b, align_c; /* pointer alignment in bytes (up to 256): cuBLASLt's kernels
                                    * assume 256 unless told, and a step's rows are offsets */
} gemm_key;

static int ptr_align(const void *p) {
    uintptr_t a = (uintptr_t)p;
    int al = 256;
    while (al > 4 && (a % (uintptr_t)al) != 0) al >>= 1;
    return al;
}

typedef struct gemm_plan {
    gemm_key key;
    bool used, ok;
    cublasLtMatmulDesc_t desc;
    cublasLtMatrixLayout_t la, lb, lc;
    cublasLtMatmulAlgo_t algo;
} gemm_plan;

struct cphil_cu {
    int device;
    cudaStream_t stream;
    cublasLtHandle_t lt;
    void *workspace;
    cphil_status err;      /* first recorded error */
    char err_msg[512];
    gemm_plan plans[GEMM_CACHE];
    float *ones;
    size_t ones_n;
    cudaDeviceProp prop;
    cphil_cu_rnn_mode rnn_mode; /* from CPHIL_RNN at creation; cphil_cu_set_rnn_mode */
    int rnn_tiles;              /* from CPHIL_RNN_TILES at creation; cphil_cu_set_rnn_tiles */
};

extern "C" cphil_status cphil_cu_create(int device, cphil_cu **out) {
    *out = NULL;
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess || n == 0)
        return cphil_err(CPHIL_E_UNSUPPORTED,
                         "no CUDA GPU found (%s): run on a machine with an NVIDIA GPU and its driver, "
                         "or drop --device cuda to train on the CPU",
                         e != cudaSuccess ? cudaGetErrorString(e) : "the driver reports 0 devices");
    if (device < 0 || device >= n)
        return cphil_err(CPHIL_E_ARG, "--device cuda:%d: this machine has %d GPU%s (cuda:0..cuda:%d)", device, n,
                         n == 1 ? "" : "s", n - 1);
    cphil_cu *cu = (cphil_cu *)cphil_calloc(1, sizeof *cu);
    if (!cu) return cphil_err(CPHIL_E_NOMEM, "out of memory for the CUDA context");
    cu->device = device;
    const char *rnn = getenv("CPHIL_RNN");
    if (!rnn || !*rnn || !strcmp(rnn, "auto")) cu->rnn_mode = CPHIL_CU_RNN_AUTO;
    else if (!strcmp(rnn, "steps")) cu->rnn_mode = CPHIL_CU_RNN_STEPS;
    else if (!strcmp(rnn, "persistent")) cu->rnn_mode = CPHIL_CU_RNN_PERSISTENT;
    else {
        cphil_free(cu);
        return cphil_err(CPHIL_E_ARG, "CPHIL_RNN=%s: expected auto, steps or persistent (how the GPU runs the "
                         "LSTM/GRU recurrence; docs/gpu.md)", rnn);
    }
    const char *tiles = getenv("CPHIL_RNN_TILES");
    if (tiles && *tiles) {
        if (strlen(tiles) != 1 || tiles[0] < '0' || tiles[0] > '3') {
            cphil_free(cu);
            return cphil_err(CPHIL_E_ARG, "CPHIL_RNN_TILES=%s: expected 0 (pick), 1, 2 or 3 (16-row tiles per "
                             "cluster of the LSTM/GRU cluster kernel; docs/gpu.md)", tiles);
        }
        cu->rnn_tiles = tiles[0] - '0';
    }
    if ((e = cudaSetDevice(device)) != cudaSuccess ||
        (e = cudaGetDeviceProperties(&cu->prop, device)) != cudaSuccess ||
        (e = cudaStreamCreateWithFlags(&cu->stream, cudaStreamNonBlocking)) != cudaSuccess) {
        cphil_cu_destroy(cu);
        return cphil_err(CPHIL_E_UNSUPPORTED, "cuda:%d cannot be used: %s (is it busy or in exclusive mode?)",
                         device, cudaGetErrorString(e));
    }
    if (cublasLtCreate(&cu->lt) != CUBLAS_STATUS_SUCCESS) {
        cphil_cu_destroy(cu);
        return cphil_err(CPHIL_E_UNSUPPORTED, "cuda:%d: cuBLASLt could not be initialised", device);
    }
    if (cudaMalloc(&cu->workspace, WORKSPACE_BYTES) != cudaSuccess) {
        cphil_cu_destroy(cu);
        return cphil_err(CPHIL_E_NOMEM, "cuda:%d: out of GPU memory for the 32 MiB cuBLASLt workspace", device);
    }
    *out = cu;
    return CPHIL_OK;
}

extern "C" void cphil_cu_destroy(cphil_cu *cu) {
    if (!cu) return;
    if (cu->stream) cudaStreamSynchronize(cu->stream);
    for (int i = 0; i < GEMM_CACHE; i++) {
        gemm_plan *p = &cu->plans[i];
        if (!p->used) continue;
        cublasLtMatmulDescDestroy(p->desc);
        cublasLtMatrixLayoutDestroy(p->la);
        cublasLtMatrixLayoutDestroy(p->lb);
        cublasLtMatrixLayoutDestroy(p->lc);
    }
    cudaFree(cu->ones);
    cudaFree(cu->workspace);
    if (cu->lt) cublasLtDestroy(cu->lt);
    if (cu->stream) cudaStreamDestroy(cu->stream);
    cphil_free(cu);
}

extern "C" cudaStream_t cphil_cu_stream(const cphil_cu *cu) { return cu->stream; }

extern "C" size_t cphil_cu_smem_optin(const cphil_cu *cu) { return cu->prop.sharedMemPerBlockOptin; }

extern "C" void cphil_cu_set_rnn_mode(cphil_cu *cu, cphil_cu_rnn_mode m) { cu->rnn_mode = m; }
extern "C" cphil_cu_rnn_mode cphil_cu_get_rnn_mode(const cphil_cu *cu) { return cu->rnn_mode; }
extern "C" void cphil_cu_set_rnn_tiles(cphil_cu *cu, int tiles) { cu->rnn_tiles = tiles; }
extern "C" int cphil_cu_get_rnn_tiles(const cphil_cu *cu) { return cu->rnn_tiles; }
extern "C" int cphil_cu_device_index(const cphil_cu *cu) { return cu->device; }

extern "C" void cphil_cu_describe(const cphil_cu *cu, char *buf, size_t n) {
    int drv = 0, rt = 0;
    cudaDriverGetVersion(&drv);
    cudaRuntimeGetVersion(&rt);
    snprintf(buf, n, "cuda:%d %s (sm_%d%d, %d SMs, %.1f GiB), driver CUDA %d.%d, runtime %d.%d", cu->device,
             cu->prop.name, cu->prop.major, cu->prop.minor, cu->prop.multiProcessorCount,
             (double)cu->prop.totalGlobalMem / (1 << 30), drv / 1000, (drv % 1000) / 10, rt / 1000,
             (rt % 1000) / 10);
}

extern "C" void cphil_cu_record(cphil_cu *cu, int e, const char *what, const char *file, int line) {
    if (e == (int)cudaSuccess || cu->err != CPHIL_OK) return;
    cu->err = e == (int)cudaErrorMemoryAllocation ? CPHIL_E_NOMEM : CPHIL_E_INTERNAL;
    snprintf(cu->err_msg, sizeof cu->err_msg, "CUDA error in %s (%s:%d): %s", what, file, line,
             e < 0 ? "cuBLASLt call failed" : cudaGetErrorString((cudaError_t)e));
}

extern "C" cphil_status cphil_cu_status(cphil_cu *cu) {
    if (cu->err != CPHIL_OK) return cphil_err(cu->err, "%s", cu->err_msg);
    return CPHIL_OK;
}

extern "C" cphil_status cphil_cu_sync(cphil_cu *cu) {
    cudaError_t e = cudaStreamSynchronize(cu->stream);
    if (e != cudaSuccess) cphil_cu_record(cu, (int)e, "stream synchronize", __FILE__, __LINE__);
    return cphil_cu_status(cu);
}

extern "C" cphil_status cphil_cu_malloc(cphil_cu *cu, void **p, size_t bytes, const char *what) {
    *p = NULL;
    cudaError_t e = cudaMalloc(p, bytes ? bytes : 1);
    if (e != cudaSuccess) {
        cudaGetLastError(); /* clear it: an OOM is reported here, not as a sticky launch error */
        *p = NULL;
        size_t fr = 0, tot = 0;
        cudaMemGetInfo(&fr, &tot);
        return cphil_err(e == cudaErrorMemoryAllocation ? CPHIL_E_NOMEM : CPHIL_E_INTERNAL,
                         "cuda:%d: cannot allocate %.1f MiB for %s (%.1f of %.1f GiB free): %s%s", cu->device,
                         (double)bytes / (1 << 20), what, (double)fr / (1 << 30), (double)tot / (1 << 30),
                         cudaGetErrorString(e),
                         e == cudaErrorMemoryAllocation ? "; use a smaller --batch-size or --window-size" : "");
    }
    return CPHIL_OK;
}

extern "C" void cphil_cu_free(void *p) {
    if (p) cudaFree(p);
}

extern "C" const float *cphil_cu_ones(cphil_cu *cu, size_t n) {
    if (n <= cu->ones_n) return cu->ones;
    size_t want = n < 4096 ? 4096 : n;
    float *p = NULL;
    if (cphil_cu_malloc(cu, (void **)&p, want * sizeof(float), "a column of ones") != CPHIL_OK) return NULL;
    cphil_cu_fill(cu, p, want, 1.0f);
    cudaStreamSynchronize(cu->stream); /* before capture: make sure it is written */
    cudaFree(cu->ones);
    cu->ones = p;
    cu->ones_n = want;
    return p;
}

/* ---- matrix product ---------------------------------------------------------------------- */
static bool key_eq(const gemm_key *a, const gemm_key *b) { return memcmp(a, b, sizeof *a) == 0; }

static gemm_plan *plan_for(cphil_cu *cu, const gemm_key *k) {
    unsigned h = 2166136261u;
    const unsigned char *p = (const unsigned char *)k;
    for (size_t i = 0; i < sizeof *k; i++) h = (h ^ p[i]) * 16777619u;
    for (int probe = 0; probe < GEMM_CACHE; probe++) {
        gemm_plan *g = &cu->plans[(h + (unsigned)probe) % GEMM_CACHE];
        if (!g->used) {
            g->used = true;
            g->key = *k;
            g->ok = false;
            /* column-major view: C^T (N x M, ldc) = op(B)^T-ish (m = N) times op(A) (n = M) */
            cublasComputeType_t ct = k->prec == CPHIL_PREC_BF16 ? CUBLAS_COMPUTE_32F_FAST_16BF : CUBLAS_COMPUTE_32F;
            if (cublasLtMatmulDescCreate(&g->desc, ct, CUDA_R_32F) != CUBLAS_STATUS_SUCCESS) return g;
            cublasOperation_t opa = k->tb ? CUBLAS_OP_T : CUBLAS_OP_N; /* first operand: B */
            cublasOperation_t opb = k->ta ? CUBLAS_OP_T : CUBLAS_OP_N; /* second operand: A */
            cublasLtMatmulDescSetAttribute(g->desc, CUBLASLT_MATMUL_DESC_TRANSA, &opa, sizeof opa);
            cublasLtMatmulDescSetAttribute(g->desc, CUBLASLT_MATMUL_DESC_TRANSB, &opb, sizeof opb);
            if (k->bias) { /* our rows are cuBLASLt's columns: a bias of N per row is its per-row bias */
                cublasLtEpilogue_t ep = CUBLASLT_EPILOGUE_BIAS;
                cudaDataType_t bt = CUDA_R_32F;
                if (cublasLtMatmulDescSetAttribute(g->desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &ep, sizeof ep) !=
                        CUBLAS_STATUS_SUCCESS ||
                    cublasLtMatmulDescSetAttribute(g->desc, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bt, sizeof bt) !=
                        CUBLAS_STATUS_SUCCESS)
                    return g;
            }
            /* B (row-major K x N, or N x K when tb) is column-major N x K (ld ldb) or K x N */
            uint64_t brows = k->tb ? (uint64_t)k->K : (uint64_t)k->N, bcols = k->tb ? (uint64_t)k->N : (uint64_t)k->K;
            uint64_t arows = k->ta ? (uint64_t)k->M : (uint64_t)k->K, acols = k->ta ? (uint64_t)k->K : (uint64_t)k->M;
            if (cublasLtMatrixLayoutCreate(&g->la, CUDA_R_32F, brows, bcols, k->ldb) != CUBLAS_STATUS_SUCCESS ||
                cublasLtMatrixLayoutCreate(&g->lb, CUDA_R_32F, arows, acols, k->lda) != CUBLAS_STATUS_SUCCESS ||
                cublasLtMatrixLayoutCreate(&g->lc, CUDA_R_32F, (uint64_t)k->N, (uint64_t)k->M, k->ldc) !=
                    CUBLAS_STATUS_SUCCESS)
                return g;
            cublasLtMatmulPreference_t pref;
            if (cublasLtMatmulPreferenceCreate(&pref) != CUBLAS_STATUS_SUCCESS) return g;
            size_t ws = WORKSPACE_BYTES;
            cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws);
            /* deterministic: no split-K reduction that accumulates with atomics in the output */
            uint32_t mask = CUBLASLT_REDUCTION_SCHEME_NONE | CUBLASLT_REDUCTION_SCHEME_COMPUTE_TYPE |
                            CUBLASLT_REDUCTION_SCHEME_OUTPUT_TYPE;
            cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK, &mask,
                                                 sizeof mask);
            /* operand A of cuBLASLt is our B, its B is our A; C and D are our C */
            uint32_t al_a = (uint32_t)k->align_b, al_b = (uint32_t)k->align_a, al_c = (uint32_t)k->align_c;
            cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &al_a, sizeof al_a);
            cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &al_b, sizeof al_b);
            cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &al_c, sizeof al_c);
            cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &al_c, sizeof al_c);
            cublasLtMatmulHeuristicResult_t res;
            int found = 0;
            cublasStatus_t st =
                cublasLtMatmulAlgoGetHeuristic(cu->lt, g->desc, g->la, g->lb, g->lc, g->lc, pref, 1, &res, &found);
            cublasLtMatmulPreferenceDestroy(pref);
            if (st == CUBLAS_STATUS_SUCCESS && found > 0) {
                g->algo = res.algo;
                g->ok = true;
            }
            return g;
        }
        if (key_eq(&g->key, k)) return g;
    }
    return NULL;
}

/* The product, with an optional bias epilogue (bias != NULL: D = alpha AB + bias, C unread). Returns
 * false when no algorithm exists for the shape (the bias caller then falls back); records errors. */
static bool gemm_run(cphil_cu *cu, cphil_precision prec, bool trans_a, bool trans_b, int M, int N, int K, float alpha,
                     const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc,
                     const float *bias) {
    gemm_key k;
    memset(&k, 0, sizeof k);
    k.prec = (int)prec;
    k.ta = trans_a;
    k.tb = trans_b;
    k.M = M;
    k.N = N;
    k.K = K;
    k.lda = lda;
    k.ldb = ldb;
    k.ldc = ldc;
    k.beta_zero = beta == 0.0f;
    k.bias = bias != NULL;
    k.align_a = ptr_align(A);
    k.align_b = ptr_align(B);
    k.align_c = ptr_align(C);
    gemm_plan *g = plan_for(cu, &k);
    if (!g || !g->ok) {
        if (bias) return false;
        char what[160];
        snprintf(what, sizeof what, "gemm %dx%dx%d (ta %d tb %d, ld %d %d %d): no cuBLASLt algorithm%s", M, N, K,
                 (int)trans_a, (int)trans_b, lda, ldb, ldc, g ? "" : " (plan cache full)");
        cphil_cu_record(cu, -1, what, __FILE__, __LINE__);
        return false;
    }
    /* the plan is shared by every call of this shape: the bias pointer is set per call (a graph
     * captured afterwards keeps the pointer it was captured with) */
    if (bias && cublasLtMatmulDescSetAttribute(g->desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof bias) !=
                    CUBLAS_STATUS_SUCCESS) {
        cphil_cu_record(cu, -1, "gemm bias pointer", __FILE__, __LINE__);
        return true;
    }
    cublasStatus_t st = cublasLtMatmul(cu->lt, g->desc, &alpha, B, g->la, A, g->lb, &beta, C, g->lc, C, g->lc,
                                       &g->algo, cu->workspace, WORKSPACE_BYTES, cu->stream);
    if (st != CUBLAS_STATUS_SUCCESS) {
        char what[160];
        snprintf(what, sizeof what, "cublasLtMatmul %dx%dx%d (status %d)", M, N, K, (int)st);
        cphil_cu_record(cu, -1, what, __FILE__, __LINE__);
    }
    return true;
}

extern "C" void cphil_cu_gemm(cphil_cu *cu, cphil_precision prec, bool trans_a, bool trans_b, int M, int N, int K,
                              float alpha, const float *A, int lda, const float *B, int ldb, float beta, float *C,
                              int ldc) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0) { /* C = beta C: cuBLASLt wants K >= 1 */
        if (beta == 0.0f) {
            for (int r = 0; r < M; r++) cphil_cu_zero(cu, C + (size_t)r * ldc, (size_t)N * sizeof(float));
        } else if (beta != 1.0f) {
            cphil_cu_record(cu, -1, "gemm with K = 0 and beta not 0 or 1", __FILE__, __LINE__);
        }
        return;
    }
    gemm_run(cu, prec, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, NULL);
}

extern "C" bool cphil_cu_gemm_bias(cphil_cu *cu, cphil_precision prec, int M, int N, int K, const float *x, int ldx,
                                   const float *W, int ldw, const float *b, float *y, int ldy) {
    if (M <= 0 || N <= 0 || K <= 0 || !b) return false;
    return gemm_run(cu, prec, false, true, M, N, K, 1.f, x, ldx, W, ldw, 0.f, y, ldy, b);
}
