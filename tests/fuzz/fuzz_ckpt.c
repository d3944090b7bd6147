/* fuzz_ckpt.c — libFuzzer target for the training checkpoint reader and the trainer's resume
 * checks (built by `make fuzz_ckpt`, run bounded by tests/t_fuzz_train_files.sh).
 *
 * Each input is written to a file and resumed from by cphil_train_run with a small stand-in
 * model (sections like the policy's: params, AdamW moments, step) whose data ops stop the run at
 * its first batch, so nothing is trained or written: only the container reader, the metadata
 * parser and every range check run. Inputs whose first byte is odd are "resealed" first: their
 * section hashes, manifest hash and trailer are recomputed as the writer would, so mutations reach
 * the semantic checks behind the checksums instead of stopping at them.
 *
 * Seeds: with CPHIL_FUZZ_SEED_DIR set, LLVMFuzzerInitialize first trains the stand-in model for
 * real (3 epochs of 4 batches) and writes valid checkpoints there: interrupted mid-epoch 2, the
 * epoch-end (_best) one, a --max-steps stop, and a finished run.
 * ASan and UBSan catch memory and undefined-behaviour errors. */
#include "train/trainer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

enum { NP = 61 };
typedef struct fz_model {
    float params[NP], m[NP], v[NP];
    int64_t step;
} fz_model;
static fz_model model;
static uint8_t btn[8], cls[5] = {8, 8, 8, 8, 0};
static float zeros[CPHIL_N_LOGITS];
static bool train_for_real; /* seed writing: batches are served; fuzzing: the first batch stops */

static cphil_status fz_step(void *self, const cphil_tr_batch *b, double lr, double *loss) {
    fz_model *m = self;
    (void)b;
    for (int i = 0; i < NP; i++) {
        m->params[i] += (float)lr * 0.01f * (float)(i % 7);
        m->m[i] = 0.9f * m->m[i] + 0.1f * (float)i;
        m->v[i] = 0.99f * m->v[i] + 0.01f * (float)(i * i);
    }
    m->step++;
    *loss = 1.0 / (double)m->step;
    return CPHIL_OK;
}
static cphil_status fz_eval(void *self, const cphil_tr_batch *b, float *logits, double *loss) {
    (void)self;
    (void)b;
    memcpy(logits, zeros, sizeof zeros);
    *loss = 0.5;
    return CPHIL_OK;
}
static int fz_sections(void *self, cphil_tr_section *out, int cap) {
    fz_model *m = self;
    if (cap < 4) return 0;
    out[0] = (cphil_tr_section){"params", m->params, sizeof m->params, CPHIL_TR_SEC_F32_FINITE};
    out[1] = (cphil_tr_section){"adamw_m", m->m, sizeof m->m, CPHIL_TR_SEC_F32_FINITE};
    out[2] = (cphil_tr_section){"adamw_v", m->v, sizeof m->v, CPHIL_TR_SEC_F32_NONNEG};
    out[3] = (cphil_tr_section){"adamw_step", &m->step, sizeof m->step, CPHIL_TR_SEC_I64_NONNEG};
    return 4;
}
static cphil_status fz_save(void *self, const char *path, const char *meta) {
    (void)meta;
    fz_model *m = self;
    return cphil_file_write_atomic(path, m->params, sizeof m->params);
}
static const char *fz_config(void *self) {
    (void)self;
    return "{\"backbone\":\"fuzz\",\"n\":61}";
}
static void fill(cphil_tr_batch *b) {
    memset(b, 0, sizeof *b);
    b->B = 1;
    b->T = 1;
    b->btn = btn;
    b->cls = cls;
}
static cphil_status fz_begin(void *self, uint64_t seed, int epoch, size_t *nb) {
    (void)self;
    (void)seed;
    (void)epoch;
    *nb = 4;
    return CPHIL_OK;
}
static cphil_status fz_next(void *self, cphil_tr_batch *b) {
    (void)self;
    if (!train_for_real) return cphil_err(CPHIL_E_INTERNAL, "fuzz: stop at the first batch");
    fill(b);
    return CPHIL_OK;
}
static cphil_status fz_vbegin(void *self, size_t *nb) {
    (void)self;
    *nb = 1;
    return CPHIL_OK;
}
static cphil_status fz_vnext(void *self, cphil_tr_batch *b) {
    (void)self;
    fill(b);
    return CPHIL_OK;
}
static const cphil_tr_model_ops MOPS = {fz_step, fz_eval, fz_sections, fz_save, fz_config, NULL};
static const cphil_tr_data_ops DOPS = {fz_begin, fz_next, fz_vbegin, fz_vnext, 1};

