/* test_train.c — the training module's parts that stand alone: the checkpoint container
 * (round trip; truncated, corrupted, foreign and mismatched files refused), the evaluation
 * metrics and baselines on hand-computed cases, the curves files, and the distillation loss
 * (finite-difference gradient check; alpha 1 ignores the human targets, alpha 0 the teacher). */
#include "harness.h"
#include "train/ckpt.h"
#include "train/curves.h"
#include "train/distill_loss.h"
#include "train/metrics.h"
#include "train/softlabels.h"
#include "core/safetensors.h"

#include <math.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <dirent.h>
#include <unistd.h>

static void path_in_tmp(char *buf, size_t n, const char *name) { snprintf(buf, n, "%s/%s", harness_tmpdir(), name); }

static size_t write_sample_ckpt(const char *path) {
    float a[37];
    uint8_t bb[5] = {1, 2, 3, 4, 5};
    for (int i = 0; i < 37; i++) a[i] = (float)i * 0.5f;
    cphil_ckpt_section s[3] = {{"params", a, sizeof a}, {"rng", bb, 5}, {"empty", NULL, 0}};
    if (cphil_ckpt_write(path, "{\"backbone\":\"lstm\"}", s, 3) != CPHIL_OK) return 0;
    FILE *f = fopen(path, "rb");
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fclose(f);
    return (size_t)n;
}

TEST(ckpt_round_trip) {
    char p[512];
    path_in_tmp(p, sizeof p, "t.ckpt");
    CHECK(write_sample_ckpt(p) > 0);
    cphil_ckpt c;
    CHECK_MSG(cphil_ckpt_read(p, &c) == CPHIL_OK, "%s", cphil_last_error());
    CHECK_STR(c.meta, "{\"backbone\":\"lstm\"}");
    CHECK_EQ_INT(c.n, 3);
    uint64_t n = 0;
    const float *a = cphil_ckpt_find(&c, "params", &n);
    CHECK(a && n == 37 * sizeof(float) && a[36] == 18.0f);
    const uint8_t *r = cphil_ckpt_find(&c, "rng", &n);
    CHECK(r && n == 5 && r[4] == 5);
    CHECK(cphil_ckpt_find(&c, "nope", NULL) == NULL);
    const void *d;
    CHECK(cphil_ckpt_get(&c, p, "params", 37 * sizeof(float), &d) == CPHIL_OK && d == a);
    CHECK(cphil_ckpt_get(&c, p, "params", 36 * sizeof(float), &d) == CPHIL_E_MISMATCH);
    CHECK(strstr(cphil_last_error(), "different model") != NULL);
    CHECK(cphil_ckpt_get(&c, p, "adam_m", 8, &d) == CPHIL_E_MISMATCH);
    cphil_ckpt_close(&c);
}

static cphil_status read_modified(const char *src, const char *dst, long cut, long flip_at) {
    uint8_t *buf;
    size_t n;
    if (cphil_file_read(src, 1 << 20, &buf, &n) != CPHIL_OK) return CPHIL_E_INTERNAL;
    if (cut >= 0) n = (size_t)cut;
    if (flip_at >= 0) buf[flip_at] ^= 0x10;
    cphil_file_write_atomic(dst, buf, n);
    cphil_free(buf);
    cphil_ckpt c;
    cphil_status s = cphil_ckpt_read(dst, &c);
    if (s == CPHIL_OK) cphil_ckpt_close(&c);
    return s;
}

TEST(ckpt_refuses_truncated_corrupt_foreign) {
    char p[512], q[512];
    path_in_tmp(p, sizeof p, "t2.ckpt");
    path_in_tmp(q, sizeof q, "t2bad.ckpt");
    size_t n = write_sample_ckpt(p);
    CHECK(n > 100);
    /* every truncation is refused */
    for (long cut = 0; cut < (long)n; cut += 7) {
        cphil_status s = read_modified(p, q, cut, -1);
        CHECK_MSG(s != CPHIL_OK, "truncated at %ld accepted", cut);
    }
    CHECK(read_modified(p, q, (long)n - 1, -1) == CPHIL_E_TRUNCATED);
    CHECK(strstr(cphil_last_error(), "t2bad.ckpt") != NULL);
    /* a flipped bit in the data of "params" names the section */
    CHECK(read_modified(p, q, -1, 24 + 24 + 8 + 16 + 20) == CPHIL_E_FORMAT);
    CHECK_MSG(strstr(cphil_last_error(), "'params'") != NULL, "%s", cphil_last_error());
    /* a flipped bit in the metadata */
    CHECK(read_modified(p, q, -1, 30) == CPHIL_E_FORMAT);
    /* every single-byte flip outside padding is refused or harmless: the magic, version */
    CHECK(read_modified(p, q, -1, 0) == CPHIL_E_FORMAT);
    CHECK(strstr(cphil_last_error(), "not a cphil checkpoint") != NULL);
    CHECK(read_modified(p, q, -1, 8) == CPHIL_E_MISMATCH);
    /* a file of another kind */
    static const char junk[] = "PK\x03\x04 not a checkpoint at all, just some bytes here........";
    CHECK(cphil_file_write_atomic(q, junk, sizeof junk) == CPHIL_OK);
    cphil_ckpt c;
    CHECK(cphil_ckpt_read(q, &c) == CPHIL_E_FORMAT);
    CHECK(cphil_ckpt_read("/nonexistent/x.ckpt", &c) == CPHIL_E_IO);
}

