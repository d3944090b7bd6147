/* test_nn.c — the numerical core against PyTorch and against finite differences.
 *
 *  - every layer (src/nn) and every whole policy (input layer + backbone + six heads + loss) of
 *    the five backbones against the committed PyTorch fixtures (tools/gen_nn_fixtures.py,
 *    tests/fixtures/nn/NAME.bin): outputs, loss and every gradient at atol 1e-5, rtol 1e-4;
 *  - ten AdamW steps (warmup + cosine, clipping) on the LSTM and Mamba policies give PyTorch's
 *    losses and gradient norms;
 *  - finite-difference gradient checks IN DOUBLE (the *_f64 build of the same source) for every
 *    layer and every backbone through time (T = 4): central differences, h = 1e-5 * max(1,|x|),
 *    tolerance 1e-6 + 1e-5 * |numeric|;
 *  - the input layer's gather equals a dense Linear on the one-hot vector, forward and backward;
 *  - bf16 against f32: the same short training run's losses agree within 2%;
 *  - a training step (forward, loss, backward, AdamW) allocates nothing.
 * Tests run from the repository root (make test does).
 */
#include "core/core.h"
#include "harness.h"
#include "model/model.h"
#include "model/policy_f64.h"
#include "nn/nn.h"
#include "kernels/cpu/vmath.h"

#include <stdint.h>

/* ---- scratch memory freed at the start of each test and at exit ------------------------ */
static void *g_blocks[512];
static int g_nblocks;
static void arena_reset(void) {
    for (int i = 0; i < g_nblocks; i++) free(g_blocks[i]);
    g_nblocks = 0;
}
static void *zalloc(size_t bytes) {
    if (g_nblocks >= (int)CPHIL_ARRAY_LEN(g_blocks)) {
        fprintf(stderr, "test arena full\n");
        exit(2);
    }
    void *p = calloc(1, bytes ? bytes : 1);
    if (!p) exit(2);
    return g_blocks[g_nblocks++] = p;
}
static float *fz(size_t n) { return zalloc(n * sizeof(float)); }
static double *dz(size_t n) { return zalloc(n * sizeof(double)); }

/* ---- fixtures -------------------------------------------------------------------------- */
typedef struct frec {
    char name[96];
    int dtype, ndim;
    unsigned dims[4];
    size_t n;
    const uint8_t *data;
} frec;
typedef struct fixture {
    uint8_t *buf;
    int n;
    frec r[600];
} fixture;

static fixture g_fix;

static void fix_load(const char *name) {
    if (g_fix.buf) cphil_free(g_fix.buf);
    memset(&g_fix, 0, sizeof g_fix);
    char path[256];
    snprintf(path, sizeof path, "tests/fixtures/nn/%s.bin", name);
    size_t size;
    if (cphil_file_read(path, 1 << 24, &g_fix.buf, &size) != CPHIL_OK)
        h_fail_at(__FILE__, __LINE__, "cannot read %s: %s (run from the repository root)", path, cphil_last_error());
    size_t o = 12;
    if (size < 12 || memcmp(g_fix.buf, "CPNNFX01", 8)) h_fail_at(__FILE__, __LINE__, "%s: bad magic", path);
    uint32_t count;
    memcpy(&count, g_fix.buf + 8, 4);
    for (uint32_t i = 0; i < count && i < CPHIL_ARRAY_LEN(g_fix.r); i++) {
        frec *r = &g_fix.r[g_fix.n++];
        uint16_t nl;
        memcpy(&nl, g_fix.buf + o, 2);
        o += 2;
        snprintf(r->name, sizeof r->name, "%.*s", (int)nl, (const char *)g_fix.buf + o);
        o += nl;
        r->dtype = g_fix.buf[o];
        r->ndim = g_fix.buf[o + 1];
        o += 2;
        r->n = 1;
        for (int d = 0; d < r->ndim; d++) {
            memcpy(&r->dims[d], g_fix.buf + o, 4);
            o += 4;
            r->n *= r->dims[d];
        }
        r->data = g_fix.buf + o;
        o += r->n * (r->dtype == 2 ? 1 : 4);
        if (o > size) h_fail_at(__FILE__, __LINE__, "%s: truncated", path);
    }
}
static const frec *fix_find(const char *name) {
    for (int i = 0; i < g_fix.n; i++)
        if (!strcmp(g_fix.r[i].name, name)) return &g_fix.r[i];
    return NULL;
}
/* A float record copied into scratch (the file bytes may be unaligned). */
static float *ff_(const char *file, int line, const char *name, size_t want) {
    const frec *r = fix_find(name);
    if (!r || r->dtype != 0) h_fail_at(file, line, "fixture has no f32 record '%s'", name);
    if (want && r->n != want) h_fail_at(file, line, "fixture '%s' has %zu values, want %zu", name, r->n, want);
    float *p = fz(r->n);
    memcpy(p, r->data, r->n * 4);
    return p;
}
#define FF(name, want) ff_(__FILE__, __LINE__, name, want)
static int32_t *fi(const char *name) {
    const frec *r = fix_find(name);
    CHECK_MSG(r && r->dtype == 1, "no i32 record %s", name);
    int32_t *p = zalloc(r->n * 4);
    memcpy(p, r->data, r->n * 4);
    return p;
}
static uint8_t *fu8(const char *name) {
    const frec *r = fix_find(name);
    CHECK_MSG(r && r->dtype == 2, "no u8 record %s", name);
    uint8_t *p = zalloc(r->n);
    memcpy(p, r->data, r->n);
    return p;
}

/* ---- comparisons ----------------------------------------------------------------------- */
static void cmp_(const char *file, int line, const char *what, const float *got, const float *want,
                 size_t n, double atol, double rtol) {
    size_t worst = 0;
    double wx = -1;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)got[i] - want[i]) - (atol + rtol * fabs((double)want[i]));
        if (!(e <= wx)) { /* NaN-safe */
            wx = e;
            worst = i;
        }
    }
    if (!(wx <= 0))
        h_fail_at(file, line, "%s[%zu]: got %.9g want %.9g (atol %g rtol %g, %zu values)", what, worst,
                  (double)got[worst], (double)want[worst], atol, rtol, n);
}
#define CMP(what, got, want, n) cmp_(__FILE__, __LINE__, what, got, want, n, 1e-5, 1e-4)
#define CMPT(what, got, want, n, a, r) cmp_(__FILE__, __LINE__, what, got, want, n, a, r)

/* ---- layers against PyTorch (f32) ------------------------------------------------------- */
static const cphil_precision F32 = CPHIL_PREC_F32;

TEST(linear_matches_torch) {
    arena_reset();
    fix_load("linear");
    const int M = 5, K = 7, N = 3;
    float *x = FF("x", M * K), *dy = FF("dy", M * N), *W = FF("p.weight", N * K), *b = FF("p.bias", N);
    float *y = fz(M * N), *dx = fz(M * K), *dW = fz(N * K), *db = fz(N);
    cphil_nn_linear_forward(F32, M, N, K, x, K, W, b, y, N);
    CMP("y", y, FF("y", 0), M * N);
    cphil_nn_linear_backward(F32, M, N, K, x, K, W, dy, N, dx, K, dW, db);
    CMP("dx", dx, FF("dx", 0), M * K);
    CMP("dW", dW, FF("g.weight", 0), N * K);
    CMP("db", db, FF("g.bias", 0), N);
}

TEST(input_layer_matches_torch_dense_linear) {
    arena_reset();
    fix_load("input");
    const int M = 5, H0 = 6, E = 19, nc = 7, ni = 3;
    float *cont = FF("cont", M * nc), *W = FF("p.weight", H0 * E), *b = FF("p.bias", H0), *dy = FF("dy", M * H0);
    int32_t *ids = fi("ids");
    float *y = fz(M * H0), *dW = fz(H0 * E), *db = fz(H0), *WT = fz(E * H0);
    cphil_nn_input_forward(F32, M, H0, E, nc, ni, cont, ids, W, b, WT, y);
    CMP("y", y, FF("y", 0), M * H0);
    cphil_nn_input_backward(F32, M, H0, E, nc, ni, cont, ids, dy, dW, db, WT);
    CMP("dW", dW, FF("g.weight", 0), H0 * E);
    CMP("db", db, FF("g.bias", 0), H0);
}

