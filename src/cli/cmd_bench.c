/* cmd_bench.c — `cphil bench`: the seed's architecture table measured on this machine (one
 * core, pinned, after a warm-up): mlp, lstm, gru, mamba, attention at the seed's sizes with the
 * default embedding, random weights, f32 / bf16 / int8, window and stream mode; parameters and
 * p50 / p99 microseconds per decision (input layer with its id gathers, backbone, heads and
 * sampling included). `--policy P` benches one policy file instead.
 */
#include "cli/cli.h"
#include "agent/sample.h"
#include "infer/infer.h"
#include "infer/infer_policy.h"

#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#if __has_include("game/embed.h")
#include "game/embed.h"
#define HAVE_EMBED 1
#endif

static void bench_usage(FILE *f) {
    fprintf(f,
            "usage: cphil bench [--policy P] [--backbone B[,B..]] [--precision f32,bf16,int8] [--mode window,stream]\n"
            "                   [--seconds S] [--cpu N] [--json]\n"
            "Measures decisions per frame: parameters, p50 and p99 microseconds per decision (input layer,\n"
            "backbone, heads and sampling), one thread pinned to one core, after a warm-up.\n"
            "Without --policy: the seed's table (hidden 256, 2 layers, window 60, state 16, expand 2,\n"
            "conv 4, 4 heads; MLP 512-512) with random weights and the default embedding.\n"
            "  --policy P      bench this policy file (its precision; int8 files run int8)\n"
            "  --backbone L    comma list of mlp,lstm,gru,mamba,attention (default all)\n"
            "  --precision L   comma list of f32,bf16,int8 (default all)\n"
            "  --mode L        comma list of window,stream (default both)\n"
            "  --seconds S     measuring time per row (default 0.4)\n"
            "  --cpu N         core to pin to (default: the current one)\n"
            "  --json          one JSON object per row: backbone, precision, mode, params, p50_us, p99_us\n"
            "Timings are noisy on a shared machine; compare ratios measured in the same run.\n");
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static bool in_list(const char *list, const char *name) {
    if (!list) return true;
    size_t n = strlen(name);
    for (const char *p = list; *p;) {
        const char *c = strchr(p, ',');
        size_t len = c ? (size_t)(c - p) : strlen(p);
        if (len == n && !strncmp(p, name, n)) return true;
        if (!c) break;
        p = c + 1;
    }
    return false;
}

static const char *prec_name(infer_dtype d) { return d == INFER_F32 ? "f32" : d == INFER_BF16 ? "bf16" : "int8"; }

typedef struct bench_row {
    double p50, p99, mean;
    long iters;
} bench_row;

/* Frames with random continuous features and one valid id per one-hot block. */
typedef struct frames {
    int n, n_cont, n_ids;
    float *cont;
    int32_t *ids;
} frames;

static cphil_status frames_make(frames *f, const cphil_infer_spec *sp, const int *blk_off, const int *blk_w) {
    f->n = 256;
    f->n_cont = sp->n_cont;
    f->n_ids = sp->n_ids;
    f->cont = cphil_calloc((size_t)f->n * (sp->n_cont + 1), sizeof(float));
    f->ids = cphil_calloc((size_t)f->n * (sp->n_ids + 1), sizeof(int32_t));
    if (!f->cont || !f->ids) return cphil_err(CPHIL_E_NOMEM, "out of memory");
    cphil_rng r;
    cphil_rng_seed(&r, 99);
    for (int t = 0; t < f->n; t++) {
        for (int c = 0; c < sp->n_cont; c++) f->cont[(size_t)t * sp->n_cont + c] = (float)(cphil_rng_uniform(&r) * 2 - 1);
        for (int k = 0; k < sp->n_ids; k++)
            f->ids[(size_t)t * sp->n_ids + k] = blk_off[k] + (int32_t)(cphil_rng_next(&r) % (uint64_t)blk_w[k]);
    }
    return CPHIL_OK;
}

static void frames_free(frames *f) {
    cphil_free(f->cont);
    cphil_free(f->ids);
}

static cphil_status run_row(const cphil_infer_model *m, cphil_infer_mode mode, const frames *fr, double seconds,
                            bench_row *out) {
    cphil_infer_state *s;
    cphil_status st = cphil_infer_state_open(m, mode, &s);
    if (st) return st;
    float logits[INFER_N_LOGITS];
    uint8_t btn[8], cls[5];
    cphil_rng rng;
    cphil_rng_seed(&rng, 1);
    /* warm-up: a full window's worth of frames and at least 0.1 s */
    uint64_t t0 = now_ns();
    long w = 0;
    while (w < 64 || now_ns() - t0 < 100000000ull) {
        int i = (int)(w % fr->n);
        cphil_infer_step(s, fr->cont + (size_t)i * fr->n_cont, fr->ids + (size_t)i * fr->n_ids, logits);
        cphil_sample_action(logits, 1.f, false, &rng, btn, cls);
        w++;
    }
    size_t cap = 1 << 20;
    uint64_t *ns = cphil_alloc(sizeof(uint64_t) * cap);
    if (!ns) {
        cphil_infer_state_close(s);
        return cphil_err(CPHIL_E_NOMEM, "out of memory");
    }
    long n = 0;
    uint64_t start = now_ns(), budget = (uint64_t)(seconds * 1e9);
    while ((size_t)n < cap && (n < 20 || now_ns() - start < budget)) {
        int i = (int)((w + n) % fr->n);
        uint64_t a = now_ns();
        cphil_infer_step(s, fr->cont + (size_t)i * fr->n_cont, fr->ids + (size_t)i * fr->n_ids, logits);
        cphil_sample_action(logits, 1.f, false, &rng, btn, cls);
        ns[n++] = now_ns() - a;
    }
    double sum = 0;
    for (long i = 0; i < n; i++) sum += (double)ns[i];
    qsort(ns, (size_t)n, sizeof *ns, cmp_u64);
    out->iters = n;
    out->p50 = ns[n / 2] / 1000.0;
    out->p99 = ns[(size_t)((n - 1) * 0.99)] / 1000.0;
    out->mean = sum / n / 1000.0;
    cphil_free(ns);
    cphil_infer_state_close(s);
    return CPHIL_OK;
}

static void print_row(bool json, const char *bb, const char *prec, const char *mode, int64_t params,
                      const bench_row *r) {
    if (json) {
        printf("{\"backbone\":\"%s\",\"precision\":\"%s\",\"mode\":\"%s\",\"params\":%lld,\"p50_us\":%.2f,"
               "\"p99_us\":%.2f,\"mean_us\":%.2f,\"iters\":%ld,\"fps60_ready\":%s}\n",
               bb, prec, mode, (long long)params, r->p50, r->p99, r->mean, r->iters, r->p99 < 16667.0 ? "true" : "false");
    } else {
        printf("%-10s %-5s %-7s %10lld %10.1f %10.1f   %-5s %8.0fx\n", bb, prec, mode, (long long)params, r->p50, r->p99,
               r->p99 < 16667.0 ? "yes" : "NO", 16667.0 / r->p99);
    }
    fflush(stdout);
}

static void pin(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (cpu < 0) cpu = sched_getcpu();
    if (cpu < 0) cpu = 0;
    CPU_SET(cpu, &set);
    sched_setaffinity(0, sizeof set, &set);
}

/* The default embedding: the game's layout when built in, else a stand-in of the seed's width. */
static void default_embedding(int *n_cont, int *n_ids, int *E, int *off, int *wid) {
#ifdef HAVE_EMBED
    cphil_embed_layout L;
    cphil_embed_layout_init(&L, NULL);
    *n_cont = L.n_cont;
    *n_ids = L.n_ids;
    *E = L.E;
    for (int b = 0; b < L.n_blocks; b++)
        if (L.blocks[b].kind == CPHIL_EMBED_ONEHOT && L.blocks[b].id_index >= 0) {
            off[L.blocks[b].id_index] = L.blocks[b].offset;
            wid[L.blocks[b].id_index] = L.blocks[b].width;
        }
#else
    *n_cont = 111;
    *n_ids = 10;
    *E = 1991;
    int o = 111;
    for (int k = 0; k < 10; k++) {
        off[k] = o;
        wid[k] = 188;
        o += 188;
    }
#endif
}

int cmd_bench(int argc, char **argv) {
    const char *policy = NULL, *bbs = NULL, *precs = NULL, *modes = NULL;
    double seconds = 0.4;
    long long cpu = -1;
    bool json = false;
    static const char *const valid[] = {"--policy", "--backbone", "--precision", "--mode", "--seconds",
                                        "--cpu", "--json", "--help", NULL};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            bench_usage(stdout);
            return CLI_EXIT_OK;
        } else if (!strcmp(a, "--json")) json = true;
        else if (!strcmp(a, "--policy") || !strcmp(a, "--backbone") || !strcmp(a, "--precision") || !strcmp(a, "--mode")) {
            if (!v) {
                cli_error("%s needs a value", a);
                return CLI_EXIT_USAGE;
            }
            if (!strcmp(a, "--policy")) policy = v;
            else if (!strcmp(a, "--backbone")) bbs = v;
            else if (!strcmp(a, "--precision")) precs = v;
            else modes = v;
            i++;
        } else if (!strcmp(a, "--seconds")) {
            if (!cli_parse_double(a, v, 0.001, 3600, &seconds)) return CLI_EXIT_USAGE;
            i++;
        } else if (!strcmp(a, "--cpu")) {
            if (!cli_parse_int(a, v, 0, 4095, &cpu)) return CLI_EXIT_USAGE;
            i++;
        } else {
            cli_unknown_option("bench", a, valid);
            return CLI_EXIT_USAGE;
        }
    }
    pin((int)cpu);
    if (!json) {
        printf("# cphil bench: one thread pinned to cpu %d, isa %s; per decision (input layer, backbone, heads, sampling)\n",
               sched_getcpu(), infer_isa_name(infer_isa_get()));
        printf("%-10s %-5s %-7s %10s %10s %10s   %-5s %9s\n", "backbone", "prec", "mode", "params", "p50_us", "p99_us",
               "60fps", "headroom");
    }
    if (policy) {
        cphil_infer_policy *p = NULL;
        cphil_status st = cphil_infer_policy_open(policy, &p);
        if (st) {
            cli_error(NULL);
            return CLI_EXIT_FAIL;
        }
        const cphil_infer_spec *sp = cphil_infer_policy_spec(p);
        int off[64], wid[64];
        /* one-hot blocks unknown here: ids spread evenly over the one-hot columns */
        int span = sp->n_ids ? (sp->E - sp->n_cont) / sp->n_ids : 0;
        for (int k = 0; k < sp->n_ids && k < 64; k++) {
            off[k] = sp->n_cont + k * span;
            wid[k] = span > 0 ? span : 1;
        }
        frames fr = {0};
        int rc = CLI_EXIT_OK;
        if (sp->n_ids > 64 || frames_make(&fr, sp, off, wid)) {
            cli_error("cannot make frames for %s", policy);
            rc = CLI_EXIT_FAIL;
        }
        for (int mode = 0; mode < 2 && rc == CLI_EXIT_OK; mode++) {
            const char *mn = mode ? "stream" : "window";
            if (!in_list(modes, mn)) continue;
            cphil_infer_model *m = NULL;
            infer_dtype want = cphil_infer_policy_precision(p);
            if ((st = cphil_infer_policy_build(p, want, &m))) {
                cli_error(NULL);
                rc = CLI_EXIT_FAIL;
                break;
            }
            bench_row r;
            if ((st = run_row(m, (cphil_infer_mode)mode, &fr, seconds, &r))) {
                cli_error(NULL);
                rc = CLI_EXIT_FAIL;
            } else {
                print_row(json, cphil_backbone_name(sp->backbone), prec_name(want), mn, cphil_infer_model_params(m), &r);
            }
            cphil_infer_model_free(m);
        }
        frames_free(&fr);
        cphil_infer_policy_close(p);
        return rc;
    }
    int n_cont, n_ids, E, off[64], wid[64];
    default_embedding(&n_cont, &n_ids, &E, off, wid);
    for (int bb = 0; bb < CPHIL_N_BACKBONES; bb++) {
        if (!in_list(bbs, cphil_backbone_name((cphil_backbone)bb))) continue;
        cphil_infer_spec sp;
        cphil_infer_spec_default(&sp, (cphil_backbone)bb, n_cont, n_ids, E);
        cphil_infer_random *rnd = NULL;
        frames fr = {0};
        if (cphil_infer_random_open(&sp, 42 + bb, &rnd) || frames_make(&fr, &sp, off, wid)) {
            cli_error(NULL);
            cphil_infer_random_close(rnd);
            frames_free(&fr);
            return CLI_EXIT_FAIL;
        }
        for (int pr = 0; pr < 3; pr++) {
            if (!in_list(precs, prec_name((infer_dtype)pr))) continue;
            cphil_infer_model *m = NULL;
            if (cphil_infer_model_build(&sp, cphil_infer_random_lookup, rnd, (infer_dtype)pr, &m)) {
                cli_error(NULL);
                continue;
            }
            for (int mode = 0; mode < 2; mode++) {
                const char *mn = mode ? "stream" : "window";
                if (!in_list(modes, mn)) continue;
                bench_row r;
                if (run_row(m, (cphil_infer_mode)mode, &fr, seconds, &r)) {
                    cli_error(NULL);
                    continue;
                }
                print_row(json, cphil_backbone_name((cphil_backbone)bb), prec_name((infer_dtype)pr), mn,
                          cphil_infer_model_params(m), &r);
            }
            cphil_infer_model_free(m);
        }
        frames_free(&fr);
        cphil_infer_random_close(rnd);
    }
    return CLI_EXIT_OK;
}