TEST(hash64_is_stable_and_sensitive) {
    uint8_t a[100];
    for (int i = 0; i < 100; i++) a[i] = (uint8_t)i;
    uint64_t h = cphil_hash64(a, 100, 0);
    CHECK(h == cphil_hash64(a, 100, 0));
    for (int i = 0; i < 100; i += 13) {
        a[i] ^= 1;
        CHECK(cphil_hash64(a, 100, 0) != h);
        a[i] ^= 1;
    }
    CHECK(cphil_hash64(a, 99, 0) != cphil_hash64(a, 100, 0));
    CHECK(cphil_hash64(a, 0, 0) != cphil_hash64(a, 0, 1));
}

/* Targets of a tiny replay: buttons A pressed on frames 1..2, main_x 8,8,12,12,12; shoulder 0. */
static void tiny_targets(uint8_t btn[5][8], uint8_t cls[5][5]) {
    memset(btn, 0, 40);
    for (int t = 0; t < 5; t++) {
        cls[t][0] = t < 2 ? 8 : 12;
        cls[t][1] = 8;
        cls[t][2] = 8;
        cls[t][3] = 8;
        cls[t][4] = 0;
    }
    btn[1][0] = btn[2][0] = 1;
}

TEST(baselines_hand_computed) {
    uint8_t btn[5][8], cls[5][5];
    tiny_targets(btn, cls);
    cphil_baseline_fit f;
    cphil_baseline_fit_init(&f);
    cphil_baseline_fit_add(&f, &btn[0][0], &cls[0][0], 0, 5);
    CHECK(f.frames == 5 && f.press[0] == 2 && f.cls[0][12] == 3 && f.cls[0][8] == 2);
    /* repeats of main_x: neutral->8 yes, 8->8 yes, 8->12 no, 12->12 yes twice: 4 of 5 */
    CHECK(f.cls_repeat[0] == 4);
    CHECK(f.btn_repeat[0] == 3); /* 0->0 yes, 0->1 no, 1->1 yes, 1->0 no, 0->0 yes */
    cphil_eval_acc a;
    cphil_eval_acc_init(&a);
    cphil_eval_acc_add(&a, &f, NULL, &btn[0][0], &cls[0][0], 0, 5, NULL, NULL);
    cphil_head_report mf, rp;
    cphil_head_sums_report(&a.most_frequent, &mf);
    cphil_head_sums_report(&a.repeat_prev, &rp);
    /* most frequent main_x is 12: right on 3 of 5 frames; NLL = mean -log((count+1)/(5+17)) */
    CHECK_NEAR(mf.acc[1], 0.6, 1e-12, 0);
    double want = -(3 * log(4.0 / 22) + 2 * log(3.0 / 22)) / 5;
    CHECK_NEAR(mf.nll[1], want, 1e-6, 1e-6);
    /* buttons: A not pressed most of the time: right on 3 of 5 frames */
    CHECK_NEAR(mf.acc[0], 0.6, 1e-12, 0);
    /* repeat: main_x right 4 of 5; buttons all-8-right 3 of 5 */
    CHECK_NEAR(rp.acc[1], 0.8, 1e-12, 0);
    CHECK_NEAR(rp.acc[0], 0.6, 1e-12, 0);
    double r = 5.0 / 7; /* (4 + 1) / (5 + 2) */
    double want_rp = -(4 * log(r) + log((1 - r) / 16)) / 5;
    CHECK_NEAR(rp.nll[1], want_rp, 1e-6, 1e-6);
    CHECK_NEAR(mf.acc[5], 1.0, 0, 0);
}