TEST(norms_match_torch) {
    arena_reset();
    const int M = 4, C = 9;
    fix_load("layernorm");
    float *x = FF("x", M * C), *dy = FF("dy", M * C), *g = FF("p.weight", C), *b = FF("p.bias", C);
    float *y = fz(M * C), *mean = fz(M), *rstd = fz(M), *dx = fz(M * C), *dg = fz(C), *db = fz(C);
    cphil_nn_layernorm_forward(M, C, x, g, b, 1e-5f, y, mean, rstd);
    CMP("ln y", y, FF("y", 0), M * C);
    cphil_nn_layernorm_backward(M, C, x, g, mean, rstd, dy, dx, dg, db);
    CMP("ln dx", dx, FF("dx", 0), M * C);
    CMP("ln dg", dg, FF("g.weight", 0), C);
    CMP("ln db", db, FF("g.bias", 0), C);
    fix_load("rmsnorm");
    x = FF("x", M * C), dy = FF("dy", M * C), g = FF("p.weight", C);
    dx = fz(M * C), dg = fz(C);
    cphil_nn_rmsnorm_forward(M, C, x, g, 1e-5f, y, rstd);
    CMP("rms y", y, FF("y", 0), M * C);
    cphil_nn_rmsnorm_backward(M, C, x, g, rstd, dy, dx, dg);
    CMP("rms dx", dx, FF("dx", 0), M * C);
    CMP("rms dg", dg, FF("g.weight", 0), C);
}

TEST(activations_match_torch) {
    arena_reset();
    fix_load("acts");
    const frec *r = fix_find("x");
    CHECK(r);
    size_t n = r->n;
    float *x = FF("x", n), *dy = FF("dy", n), *y = fz(n), *dx = fz(n);
    const char *names[CPHIL_N_ACTS] = {"relu", "gelu", "silu", "softplus", "sigmoid", "tanh"};
    for (int a = 0; a < CPHIL_N_ACTS; a++) {
        char k[32];
        memset(dx, 0, n * sizeof *dx);
        cphil_nn_act_forward((cphil_act)a, n, x, y);
        snprintf(k, sizeof k, "y_%s", names[a]);
        CMP(k, y, FF(k, n), n);
        cphil_nn_act_backward((cphil_act)a, n, x, dy, dx);
        snprintf(k, sizeof k, "dx_%s", names[a]);
        CMP(k, dx, FF(k, n), n);
    }
}

TEST(lstm_gru_layers_match_torch) {
    arena_reset();
    const int B = 2, T = 5, In = 5, H = 3, M = B * T;
    for (int gru = 0; gru < 2; gru++) {
        const int G = gru ? 3 : 4;
        fix_load(gru ? "gru" : "lstm");
        float *x = FF("x", M * In), *dy = FF("dy", M * H), *Wih = FF("p.weight_ih_l0", G * H * In),
              *Whh = FF("p.weight_hh_l0", G * H * H), *bih = FF("p.bias_ih_l0", G * H),
              *bhh = FF("p.bias_hh_l0", G * H);
        float *y = fz(M * H), *gates = fz(M * G * H), *cs = fz(M * H), *hprev = fz(M * H), *c0 = fz(B * H),
              *gh = fz(M * 3 * H);
        float *dx = fz(M * In), *dWih = fz(G * H * In), *dWhh = fz(G * H * H), *dbih = fz(G * H),
              *dbhh = fz(G * H), *dG = fz(M * G * H), *dGh = fz(M * 3 * H), *dh = fz(B * H), *dc = fz(B * H);
        if (!gru) {
            cphil_nn_lstm_forward(F32, B, T, In, H, x, Wih, Whh, bih, bhh, NULL, NULL, y, gates, cs, hprev, c0);
            CMP("lstm y", y, FF("y", 0), M * H);
            cphil_nn_lstm_backward(F32, B, T, In, H, x, Wih, Whh, gates, cs, hprev, c0, dy, dx, dWih, dWhh,
                                   dbih, dbhh, dG, dh, dc);
        } else {
            cphil_nn_gru_forward(F32, B, T, In, H, x, Wih, Whh, bih, bhh, NULL, y, gates, gh, hprev);
            CMP("gru y", y, FF("y", 0), M * H);
            cphil_nn_gru_backward(F32, B, T, In, H, x, Wih, Whh, gates, gh, hprev, dy, dx, dWih, dWhh, dbih,
                                  dbhh, dG, dGh, dh);
        }
        CMP("dx", dx, FF("dx", 0), M * In);
        CMP("dWih", dWih, FF("g.weight_ih_l0", 0), G * H * In);
        CMP("dWhh", dWhh, FF("g.weight_hh_l0", 0), G * H * H);
        CMP("dbih", dbih, FF("g.bias_ih_l0", 0), G * H);
        CMP("dbhh", dbhh, FF("g.bias_hh_l0", 0), G * H);
    }
}

/* Mamba mixer buffers for (B, T, H, I, R, N) in f32. */
typedef struct mamba_bufs {
    cphil_mamba_saved s;
    cphil_mamba_scratch w;
} mamba_bufs;
/* nt: batch rows the scans may run at once (per-thread scratch copies). */
static void mamba_alloc(mamba_bufs *mb, int B, int T, int I, int R, int N, int nt) {
    size_t M = (size_t)B * T, XD = (size_t)R + 2 * N, IN = (size_t)I * N;
    mb->s = (cphil_mamba_saved){fz(M * 2 * I), fz(M * I), fz(M * I), fz(M * XD), fz(M * I), fz(M * I), fz(M * I), fz(M * I)};
    mb->w = (cphil_mamba_scratch){fz(IN), fz(nt * IN), fz(nt * T * IN), fz(M * 2 * I), fz(M * I), fz(M * I), fz(M * I),
                                  fz(M * I), fz(M * I), fz(M * XD), fz(nt * T * IN), fz(nt * I), fz(IN), fz(I),
                                  fz(B * IN), fz((size_t)B * I), nt};
}

TEST(mamba_mixer_matches_torch) {
    arena_reset();
    fix_load("mamba");
    const int B = 2, T = 5, H = 5, I = 10, R = 1, N = 3, K = 3, M = B * T;
    cphil_mamba_params p = {FF("p.in_proj.weight", 2 * I * H), FF("p.conv1d.weight", I * K), FF("p.conv1d.bias", I),
                            FF("p.x_proj.weight", (R + 2 * N) * I), FF("p.dt_proj.weight", I * R),
                            FF("p.dt_proj.bias", I), FF("p.A_log", I * N), FF("p.D", I),
                            FF("p.out_proj.weight", H * I)};
    float *gWin = fz(2 * I * H), *gcw = fz(I * K), *gcb = fz(I), *gWx = fz((R + 2 * N) * I), *gWdt = fz(I * R),
          *gbdt = fz(I), *gA = fz(I * N), *gD = fz(I), *gWo = fz(H * I);
    cphil_mamba_grads g = {gWin, gcw, gcb, gWx, gWdt, gbdt, gA, gD, gWo};
    mamba_bufs mb;
    mamba_alloc(&mb, B, T, I, R, N, 1);
    float *u = FF("u", M * H), *dy = FF("dy", M * H), *y = fz(M * H), *du = fz(M * H);
    cphil_nn_mamba_forward(F32, B, T, H, I, R, N, K, u, &p, &mb.s, &mb.w, y);
    CMP("y", y, FF("y", 0), M * H);
    cphil_nn_mamba_backward(F32, B, T, H, I, R, N, K, u, &p, &mb.s, &mb.w, dy, du, &g);
    CMP("du", du, FF("du", 0), M * H);
    CMP("in_proj", gWin, FF("g.in_proj.weight", 0), 2 * I * H);
    CMP("conv w", gcw, FF("g.conv1d.weight", 0), I * K);
    CMP("conv b", gcb, FF("g.conv1d.bias", 0), I);
    CMP("x_proj", gWx, FF("g.x_proj.weight", 0), (R + 2 * N) * I);
    CMP("dt_proj w", gWdt, FF("g.dt_proj.weight", 0), I * R);
    CMP("dt_proj b", gbdt, FF("g.dt_proj.bias", 0), I);
    CMP("A_log", gA, FF("g.A_log", 0), I * N);
    CMP("D", gD, FF("g.D", 0), I);
    CMP("out_proj", gWo, FF("g.out_proj.weight", 0), H * I);
}

/* The scans run batch rows on cphil_parallel's threads: 1 thread, 3 threads with 3 scratch
 * copies (rows split 1/2/2), and 2 threads running those 3 parts (one thread takes two) give
 * the same bits for the output and every gradient. I = 20 runs both the 16-wide partial sums
 * and their tail. */
