/* gemm.c — cphil_gemm, the training matrix product: C = alpha op(A) op(B) + beta C, f32 or bf16
 * operands with f32 accumulation, on a small persistent worker pool.
 *
 * Structure (GotoBLAS/BLIS): for each NC-wide column block, for each KC-deep k block, pack the
 * B block into NR-wide micro-panels; for each MC-tall row block pack the A block into MR-tall
 * micro-panels; a register-blocked microkernel (per ISA tier, kernels_internal.h) computes each
 * MR x NR tile. The first k block applies beta, later ones add. Packing is portable C, with
 * AVX-512 transposes and bf16 conversions (gemm_avx512.c) on that tier and AVX2 bf16
 * conversions (gemm_avx2.c) on the AVX2 one.
 * Threads: the output is split statically in whole tiles (rows when M >= N, else columns); each
 * thread runs the whole loop nest on its part with private pack buffers, so every element is
 * reduced in the same order whatever the thread count.
 * Not here: complex types, double, strided (non-unit) columns. Reference: Goto & van de Geijn,
 * "Anatomy of High-Performance Matrix Multiplication" (2008); BLIS's microkernel interface.
 */
#include "core/core.h"
#include "kernels/cpu/kernels_internal.h"

#include <pthread.h>
#include <string.h>

/* ---- scalar microkernels (the scalar tier, and the twin of the SIMD ones) ------------------ */
#define SMR GEMM_MR_SCALAR
#define SNR GEMM_NR_SCALAR

static void epilogue_scalar(const float *acc, int accld, float *C, int ldc, int mr, int nr,
                            float alpha, float beta) {
    for (int i = 0; i < mr; i++)
        for (int j = 0; j < nr; j++) {
            float t = alpha * acc[i * accld + j];
            float *c = &C[(size_t)i * ldc + j];
            if (beta == 0.0f) *c = t;
            else {
                float bc = beta * *c;
                *c = t + bc;
            }
        }
}

static void uk_f32_scalar(int kc, const void *Ap, const void *Bp, float *C, int ldc, int mr,
                          int nr, float alpha, float beta) {
    const float *a = Ap, *b = Bp;
    float acc[SMR * SNR];
    memset(acc, 0, sizeof acc);
    for (int k = 0; k < kc; k++, a += SMR, b += SNR)
        for (int i = 0; i < SMR; i++)
            for (int j = 0; j < SNR; j++) acc[i * SNR + j] += a[i] * b[j];
    epilogue_scalar(acc, SNR, C, ldc, mr, nr, alpha, beta);
}

static inline float lo_bf16(uint32_t u) { uint32_t v = u << 16; float f; memcpy(&f, &v, 4); return f; }
static inline float hi_bf16(uint32_t u) { uint32_t v = u & 0xffff0000u; float f; memcpy(&f, &v, 4); return f; }

/* Exact emulation of vdpbf16ps per lane: acc = ftz(acc + a_hi*b_hi); acc = ftz(acc + a_lo*b_lo).
 * The products of two bf16 are exact in f32 (8-bit significands) unless they underflow. */
static void uk_bf16_scalar(int kc, const void *Ap, const void *Bp, float *C, int ldc, int mr,
                           int nr, float alpha, float beta) {
    const uint32_t *a = Ap, *b = Bp;
    float acc[SMR * SNR];
    memset(acc, 0, sizeof acc);
    for (int k = 0; k < kc; k++, a += SMR, b += SNR)
        for (int i = 0; i < SMR; i++) {
            float ah = hi_bf16(a[i]), al = lo_bf16(a[i]);
            for (int j = 0; j < SNR; j++) {
                float s = acc[i * SNR + j];
                /* in double: the product is exact and the sum is rounded once to f32 (as
                 * an FMA would; see docs/kernels.md for why no double rounding occurs) */
                s = cphil_ftz_sum((double)s + (double)ah * (double)hi_bf16(b[j]));
                acc[i * SNR + j] = cphil_ftz_sum((double)s + (double)al * (double)lo_bf16(b[j]));
            }
        }
    epilogue_scalar(acc, SNR, C, ldc, mr, nr, alpha, beta);
}