TEST(model_scoring_matches_definition) {
    uint8_t btn[5][8], cls[5][5];
    tiny_targets(btn, cls);
    float z[5][CPHIL_N_LOGITS];
    memset(z, 0, sizeof z);
    for (int t = 0; t < 5; t++) {
        z[t][0] = btn[t][0] ? 3.0f : -3.0f;      /* A right */
        for (int k = 1; k < 8; k++) z[t][k] = -2.0f; /* others right */
        z[t][cphil_head_offset[1 + 0] + cls[t][0]] = 5.0f;
        z[t][cphil_head_offset[1 + 1] + (t == 4 ? 3 : 8)] = 5.0f; /* wrong on the last frame */
    }
    cphil_head_sums s = {0};
    for (int t = 0; t < 5; t++) cphil_head_sums_add_logits(&s, z[t], btn[t], cls[t]);
    cphil_head_report r;
    cphil_head_sums_report(&s, &r);
    CHECK_NEAR(r.acc[0], 1.0, 0, 0);
    CHECK_NEAR(r.acc[1], 1.0, 0, 0);
    CHECK_NEAR(r.acc[2], 0.8, 1e-12, 0);
    double bnll = log1p(exp(-3.0)) + 7 * log1p(exp(-2.0));
    CHECK_NEAR(r.nll[0], bnll, 1e-6, 1e-6);
    double nll_right = -(5 - log(exp(5) + 16)), nll_wrong = -(0 - log(exp(5) + 16));
    CHECK_NEAR(r.nll[2], (4 * nll_right + nll_wrong) / 5, 1e-6, 1e-6);
    /* c_x, c_y, shoulder: uniform logits -> NLL log C, argmax class 0 */
    CHECK_NEAR(r.nll[3], log(17.0), 1e-6, 1e-6);
    CHECK_NEAR(r.nll[5], log(5.0), 1e-6, 1e-6);
    CHECK_NEAR(r.acc[5], 1.0, 0, 0); /* shoulder target 0 == argmax of ties (first) */
    CHECK_NEAR(r.acc_all, 0.0, 0, 0); /* c_x / c_y targets 8 vs argmax 0: never all right */
}

/* Change rates on the tiny replay, by hand. Human states: (no button, mx 8), (A, 8), (A, 12),
 * (none, 12), (none, 12): pairs 4; buttons change twice, main_x once, the state 3 times. The
 * policy of model_scoring_matches_definition follows buttons and main_x but picks main_y 3 on
 * the last frame: its state changes on all 4 pairs, main_y once. */
TEST(change_rates_hand_computed) {
    uint8_t btn[5][8], cls[5][5];
    tiny_targets(btn, cls);
    cphil_change_sums hu, mo;
    memset(&hu, 0, sizeof hu);
    memset(&mo, 0, sizeof mo);
    cphil_change_begin_replay(&hu);
    cphil_change_begin_replay(&mo);
    for (int t = 0; t < 5; t++) {
        float z[CPHIL_N_LOGITS];
        memset(z, 0, sizeof z);
        z[0] = btn[t][0] ? 3.0f : -3.0f;
        for (int k = 1; k < 8; k++) z[k] = -2.0f;
        z[cphil_head_offset[1] + cls[t][0]] = 5.0f;
        z[cphil_head_offset[2] + (t == 4 ? 3 : 8)] = 5.0f;
        uint8_t s[CPHIL_TR_N_HEADS];
        cphil_target_state(btn[t], cls[t], s);
        cphil_change_add(&hu, s);
        cphil_decide_logits(z, s);
        CHECK(s[0] == (btn[t][0] ? 1 : 0) && s[1] == cls[t][0] && s[3] == 0);
        cphil_change_add(&mo, s);
    }
    double rh[CPHIL_TR_N_HEADS], rm[CPHIL_TR_N_HEADS], ah, am;
    cphil_change_rates(&hu, rh, &ah);
    cphil_change_rates(&mo, rm, &am);
    CHECK(hu.pairs == 4 && mo.pairs == 4);
    CHECK_NEAR(ah, 0.75, 1e-12, 0);
    CHECK_NEAR(rh[0], 0.5, 1e-12, 0);
    CHECK_NEAR(rh[1], 0.25, 1e-12, 0);
    CHECK_NEAR(rh[2], 0.0, 0, 0);
    CHECK_NEAR(am, 1.0, 1e-12, 0);
    CHECK_NEAR(rm[2], 0.25, 1e-12, 0);
    CHECK_NEAR(rm[3], 0.0, 0, 0);
    /* a new replay starts a new chain: its first frame is no pair */
    cphil_change_begin_replay(&hu);
    uint8_t s[CPHIL_TR_N_HEADS] = {0xFF, 0, 0, 0, 0, 4};
    cphil_change_add(&hu, s);
    CHECK(hu.pairs == 4);
}