TEST(mamba_scan_threads_same_bits) {
    arena_reset();
    const int B = 5, T = 7, H = 8, I = 20, R = 2, N = 4, K = 3, M = B * T, XD = R + 2 * N;
    const size_t np[9] = {(size_t)2 * I * H, (size_t)I * K, I, (size_t)XD * I, (size_t)I * R, I, (size_t)I * N, I,
                          (size_t)H * I};
    float *pv[9], *u = fz(M * H), *dy = fz(M * H);
    uint64_t rng = 12345;
#define URAND(scale) ((float)((double)((rng = rng * 6364136223846793005ull + 1442695040888963407ull) >> 11) / 9007199254740992.0 * 2 - 1) * (scale))
    for (int k = 0; k < 9; k++) {
        pv[k] = fz(np[k]);
        for (size_t i = 0; i < np[k]; i++) pv[k][i] = URAND(k == 6 ? 1.0f : 0.5f);
    }
    for (int i = 0; i < M * H; i++) u[i] = URAND(1.0f), dy[i] = URAND(1.0f);
#undef URAND
    cphil_mamba_params p = {pv[0], pv[1], pv[2], pv[3], pv[4], pv[5], pv[6], pv[7], pv[8]};
    float *out[3][11];
    for (int r = 0; r < 3; r++) {
        const int nt = r ? 3 : 1;
        cphil_threads_set(r == 2 ? 2 : nt);
        mamba_bufs mb;
        mamba_alloc(&mb, B, T, I, R, N, nt);
        float *y = fz(M * H), *du = fz(M * H), *gv[9];
        for (int k = 0; k < 9; k++) gv[k] = fz(np[k]);
        cphil_mamba_grads g = {gv[0], gv[1], gv[2], gv[3], gv[4], gv[5], gv[6], gv[7], gv[8]};
        cphil_nn_mamba_forward(F32, B, T, H, I, R, N, K, u, &p, &mb.s, &mb.w, y);
        cphil_nn_mamba_backward(F32, B, T, H, I, R, N, K, u, &p, &mb.s, &mb.w, dy, du, &g);
        out[r][0] = y;
        out[r][1] = du;
        for (int k = 0; k < 9; k++) out[r][2 + k] = gv[k];
    }
    cphil_threads_set(1);
    static const char *const what[11] = {"y", "du", "in_proj", "conv w", "conv b", "x_proj", "dt_proj w",
                                         "dt_proj b", "A_log", "D", "out_proj"};
    for (int k = 0; k < 11; k++) {
        size_t n = k < 2 ? (size_t)M * H : np[k - 2];
        CHECK_MSG(!memcmp(out[0][k], out[1][k], n * sizeof(float)), "%s differs between 1 and 3 threads", what[k]);
        CHECK_MSG(!memcmp(out[0][k], out[2][k], n * sizeof(float)), "%s differs with 3 parts on 2 threads", what[k]);
    }
}

TEST(attention_matches_torch) {
    arena_reset();
    fix_load("attention");
    const int B = 2, T = 5, H = 8, nh = 2, M = B * T;
    float *Wqkv = FF("p.qkv.weight", 3 * H * H), *bqkv = FF("p.qkv.bias", 3 * H), *Wo = FF("p.out.weight", H * H),
          *bo = FF("p.out.bias", H), *u = FF("u", M * H), *dy = FF("dy", M * H);
    float *rope = fz(T * (H / nh)), *qkv = fz(M * 3 * H), *P = fz(B * nh * T * T), *att = fz(M * H), *y = fz(M * H);
    cphil_nn_rope_table(T, H / nh, rope);
    cphil_nn_attention_forward(F32, B, T, H, nh, u, Wqkv, bqkv, Wo, bo, rope, qkv, P, att, y);
    CMP("y", y, FF("y", 0), M * H);
    float *du = fz(M * H), *dWqkv = fz(3 * H * H), *dbqkv = fz(3 * H), *dWo = fz(H * H), *dbo = fz(H),
          *datt = fz(M * H), *dqkv = fz(M * 3 * H), *dP = fz(T * T);
    cphil_nn_attention_backward(F32, B, T, H, nh, u, Wqkv, Wo, rope, qkv, P, att, dy, du, dWqkv, dbqkv, dWo, dbo,
                                datt, dqkv, dP);
    CMP("du", du, FF("du", 0), M * H);
    CMP("dWqkv", dWqkv, FF("g.qkv.weight", 0), 3 * H * H);
    CMP("dbqkv", dbqkv, FF("g.qkv.bias", 0), 3 * H);
    CMP("dWo", dWo, FF("g.out.weight", 0), H * H);
    CMP("dbo", dbo, FF("g.out.bias", 0), H);
}

TEST(loss_matches_torch) {
    arena_reset();
    fix_load("loss");
    const int M = 7;
    cphil_loss_config lc;
    cphil_loss_config_default(&lc);
    float *pw = FF("pos_weight", 8);
    memcpy(lc.pos_weight, pw, sizeof lc.pos_weight);
    lc.button_weight = 1.5f;
    lc.label_smoothing = 0.1f;
    float *logits = FF("logits", M * 81), *d = fz(M * 81), *w = FF("weight", M);
    cphil_loss_parts parts;
    float l = cphil_nn_policy_loss(M, logits, fu8("buttons"), fu8("cls"), w, &lc, d, &parts);
    CHECK_NEAR(l, FF("loss", 1)[0], 1e-5, 1e-5);
    CHECK_NEAR(parts.total, l, 0, 0);
    CMP("dlogits", d, FF("dlogits", 0), M * 81);
    /* all weights zero: loss 0, no gradient */
    memset(w, 0, M * sizeof *w);
    CHECK(cphil_nn_policy_loss(M, logits, fu8("buttons"), fu8("cls"), w, &lc, d, NULL) == 0.0f);
    for (int i = 0; i < M * 81; i++) CHECK(d[i] == 0.0f);
}

/* ---- whole policies ---------------------------------------------------------------------- */
static void small_cfg(cphil_model_config *c, cphil_backbone b) {
    cphil_model_config_default(c, b);
    c->n_cont = 7;
    c->n_ids = 3;
    c->E = 19;
    c->hidden = 6;
    c->num_layers = 2;
    c->n_mlp = 2;
    c->mlp_hidden[0] = 9;
    c->mlp_hidden[1] = 5;
    c->state_size = 3;
    c->expand = 2;
    c->conv_size = 3;
    c->num_heads = 3;
    c->window = 5;
    c->precision = CPHIL_PREC_F32;
}

typedef struct pcase {
    cphil_model m;
    cphil_model_batch batch;
    cphil_loss_config lc;
    cphil_model_ws *ws;
    float *grads;
} pcase;

/* Model with the fixture's weights, the fixture's batch and loss config. */
static void pcase_load(pcase *pc, cphil_backbone bb, cphil_precision prec) {
    char name[64];
    snprintf(name, sizeof name, "policy_%s", cphil_backbone_name(bb));
    fix_load(name);
    cphil_model_config c;
    small_cfg(&c, bb);
    c.precision = prec;
    CHECK(cphil_model_init(&pc->m, &c) == CPHIL_OK);
    int n_p = 0;
    for (int i = 0; i < g_fix.n; i++) n_p += !strncmp(g_fix.r[i].name, "p.", 2);
    CHECK_EQ_INT(n_p, pc->m.n_tensors); /* the table and PyTorch's state dict agree */
    for (int i = 0; i < pc->m.n_tensors; i++) {
        const cphil_tensor *t = &pc->m.tensors[i];
        char k[96];
        snprintf(k, sizeof k, "p.%s", t->name);
        const frec *r = fix_find(k);
        CHECK_MSG(r != NULL, "PyTorch has no tensor %s", t->name);
        CHECK_MSG(r->n == t->numel && r->ndim == t->ndim, "%s: shape differs", t->name);
        for (int d = 0; d < t->ndim; d++) CHECK_EQ_INT(r->dims[d], t->shape[d]);
        memcpy(pc->m.params + t->offset, r->data, t->numel * 4);
    }
    const int B = 2, T = 5;
    pc->batch = (cphil_model_batch){B, T, FF("cont", B * T * 7), fi("ids"), fu8("buttons"), fu8("cls"), FF("weight", B * T)};
    cphil_loss_config_default(&pc->lc);
    memcpy(pc->lc.pos_weight, FF("pos_weight", 8), sizeof pc->lc.pos_weight);
    pc->lc.button_weight = 1.5f;
    pc->lc.label_smoothing = 0.1f;
    CHECK(cphil_model_ws_create(&pc->m, B, T, &pc->ws) == CPHIL_OK);
    pc->grads = fz(pc->m.n_floats);
}
static void pcase_free(pcase *pc) {
    cphil_model_ws_free(pc->ws);
    cphil_model_free(&pc->m);
}