/* ---- packing ------------------------------------------------------------------------------ */
/* f32: op(A)[i][k] for rows i0.., k0..; micro-panels [kc][MR], zero-padded rows. */
/* Software prefetch of n floats of a row read soon: in the transposed packs every row lies in
 * its own page, too short a run for the hardware prefetchers. */
static inline void prefetch_row(const float *row, int n) {
    for (int c = 0; c < n; c += 16) __builtin_prefetch(row + c, 0, 3);
}

typedef void (*pack_t_fn)(const float *X, size_t ldx, int rows, int kc, int R, float *dst);

static void pack_a_f32(pack_t_fn pt, bool ta, const float *A, int lda, int i0, int mc, int k0, int kc, int MR, float *dst) {
    int npan = (mc + MR - 1) / MR;
    if (ta) { /* A is [K, M]: row k holds op(A)[., k] contiguously; read each row once */
        for (int k = 0; k < kc; k++) {
            const float *src = &A[(size_t)(k0 + k) * lda + i0];
            if (k + 4 < kc) prefetch_row(src + (size_t)4 * lda, mc);
            for (int ip = 0; ip < npan; ip++) {
                float *d = dst + (size_t)ip * kc * MR + (size_t)k * MR;
                int mr = CPHIL_MIN(MR, mc - ip * MR);
                const float *s = src + ip * MR;
                if (mr == MR) memcpy(d, s, sizeof(float) * (size_t)MR);
                else {
                    for (int i = 0; i < mr; i++) d[i] = s[i];
                    for (int i = mr; i < MR; i++) d[i] = 0.0f;
                }
            }
        }
        return;
    }
    for (int ip = 0; ip < npan; ip++) {
        int mr = CPHIL_MIN(MR, mc - ip * MR);
        float *d = dst + (size_t)ip * kc * MR;
        if (pt) {
            pt(&A[(size_t)(i0 + ip * MR) * lda + k0], (size_t)lda, mr, kc, MR, d);
            continue;
        }
        for (int i = 0; i < MR; i++) {
            if (i < mr) {
                const float *src = &A[(size_t)(i0 + ip * MR + i) * lda + k0];
                for (int k = 0; k < kc; k++) d[(size_t)k * MR + i] = src[k];
            } else {
                for (int k = 0; k < kc; k++) d[(size_t)k * MR + i] = 0.0f;
            }
        }
    }
}

/* f32: op(B)[k][j] for k0.., columns j0..; micro-panels [kc][NR], zero-padded columns. */
static void pack_b_f32(pack_t_fn pt, bool tb, const float *B, int ldb, int k0, int kc, int j0, int nc, int NR, float *dst) {
    /* op(B) = B^T with B [N, K] is op(A) = A for an [N, K] matrix: the same copy as pack_a's */
    if (tb) pack_a_f32(pt, false, B, ldb, j0, nc, k0, kc, NR, dst);
    else pack_a_f32(pt, true, B, ldb, j0, nc, k0, kc, NR, dst);
}

/* bf16 primitives (scalar here, AVX2 in gemm_avx2.c, AVX-512 in gemm_avx512.c; identical results):
 * pairs: dst[p] = bf16(src[2p]) | bf16(src[2p+1]) << 16 for p < (n+1)/2 (a missing src[2p+1]
 * counts as 0; src[n] is never read);
 * inter: dst[j] = bf16(r0[j]) | bf16(r1[j]) << 16 for j < n (r1 NULL reads as 0). */
void cphil_bf16_pairs_scalar(const float *src, int n, uint32_t *dst) {
    int p = 0;
    for (; 2 * p + 1 < n; p++)
        dst[p] = (uint32_t)cphil_bf16_from_f32(src[2 * p]) | ((uint32_t)cphil_bf16_from_f32(src[2 * p + 1]) << 16);
    if (2 * p < n) dst[p] = cphil_bf16_from_f32(src[2 * p]);
}
void cphil_bf16_inter_scalar(const float *r0, const float *r1, int n, uint32_t *dst) {
    for (int j = 0; j < n; j++)
        dst[j] = (uint32_t)cphil_bf16_from_f32(r0[j]) | (r1 ? (uint32_t)cphil_bf16_from_f32(r1[j]) << 16 : 0u);
}