TEST(curves_csv_and_svg) {
    cphil_curve_row rows[3];
    memset(rows, 0, sizeof rows);
    for (int i = 0; i < 3; i++) {
        rows[i].epoch = i + 1;
        rows[i].step = 10u * (unsigned)(i + 1);
        rows[i].train_loss = 3.0 - i;
        rows[i].val_loss = i == 0 ? NAN : 2.5 - i;
        for (int h = 0; h < CPHIL_TR_N_HEADS; h++) rows[i].acc[h] = 0.5 + 0.1 * i;
        rows[i].best = i == 2;
    }
    char p[512], q[512];
    path_in_tmp(p, sizeof p, "curves.csv");
    path_in_tmp(q, sizeof q, "curves.svg");
    CHECK(cphil_curves_write_csv(p, rows, 3) == CPHIL_OK);
    CHECK(cphil_curves_write_svg(q, rows, 3, "mamba <test>") == CPHIL_OK);
    uint8_t *d;
    size_t n;
    CHECK(cphil_file_read(p, 1 << 20, &d, &n) == CPHIL_OK);
    CHECK(strncmp((char *)d, "epoch,step,train_loss,val_loss,acc_buttons,acc_main_x", 53) == 0);
    CHECK(memmem(d, n, "\n1,10,3,,0.5,", 13) != NULL); /* NaN val loss is an empty cell */
    CHECK(memmem(d, n, ",1\n", 3) != NULL);
    cphil_free(d);
    CHECK(cphil_file_read(q, 1 << 20, &d, &n) == CPHIL_OK);
    CHECK(memmem(d, n, "<svg", 4) && memmem(d, n, "</svg>", 6) && memmem(d, n, "mamba &lt;test&gt;", 18));
    CHECK(memmem(d, n, "polyline", 8) != NULL);
    cphil_free(d);
}

/* Deterministic pseudo-random numbers for the fixtures. */
static double urand(unsigned *s) {
    *s = *s * 1103515245u + 12345u;
    return ((*s >> 8) & 0xffff) / 65536.0;
}

static void distill_fixture(float *z, float *p, uint8_t *btn, uint8_t *cls, int n, unsigned seed) {
    float zt[CPHIL_N_LOGITS];
    for (int t = 0; t < n; t++) {
        for (int k = 0; k < CPHIL_N_LOGITS; k++) {
            z[t * CPHIL_N_LOGITS + k] = (float)(urand(&seed) * 6 - 3);
            zt[k] = (float)(urand(&seed) * 8 - 4);
        }
        cphil_soft_probs(zt, 2.0, p + t * CPHIL_N_LOGITS);
        for (int k = 0; k < 8; k++) btn[t * 8 + k] = urand(&seed) < 0.3;
        for (int h = 0; h < 5; h++) cls[t * 5 + h] = (uint8_t)(urand(&seed) * cphil_head_classes[1 + h]);
    }
}

TEST(distill_gradient_check) {
    enum { N = 3 };
    float z[N * CPHIL_N_LOGITS], p[N * CPHIL_N_LOGITS], dz[N * CPHIL_N_LOGITS];
    uint8_t btn[N * 8], cls[N * 5];
    distill_fixture(z, p, btn, cls, N, 7);
    const double Ts[3] = {1.0, 2.0, 4.0}, alphas[3] = {0.0, 0.7, 1.0};
    for (int ti = 0; ti < 3; ti++)
        for (int ai = 0; ai < 3; ai++) {
            cphil_distill_terms o;
            cphil_distill_loss(z, p, btn, cls, N, Ts[ti], alphas[ai], dz, &o);
            CHECK(isfinite(o.loss) && o.soft >= -1e-9 && o.hard > 0);
            for (int i = 0; i < N * CPHIL_N_LOGITS; i += 5) {
                float save = z[i];
                z[i] = save + 1e-2f;
                float up = z[i];
                cphil_distill_terms a, b;
                cphil_distill_loss(z, p, btn, cls, N, Ts[ti], alphas[ai], NULL, &a);
                z[i] = save - 1e-2f;
                float dn = z[i];
                cphil_distill_loss(z, p, btn, cls, N, Ts[ti], alphas[ai], NULL, &b);
                z[i] = save;
                double fd = (a.loss - b.loss) / ((double)up - (double)dn);
                CHECK_MSG(fabs(fd - dz[i]) <= 2e-5 + 2e-3 * fabs(fd), "T=%g alpha=%g i=%d fd %.8g analytic %.8g",
                          Ts[ti], alphas[ai], i, fd, (double)dz[i]);
            }
        }
}

