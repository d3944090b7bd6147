/* infer_bench.c — decision timing for `cphil bench` and bench/bench_infer (see infer_bench.h). */
#include "infer/infer_bench.h"

#include "agent/sample.h"
#include "game/embed.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

void cphil_bench_default_embedding(int *n_cont, int *n_ids, int *E, int *off, int *width) {
    cphil_embed_layout L;
    cphil_embed_layout_init(&L, NULL);
    *n_cont = L.n_cont;
    *n_ids = L.n_ids;
    *E = L.E;
    for (int b = 0; b < L.n_blocks; b++)
        if (L.blocks[b].kind == CPHIL_EMBED_ONEHOT && L.blocks[b].id_index >= 0 && L.blocks[b].id_index < 64) {
            off[L.blocks[b].id_index] = L.blocks[b].offset;
            width[L.blocks[b].id_index] = L.blocks[b].width;
        }
}

cphil_status cphil_bench_frames_make(cphil_bench_frames *f, const cphil_infer_spec *sp, const int *off,
                                     const int *width) {
    memset(f, 0, sizeof *f);
    f->n = 256;
    f->n_cont = sp->n_cont;
    f->n_ids = sp->n_ids;
    f->cont = cphil_calloc((size_t)f->n * (sp->n_cont + 1), sizeof(float));
    f->ids = cphil_calloc((size_t)f->n * (sp->n_ids + 1), sizeof(int32_t));
    if (!f->cont || !f->ids) {
        cphil_bench_frames_free(f);
        return cphil_err(CPHIL_E_NOMEM, "out of memory");
    }
    int span = sp->n_ids ? (sp->E - sp->n_cont) / sp->n_ids : 1;
    if (span < 1) span = 1;
    cphil_rng r;
    cphil_rng_seed(&r, 99);
    for (int t = 0; t < f->n; t++) {
        for (int c = 0; c < sp->n_cont; c++) f->cont[(size_t)t * sp->n_cont + c] = (float)(cphil_rng_uniform(&r) * 2 - 1);
        for (int k = 0; k < sp->n_ids; k++) {
            int o = off ? off[k] : sp->n_cont + k * span, w = width ? width[k] : span;
            f->ids[(size_t)t * sp->n_ids + k] = o + (int32_t)(cphil_rng_next(&r) % (uint64_t)(w > 0 ? w : 1));
        }
    }
    return CPHIL_OK;
}

void cphil_bench_frames_free(cphil_bench_frames *f) {
    cphil_free(f->cont);
    cphil_free(f->ids);
    f->cont = NULL;
    f->ids = NULL;
}

cphil_status cphil_bench_run(const cphil_infer_model *m, cphil_infer_mode mode, const cphil_bench_frames *fr,
                             double seconds, cphil_bench_result *out) {
    cphil_infer_state *s;
    cphil_status st = cphil_infer_state_open(m, mode, &s);
    if (st) return st;
    size_t cap = 1 << 20;
    uint64_t *ns = cphil_alloc(sizeof(uint64_t) * cap);
    if (!ns) {
        cphil_infer_state_close(s);
        return cphil_err(CPHIL_E_NOMEM, "out of memory");
    }
    float logits[INFER_N_LOGITS];
    uint8_t btn[8], cls[5];
    cphil_rng rng;
    cphil_rng_seed(&rng, 1);
    uint64_t t0 = now_ns();
    long w = 0;
    while (w < 64 || now_ns() - t0 < 100000000ull) { /* warm-up: a full window, 0.1 s */
        int i = (int)(w % fr->n);
        if ((st = cphil_infer_step(s, fr->cont + (size_t)i * fr->n_cont, fr->ids + (size_t)i * fr->n_ids, logits))) break;
        cphil_sample_action(logits, 1.f, false, &rng, btn, cls);
        w++;
    }
    long n = 0;
    uint64_t start = now_ns(), budget = (uint64_t)(seconds * 1e9);
    while (!st && (size_t)n < cap && (n < 20 || now_ns() - start < budget)) {
        int i = (int)((w + n) % fr->n);
        uint64_t a = now_ns();
        st = cphil_infer_step(s, fr->cont + (size_t)i * fr->n_cont, fr->ids + (size_t)i * fr->n_ids, logits);
        cphil_sample_action(logits, 1.f, false, &rng, btn, cls);
        ns[n++] = now_ns() - a;
    }
    if (!st) {
        double sum = 0;
        for (long i = 0; i < n; i++) sum += (double)ns[i];
        qsort(ns, (size_t)n, sizeof *ns, cmp_u64);
        out->iters = n;
        out->p50_us = ns[n / 2] / 1000.0;
        out->p99_us = ns[(size_t)((n - 1) * 0.99)] / 1000.0;
        out->max_us = ns[n - 1] / 1000.0;
        out->mean_us = sum / n / 1000.0;
    }
    cphil_free(ns);
    cphil_infer_state_close(s);
    return st;
}

bool cphil_bench_in_list(const char *list, const char *name) {
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

const char *cphil_bench_precision_name(cphil_wtype d) { return d == CPHIL_W_F32 ? "f32" : d == CPHIL_W_BF16 ? "bf16" : "int8"; }

cphil_status cphil_bench_table(const char *backbones, const char *precisions, const char *modes, double seconds,
                               cphil_bench_row_fn fn, void *user) {
    int n_cont, n_ids, E, off[64], wid[64];
    cphil_bench_default_embedding(&n_cont, &n_ids, &E, off, wid);
    cphil_status st = CPHIL_OK;
    for (int bb = 0; bb < CPHIL_N_BACKBONES && !st; bb++) {
        if (!cphil_bench_in_list(backbones, cphil_backbone_name((cphil_backbone)bb))) continue;
        cphil_infer_spec sp;
        cphil_infer_spec_default(&sp, (cphil_backbone)bb, n_cont, n_ids, E);
        cphil_infer_random *rnd = NULL;
        cphil_bench_frames fr = {0};
        if ((st = cphil_infer_random_open(&sp, 42 + (uint64_t)bb, &rnd)) || (st = cphil_bench_frames_make(&fr, &sp, off, wid))) {
            cphil_infer_random_close(rnd);
            cphil_bench_frames_free(&fr);
            break;
        }
        for (int pr = 0; pr < 3 && !st; pr++) {
            if (!cphil_bench_in_list(precisions, cphil_bench_precision_name((cphil_wtype)pr))) continue;
            cphil_infer_model *m = NULL;
            if ((st = cphil_infer_model_build(&sp, cphil_infer_random_lookup, rnd, (cphil_wtype)pr, &m))) break;
            for (int mode = 0; mode < 2 && !st; mode++) {
                const char *mn = mode ? "stream" : "window";
                if (!cphil_bench_in_list(modes, mn)) continue;
                cphil_bench_row row = {cphil_backbone_name((cphil_backbone)bb), cphil_bench_precision_name((cphil_wtype)pr),
                                       mn, cphil_infer_model_params(m), {0, 0, 0, 0, 0}};
                if ((st = cphil_bench_run(m, (cphil_infer_mode)mode, &fr, seconds, &row.r))) break;
                fn(user, &row);
            }
            cphil_infer_model_free(m);
        }
        cphil_bench_frames_free(&fr);
        cphil_infer_random_close(rnd);
    }
    return st;
}