static void policy_vs_torch(cphil_backbone bb) {
    arena_reset();
    pcase pc;
    pcase_load(&pc, bb, CPHIL_PREC_F32);
    const float *logits = cphil_model_forward(&pc.m, pc.ws, &pc.batch);
    CMP("logits", logits, FF("logits", 2 * 5 * 81), 2 * 5 * 81);
    cphil_loss_parts parts;
    float loss = cphil_model_loss(&pc.m, pc.ws, &pc.batch, &pc.lc, &parts);
    CHECK_NEAR(loss, FF("loss", 1)[0], 1e-5, 1e-5);
    cphil_model_backward(&pc.m, pc.ws, &pc.batch, pc.grads);
    for (int i = 0; i < pc.m.n_tensors; i++) {
        const cphil_tensor *t = &pc.m.tensors[i];
        char k[96];
        snprintf(k, sizeof k, "g.%s", t->name);
        cmp_(__FILE__, __LINE__, t->name, pc.grads + t->offset, FF(k, t->numel), t->numel, 1e-5, 1e-4);
    }
    pcase_free(&pc);
}
TEST(policy_mlp_matches_torch) { policy_vs_torch(CPHIL_BACKBONE_MLP); }
TEST(policy_lstm_matches_torch) { policy_vs_torch(CPHIL_BACKBONE_LSTM); }
TEST(policy_gru_matches_torch) { policy_vs_torch(CPHIL_BACKBONE_GRU); }
TEST(policy_mamba_matches_torch) { policy_vs_torch(CPHIL_BACKBONE_MAMBA); }
TEST(policy_attention_matches_torch) { policy_vs_torch(CPHIL_BACKBONE_ATTENTION); }

/* The backward's overlap hook (cphil_model_set_grads_hook, used by data-parallel ranks to start
 * the gradient exchange of a finished tail of the block): at every call, [lo, n) already holds
 * its final values (a snapshot then equals the end result bit for bit), lo decreases, the
 * first call leaves some of the block unfinished and the last is lo = 0. */
typedef struct grads_tap {
    const float *g;
    size_t n, lo[64];
    float *snap[64];
    int calls;
} grads_tap;
static void tap_ready(void *user, size_t lo) {
    grads_tap *t = user;
    if (t->calls >= 64) return;
    t->lo[t->calls] = lo;
    t->snap[t->calls] = fz(t->n - lo);
    memcpy(t->snap[t->calls], t->g + lo, (t->n - lo) * sizeof(float));
    t->calls++;
}
static void grads_hook_case(cphil_backbone bb) {
    arena_reset();
    pcase pc;
    pcase_load(&pc, bb, CPHIL_PREC_F32);
    grads_tap tap = {.g = pc.grads, .n = pc.m.n_floats};
    cphil_model_forward(&pc.m, pc.ws, &pc.batch);
    cphil_model_loss(&pc.m, pc.ws, &pc.batch, &pc.lc, NULL);
    cphil_model_set_grads_hook(pc.ws, tap_ready, &tap);
    cphil_model_backward(&pc.m, pc.ws, &pc.batch, pc.grads);
    cphil_model_set_grads_hook(pc.ws, NULL, NULL);
    CHECK(tap.calls >= 3 && tap.calls < 64);
    CHECK(tap.lo[0] > 0 && tap.lo[0] < tap.n);
    CHECK(tap.lo[tap.calls - 1] == 0);
    for (int c = 0; c < tap.calls; c++) {
        if (c) CHECK_MSG(tap.lo[c] < tap.lo[c - 1], "call %d: lo %zu after %zu", c, tap.lo[c], tap.lo[c - 1]);
        CHECK_MSG(!memcmp(tap.snap[c], pc.grads + tap.lo[c], (tap.n - tap.lo[c]) * sizeof(float)),
                  "%s: call %d said [%zu, %zu) was final, but the backward changed it later",
                  cphil_backbone_name(bb), c, tap.lo[c], tap.n);
    }
    pcase_free(&pc);
}
TEST(grads_hook_tails_final) {
    for (int bb = 0; bb < CPHIL_N_BACKBONES; bb++) grads_hook_case((cphil_backbone)bb);
}

/* Ten AdamW steps; losses[s] and the pre-clip norms out. */
static void train_steps(pcase *pc, int steps, float *losses, float *norms) {
    cphil_adamw_config ac;
    cphil_adamw_config_default(&ac);
    ac.lr = 1e-2f;
    ac.weight_decay = 0.01f;
    ac.max_grad_norm = 0.5f;
    ac.schedule = CPHIL_SCHED_WARMUP_COSINE;
    ac.warmup_steps = 3;
    ac.total_steps = 10;
    ac.min_lr = 0;
    cphil_adamw opt;
    CHECK(cphil_adamw_init(&opt, &ac, pc->m.n_floats) == CPHIL_OK);
    for (int s = 0; s < steps; s++) {
        memset(pc->grads, 0, pc->m.n_floats * sizeof(float));
        cphil_model_forward(&pc->m, pc->ws, &pc->batch);
        losses[s] = cphil_model_loss(&pc->m, pc->ws, &pc->batch, &pc->lc, NULL);
        cphil_model_backward(&pc->m, pc->ws, &pc->batch, pc->grads);
        float nrm = cphil_adamw_step(&opt, pc->m.params, pc->grads);
        if (norms) norms[s] = nrm;
    }
    cphil_adamw_free(&opt);
}

/* Tolerance: rtol 1e-4 on the losses and norms after up to ten updates (f32 against PyTorch's
 * float64; Adam's m/sqrt(v) amplifies last-bit gradient differences only mildly at this size). */
static void adamw_vs_torch(cphil_backbone bb) {
    arena_reset();
    pcase pc;
    pcase_load(&pc, bb, CPHIL_PREC_F32);
    float losses[10], norms[10];
    train_steps(&pc, 10, losses, norms);
    CMPT("losses", losses, FF("adam_losses", 10), 10, 1e-5, 1e-4);
    CMPT("grad norms", norms, FF("adam_norms", 10), 10, 1e-5, 1e-4);
    CHECK(losses[9] < losses[0]);
    pcase_free(&pc);
}
TEST(adamw_ten_steps_lstm_match_torch) { adamw_vs_torch(CPHIL_BACKBONE_LSTM); }
TEST(adamw_ten_steps_mamba_match_torch) { adamw_vs_torch(CPHIL_BACKBONE_MAMBA); }

TEST(lr_schedules) {
    cphil_adamw_config c;
    cphil_adamw_config_default(&c);
    CHECK(cphil_lr_at(&c, 0) == c.lr && cphil_lr_at(&c, 12345) == c.lr);
    c.lr = 1.0f;
    c.schedule = CPHIL_SCHED_WARMUP_COSINE;
    c.warmup_steps = 4;
    c.total_steps = 14;
    c.min_lr = 0.1f;
    CHECK_NEAR(cphil_lr_at(&c, 0), 0.25, 1e-7, 0);
    CHECK_NEAR(cphil_lr_at(&c, 3), 1.0, 1e-7, 0);
    CHECK_NEAR(cphil_lr_at(&c, 4), 1.0, 1e-7, 0);
    CHECK_NEAR(cphil_lr_at(&c, 9), 0.55, 1e-6, 0);
    CHECK_NEAR(cphil_lr_at(&c, 14), 0.1, 1e-7, 0);
    CHECK_NEAR(cphil_lr_at(&c, 100), 0.1, 1e-7, 0);
}

/* bf16 matrix operands against f32: the same ten-step run. Tolerance 2% of the loss (bf16 keeps
 * 8 mantissa bits; the products accumulate in f32, so the loss moves by ~0.1-1%). */
static void bf16_vs_f32(cphil_backbone bb) {
    arena_reset();
    float lf[10], lb[10];
    pcase pc;
    pcase_load(&pc, bb, CPHIL_PREC_F32);
    train_steps(&pc, 10, lf, NULL);
    pcase_free(&pc);
    pcase_load(&pc, bb, CPHIL_PREC_BF16);
    train_steps(&pc, 10, lb, NULL);
    pcase_free(&pc);
    double worst = 0;
    bool differ = false;
    for (int s = 0; s < 10; s++) {
        worst = fmax(worst, fabs(lb[s] - lf[s]) / fabs(lf[s]));
        differ |= lb[s] != lf[s];
    }
    CHECK_MSG(worst <= 0.02, "bf16 vs f32 loss differs by %.3g relative", worst);
    CHECK_MSG(differ, "bf16 run is identical to f32: precision not applied?");
}
TEST(bf16_vs_f32_training_lstm) { bf16_vs_f32(CPHIL_BACKBONE_LSTM); }
TEST(bf16_vs_f32_training_mamba) { bf16_vs_f32(CPHIL_BACKBONE_MAMBA); }
TEST(bf16_vs_f32_training_attention) { bf16_vs_f32(CPHIL_BACKBONE_ATTENTION); }