TEST(distill_alpha_and_temperature_behave) {
    enum { N = 4 };
    float z[N * CPHIL_N_LOGITS], p[N * CPHIL_N_LOGITS], p2[N * CPHIL_N_LOGITS], dz1[N * CPHIL_N_LOGITS],
        dz2[N * CPHIL_N_LOGITS];
    uint8_t btn[N * 8], cls[N * 5], btn2[N * 8], cls2[N * 5];
    distill_fixture(z, p, btn, cls, N, 11);
    distill_fixture(z, p2, btn2, cls2, N, 12); /* other teacher and other human targets, same z */
    distill_fixture(z, p, btn, cls, N, 11);
    cphil_distill_terms a, b;
    /* alpha 1: human targets change nothing */
    cphil_distill_loss(z, p, btn, cls, N, 2.0, 1.0, dz1, &a);
    cphil_distill_loss(z, p, btn2, cls2, N, 2.0, 1.0, dz2, &b);
    CHECK(a.loss == b.loss && !memcmp(dz1, dz2, sizeof dz1));
    CHECK_NEAR(a.loss, 4.0 * a.soft, 1e-12, 1e-12); /* T^2 * soft */
    /* alpha 0: the teacher changes nothing */
    cphil_distill_loss(z, p, btn, cls, N, 2.0, 0.0, dz1, &a);
    cphil_distill_loss(z, p2, btn, cls, N, 2.0, 0.0, dz2, &b);
    CHECK(a.loss == b.loss && !memcmp(dz1, dz2, sizeof dz1));
    CHECK_NEAR(a.loss, a.hard, 1e-12, 1e-12);
    /* the soft term is zero when the student equals the teacher at T */
    float zt[CPHIL_N_LOGITS], pt[CPHIL_N_LOGITS];
    for (int k = 0; k < CPHIL_N_LOGITS; k++) zt[k] = (float)(k % 7) - 3.0f;
    for (int ti = 1; ti <= 3; ti++) {
        cphil_soft_probs(zt, (double)ti, pt);
        cphil_distill_loss(zt, pt, btn, cls, 1, (double)ti, 1.0, NULL, &a);
        CHECK_NEAR(a.soft, 0.0, 1e-5, 0);
    }
    /* probabilities sum to one per categorical head */
    for (int h = 0; h < 5; h++) {
        double sum = 0;
        for (int k = 0; k < cphil_head_classes[1 + h]; k++) sum += pt[cphil_head_offset[1 + h] + k];
        CHECK_NEAR(sum, 1.0, 1e-5, 0);
    }
}

TEST(f16_round_trip) {
    const float exact[] = {0.0f, 1.0f, 0.5f, 0.25f, 0.125f, 1e-3f, 0.999f, 6.1035156e-05f, 5.9604645e-08f};
    for (size_t i = 0; i < CPHIL_ARRAY_LEN(exact); i++) {
        float back = cphil_f16_to_f32(cphil_f32_to_f16(exact[i]));
        CHECK_NEAR(back, exact[i], 0, 1.0 / 2048); /* half has 11 significant bits */
    }
    CHECK(cphil_f32_to_f16(1.0f) == 0x3c00);
    CHECK(cphil_f32_to_f16(0.5f) == 0x3800);
    CHECK(cphil_f32_to_f16(-2.0f) == 0xc000);
    CHECK(cphil_f32_to_f16(1.0f + 1.0f / 2048) == 0x3c00);          /* ties to even: down */
    CHECK(cphil_f32_to_f16(1.0f + 3.0f / 2048) == 0x3c02);          /* ties to even: up */
    CHECK(cphil_f32_to_f16(1e6f) == 0x7c00);                         /* overflow: inf */
    for (uint32_t h = 0; h < 0x7c00; h += 7) CHECK(cphil_f32_to_f16(cphil_f16_to_f32((uint16_t)h)) == h);
}

static cphil_status write_soft(const char *path, int n) {
    cphil_sl_writer w;
    cphil_sl_writer_init(&w);
    float z[CPHIL_N_LOGITS], p[CPHIL_N_LOGITS];
    for (int f = 0; f < n; f++) {
        for (int k = 0; k < CPHIL_N_LOGITS; k++) z[k] = (float)((k * 7 + f * 3) % 11) - 5.0f;
        cphil_soft_probs(z, 2.0, p);
        if (cphil_sl_writer_add(&w, (uint32_t)(10 + f), p) != CPHIL_OK) return CPHIL_E_NOMEM;
    }
    cphil_status s = cphil_sl_writer_write(&w, path, 0x1234, 1, 0xabcdef, 1000, 2.0f, 0, "{\"dataset\":\"x.ds\"}");
    cphil_sl_writer_free(&w);
    return s;
}