typedef struct bf16_prims {
    void (*pairs)(const float *src, int n, uint32_t *dst);
    void (*inter)(const float *r0, const float *r1, int n, uint32_t *dst);
} bf16_prims;

/* bf16: panel element (pair p, row r) = bf16(X[r][2p]) | bf16(X[r][2p+1]) << 16 of X = op(A)
 * (rows r = i, R = MR) or X = op(B)^T (rows r = j, R = NR), zero-padded; layout [kp][R].
 * rows_contig: X's rows are contiguous in memory (X = A, or X = B^T with B stored [N, K]). */
#define PACK_TMP 1024
static void pack_bf16(const bf16_prims *pr, pack_t_fn pt, uint32_t *rowbuf, bool rows_contig,
                      const float *X, int ldx, int r0, int nr_rows, int k0, int kc, int R, uint32_t *dst) {
    int kp = (kc + 1) / 2;
    int npan = (nr_rows + R - 1) / R;
    uint32_t tmp[PACK_TMP];
    if (rows_contig && pt) { /* convert R rows to pairs, then one transposing pack */
        for (int ip = 0; ip < npan; ip++) {
            int rr = CPHIL_MIN(R, nr_rows - ip * R);
            for (int i = 0; i < rr; i++)
                pr->pairs(&X[(size_t)(r0 + ip * R + i) * ldx + k0], kc, rowbuf + (size_t)i * kp);
            pt((const float *)rowbuf, (size_t)kp, rr, kp, R, (float *)(dst + (size_t)ip * kp * R));
        }
        return;
    }
    if (rows_contig) {
        for (int ip = 0; ip < npan; ip++) {
            int rr = CPHIL_MIN(R, nr_rows - ip * R);
            uint32_t *d = dst + (size_t)ip * kp * R;
            for (int i = 0; i < R; i++) {
                if (i < rr) {
                    const float *src = &X[(size_t)(r0 + ip * R + i) * ldx + k0];
                    for (int p0 = 0; p0 < kp; p0 += PACK_TMP) {
                        int np = CPHIL_MIN(PACK_TMP, kp - p0);
                        pr->pairs(src + 2 * p0, CPHIL_MIN(2 * np, kc - 2 * p0), tmp);
                        for (int p = 0; p < np; p++) d[(size_t)(p0 + p) * R + i] = tmp[p];
                    }
                } else {
                    for (int p = 0; p < kp; p++) d[(size_t)p * R + i] = 0;
                }
            }
        }
        return;
    }
    /* X stored transposed: memory row k holds X[., k] */
    for (int p = 0; p < kp; p++) {
        const float *s0 = &X[(size_t)(k0 + 2 * p) * ldx + r0];
        const float *s1 = 2 * p + 1 < kc ? s0 + ldx : NULL;
        if (2 * p + 5 < kc) { /* the pair after next */
            prefetch_row(s0 + (size_t)4 * ldx, nr_rows);
            prefetch_row(s0 + (size_t)5 * ldx, nr_rows);
        }
        for (int c0 = 0; c0 < nr_rows; c0 += PACK_TMP) {
            int nn = CPHIL_MIN(PACK_TMP, nr_rows - c0);
            pr->inter(s0 + c0, s1 ? s1 + c0 : NULL, nn, tmp);
            for (int c = 0; c < nn;) {
                int row = c0 + c, ip = row / R, i = row % R;
                int run = CPHIL_MIN(R - i, nn - c);
                memcpy(dst + (size_t)ip * kp * R + (size_t)p * R + i, tmp + c, sizeof(uint32_t) * (size_t)run);
                c += run;
            }
        }
        int tail = nr_rows % R;
        if (tail) memset(dst + (size_t)(npan - 1) * kp * R + (size_t)p * R + tail, 0, sizeof(uint32_t) * (size_t)(R - tail));
    }
}

/* ---- one thread's share: C[m0:m1, n0:n1] ------------------------------------------------- */
typedef struct gemm_job {
    cphil_precision prec;
    bool ta, tb;
    int M, N, K;
    float alpha, beta;
    const float *A, *B;
    float *C;
    int lda, ldb, ldc;
    int MR, NR;
    cphil_gemm_uk uk;
    const bf16_prims *prims;
    pack_t_fn pack_t;
    bool split_rows; /* partition rows (else columns) */
    int nthreads;
} gemm_job;