/* The per-step calls allocate nothing (counting allocator). */
static size_t g_allocs;
static void *count_alloc(size_t size, size_t align, void *user) {
    (void)user;
    g_allocs++;
    void *p = NULL;
    return posix_memalign(&p, align, size ? size : 1) ? NULL : p;
}
static void count_free(void *p, void *user) {
    (void)user;
    free(p);
}
TEST(training_step_allocates_nothing) {
    arena_reset();
    for (int b = 0; b < CPHIL_N_BACKBONES; b++) {
        pcase pc;
        pcase_load(&pc, (cphil_backbone)b, CPHIL_PREC_BF16);
        cphil_adamw_config ac;
        cphil_adamw_config_default(&ac);
        cphil_adamw opt;
        CHECK(cphil_adamw_init(&opt, &ac, pc.m.n_floats) == CPHIL_OK);
        cphil_allocator a = {count_alloc, count_free, NULL};
        cphil_set_allocator(&a);
        g_allocs = 0;
        for (int s = 0; s < 2; s++) {
            memset(pc.grads, 0, pc.m.n_floats * sizeof(float));
            cphil_model_forward(&pc.m, pc.ws, &pc.batch);
            cphil_model_loss(&pc.m, pc.ws, &pc.batch, &pc.lc, NULL);
            cphil_model_backward(&pc.m, pc.ws, &pc.batch, pc.grads);
            cphil_adamw_step(&opt, pc.m.params, pc.grads);
        }
        cphil_set_allocator(NULL);
        CHECK_EQ_INT(g_allocs, 0);
        cphil_adamw_free(&opt);
        pcase_free(&pc);
    }
}

TEST(input_gather_equals_dense_linear) {
    arena_reset();
    const int M = 6, H0 = 5, nc = 4, ni = 3, E = 17;
    float *W = fz(H0 * E), *b = fz(H0), *cont = fz(M * nc), *dense = fz(M * E), *dy = fz(M * H0);
    int32_t *ids = zalloc(M * ni * 4);
    uint64_t s = 7;
    for (int i = 0; i < H0 * E; i++) W[i] = (float)((s = s * 6364136223846793005ull + 1) >> 40) / 16777216.0f - 0.5f;
    for (int i = 0; i < H0; i++) b[i] = 0.1f * i;
    for (int m = 0; m < M; m++) {
        for (int k = 0; k < nc; k++) dense[m * E + k] = cont[m * nc + k] = 0.3f * (m - k);
        for (int k = 0; k < ni; k++) {
            int id = nc + k * 4 + (m + k) % 4; /* blocks of width 4 */
            ids[m * ni + k] = id;
            dense[m * E + id] = 1.0f;
        }
        for (int h = 0; h < H0; h++) dy[m * H0 + h] = 0.01f * (m * H0 + h) - 0.1f;
    }
    float *y1 = fz(M * H0), *y2 = fz(M * H0), *WT = fz(E * H0), *dW1 = fz(H0 * E), *dW2 = fz(H0 * E), *db1 = fz(H0),
          *db2 = fz(H0);
    cphil_nn_input_forward(F32, M, H0, E, nc, ni, cont, ids, W, b, WT, y1);
    cphil_nn_linear_forward(F32, M, H0, E, dense, E, W, b, y2, H0);
    CMPT("y", y1, y2, M * H0, 1e-6, 1e-6);
    cphil_nn_input_backward(F32, M, H0, E, nc, ni, cont, ids, dy, dW1, db1, WT);
    cphil_nn_linear_backward(F32, M, H0, E, dense, E, W, dy, H0, NULL, E, dW2, db2);
    CMPT("dW", dW1, dW2, H0 * E, 1e-6, 1e-6);
    CMPT("db", db1, db2, H0, 1e-6, 1e-6);
}

/* The math library's exp/tanh (src/kernels/cpu/vmath.h, the f32 build's) against libm (their scalar twins), on a dense grid
 * and ragged array lengths through the activation kernels. */
TEST(fast_exp_tanh_match_libm) {
    double worst_e = 0, worst_t = 0;
    for (int i = 0; i <= 400000; i++) {
        float x = -87.0f + 175.0f * (float)i / 400000.0f;
        double e = exp((double)x), fe = cphil_vm_exp(x);
        worst_e = fmax(worst_e, fabs(fe - e) / e);
        float u = -12.0f + 24.0f * (float)i / 400000.0f;
        worst_t = fmax(worst_t, fabs((double)cphil_vm_tanh(u) - tanh((double)u)));
    }
    CHECK_MSG(worst_e <= 3e-7, "exp relative error %.3g", worst_e);
    CHECK_MSG(worst_t <= 3e-7, "tanh absolute error %.3g", worst_t);
    CHECK(cphil_vm_exp(-1000.0f) < 1.3e-38f && cphil_vm_exp(-1000.0f) >= 0.0f);
    CHECK(isfinite(cphil_vm_exp(1000.0f)));
    CHECK(cphil_vm_tanh(50.0f) == 1.0f && cphil_vm_tanh(-50.0f) == -1.0f);
    arena_reset();
    for (int n = 1; n <= 37; n += 3) {
        float *x = fz(n), *y = fz(n);
        double *xd = dz(n), *yd = dz(n);
        for (int i = 0; i < n; i++) xd[i] = x[i] = (float)(0.37 * (i - n / 2));
        for (int a = 0; a < CPHIL_N_ACTS; a++) {
            cphil_nn_act_forward((cphil_act)a, (size_t)n, x, y);
            cphil_nn_act_forward_f64((cphil_act)a, (size_t)n, xd, yd);
            for (int i = 0; i < n; i++) CHECK_NEAR(y[i], yd[i], 1e-6, 1e-6);
        }
    }
}