TEST(soft_label_file_round_trip_and_refusals) {
    char p[512], q[512];
    path_in_tmp(p, sizeof p, "soft.bin");
    path_in_tmp(q, sizeof q, "soft_bad.bin");
    CHECK(write_soft(p, 37) == CPHIL_OK);
    cphil_softlabels s;
    CHECK_MSG(cphil_softlabels_read(p, &s) == CPHIL_OK, "%s", cphil_last_error());
    CHECK(s.n_frames == 37 && s.layout_hash == 0x1234 && s.flags == 1 && s.dataset_checksum == 0xabcdef);
    CHECK(s.dataset_rows == 1000 && s.temperature == 2.0f && strstr(s.meta, "x.ds"));
    CHECK(cphil_softlabels_row(&s, 36) == 46);
    float got[CPHIL_N_LOGITS], z[CPHIL_N_LOGITS], want[CPHIL_N_LOGITS];
    for (int k = 0; k < CPHIL_N_LOGITS; k++) z[k] = (float)((k * 7 + 5 * 3) % 11) - 5.0f;
    cphil_soft_probs(z, 2.0, want);
    cphil_softlabels_probs(&s, 5, got);
    for (int k = 0; k < CPHIL_N_LOGITS; k++) CHECK_NEAR(got[k], want[k], 1e-4, 1e-3);
    cphil_softlabels_close(&s);
    uint8_t *buf;
    size_t n;
    CHECK(cphil_file_read(p, 1 << 24, &buf, &n) == CPHIL_OK);
    /* truncated */
    CHECK(cphil_file_write_atomic(q, buf, n - 3) == CPHIL_OK);
    CHECK(cphil_softlabels_read(q, &s) == CPHIL_E_TRUNCATED);
    /* a flipped bit in the probabilities */
    buf[200] ^= 4;
    CHECK(cphil_file_write_atomic(q, buf, n) == CPHIL_OK);
    CHECK(cphil_softlabels_read(q, &s) == CPHIL_E_FORMAT);
    CHECK(strstr(cphil_last_error(), "damaged") != NULL);
    buf[200] ^= 4;
    /* a flipped bit in the header */
    buf[20] ^= 1;
    CHECK(cphil_file_write_atomic(q, buf, n) == CPHIL_OK);
    CHECK(cphil_softlabels_read(q, &s) == CPHIL_E_FORMAT);
    buf[20] ^= 1;
    /* another version / another kind of file */
    buf[8] = 9;
    CHECK(cphil_file_write_atomic(q, buf, n) == CPHIL_OK);
    CHECK(cphil_softlabels_read(q, &s) == CPHIL_E_MISMATCH);
    memcpy(buf, "CPHILCKP", 8);
    CHECK(cphil_file_write_atomic(q, buf, n) == CPHIL_OK);
    CHECK(cphil_softlabels_read(q, &s) == CPHIL_E_FORMAT);
    CHECK(strstr(cphil_last_error(), "not a cphil soft-label file") != NULL);
    cphil_free(buf);
}

static void le64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void le32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
/* Re-seal a soft-label image after an edit: body checksum, then header checksum (so only the
 * edited field can be what the reader refuses). */
static void sl_reseal(uint8_t *b, size_t n) {
    le64(b + 104, cphil_hash64(b + CPHIL_SL_HEADER, n - CPHIL_SL_HEADER, 0));
    le64(b + 112, cphil_hash64(b, 112, 0));
}