typedef struct pack_buf {
    float *a, *b;
    uint32_t *t; /* bf16 row conversions: 32 rows x KC/2 pairs */
} pack_buf;

#define PACK_A_FLOATS ((size_t)(GEMM_MC + 32) * GEMM_KC)
#define PACK_B_FLOATS ((size_t)GEMM_KC * (GEMM_NC + 32))

static void gemm_part(const gemm_job *j, int m0, int m1, int n0, int n1, pack_buf *pb) {
    const int MR = j->MR, NR = j->NR;
    const bool bf = j->prec == CPHIL_PREC_BF16;
    /* MC must be a multiple of MR, NC of NR. */
    const int MC = GEMM_MC / MR * MR, NC = GEMM_NC / NR * NR, KC = GEMM_KC;
    for (int jc = n0; jc < n1; jc += NC) {
        int nc = CPHIL_MIN(NC, n1 - jc);
        for (int pc = 0; pc < j->K; pc += KC) {
            int kc = CPHIL_MIN(KC, j->K - pc);
            int kstep = bf ? (kc + 1) / 2 : kc; /* microkernel depth */
            float beta = pc == 0 ? j->beta : 1.0f;
            if (bf) pack_bf16(j->prims, j->pack_t, pb->t, j->tb, j->B, j->ldb, jc, nc, pc, kc, NR, (uint32_t *)pb->b);
            else pack_b_f32(j->pack_t, j->tb, j->B, j->ldb, pc, kc, jc, nc, NR, pb->b);
            for (int ic = m0; ic < m1; ic += MC) {
                int mc = CPHIL_MIN(MC, m1 - ic);
                if (bf) pack_bf16(j->prims, j->pack_t, pb->t, !j->ta, j->A, j->lda, ic, mc, pc, kc, MR, (uint32_t *)pb->a);
                else pack_a_f32(j->pack_t, j->ta, j->A, j->lda, ic, mc, pc, kc, MR, pb->a);
                for (int jr = 0; jr < nc; jr += NR) {
                    const float *bp = pb->b + (size_t)(jr / NR) * kstep * NR;
                    int nr = CPHIL_MIN(NR, nc - jr);
                    for (int ir = 0; ir < mc; ir += MR) {
                        const float *ap = pb->a + (size_t)(ir / MR) * kstep * MR;
                        int mr = CPHIL_MIN(MR, mc - ir);
                        float *c = j->C + (size_t)(ic + ir) * j->ldc + jc + jr;
                        j->uk(kstep, ap, bp, c, j->ldc, mr, nr, j->alpha, beta);
                    }
                }
            }
        }
    }
}

/* Static partition: thread t of n gets a contiguous run of whole tiles. */
static void gemm_thread(const gemm_job *j, int t, pack_buf *pb) {
    int n = j->nthreads;
    if (j->split_rows) {
        int tiles = (j->M + j->MR - 1) / j->MR;
        int t0 = (int)((long long)tiles * t / n), t1 = (int)((long long)tiles * (t + 1) / n);
        int m0 = t0 * j->MR, m1 = CPHIL_MIN(j->M, t1 * j->MR);
        if (m0 < m1) gemm_part(j, m0, m1, 0, j->N, pb);
    } else {
        int tiles = (j->N + j->NR - 1) / j->NR;
        int t0 = (int)((long long)tiles * t / n), t1 = (int)((long long)tiles * (t + 1) / n);
        int n0 = t0 * j->NR, n1 = CPHIL_MIN(j->N, t1 * j->NR);
        if (n0 < n1) gemm_part(j, 0, j->M, n0, n1, pb);
    }
}

/* ---- persistent worker pool ------------------------------------------------------------- */
#define MAX_THREADS 64
static pthread_mutex_t g_call_mu = PTHREAD_MUTEX_INITIALIZER; /* one gemm at a time uses the pool */
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cv_go = PTHREAD_COND_INITIALIZER, g_cv_done = PTHREAD_COND_INITIALIZER;
static int g_threads = 1;       /* requested */
static int g_workers;           /* started (threads 1..g_workers) */
static unsigned long g_gen;     /* job generation */
static int g_pending;           /* workers still running the current job */
/* The pool's current job: part t of n runs fn(ctx, t, n) on thread t (the caller is thread 0). */
typedef struct pool_job {
    void (*fn)(void *ctx, int part, int parts);
    void *ctx;
    int n;
} pool_job;
static const pool_job *g_job;
static unsigned long g_born[MAX_THREADS]; /* g_gen when worker t was started: it waits for the next */
static pack_buf g_bufs[MAX_THREADS];