static char out_dir[256], in_path[300];
static void write_ckpts(const char *dir);

static void opts(cphil_trainer_opts *o, const char *dir, const char *name) {
    cphil_trainer_opts_default(o);
    o->epochs = 3;
    o->seed = 9;
    o->warmup_steps = 2;
    o->out_dir = dir;
    o->name = name;
}

/* seed = one mode byte (1: reseal, a no-op on a valid file) + the checkpoint */
static void copy_seed(const char *work, const char *name, const char *dir) {
    char src[600], dst[600];
    snprintf(src, sizeof src, "%s/%s", work, name);
    snprintf(dst, sizeof dst, "%s/%s.seed", dir, name);
    uint8_t *buf;
    size_t n;
    if (cphil_file_read(src, (size_t)1 << 24, &buf, &n) != CPHIL_OK) abort();
    FILE *f = fopen(dst, "wb");
    if (!f) abort();
    fputc(1, f);
    if (fwrite(buf, 1, n, f) != n) abort();
    fclose(f);
    cphil_free(buf);
}

static void write_seeds(const char *dir) {
    char work[300];
    snprintf(work, sizeof work, "%s/seedwork", out_dir);
    if (cphil_mkdir_p(work) != CPHIL_OK) abort();
    write_ckpts(work);
    const char *names[] = {"mid.ckpt", "mid_best.ckpt", "maxsteps.ckpt", "done.ckpt"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) copy_seed(work, names[i], dir);
    /* the harness is only useful if valid checkpoints get through every check: the mid-run ones
     * must reach the first batch, the finished one must be refused as finished */
    const cphil_status want[] = {CPHIL_E_INTERNAL, CPHIL_E_INTERNAL, CPHIL_E_INTERNAL, CPHIL_E_ARG};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char src[600];
        snprintf(src, sizeof src, "%s/%s", work, names[i]);
        cphil_trainer_opts o;
        opts(&o, out_dir, "fuzz");
        o.resume = src;
        cphil_tr_result r;
        cphil_status st = cphil_train_run(&o, &MOPS, &model, &DOPS, NULL, NULL, &r);
        cphil_tr_result_free(&r);
        if (st != want[i]) {
            fprintf(stderr, "fuzz_ckpt: seed %s: status %d, expected %d: %s\n", names[i], (int)st, (int)want[i],
                    cphil_last_error());
            abort();
        }
    }
}

static void write_ckpts(const char *dir) {
    train_for_real = true;
    cphil_trainer_opts o;
    cphil_tr_result r;
    opts(&o, dir, "mid");
    o.stop_after_steps = 6; /* epoch 2, batch 2; mid_best.ckpt is the end of epoch 1 */
    memset(&model, 0, sizeof model);
    if (cphil_train_run(&o, &MOPS, &model, &DOPS, NULL, NULL, &r) != CPHIL_OK) abort();
    cphil_tr_result_free(&r);
    opts(&o, dir, "maxsteps");
    o.max_steps = 7;
    memset(&model, 0, sizeof model);
    if (cphil_train_run(&o, &MOPS, &model, &DOPS, NULL, NULL, &r) != CPHIL_OK) abort();
    cphil_tr_result_free(&r);
    opts(&o, dir, "done");
    memset(&model, 0, sizeof model);
    if (cphil_train_run(&o, &MOPS, &model, &DOPS, NULL, NULL, &r) != CPHIL_OK) abort();
    cphil_tr_result_free(&r);
    train_for_real = false;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    const char *tmp = getenv("TMPDIR");
    snprintf(out_dir, sizeof out_dir, "%s/cphil_fuzz_ckpt.%ld", tmp && *tmp ? tmp : "/tmp", (long)getpid());
    if (cphil_mkdir_p(out_dir) != CPHIL_OK) abort();
    snprintf(in_path, sizeof in_path, "%s/input.ckpt", out_dir);
    const char *seeds = getenv("CPHIL_FUZZ_SEED_DIR");
    if (seeds && *seeds) {
        if (cphil_mkdir_p(seeds) != CPHIL_OK) abort();
        write_seeds(seeds);
    }
    return 0;
}