/* ---- finite differences in double ------------------------------------------------------ */
static uint64_t g_rng = 0x1234567;
static double urand(void) { /* [-1, 1) */
    g_rng = g_rng * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(g_rng >> 11) * (2.0 / 9007199254740992.0) - 1.0;
}
static double *drand_n(size_t n, double scale) {
    double *p = dz(n);
    for (size_t i = 0; i < n; i++) p[i] = scale * urand();
    return p;
}
static double dot(const double *a, const double *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

typedef double (*loss_fn)(void);
/* Compare grad with central differences of f at up to max_checks entries of x. */
static void fd_(const char *file, int line, const char *what, double *x, size_t n, const double *grad, loss_fn f,
                int max_checks) {
    size_t step = n > (size_t)max_checks ? n / (size_t)max_checks : 1;
    for (size_t i = (step > 1 ? step / 2 : 0); i < n; i += step) {
        double old = x[i], h = 1e-5 * fmax(1.0, fabs(old));
        x[i] = old + h;
        double lp = f();
        x[i] = old - h;
        double lm = f();
        x[i] = old;
        double num = (lp - lm) / (2 * h);
        if (!(fabs(num - grad[i]) <= 1e-6 + 1e-5 * fabs(num)))
            h_fail_at(file, line, "%s[%zu]: analytic %.10g numeric %.10g", what, i, grad[i], num);
    }
}
#define FD(what, x, n, grad, f) fd_(__FILE__, __LINE__, what, x, n, grad, f, 40)

/* Layer contexts (globals: loss_fn takes no argument). */
static struct {
    int M, N, K;
    double *x, *W, *b, *dy, *y, *dx, *dW, *db;
} L1;
static double lin_loss(void) {
    cphil_nn_linear_forward_f64(F32, L1.M, L1.N, L1.K, L1.x, L1.K, L1.W, L1.b, L1.y, L1.N);
    return dot(L1.y, L1.dy, (size_t)L1.M * L1.N);
}
TEST(fd_linear) {
    arena_reset();
    L1.M = 4, L1.N = 3, L1.K = 5;
    L1.x = drand_n(20, 1), L1.W = drand_n(15, 1), L1.b = drand_n(3, 1), L1.dy = drand_n(12, 1), L1.y = dz(12);
    L1.dx = dz(20), L1.dW = dz(15), L1.db = dz(3);
    cphil_nn_linear_backward_f64(F32, 4, 3, 5, L1.x, 5, L1.W, L1.dy, 3, L1.dx, 5, L1.dW, L1.db);
    FD("dx", L1.x, 20, L1.dx, lin_loss);
    FD("dW", L1.W, 15, L1.dW, lin_loss);
    FD("db", L1.b, 3, L1.db, lin_loss);
}

static struct {
    double *cont, *W, *b, *WT, *y, *dy;
    int32_t ids[8];
} LI;
static double inp_loss(void) {
    cphil_nn_input_forward_f64(F32, 4, 3, 10, 3, 2, LI.cont, LI.ids, LI.W, LI.b, LI.WT, LI.y);
    return dot(LI.y, LI.dy, 12);
}
TEST(fd_input_layer) {
    arena_reset();
    LI.cont = drand_n(12, 1), LI.W = drand_n(30, 1), LI.b = drand_n(3, 1), LI.WT = dz(30), LI.y = dz(12);
    LI.dy = drand_n(12, 1);
    int32_t ids[8] = {3, 7, 4, 9, 3, 8, 6, 7};
    memcpy(LI.ids, ids, sizeof ids);
    double *dW = dz(30), *db = dz(3);
    cphil_nn_input_backward_f64(F32, 4, 3, 10, 3, 2, LI.cont, LI.ids, LI.dy, dW, db, LI.WT);
    FD("dW", LI.W, 30, dW, inp_loss);
    FD("db", LI.b, 3, db, inp_loss);
}

static struct {
    int rms;
    double *x, *g, *b, *y, *mean, *rstd, *dy;
} LN;
static double norm_loss(void) {
    if (LN.rms) cphil_nn_rmsnorm_forward_f64(3, 7, LN.x, LN.g, 1e-5, LN.y, LN.rstd);
    else cphil_nn_layernorm_forward_f64(3, 7, LN.x, LN.g, LN.b, 1e-5, LN.y, LN.mean, LN.rstd);
    return dot(LN.y, LN.dy, 21);
}
TEST(fd_norms) {
    arena_reset();
    for (int rms = 0; rms < 2; rms++) {
        LN.rms = rms;
        LN.x = drand_n(21, 2), LN.g = drand_n(7, 1), LN.b = drand_n(7, 1), LN.y = dz(21), LN.mean = dz(3);
        LN.rstd = dz(3), LN.dy = drand_n(21, 1);
        double *dx = dz(21), *dg = dz(7), *db = dz(7);
        norm_loss();
        if (rms) cphil_nn_rmsnorm_backward_f64(3, 7, LN.x, LN.g, LN.rstd, LN.dy, dx, dg);
        else cphil_nn_layernorm_backward_f64(3, 7, LN.x, LN.g, LN.mean, LN.rstd, LN.dy, dx, dg, db);
        FD(rms ? "rms dx" : "ln dx", LN.x, 21, dx, norm_loss);
        FD(rms ? "rms dg" : "ln dg", LN.g, 7, dg, norm_loss);
        if (!rms) FD("ln db", LN.b, 7, db, norm_loss);
    }
}

static struct {
    cphil_act a;
    double *x, *y, *dy;
} LA;
static double act_loss(void) {
    cphil_nn_act_forward_f64(LA.a, 16, LA.x, LA.y);
    return dot(LA.y, LA.dy, 16);
}
TEST(fd_activations) {
    arena_reset();
    LA.x = drand_n(16, 4), LA.y = dz(16), LA.dy = drand_n(16, 1);
    for (int i = 0; i < 16; i++)
        if (fabs(LA.x[i]) < 1e-3) LA.x[i] = 0.5; /* away from ReLU's kink */
    for (int a = 0; a < CPHIL_N_ACTS; a++) {
        LA.a = (cphil_act)a;
        double *dx = dz(16);
        cphil_nn_act_backward_f64(LA.a, 16, LA.x, LA.dy, dx);
        FD("dx", LA.x, 16, dx, act_loss);
    }
}

enum { RB = 2, RT = 4, RIN = 3, RH = 4 };
static struct {
    int gru;
    double *x, *Wih, *Whh, *bih, *bhh, *y, *gates, *cs, *hprev, *c0, *gh, *dy;
} LR;
static double rnn_loss(void) {
    if (LR.gru)
        cphil_nn_gru_forward_f64(F32, RB, RT, RIN, RH, LR.x, LR.Wih, LR.Whh, LR.bih, LR.bhh, NULL, LR.y, LR.gates,
                                 LR.gh, LR.hprev);
    else
        cphil_nn_lstm_forward_f64(F32, RB, RT, RIN, RH, LR.x, LR.Wih, LR.Whh, LR.bih, LR.bhh, NULL, NULL, LR.y,
                                  LR.gates, LR.cs, LR.hprev, LR.c0);
    return dot(LR.y, LR.dy, RB * RT * RH);
}
TEST(fd_lstm_gru_through_time) {
    arena_reset();
    const int M = RB * RT;
    for (int gru = 0; gru < 2; gru++) {
        const int G = gru ? 3 : 4;
        LR.gru = gru;
        LR.x = drand_n(M * RIN, 1), LR.Wih = drand_n(G * RH * RIN, 0.7), LR.Whh = drand_n(G * RH * RH, 0.7);
        LR.bih = drand_n(G * RH, 0.5), LR.bhh = drand_n(G * RH, 0.5), LR.y = dz(M * RH), LR.gates = dz(M * G * RH);
        LR.cs = dz(M * RH), LR.hprev = dz(M * RH), LR.c0 = dz(RB * RH), LR.gh = dz(M * 3 * RH), LR.dy = drand_n(M * RH, 1);
        double *dx = dz(M * RIN), *dWih = dz(G * RH * RIN), *dWhh = dz(G * RH * RH), *dbih = dz(G * RH),
               *dbhh = dz(G * RH), *dG = dz(M * G * RH), *dGh = dz(M * 3 * RH), *dh = dz(RB * RH), *dc = dz(RB * RH);
        rnn_loss();
        if (gru)
            cphil_nn_gru_backward_f64(F32, RB, RT, RIN, RH, LR.x, LR.Wih, LR.Whh, LR.gates, LR.gh, LR.hprev, LR.dy, dx,
                                      dWih, dWhh, dbih, dbhh, dG, dGh, dh);
        else
            cphil_nn_lstm_backward_f64(F32, RB, RT, RIN, RH, LR.x, LR.Wih, LR.Whh, LR.gates, LR.cs, LR.hprev, LR.c0,
                                       LR.dy, dx, dWih, dWhh, dbih, dbhh, dG, dh, dc);
        FD("dx", LR.x, M * RIN, dx, rnn_loss);
        FD("dWih", LR.Wih, G * RH * RIN, dWih, rnn_loss);
        FD("dWhh", LR.Whh, G * RH * RH, dWhh, rnn_loss);
        FD("dbih", LR.bih, G * RH, dbih, rnn_loss);
        FD("dbhh", LR.bhh, G * RH, dbhh, rnn_loss);
    }
}

enum { MB_ = 2, MT = 4, MH = 4, MI = 8, MR = 1, MN = 3, MK = 3 };
static struct {
    double *u, *dy, *y, *Win, *cw, *cb, *Wx, *Wdt, *bdt, *Al, *D, *Wo;
    cphil_mamba_saved_f64 s;
    cphil_mamba_scratch_f64 w;
} LM;
static double mamba_loss(void) {
    cphil_mamba_params_f64 p = {LM.Win, LM.cw, LM.cb, LM.Wx, LM.Wdt, LM.bdt, LM.Al, LM.D, LM.Wo};
    cphil_nn_mamba_forward_f64(F32, MB_, MT, MH, MI, MR, MN, MK, LM.u, &p, &LM.s, &LM.w, LM.y);
    return dot(LM.y, LM.dy, MB_ * MT * MH);
}
TEST(fd_mamba_through_time) {
    arena_reset();
    const size_t M = MB_ * MT, XD = MR + 2 * MN;
    LM.u = drand_n(M * MH, 1), LM.dy = drand_n(M * MH, 1), LM.y = dz(M * MH);
    LM.Win = drand_n(2 * MI * MH, 0.5), LM.cw = drand_n(MI * MK, 0.5), LM.cb = drand_n(MI, 0.3);
    LM.Wx = drand_n(XD * MI, 0.5), LM.Wdt = drand_n(MI * MR, 0.5), LM.bdt = drand_n(MI, 1.0);
    LM.Al = drand_n(MI * MN, 0.5), LM.D = drand_n(MI, 1), LM.Wo = drand_n(MH * MI, 0.5);
    LM.s = (cphil_mamba_saved_f64){dz(M * 2 * MI), dz(M * MI), dz(M * MI), dz(M * XD), dz(M * MI), dz(M * MI), dz(M * MI), dz(M * MI)};
    LM.w = (cphil_mamba_scratch_f64){dz(MI * MN), dz(MI * MN), dz(MT * MI * MN), dz(M * 2 * MI), dz(M * MI), dz(M * MI),
                                     dz(M * MI), dz(M * MI), dz(M * MI), dz(M * XD), dz(MT * MI * MN), dz(MI), dz(MI * MN), dz(MI),
                                     dz(MB_ * MI * MN), dz(MB_ * MI), 1};
    double *du = dz(M * MH), *gWin = dz(2 * MI * MH), *gcw = dz(MI * MK), *gcb = dz(MI), *gWx = dz(XD * MI),
           *gWdt = dz(MI * MR), *gbdt = dz(MI), *gAl = dz(MI * MN), *gD = dz(MI), *gWo = dz(MH * MI);
    cphil_mamba_grads_f64 g = {gWin, gcw, gcb, gWx, gWdt, gbdt, gAl, gD, gWo};
    cphil_mamba_params_f64 p = {LM.Win, LM.cw, LM.cb, LM.Wx, LM.Wdt, LM.bdt, LM.Al, LM.D, LM.Wo};
    mamba_loss();
    cphil_nn_mamba_backward_f64(F32, MB_, MT, MH, MI, MR, MN, MK, LM.u, &p, &LM.s, &LM.w, LM.dy, du, &g);
    FD("du", LM.u, M * MH, du, mamba_loss);
    FD("in_proj", LM.Win, 2 * MI * MH, gWin, mamba_loss);
    FD("conv w", LM.cw, MI * MK, gcw, mamba_loss);
    FD("conv b", LM.cb, MI, gcb, mamba_loss);
    FD("x_proj", LM.Wx, XD * MI, gWx, mamba_loss);
    FD("dt_proj w", LM.Wdt, MI * MR, gWdt, mamba_loss);
    FD("dt_proj b", LM.bdt, MI, gbdt, mamba_loss);
    FD("A_log", LM.Al, MI * MN, gAl, mamba_loss);
    FD("D", LM.D, MI, gD, mamba_loss);
    FD("out_proj", LM.Wo, MH * MI, gWo, mamba_loss);
}

enum { AB = 2, AT = 4, AH = 8, ANH = 2 };
static struct {
    double *u, *Wqkv, *bqkv, *Wo, *bo, *rope, *qkv, *P, *att, *y, *dy;
} LT;
static double attn_loss(void) {
    cphil_nn_attention_forward_f64(F32, AB, AT, AH, ANH, LT.u, LT.Wqkv, LT.bqkv, LT.Wo, LT.bo, LT.rope, LT.qkv, LT.P,
                                   LT.att, LT.y);
    return dot(LT.y, LT.dy, AB * AT * AH);
}
TEST(fd_attention_through_time) {
    arena_reset();
    const size_t M = AB * AT;
    LT.u = drand_n(M * AH, 1), LT.Wqkv = drand_n(3 * AH * AH, 0.5), LT.bqkv = drand_n(3 * AH, 0.3);
    LT.Wo = drand_n(AH * AH, 0.5), LT.bo = drand_n(AH, 0.3), LT.rope = dz(AT * AH / ANH), LT.qkv = dz(M * 3 * AH);
    LT.P = dz(AB * ANH * AT * AT), LT.att = dz(M * AH), LT.y = dz(M * AH), LT.dy = drand_n(M * AH, 1);
    cphil_nn_rope_table_f64(AT, AH / ANH, LT.rope);
    attn_loss();
    double *du = dz(M * AH), *dWqkv = dz(3 * AH * AH), *dbqkv = dz(3 * AH), *dWo = dz(AH * AH), *dbo = dz(AH),
           *datt = dz(M * AH), *dqkv = dz(M * 3 * AH), *dP = dz(AT * AT);
    cphil_nn_attention_backward_f64(F32, AB, AT, AH, ANH, LT.u, LT.Wqkv, LT.Wo, LT.rope, LT.qkv, LT.P, LT.att, LT.dy,
                                    du, dWqkv, dbqkv, dWo, dbo, datt, dqkv, dP);
    FD("du", LT.u, M * AH, du, attn_loss);
    FD("dWqkv", LT.Wqkv, 3 * AH * AH, dWqkv, attn_loss);
    FD("dbqkv", LT.bqkv, 3 * AH, dbqkv, attn_loss);
    FD("dWo", LT.Wo, AH * AH, dWo, attn_loss);
    FD("dbo", LT.bo, AH, dbo, attn_loss);
}

static struct {
    double *logits, *d;
    uint8_t buttons[5 * 8], cls[5 * 5];
    float weight[5];
    cphil_loss_config lc;
} LL;
static double loss_loss(void) {
    return cphil_nn_policy_loss_f64(5, LL.logits, LL.buttons, LL.cls, LL.weight, &LL.lc, LL.d, NULL);
}
TEST(fd_loss) {
    arena_reset();
    LL.logits = drand_n(5 * 81, 3), LL.d = dz(5 * 81);
    for (int i = 0; i < 40; i++) LL.buttons[i] = (i * 7) % 3 == 0;
    for (int m = 0; m < 5; m++) {
        for (int h = 0; h < 5; h++) LL.cls[m * 5 + h] = (uint8_t)((m * 5 + h * 3) % cphil_head_classes[h + 1]);
        LL.weight[m] = 0.5f + 0.25f * m;
    }
    cphil_loss_config_default(&LL.lc);
    for (int j = 0; j < 8; j++) LL.lc.pos_weight[j] = 0.5f + 0.3f * j;
    LL.lc.button_weight = 2.0f;
    LL.lc.label_smoothing = 0.05f;
    loss_loss();
    double *g = dz(5 * 81);
    memcpy(g, LL.d, 5 * 81 * sizeof(double));
    FD("dlogits", LL.logits, 5 * 81, g, loss_loss);
}

static void cphil_decide_logits_test(const float *z, uint8_t out[CPHIL_N_HEADS]) {
    uint8_t bm = 0;
    for (int k = 0; k < 8; k++) bm |= (uint8_t)((z[k] > 0) << k);
    out[0] = bm;
    for (int h = 1; h < CPHIL_N_HEADS; h++) {
        const float *l = z + cphil_head_offset[h];
        int am = 0;
        for (int k = 1; k < cphil_head_classes[h]; k++)
            if (l[k] > l[am]) am = k;
        out[h] = (uint8_t)am;
    }
}

/* Whole policy in double, T = 4, every backbone: sampled entries of every tensor. */
static struct {
    cphil_model_ws_f64 *ws;
    double *params, *cont;
    int32_t *ids;
    uint8_t *buttons, *cls;
    float *weight;
    cphil_loss_config lc;
} LP;
static double policy_loss_f64(void) {
    cphil_model_forward_f64(LP.ws, LP.params, LP.cont, LP.ids);
    return cphil_model_loss_f64(LP.ws, LP.buttons, LP.cls, LP.weight, &LP.lc);
}
static void fd_policy_heads(cphil_backbone bb, cphil_heads_mode heads) {
    arena_reset();
    const int B = 2, T = 4, M = B * T;
    cphil_model_config c;
    small_cfg(&c, bb);
    c.window = T;
    c.heads = heads;
    /* the autoregressive cases draw from a fixed generator state, so which other tests ran
     * first (TEST_ONLY) cannot move a pre-activation onto a ReLU kink, where finite
     * differences are meaningless */
    if (heads == CPHIL_HEADS_AUTOREGRESSIVE) g_rng = 0x5EED0000u + (uint64_t)bb;
    cphil_model m;
    CHECK(cphil_model_init(&m, &c) == CPHIL_OK);
    cphil_model_init_params(&m, 42 + (uint64_t)bb);
    LP.params = dz(m.n_floats);
    for (int i = 0; i < m.n_tensors; i++) {
        const cphil_tensor *t = &m.tensors[i];
        for (size_t k = 0; k < t->numel; k++)
            LP.params[t->offset + k] = m.params[t->offset + k] + 0.05 * urand();
    }
    LP.cont = drand_n((size_t)M * 7, 1);
    LP.ids = zalloc((size_t)M * 3 * 4);
    LP.buttons = zalloc((size_t)M * 8);
    LP.cls = zalloc((size_t)M * 5);
    LP.weight = fz(M);
    for (int r = 0; r < M; r++) {
        LP.ids[r * 3 + 0] = 7 + r % 4;
        LP.ids[r * 3 + 1] = 11 + (r * 3) % 5;
        LP.ids[r * 3 + 2] = 16 + (r * 2) % 3;
        for (int j = 0; j < 8; j++) LP.buttons[r * 8 + j] = (r + j) % 3 == 0;
        for (int h = 0; h < 5; h++) LP.cls[r * 5 + h] = (uint8_t)((r * 7 + h) % cphil_head_classes[h + 1]);
        LP.weight[r] = 0.5f + 0.1f * r;
    }
    cphil_loss_config_default(&LP.lc);
    LP.lc.pos_weight[2] = 2.0f;
    LP.lc.label_smoothing = 0.1f;
    CHECK(cphil_model_ws_create_f64(&m, B, T, &LP.ws) == CPHIL_OK);
    /* autoregressive heads train with teacher forcing: each head conditioned on the targets */
    if (heads == CPHIL_HEADS_AUTOREGRESSIVE) cphil_model_set_targets_f64(LP.ws, LP.buttons, LP.cls);
    double *grads = dz(m.n_floats);
    policy_loss_f64();
    cphil_model_backward_f64(LP.ws, LP.params, LP.cont, LP.ids, grads);
    for (int i = 0; i < m.n_tensors; i++) {
        const cphil_tensor *t = &m.tensors[i];
        fd_(__FILE__, __LINE__, t->name, LP.params + t->offset, t->numel, grads + t->offset, policy_loss_f64, 5);
    }
    cphil_model_ws_free_f64(LP.ws);
    cphil_model_free(&m);
}
static void fd_policy(cphil_backbone bb) { fd_policy_heads(bb, CPHIL_HEADS_INDEPENDENT); }

/* What autoregressive heads are for: a controller whose parts depend on each other beyond what
 * the state tells. The inputs carry no information; main_x is 4 or 12 by a coin flip and main_y
 * always equals main_x (a diagonal). The best independent heads predict each half with
 * probability 1/2: joint NLL 2 ln 2 = 1.386. Autoregressive heads learn main_y given main_x:
 * joint NLL -> ln 2 = 0.693. Trained the same way (MLP, AdamW, 300 steps), scored on fresh
 * frames with teacher forcing; and the greedy decisions always lie on the diagonal. */
static double ar_joint_nll(cphil_heads_mode heads, double *diag) {
    enum { B = 64 };
    cphil_model_config c;
    small_cfg(&c, CPHIL_BACKBONE_MLP);
    c.window = 1;
    c.heads = heads;
    cphil_model m;
    CHECK(cphil_model_init(&m, &c) == CPHIL_OK);
    cphil_model_init_params(&m, 3);
    cphil_model_ws *ws = NULL;
    CHECK(cphil_model_ws_create(&m, B, 1, &ws) == CPHIL_OK);
    cphil_adamw_config ac;
    cphil_adamw_config_default(&ac);
    ac.lr = 1e-2f;
    cphil_adamw opt;
    CHECK(cphil_adamw_init(&opt, &ac, m.n_floats) == CPHIL_OK);
    float *grads = cphil_alloc(m.n_floats * sizeof(float));
    static float cont[B * 7];
    static int32_t ids[B * 3];
    static uint8_t btn[B * 8], cls[B * 5];
    cphil_loss_config lc;
    cphil_loss_config_default(&lc);
    uint64_t rs = 77;
    double nll = 0;
    for (int step = 0; step <= 300; step++) {
        for (int i = 0; i < B; i++) {
            for (int k = 0; k < 7; k++) cont[i * 7 + k] = 0.5f;
            ids[i * 3 + 0] = 7;
            ids[i * 3 + 1] = 11;
            ids[i * 3 + 2] = 16;
            rs = rs * 6364136223846793005ull + 1442695040888963407ull;
            uint8_t v = (rs >> 40) & 1 ? 12 : 4;
            cls[i * 5 + 0] = v;
            cls[i * 5 + 1] = v;
            cls[i * 5 + 2] = 8;
            cls[i * 5 + 3] = 8;
            cls[i * 5 + 4] = 0;
        }
        cphil_model_batch mb = {B, 1, cont, ids, btn, cls, NULL};
        const float *z = cphil_model_forward(&m, ws, &mb);
        if (step == 300) { /* fresh frames: the joint NLL of main_x and main_y */
            for (int i = 0; i < B; i++)
                for (int h = 1; h <= 2; h++) {
                    const float *l = z + (size_t)i * CPHIL_N_LOGITS + cphil_head_offset[h];
                    double mx = l[0], se = 0;
                    for (int k = 1; k < 17; k++) mx = l[k] > mx ? l[k] : mx;
                    for (int k = 0; k < 17; k++) se += exp(l[k] - mx);
                    nll += mx + log(se) - l[cls[i * 5 + h - 1]];
                }
            nll /= B;
            cphil_model_batch gb = {B, 1, cont, ids, NULL, NULL, NULL};
            z = cphil_model_forward(&m, ws, &gb);
            int on = 0;
            for (int i = 0; i < B; i++) {
                uint8_t d[CPHIL_N_HEADS];
                cphil_decide_logits_test(z + (size_t)i * CPHIL_N_LOGITS, d);
                on += d[1] == d[2] && (d[1] == 4 || d[1] == 12);
            }
            *diag = (double)on / B;
            break;
        }
        cphil_model_loss(&m, ws, &mb, &lc, NULL);
        memset(grads, 0, m.n_floats * sizeof(float));
        cphil_model_backward(&m, ws, &mb, grads);
        cphil_adamw_step(&opt, m.params, grads);
    }
    cphil_free(grads);
    cphil_adamw_free(&opt);
    cphil_model_ws_free(ws);
    cphil_model_free(&m);
    return nll;
}
TEST(autoregressive_heads_learn_a_joint_the_independent_cannot) {
    double diag_i = 0, diag_a = 0;
    double ind = ar_joint_nll(CPHIL_HEADS_INDEPENDENT, &diag_i);
    double ar = ar_joint_nll(CPHIL_HEADS_AUTOREGRESSIVE, &diag_a);
    printf("# joint NLL of (main_x, main_y): independent %.4f, autoregressive %.4f; greedy on the diagonal %.3f / %.3f\n",
           ind, ar, diag_i, diag_a);
    CHECK_MSG(ind > 1.30 && ind < 1.50, "independent joint NLL %.4f (2 ln 2 = 1.386)", ind);
    CHECK_MSG(ar < 0.80 && ar > 0.60, "autoregressive joint NLL %.4f (ln 2 = 0.693)", ar);
    CHECK_MSG(diag_a == 1.0, "autoregressive greedy decisions on the diagonal: %.3f", diag_a);
}
TEST(fd_policy_autoregressive_heads_mlp_mamba) {
    fd_policy_heads(CPHIL_BACKBONE_MLP, CPHIL_HEADS_AUTOREGRESSIVE);
    fd_policy_heads(CPHIL_BACKBONE_MAMBA, CPHIL_HEADS_AUTOREGRESSIVE);
}
TEST(fd_policy_mlp) { fd_policy(CPHIL_BACKBONE_MLP); }
TEST(fd_policy_lstm) { fd_policy(CPHIL_BACKBONE_LSTM); }
TEST(fd_policy_gru) { fd_policy(CPHIL_BACKBONE_GRU); }
TEST(fd_policy_mamba) { fd_policy(CPHIL_BACKBONE_MAMBA); }
TEST(fd_policy_attention) { fd_policy(CPHIL_BACKBONE_ATTENTION); }

int main(void) {
    RUN(linear_matches_torch);
    RUN(input_layer_matches_torch_dense_linear);
    RUN(norms_match_torch);
    RUN(activations_match_torch);
    RUN(lstm_gru_layers_match_torch);
    RUN(mamba_mixer_matches_torch);
    RUN(mamba_scan_threads_same_bits);
    RUN(attention_matches_torch);
    RUN(loss_matches_torch);
    RUN(policy_mlp_matches_torch);
    RUN(policy_lstm_matches_torch);
    RUN(policy_gru_matches_torch);
    RUN(policy_mamba_matches_torch);
    RUN(policy_attention_matches_torch);
    RUN(grads_hook_tails_final);
    RUN(adamw_ten_steps_lstm_match_torch);
    RUN(adamw_ten_steps_mamba_match_torch);
    RUN(lr_schedules);
    RUN(bf16_vs_f32_training_lstm);
    RUN(bf16_vs_f32_training_mamba);
    RUN(bf16_vs_f32_training_attention);
    RUN(training_step_allocates_nothing);
    RUN(input_gather_equals_dense_linear);
    RUN(fast_exp_tanh_match_libm);
    RUN(fd_linear);
    RUN(fd_input_layer);
    RUN(fd_norms);
    RUN(fd_activations);
    RUN(fd_lstm_gru_through_time);
    RUN(fd_mamba_through_time);
    RUN(fd_attention_through_time);
    RUN(fd_loss);
    RUN(fd_policy_mlp);
    RUN(fd_policy_lstm);
    RUN(fd_policy_gru);
    RUN(fd_policy_mamba);
    RUN(fd_policy_attention);
    RUN(fd_policy_autoregressive_heads_mlp_mamba);
    RUN(autoregressive_heads_learn_a_joint_the_independent_cannot);
    arena_reset();
    if (g_fix.buf) cphil_free(g_fix.buf);
    return harness_done();
}