static bool ensure_buf(int t) {
    if (g_bufs[t].a) return true;
    g_bufs[t].a = cphil_alloc(PACK_A_FLOATS * sizeof(float));
    g_bufs[t].b = cphil_alloc(PACK_B_FLOATS * sizeof(float));
    g_bufs[t].t = cphil_alloc((size_t)32 * (GEMM_KC / 2) * sizeof(uint32_t));
    if (!g_bufs[t].a || !g_bufs[t].b || !g_bufs[t].t) {
        cphil_free(g_bufs[t].a);
        cphil_free(g_bufs[t].b);
        cphil_free(g_bufs[t].t);
        g_bufs[t].a = g_bufs[t].b = NULL;
        g_bufs[t].t = NULL;
        return false;
    }
    return true;
}

static void *worker_main(void *arg) {
    int t = (int)(intptr_t)arg;
    unsigned long seen = g_born[t]; /* a job posted before this worker existed is not its own */
    pthread_mutex_lock(&g_mu);
    for (;;) {
        while (g_gen == seen) pthread_cond_wait(&g_cv_go, &g_mu);
        seen = g_gen;
        const pool_job *j = g_job;
        pthread_mutex_unlock(&g_mu);
        if (t < j->n) j->fn(j->ctx, t, j->n);
        pthread_mutex_lock(&g_mu);
        if (--g_pending == 0) pthread_cond_signal(&g_cv_done);
    }
    return NULL;
}

/* Start workers up to n-1 (with their buffers); returns how many threads can be used. */
static int ensure_workers(int n) {
    while (g_workers < n - 1) {
        int t = g_workers + 1;
        if (!ensure_buf(t)) break;
        pthread_t th;
        pthread_attr_t at;
        pthread_attr_init(&at);
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        g_born[t] = g_gen; /* g_gen changes only in pool_run, under g_call_mu, which we hold */
        int rc = pthread_create(&th, &at, worker_main, (void *)(intptr_t)t);
        pthread_attr_destroy(&at);
        if (rc != 0) break;
        g_workers = t;
    }
    return CPHIL_MIN(n, g_workers + 1);
}

static void gemm_task(void *ctx, int t, int n) {
    (void)n;
    gemm_thread(ctx, t, &g_bufs[t]);
}

/* cphil_parallel's job: thread t of n runs parts t, t + n, ... (more parts than threads when the
 * pool is smaller than asked). */
typedef struct spread_ctx {
    void (*fn)(void *ctx, int part, int parts);
    void *ctx;
    int parts;
} spread_ctx;
static void parallel_spread(void *c, int t, int n) {
    const spread_ctx *s = c;
    for (int part = t; part < s->parts; part += n) s->fn(s->ctx, part, s->parts);
}

/* Run job on threads 0..job->n-1 (the caller is 0; job->n <= g_workers + 1) and wait for all.
 * Caller holds g_call_mu. */
static void pool_run(const pool_job *job) {
    if (job->n > 1) {
        pthread_mutex_lock(&g_mu);
        g_job = job;
        g_pending = g_workers;
        g_gen++;
        pthread_cond_broadcast(&g_cv_go);
        pthread_mutex_unlock(&g_mu);
    }
    job->fn(job->ctx, 0, job->n);
    if (job->n > 1) {
        pthread_mutex_lock(&g_mu);
        while (g_pending > 0) pthread_cond_wait(&g_cv_done, &g_mu);
        g_job = NULL; /* the job lives on the caller's stack */
        pthread_mutex_unlock(&g_mu);
    }
}