static uint64_t rd64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}
static void wr64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static size_t pad8(size_t n) { return (8 - (n & 7)) & 7; }

/* Recompute the hashes and trailer the way cphil_ckpt_write lays them out (ckpt.h), as far as
 * the layout parses; the reader's other checks are left to find what is wrong. */
static void reseal(uint8_t *b, size_t n) {
    if (n < 48) return;
    size_t end = n - 24, off = 24;
    uint64_t h = cphil_hash64(b, 24, 0x43504849);
    uint64_t ml = rd64(b + 16);
    if (ml <= end - off) {
        h = cphil_hash64(b + off, (size_t)ml, h);
        off += (size_t)ml + pad8((size_t)ml);
        uint32_t ns = (uint32_t)b[12] | (uint32_t)b[13] << 8 | (uint32_t)b[14] << 16 | (uint32_t)b[15] << 24;
        for (uint32_t i = 0; i < ns && i < CPHIL_CKPT_MAX_SECTIONS && off + 4 <= end; i++) {
            uint32_t nl = (uint32_t)b[off] | (uint32_t)b[off + 1] << 8 | (uint32_t)b[off + 2] << 16 |
                          (uint32_t)b[off + 3] << 24;
            off += 4;
            if (nl == 0 || nl > CPHIL_CKPT_MAX_NAME || nl > end - off) break;
            h = cphil_hash64(b + off, nl, h);
            off += nl + pad8(4 + nl);
            if (off + 16 > end) break;
            uint64_t sz = rd64(b + off);
            if (sz > end - off - 16) break;
            wr64(b + off + 8, cphil_hash64(b + off + 16, (size_t)sz, 0));
            h = cphil_hash64(b + off, 16, h);
            off += 16 + (size_t)sz + pad8((size_t)sz);
            if (off > end) break;
        }
    }
    wr64(b + end, end);
    wr64(b + end + 8, h);
    memcpy(b + end + 16, "CKPTEND1", 8);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint8_t *b = malloc(size ? size : 1);
    if (!b) return 0;
    memcpy(b, data, size);
    if (size > 0 && (data[0] & 1)) {
        /* the first byte chooses resealing; the checkpoint proper starts at byte 1 */
        memmove(b, b + 1, size - 1);
        size--;
        reseal(b, size);
    } else if (size > 0) {
        memmove(b, b + 1, size - 1);
        size--;
    }
    FILE *f = fopen(in_path, "wb");
    if (!f) abort();
    if (size && fwrite(b, 1, size, f) != size) abort();
    fclose(f);
    free(b);
    cphil_trainer_opts o;
    opts(&o, out_dir, "fuzz");
    o.resume = in_path;
    memset(&model, 0, sizeof model);
    cphil_tr_result r;
    cphil_status st = cphil_train_run(&o, &MOPS, &model, &DOPS, NULL, NULL, &r);
    cphil_tr_result_free(&r);
    /* accepted: the loaded values passed the checks the loop relies on */
    if (st == CPHIL_E_INTERNAL) {
        for (int i = 0; i < NP; i++)
            if (!(model.params[i] == model.params[i]) || !(model.v[i] >= 0)) abort();
        if (model.step < 0) abort();
    }
    return 0;
}