TEST(soft_label_reader_refuses_wrapping_offsets_flags_and_non_distributions) {
    char p[512], q[512];
    path_in_tmp(p, sizeof p, "soft2.bin");
    path_in_tmp(q, sizeof q, "soft2_bad.bin");
    CHECK(write_soft(p, 5) == CPHIL_OK);
    uint8_t *buf;
    size_t n;
    CHECK(cphil_file_read(p, 1 << 24, &buf, &n) == CPHIL_OK);
    uint8_t *w = malloc(n);
    cphil_softlabels s;
    /* C4: offsets and counts near 2^64 pass "offset + size <= n" by wrapping around */
    const struct {
        int at;
        uint64_t v;
    } wraps[] = {
        {64, UINT64_MAX - 15},                    /* off_rows */
        {72, UINT64_MAX - 100},                   /* off_probs */
        {80, UINT64_MAX - 7},                     /* off_meta */
        {88, UINT64_MAX - 3},                     /* meta_len */
        {16, (uint64_t)1 << 62},                  /* n_frames: n_frames * 4 wraps to 0 */
        {16, ((uint64_t)1 << 63) / 81 + 1},       /* n_frames * 162 wraps */
        {64, 0},                                  /* rows inside the header */
    };
    for (size_t i = 0; i < CPHIL_ARRAY_LEN(wraps); i++) {
        memcpy(w, buf, n);
        le64(w + wraps[i].at, wraps[i].v);
        sl_reseal(w, n);
        CHECK(cphil_file_write_atomic(q, w, n) == CPHIL_OK);
        cphil_status st = cphil_softlabels_read(q, &s);
        CHECK_MSG(st == CPHIL_E_FORMAT && strstr(cphil_last_error(), "does not fit"), "field %d = %llx: %d %s",
                  wraps[i].at, (unsigned long long)wraps[i].v, (int)st, cphil_last_error());
    }
    /* unknown flag bits, a non-zero reserved word, an absurd frame delay */
    memcpy(w, buf, n);
    le32(w + 28, 1u | 0x80u);
    sl_reseal(w, n);
    CHECK(cphil_file_write_atomic(q, w, n) == CPHIL_OK);
    CHECK(cphil_softlabels_read(q, &s) == CPHIL_E_FORMAT);
    CHECK_MSG(strstr(cphil_last_error(), "unknown flag bits 0x80") != NULL, "%s", cphil_last_error());
    memcpy(w, buf, n);
    le64(w + 120, 1);
    sl_reseal(w, n);
    CHECK(cphil_file_write_atomic(q, w, n) == CPHIL_OK);
    CHECK(cphil_softlabels_read(q, &s) == CPHIL_E_FORMAT);
    memcpy(w, buf, n);
    le32(w + 60, 100000);
    sl_reseal(w, n);
    CHECK(cphil_file_write_atomic(q, w, n) == CPHIL_OK);
    CHECK(cphil_softlabels_read(q, &s) == CPHIL_E_FORMAT);
    /* probabilities all 0 or all 1 (each in [0, 1], but no head sums to 1) */
    const uint16_t fills[] = {0x0000, 0x3c00};
    for (int k = 0; k < 2; k++) {
        memcpy(w, buf, n);
        uint64_t off_probs = 0;
        for (int i = 7; i >= 0; i--) off_probs = off_probs << 8 | w[72 + i];
        for (int j = 0; j < CPHIL_N_LOGITS; j++) {
            w[off_probs + 2 * (CPHIL_N_LOGITS * 3 + j)] = (uint8_t)(fills[k] & 0xff); /* frame 3 */
            w[off_probs + 2 * (CPHIL_N_LOGITS * 3 + j) + 1] = (uint8_t)(fills[k] >> 8);
        }
        sl_reseal(w, n);
        CHECK(cphil_file_write_atomic(q, w, n) == CPHIL_OK);
        CHECK(cphil_softlabels_read(q, &s) == CPHIL_E_FORMAT);
        CHECK_MSG(strstr(cphil_last_error(), "frame 3") && strstr(cphil_last_error(), "not a distribution"), "%s",
                  cphil_last_error());
    }
    /* the unedited image still reads (the edits above were the only fault) */
    memcpy(w, buf, n);
    sl_reseal(w, n);
    CHECK(cphil_file_write_atomic(q, w, n) == CPHIL_OK);
    CHECK_MSG(cphil_softlabels_read(q, &s) == CPHIL_OK, "%s", cphil_last_error());
    cphil_softlabels_close(&s);
    free(w);
    cphil_free(buf);
}