void cphil_parallel(int parts, void (*fn)(void *ctx, int part, int parts), void *ctx) {
    if (parts < 1) return;
    if (parts == 1) { /* nothing to share: no need to wait for the pool */
        fn(ctx, 0, 1);
        return;
    }
    pthread_mutex_lock(&g_call_mu);
    int n = parts > g_threads ? g_threads : parts;
    n = n > 1 ? ensure_workers(n) : 1;
    spread_ctx spread = {fn, ctx, parts};
    pool_run(&(pool_job){parallel_spread, &spread, n});
    pthread_mutex_unlock(&g_call_mu);
}

void cphil_threads_set(int n) {
    pthread_mutex_lock(&g_call_mu);
    __atomic_store_n(&g_threads, n < 1 ? 1 : (n > MAX_THREADS ? MAX_THREADS : n), __ATOMIC_RELAXED);
    pthread_mutex_unlock(&g_call_mu);
}

int cphil_threads_get(void) { return __atomic_load_n(&g_threads, __ATOMIC_RELAXED); }

/* ---- entry ------------------------------------------------------------------------------- */
static void scale_c(int M, int N, float beta, float *C, int ldc) {
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            float *c = &C[(size_t)i * ldc + j];
            *c = beta == 0.0f ? 0.0f : beta * *c;
        }
}

void cphil_gemm(cphil_precision prec, bool trans_a, bool trans_b, int M, int N, int K,
                float alpha, const float *A, int lda, const float *B, int ldb,
                float beta, float *C, int ldc) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0) {
        scale_c(M, N, beta, C, ldc);
        return;
    }
    gemm_job j = {.prec = prec, .ta = trans_a, .tb = trans_b, .M = M, .N = N, .K = K,
                  .alpha = alpha, .beta = beta, .A = A, .B = B, .C = C,
                  .lda = lda, .ldb = ldb, .ldc = ldc};
    cphil_isa isa = cphil_isa_active();
    if (isa == CPHIL_ISA_AVX512 && (prec == CPHIL_PREC_F32 || cphil_cpu_has_bf16())) {
        j.MR = GEMM_MR_AVX512;
        j.NR = GEMM_NR_AVX512;
        j.uk = prec == CPHIL_PREC_F32 ? cphil_uk_f32_avx512 : cphil_uk_bf16_avx512;
    } else if (isa >= CPHIL_ISA_AVX2) {
        j.MR = GEMM_MR_AVX2;
        j.NR = GEMM_NR_AVX2;
        j.uk = prec == CPHIL_PREC_F32 ? cphil_uk_f32_avx2 : cphil_uk_bf16emu_avx2;
    } else {
        j.MR = SMR;
        j.NR = SNR;
        j.uk = prec == CPHIL_PREC_F32 ? uk_f32_scalar : uk_bf16_scalar;
    }
    static const bf16_prims prims_scalar = {cphil_bf16_pairs_scalar, cphil_bf16_inter_scalar};
    static const bf16_prims prims_avx2 = {cphil_bf16_pairs_avx2, cphil_bf16_inter_avx2};
    static const bf16_prims prims_avx512 = {cphil_bf16_pairs_avx512, cphil_bf16_inter_avx512};
    j.prims = isa == CPHIL_ISA_AVX512 && cphil_cpu_has_bf16() ? &prims_avx512
              : isa >= CPHIL_ISA_AVX2                         ? &prims_avx2
                                                              : &prims_scalar;
    j.pack_t = isa == CPHIL_ISA_AVX512 ? cphil_pack_t_avx512 : NULL;
    j.split_rows = (M + j.MR - 1) / j.MR >= (N + j.NR - 1) / j.NR;

    pthread_mutex_lock(&g_call_mu);
    int want = g_threads;
    /* Small products are not worth waking workers (results are the same either way). */
    double flops = 2.0 * M * N * (double)K;
    if (flops < 2e6) want = 1;
    int tiles = j.split_rows ? (M + j.MR - 1) / j.MR : (N + j.NR - 1) / j.NR;
    if (want > tiles) want = tiles;
    if (!ensure_buf(0)) {
        /* No memory for pack buffers: fall back to the reference (never fails). */
        pthread_mutex_unlock(&g_call_mu);
        cphil_gemm_ref(prec, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    int n = want > 1 ? ensure_workers(want) : 1;
    j.nthreads = n;
    pool_run(&(pool_job){gemm_task, &j, n});
    pthread_mutex_unlock(&g_call_mu);
}