TEST(soft_label_reader_checks_the_header_before_reading_the_file) {
    /* a 2 GB sparse file that starts like a soft-label file: refused from its header, without
     * reading (and allocating) the 2 GB */
    char p[512], q[512];
    path_in_tmp(p, sizeof p, "soft3.bin");
    path_in_tmp(q, sizeof q, "soft3_big.bin");
    CHECK(write_soft(p, 3) == CPHIL_OK);
    uint8_t *buf;
    size_t n;
    CHECK(cphil_file_read(p, 1 << 24, &buf, &n) == CPHIL_OK);
    FILE *f = fopen(q, "wb");
    CHECK(f != NULL);
    CHECK(fwrite(buf, 1, n, f) == n);
    fclose(f);
    cphil_free(buf);
    if (truncate(q, (off_t)2 << 30) != 0) SKIP("cannot make a 2 GB sparse file in %s", harness_tmpdir());
    struct rusage r0, r1;
    getrusage(RUSAGE_SELF, &r0);
    cphil_softlabels s;
    CHECK(cphil_softlabels_read(q, &s) == CPHIL_E_FORMAT);
    CHECK_MSG(strstr(cphil_last_error(), "the header says") != NULL, "%s", cphil_last_error());
    getrusage(RUSAGE_SELF, &r1);
    CHECK_MSG(r1.ru_maxrss - r0.ru_maxrss < 256 * 1024, "peak memory grew by %ld KB", r1.ru_maxrss - r0.ru_maxrss);
    /* the same for a checkpoint-shaped name: a 2 GB file of zeros is refused from its first bytes */
    cphil_ckpt c;
    CHECK(cphil_ckpt_read(q, &c) == CPHIL_E_FORMAT);
    getrusage(RUSAGE_SELF, &r1);
    CHECK(r1.ru_maxrss - r0.ru_maxrss < 256 * 1024);
    unlink(q);
}

static bool exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0;
}
static void touch(const char *p) {
    FILE *f = fopen(p, "wb");
    if (f) {
        fputs("stale", f);
        fclose(f);
    }
}

TEST(atomic_write_removes_stale_temps_of_dead_writers_only) {
    /* a PID that is certainly dead: a child that has exited and been reaped */
    pid_t child = fork();
    if (child == 0) _exit(0);
    CHECK(child > 0);
    waitpid(child, NULL, 0);
    char target[512], dead[600], alive[600], other[600], odd[600];
    path_in_tmp(target, sizeof target, "atomic_target.ckpt");
    snprintf(dead, sizeof dead, "%s.tmp.%ld", target, (long)child);
    snprintf(alive, sizeof alive, "%s.tmp.%ld", target, (long)getppid()); /* our parent: alive */
    snprintf(odd, sizeof odd, "%s.tmp.12x", target);
    snprintf(other, sizeof other, "%s/atomic_other.ckpt.tmp.%ld", harness_tmpdir(), (long)child);
    touch(dead);
    touch(alive);
    touch(other);
    touch(odd);
    CHECK(cphil_file_write_atomic(target, "new", 3) == CPHIL_OK);
    CHECK_MSG(!exists(dead), "the dead writer's %s is still there", dead);
    CHECK(exists(alive));  /* a live process's temporary is never touched */
    CHECK(exists(other));  /* another target's */
    CHECK(exists(odd));    /* not a PID */
    CHECK(exists(target));
    unlink(alive);
    unlink(other);
    unlink(odd);
    unlink(target);
}

TEST(atomic_write_leaves_no_temp_on_failure) {
    /* the rename fails (the target is a non-empty folder): the error is reported and our own
     * temporary is gone */
    char target[512], inside[600];
    path_in_tmp(target, sizeof target, "atomic_dir_target");
    mkdir(target, 0777);
    snprintf(inside, sizeof inside, "%s/keep", target);
    touch(inside);
    CHECK(cphil_file_write_atomic(target, "x", 1) == CPHIL_E_IO);
    char tmp[700];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", target, (long)getpid());
    CHECK(!exists(tmp));
    /* and a streamed write that is aborted */
    char t2[512];
    path_in_tmp(t2, sizeof t2, "atomic_abort.bin");
    cphil_atomic_file af;
    CHECK(cphil_atomic_open(&af, t2) == CPHIL_OK);
    CHECK(cphil_atomic_write(&af, "abc", 3) == CPHIL_OK);
    cphil_atomic_abort(&af);
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", t2, (long)getpid());
    CHECK(!exists(tmp) && !exists(t2));
    unlink(inside);
    rmdir(target);
}

int main(void) {
    RUN(f16_round_trip);
    RUN(soft_label_file_round_trip_and_refusals);
    RUN(soft_label_reader_refuses_wrapping_offsets_flags_and_non_distributions);
    RUN(soft_label_reader_checks_the_header_before_reading_the_file);
    RUN(ckpt_round_trip);
    RUN(atomic_write_removes_stale_temps_of_dead_writers_only);
    RUN(atomic_write_leaves_no_temp_on_failure);
    RUN(ckpt_refuses_truncated_corrupt_foreign);
    RUN(hash64_is_stable_and_sensitive);
    RUN(baselines_hand_computed);
    RUN(model_scoring_matches_definition);
    RUN(change_rates_hand_computed);
    RUN(curves_csv_and_svg);
    RUN(distill_gradient_check);
    RUN(distill_alpha_and_temperature_behave);
    return harness_done();
}
