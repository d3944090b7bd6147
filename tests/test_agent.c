/* test_agent.c — the agent C API: open a policy written through the model's tensor table, drive
 * it through a synthetic replay, check config, sampling (seeded, deterministic = argmax), zero
 * allocations per step, refusal of bad files and arguments, that the frames it embeds equal the
 * dataset builder's rows of the same replay, and that examples/agent_example runs.
 */
#include "harness.h"

#include "cphil.h"
#include "data/dataset.h"
#include "game/synth.h"
#include "infer/infer_testing.h"
#include "agent/sample.h"
#include "kernels/cpu/kernels.h"
#include "game/embed.h"
#include "model/model.h"

#include <math.h>

#include <stdint.h>

static char g_policy[600], g_replay[600], g_dir[512];

static void write_policy(const char *path, const char *bb, int E_delta) {
    cphil_embed_layout L;
    cphil_embed_layout_init(&L, NULL);
    cphil_test_policy_opts o = {.backbone = bb, .n_cont = L.n_cont, .n_ids = L.n_ids, .E = L.E + E_delta,
                                .layout_hash = E_delta ? 0 : L.hash, .hidden = 16, .layers = 1, .window = 6,
                                .state = 4, .conv = 3, .heads = 2, .mlp0 = 24, .mlp1 = 16, .seed = 5};
    if (cphil_write_test_policy(path, &o)) {
        fprintf(stderr, "%s\n", cphil_last_error());
        exit(2);
    }
}

static void setup(void) {
    if (g_policy[0]) return;
    const char *tmp = harness_tmpdir();
    snprintf(g_dir, sizeof g_dir, "%s/agent_replays", tmp);
    cphil_mkdir_p(g_dir);
    snprintf(g_policy, sizeof g_policy, "%s/agent_policy.safetensors", tmp);
    snprintf(g_replay, sizeof g_replay, "%s/synth_agent.slp", g_dir);
    write_policy(g_policy, "lstm", 0);
    cphil_synth_opts o = {.seed = 3, .stocks = 1, .max_seconds = 8};
    uint8_t *data;
    size_t size;
    cphil_synth_summary sum;
    if (cphil_synth_game(&o, 0, &data, &size, &sum) || cphil_file_write_atomic(g_replay, data, size)) {
        fprintf(stderr, "%s\n", cphil_last_error());
        exit(2);
    }
    cphil_free(data);
}

/* Drive the agent through the replay; out[i] gets the controls of frame row i. */
static int drive(cphil_agent *a, cphil_controller_state *out, int max) {
    cphil_replay *r;
    if (cphil_slp_read_file(g_replay, &r)) return -1;
    if (cphil_agent_game_start(a, r)) { cphil_replay_free(r); return -1; }
    int n = 0;
    for (uint32_t i = 0; i < r->n_frames && n < max; i++) {
        cphil_frame f;
        cphil_replay_get_frame(r, i, &f);
        if (cphil_agent_step(a, &f, &out[n++])) { n = -1; break; }
    }
    cphil_replay_free(r);
    return n;
}

TEST(open_and_get_config) {
    setup();
    cphil_agent_params p = cphil_agent_default_params();
    CHECK_EQ_INT(p.mode, CPHIL_AGENT_WINDOW);
    CHECK(p.temperature == 1.f);
    cphil_agent *a;
    CHECK(cphil_agent_open(g_policy, &p, &a) == CPHIL_OK);
    cphil_agent_config c;
    cphil_agent_get_config(a, &c);
    CHECK_STR(c.backbone, "lstm");
    CHECK_EQ_INT(c.temporal, 1);
    CHECK_EQ_INT(c.window, 6);
    CHECK_EQ_INT(c.hidden, 16);
    CHECK_EQ_INT(c.num_layers, 1);
    CHECK_STR(c.precision, "f32");
    CHECK_STR(c.mode, "window");
    CHECK(c.params > 1000);
    cphil_agent_close(a);
}

TEST(controls_in_range_and_seeded) {
    setup();
    static cphil_controller_state a1[3000], a2[3000], a3[3000];
    cphil_agent_params p = cphil_agent_default_params();
    p.seed = 11;
    p.mode = CPHIL_AGENT_STREAM;
    cphil_agent *a, *b, *c;
    CHECK(cphil_agent_open(g_policy, &p, &a) == CPHIL_OK);
    CHECK(cphil_agent_open(g_policy, &p, &b) == CPHIL_OK);
    p.seed = 12;
    CHECK(cphil_agent_open(g_policy, &p, &c) == CPHIL_OK);
    int n1 = drive(a, a1, 3000), n2 = drive(b, a2, 3000), n3 = drive(c, a3, 3000);
    CHECK(n1 > 100 && n1 == n2 && n1 == n3);
    CHECK(memcmp(a1, a2, sizeof(cphil_controller_state) * n1) == 0);
    CHECK(memcmp(a1, a3, sizeof(cphil_controller_state) * n1) != 0);
    for (int i = 0; i < n1; i++) {
        CHECK(a1[i].main_x >= 0 && a1[i].main_x <= 1 && a1[i].c_y >= 0 && a1[i].c_y <= 1);
        CHECK(a1[i].shoulder >= 0 && a1[i].shoulder <= 1);
        for (int k = 0; k < 8; k++) CHECK(a1[i].button[k] <= 1);
    }
    /* frames before -39 give the neutral controller */
    CHECK(a1[0].main_x == 0.5f && a1[0].button[0] == 0);
    cphil_agent_close(a);
    cphil_agent_close(b);
    cphil_agent_close(c);
}

/* Drive a deterministic agent through g_replay until `want` frames had logits: every control is
 * the argmax of its head (buttons: logit > 0; main x, main y, c x, c y: 17 classes each;
 * shoulder: 5). False when the replay ran out first; a mismatch fails the test. */
static bool controls_are_argmax(cphil_agent *a, int want) {
    cphil_replay *r;
    CHECK(cphil_slp_read_file(g_replay, &r) == CPHIL_OK);
    CHECK(cphil_agent_game_start(a, r) == CPHIL_OK);
    int checked = 0;
    for (uint32_t i = 0; i < r->n_frames && checked < want; i++) {
        cphil_frame f;
        cphil_replay_get_frame(r, i, &f);
        cphil_controller_state c;
        CHECK(cphil_agent_step(a, &f, &c) == CPHIL_OK);
        const float *l = cphil_agent_last_logits(a);
        if (!l) continue;
        for (int k = 0; k < 8; k++) CHECK_EQ_INT(c.button[k], l[k] > 0);
        const float got[5] = {c.main_x * 16.f, c.main_y * 16.f, c.c_x * 16.f, c.c_y * 16.f, c.shoulder * 4.f};
        for (int h = 0, off = 8; h < 5; off += h < 4 ? 17 : 5, h++) {
            int n = h < 4 ? 17 : 5, best = 0;
            for (int k = 1; k < n; k++)
                if (l[off + k] > l[off + best]) best = k;
            CHECK_MSG(got[h] == (float)best, "frame %u head %d: class %g, argmax %d", i, h + 1, got[h], best);
        }
        checked++;
    }
    cphil_replay_free(r);
    return checked == want;
}

TEST(deterministic_mode_is_argmax) {
    setup();
    cphil_agent_params p = cphil_agent_default_params();
    p.deterministic = 1;
    cphil_agent *a;
    CHECK(cphil_agent_open(g_policy, &p, &a) == CPHIL_OK);
    CHECK(controls_are_argmax(a, 200));
    cphil_agent_close(a);
}

/* Re-sent frames (cphil.h "Frame numbers"): a duplicate or a rollback re-send never cold-starts
 * the state. Each case runs beside a reference agent fed each frame once (the same seed, sampling
 * on): a duplicate returns the same controls and logits; afterwards the two agree exactly.
 * Window mode applies a corrected copy as if it had come first; stream mode repeats its newest
 * decision; a frame far lower (a new game at -123) resets the state like a fresh agent. */
static bool same_ctrl(const cphil_controller_state *x, const cphil_controller_state *y) {
    return memcmp(x, y, sizeof *x) == 0;
}

static bool same_logits(const cphil_agent *x, const cphil_agent *y) {
    const float *a = cphil_agent_last_logits(x), *b = cphil_agent_last_logits(y);
    return a && b && memcmp(a, b, sizeof(float) * (8 + 4 * 17 + 5)) == 0; /* 81 logits */
}

TEST(resent_frames_never_cold_start) {
    setup();
    cphil_replay *r;
    CHECK(cphil_slp_read_file(g_replay, &r) == CPHIL_OK);
    CHECK(r->n_frames > 300);
    uint32_t i0 = (uint32_t)(CPHIL_AGENT_FIRST_FRAME - r->first_frame); /* the first decided row */
    for (int mode = 0; mode < 2; mode++) {
        cphil_agent_params p = cphil_agent_default_params();
        p.mode = (cphil_agent_mode)mode;
        p.seed = 21;
        cphil_agent *ref, *a, *fresh;
        CHECK(cphil_agent_open(g_policy, &p, &ref) == CPHIL_OK);
        CHECK(cphil_agent_open(g_policy, &p, &a) == CPHIL_OK);
        CHECK(cphil_agent_open(g_policy, &p, &fresh) == CPHIL_OK);
        CHECK(cphil_agent_game_start(ref, r) == CPHIL_OK && cphil_agent_game_start(a, r) == CPHIL_OK);
        cphil_frame f, g;
        cphil_controller_state cr, ca, cd;
        int mismatches = 0;
        for (uint32_t i = 0; i < i0 + 200; i++) {
            cphil_replay_get_frame(r, i, &f);
            CHECK(cphil_agent_step(ref, &f, &cr) == CPHIL_OK);
            CHECK(cphil_agent_step(a, &f, &ca) == CPHIL_OK);
            mismatches += !same_ctrl(&cr, &ca) || (i >= i0 && !same_logits(ref, a));
            if (i >= i0 && i % 7 == 0) { /* the same frame again: the same decision, nothing advances */
                CHECK(cphil_agent_step(a, &f, &cd) == CPHIL_OK);
                mismatches += !same_ctrl(&cd, &cr) || !same_logits(ref, a);
            }
            if (i >= i0 + 4 && i % 11 == 0) { /* a rollback: identical copies of the last 4 frames */
                for (uint32_t j = i - 3; j <= i; j++) {
                    cphil_replay_get_frame(r, j, &g);
                    CHECK(cphil_agent_step(a, &g, &cd) == CPHIL_OK);
                }
                mismatches += !same_ctrl(&cd, &cr) || !same_logits(ref, a);
            }
        }
        CHECK_MSG(mismatches == 0, "%s: %d decisions differ from the agent fed each frame once",
                  mode ? "stream" : "window", mismatches);
        /* a corrected re-send: frame k-2 arrives changed, then k-1 and k again */
        uint32_t k = i0 + 200;
        for (uint32_t j = k - 2; j <= k; j++) {
            cphil_replay_get_frame(r, j, &f);
            CHECK(cphil_agent_step(a, &f, &ca) == CPHIL_OK);
        }
        cphil_agent *b; /* fed the corrected frame k-2 the first time */
        CHECK(cphil_agent_open(g_policy, &p, &b) == CPHIL_OK);
        CHECK(cphil_agent_game_start(b, r) == CPHIL_OK);
        for (uint32_t i = 0; i <= k + 30; i++) {
            cphil_replay_get_frame(r, i, &f);
            if (i >= k) CHECK(cphil_agent_step(ref, &f, &cr) == CPHIL_OK); /* uncorrected */
            if (i == k - 2) f.ports[0][0].post.x += 25.f;
            CHECK(cphil_agent_step(b, &f, &cd) == CPHIL_OK);
            if (i < k + 1 && i != k - 2) continue;
            if (i == k - 2) {
                CHECK(cphil_agent_step(a, &f, &ca) == CPHIL_OK);
                for (uint32_t j = k - 1; j <= k; j++) {
                    cphil_replay_get_frame(r, j, &g);
                    CHECK(cphil_agent_step(a, &g, &ca) == CPHIL_OK);
                }
                continue;
            }
            CHECK(cphil_agent_step(a, &f, &ca) == CPHIL_OK);
            if (mode == 0) CHECK_MSG(same_logits(a, b) && same_ctrl(&ca, &cd), "window: frame %u differs after a correction", i);
            /* stream mode keeps the uncorrected history (its effect fades: checked on the next frame) */
            if (mode == 1 && i == k + 1) CHECK(!same_logits(a, b));
            if (i == k + 1) CHECK(!same_logits(ref, b)); /* the correction matters */
        }
        /* a new game (frame -123 after frame ~200): the state resets, like a fresh agent's */
        CHECK(cphil_agent_game_start(fresh, r) == CPHIL_OK);
        for (uint32_t i = 0; i < i0 + 40; i++) {
            cphil_replay_get_frame(r, i, &f);
            CHECK(cphil_agent_step(a, &f, &ca) == CPHIL_OK);
            CHECK(cphil_agent_step(fresh, &f, &cd) == CPHIL_OK);
            if (i >= i0) CHECK(same_logits(a, fresh));
        }
        cphil_agent_close(ref);
        cphil_agent_close(a);
        cphil_agent_close(b);
        cphil_agent_close(fresh);
    }
    cphil_replay_free(r);
}

/* the Gumbel noise on every tier against libm: ragged counts, u from 2^-54 to 1 - 2^-53 */
TEST(gumbel_noise_matches_libm) {
    double u[203], g[203], r[203];
    cphil_rng rng;
    cphil_rng_seed(&rng, 3);
    for (int i = 0; i < 203; i++) u[i] = cphil_rng_uniform(&rng);
    u[0] = ldexp(1.0, -54);
    u[1] = 1.0 - ldexp(1.0, -53);
    u[2] = 0.5;
    u[3] = exp(-1.0); /* g = 0 */
    u[4] = 0.999999;
    cphil_gumbel_f64_ref(u, r, 203);
    for (cphil_isa isa = CPHIL_ISA_SCALAR; isa <= cphil_isa_best(); isa++) {
        cphil_isa_set(isa);
        for (int n = 0; n <= 203; n += n < 20 ? 1 : 61) {
            for (int i = 0; i < 203; i++) g[i] = -7.0;
            cphil_gumbel_f64(u, g, n);
            for (int i = 0; i < 203; i++) {
                if (i < n) CHECK_NEAR(g[i], r[i], 1e-15, 1e-15);
                else CHECK(g[i] == -7.0);
            }
        }
        memcpy(g, u, sizeof g); /* in place */
        cphil_gumbel_f64(g, g, 203);
        for (int i = 0; i < 203; i++) CHECK_NEAR(g[i], r[i], 1e-15, 1e-15);
    }
    cphil_isa_set(cphil_isa_default());
}

/* the sampler against the seed's algorithm written out (one draw per class, interleaved with
 * libm's logs): the same seed gives the same actions on every tier */
TEST(sampling_equals_the_interleaved_reference) {
    static const int off[6] = {0, 8, 25, 42, 59, 76}, cls[6] = {8, 17, 17, 17, 17, 5};
    for (cphil_isa isa = CPHIL_ISA_SCALAR; isa <= cphil_isa_best(); isa++) {
        cphil_isa_set(isa);
        cphil_rng ra, rb, rl;
        cphil_rng_seed(&ra, 77);
        cphil_rng_seed(&rb, 77);
        cphil_rng_seed(&rl, 5);
        for (int it = 0; it < 300; it++) {
            float l[81], T = it % 3 == 0 ? 1.f : it % 3 == 1 ? 0.5f : 2.f;
            for (int i = 0; i < 81; i++) l[i] = (float)(cphil_rng_uniform(&rl) * 6 - 3);
            uint8_t b[8], c[5];
            cphil_sample_action(l, T, false, &ra, b, c);
            for (int i = 0; i < 8; i++) CHECK_EQ_INT(b[i], cphil_rng_uniform(&rb) < 1.0 / (1.0 + exp(-(double)l[i])));
            for (int h = 1; h < 6; h++) {
                int best = 0;
                double bv = -INFINITY;
                for (int k = 0; k < cls[h]; k++) {
                    double v = (double)l[off[h] + k] * (1.0 / T) - log(-log(cphil_rng_uniform(&rb)));
                    if (v > bv) {
                        bv = v;
                        best = k;
                    }
                }
                CHECK_EQ_INT(c[h - 1], best);
            }
        }
    }
    cphil_isa_set(cphil_isa_default());
}

static long n_allocs;
static void *count_alloc(size_t size, size_t align, void *user) {
    (void)user;
    n_allocs++;
    void *q = NULL;
    return posix_memalign(&q, align, size ? size : 1) ? NULL : q;
}
static void count_free(void *q, void *user) { (void)user; free(q); }

TEST(step_allocates_nothing) {
    setup();
    cphil_replay *r;
    CHECK(cphil_slp_read_file(g_replay, &r) == CPHIL_OK);
    for (int mode = 0; mode < 2; mode++) {
        cphil_agent_params p = cphil_agent_default_params();
        p.mode = (cphil_agent_mode)mode;
        p.precision = CPHIL_AGENT_PREC_INT8;
        cphil_agent *a, *b; /* b: the same agent driven from cphil_bot_frame */
        CHECK(cphil_agent_open(g_policy, &p, &a) == CPHIL_OK);
        CHECK(cphil_agent_open(g_policy, &p, &b) == CPHIL_OK);
        CHECK(cphil_agent_game_start(a, r) == CPHIL_OK);
        cphil_bot_game g;
        cphil_bot_game_from_replay(r, &g);
        CHECK(cphil_agent_game_start_bot(b, &g) == CPHIL_OK);
        static cphil_bot_frame s;
        cphil_allocator ca = {count_alloc, count_free, NULL};
        cphil_set_allocator(&ca);
        n_allocs = 0;
        int bad = 0, decided = 0;
        for (uint32_t i = 0; i < r->n_frames && i < 400; i++) {
            cphil_frame f;
            cphil_replay_get_frame(r, i, &f);
            cphil_controller_state c;
            bad += cphil_agent_step(a, &f, &c) != CPHIL_OK; /* a failing step allocates nothing */
            bad += cphil_bot_frame_from_frame(&f, &s) != CPHIL_OK || cphil_agent_step_bot(b, &s, &c) != CPHIL_OK;
            decided += cphil_agent_last_logits(a) != NULL && cphil_agent_last_logits(b) != NULL;
        }
        cphil_agent_reset(a);
        long got = n_allocs;
        cphil_set_allocator(NULL);
        CHECK_MSG(bad == 0 && decided > 300, "mode %d: %d steps failed, %d decided", mode, bad, decided);
        cphil_agent_close(a);
        cphil_agent_close(b);
        CHECK_MSG(got == 0, "mode %d: %ld allocations in 400 steps", mode, got);
    }
    cphil_replay_free(r);
}

/* cphil_agent_warm (cphil play --warm-us) reads the weights and nothing else: an agent warmed
 * before every step decides exactly as one that is not (same seed, sampling on), and warming
 * allocates nothing. */
TEST(warm_changes_nothing) {
    setup();
    cphil_replay *r;
    CHECK(cphil_slp_read_file(g_replay, &r) == CPHIL_OK);
    cphil_agent_params p = cphil_agent_default_params();
    p.precision = CPHIL_AGENT_PREC_INT8;
    cphil_agent *a, *b;
    CHECK(cphil_agent_open(g_policy, &p, &a) == CPHIL_OK);
    CHECK(cphil_agent_open(g_policy, &p, &b) == CPHIL_OK);
    CHECK(cphil_agent_game_start(a, r) == CPHIL_OK);
    CHECK(cphil_agent_game_start(b, r) == CPHIL_OK);
    CHECK(cphil_agent_warm(a) > 1000); /* the packed weights of every product */
    CHECK(cphil_agent_warm(NULL) == 0);
    int differ = 0, decided = 0;
    for (uint32_t i = 0; i < r->n_frames && i < 300; i++) {
        cphil_frame f;
        cphil_replay_get_frame(r, i, &f);
        cphil_controller_state ca, cb;
        cphil_allocator al = {count_alloc, count_free, NULL};
        cphil_set_allocator(&al);
        n_allocs = 0;
        (void)cphil_agent_warm(a);
        long got = n_allocs;
        cphil_set_allocator(NULL);
        CHECK_MSG(got == 0, "frame %u: warm allocated %ld times", i, got);
        CHECK(cphil_agent_step(a, &f, &ca) == CPHIL_OK);
        CHECK(cphil_agent_step(b, &f, &cb) == CPHIL_OK);
        differ += !same_ctrl(&ca, &cb) || (cphil_agent_last_logits(a) && !same_logits(a, b));
        decided += cphil_agent_last_logits(a) != NULL;
    }
    CHECK_MSG(differ == 0 && decided > 200, "%d of 300 frames differ, %d decided", differ, decided);
    cphil_agent_close(a);
    cphil_agent_close(b);
    cphil_replay_free(r);
}

TEST(bad_files_and_arguments_are_refused) {
    setup();
    cphil_agent *a = NULL;
    cphil_agent_params p = cphil_agent_default_params();
    char path[600];
    snprintf(path, sizeof path, "%s/not_a_policy.safetensors", harness_tmpdir());
    CHECK(cphil_file_write_atomic(path, "garbage!garbage!", 16) == CPHIL_OK);
    CHECK_EQ_INT(cphil_agent_open(path, &p, &a), CPHIL_E_FORMAT);
    CHECK(a == NULL);
    CHECK(strstr(cphil_last_error(), "not_a_policy") != NULL);
    snprintf(path, sizeof path, "%s/wrong_E.safetensors", harness_tmpdir());
    write_policy(path, "mlp", 5);
    CHECK_EQ_INT(cphil_agent_open(path, &p, &a), CPHIL_E_MISMATCH);
    CHECK(strstr(cphil_last_error(), "embedding") != NULL);
    snprintf(path, sizeof path, "%s/missing.safetensors", harness_tmpdir());
    CHECK_EQ_INT(cphil_agent_open(path, &p, &a), CPHIL_E_IO);
    p.temperature = 0.f;
    CHECK_EQ_INT(cphil_agent_open(g_policy, &p, &a), CPHIL_E_ARG);
    p = cphil_agent_default_params();
    p.port = 4;
    CHECK_EQ_INT(cphil_agent_open(g_policy, &p, &a), CPHIL_E_ARG);
    p.port = 0;
    CHECK(cphil_agent_open(g_policy, &p, &a) == CPHIL_OK);
    cphil_frame f;
    memset(&f, 0, sizeof f);
    cphil_controller_state c;
    CHECK_EQ_INT(cphil_agent_step(a, &f, &c), CPHIL_E_ARG); /* no game_start yet */
    cphil_agent_close(a);
}

/* The frames the agent embeds equal the dataset builder's rows of the same replay. */
TEST(agent_frames_equal_dataset_rows) {
    setup();
    cphil_ds_build_opts o;
    cphil_ds_build_default_opts(&o);
    char out[600];
    snprintf(out, sizeof out, "%s/agent_ds.cphilds", harness_tmpdir());
    o.replays_dir = g_dir;
    o.out_path = out;
    o.quiet = true;
    o.jobs = 1;
    o.val_split = 0;
    cphil_ds_build_report rep;
    CHECK(cphil_dataset_build(&o, &rep) == CPHIL_OK);
    cphil_ds_build_report_free(&rep);
    cphil_dataset ds;
    CHECK(cphil_dataset_open(&ds, out, true) == CPHIL_OK);
    CHECK(ds.h->n_entries >= 1);
    const cphil_ds_entry *e = &ds.entries[0];
    cphil_agent_params p = cphil_agent_default_params();
    p.port = e->port;
    cphil_agent *a;
    CHECK(cphil_agent_open(g_policy, &p, &a) == CPHIL_OK);
    /* feed the replay through the incremental parser in small pieces, as live */
    uint8_t *data;
    size_t size;
    CHECK(cphil_file_read(g_replay, (size_t)1 << 28, &data, &size) == CPHIL_OK);
    cphil_slp_stream *st;
    CHECK(cphil_slp_stream_open(&st, NULL, "agent") == CPHIL_OK);
    uint32_t reported = 0, compared = 0, started = 0;
    int nc = ds.layout.n_cont, ni = ds.layout.n_ids;
    float *rc = malloc(sizeof(float) * nc);
    int32_t *ri = malloc(sizeof(int32_t) * ni);
    for (size_t off = 0; off < size; off += 100) {
        CHECK(cphil_slp_stream_feed(st, data + off, size - off < 100 ? size - off : 100) == CPHIL_OK);
        const cphil_replay *r = cphil_slp_stream_replay(st);
        if (!started && r->n_frames == 0 && r->game.stage) { /* game start seen */ }
        uint32_t fin = cphil_slp_stream_final_frames(st);
        for (; reported < fin; reported++) {
            if (!started) {
                CHECK(cphil_agent_game_start(a, r) == CPHIL_OK);
                started = 1;
            }
            cphil_frame f;
            cphil_replay_get_frame(r, reported, &f);
            cphil_controller_state c;
            CHECK(cphil_agent_step(a, &f, &c) == CPHIL_OK);
            const float *ac;
            const int32_t *ai;
            if (!cphil_agent_last_inputs(a, &ac, &ai) || f.frame < e->first_frame) continue;
            uint64_t row = e->row_start + (uint64_t)(f.frame - e->first_frame);
            if (row >= e->row_start + e->n_rows) continue;
            cphil_dataset_row(&ds, row, rc, ri, NULL);
            CHECK_MSG(memcmp(rc, ac, sizeof(float) * nc) == 0, "frame %d: continuous features differ", f.frame);
            CHECK_MSG(memcmp(ri, ai, sizeof(int32_t) * ni) == 0, "frame %d: ids differ", f.frame);
            compared++;
        }
    }
    CHECK(compared + 5 >= e->n_rows && compared > 100);
    free(rc);
    free(ri);
    cphil_free(data);
    cphil_slp_stream_close(st);
    cphil_agent_close(a);
    cphil_dataset_close(&ds);
}

/* A harness's own mapping of the parser's frame into the bot struct (the way a libmelee harness
 * maps its GameState), written from the field descriptions of include/cphil.h, independently of
 * cphil_bot_frame_from_frame. */
static void harness_player(const cphil_char_frame *c, cphil_bot_player *o) {
    if (c->present & CPHIL_PRESENT_POST) {
        const cphil_post_frame *p = &c->post;
        *o = (cphil_bot_player){.present = 1, .character = p->character, .action_state = p->action_state,
                                .action_frame = p->action_frame, .x = p->x, .y = p->y, .facing = p->facing,
                                .percent = p->percent, .shield = p->shield, .stocks = p->stocks,
                                .on_ground = p->airborne == 0, .jumps_left = p->jumps,
                                .hitstun_left = (p->flags4 & 0x02) ? p->misc_as : 0.0f, .hitlag_left = p->hitlag,
                                .in_hitlag = (p->flags2 & 0x20) != 0, .shielding = (p->flags3 & 0x80) != 0,
                                .fastfall = (p->flags2 & 0x08) != 0, .dead = (p->flags5 & 0x40) != 0,
                                .invulnerable = p->hurtbox != 0, .speed_air_x = p->self_air_x, .speed_y = p->self_y,
                                .speed_attack_x = p->attack_x, .speed_attack_y = p->attack_y,
                                .speed_ground_x = p->self_ground_x};
    }
    if (c->present & CPHIL_PRESENT_PRE) {
        static const uint16_t bit[8] = {0x0100, 0x0200, 0x0400, 0x0800, 0x0010, 0x0040, 0x0020, 0x0008};
        o->pad_present = 1;
        for (int i = 0; i < 8; i++) o->pad.button[i] = (c->pre.buttons_physical & bit[i]) != 0;
        o->pad.main_x = c->pre.joystick_x;
        o->pad.main_y = c->pre.joystick_y;
        o->pad.c_x = c->pre.cstick_x;
        o->pad.c_y = c->pre.cstick_y;
        o->pad.l = c->pre.trigger_l;
        o->pad.r = c->pre.trigger_r;
    }
}

static void harness_frame(const cphil_frame *f, cphil_bot_frame *s) {
    memset(s, 0, sizeof *s);
    s->frame = f->frame;
    for (int p = 0; p < 4; p++) {
        harness_player(&f->ports[p][0], &s->player[p]);
        harness_player(&f->ports[p][1], &s->follower[p]);
    }
    s->n_items = (int)f->n_items;
    for (uint32_t i = 0; i < f->n_items; i++)
        s->items[i] = (cphil_bot_item){f->items[i].type, f->items[i].owner, f->items[i].x, f->items[i].y,
                                       f->items[i].vx, f->items[i].vy};
}

/* The agent driven from cphil_bot_frame decides exactly as the agent driven from the parser's
 * frames, on every frame of shared replays (items, Ice Climbers' Nana, old versions that lack
 * fields, a previous-controller layout), in window and stream mode, sampling with the same seed. */
TEST(bot_frames_decide_as_parser_frames) {
    NEED_REPLAYS();
    setup();
    static const char *const names[] = {"exphil/fox_multishine.slp", "slippi-js/itemExport.slp",
                                        "slippi-js/sheik_vs_ics_yoshis.slp", "slippi-js/pal.slp"};
    /* a second policy on the previous-controller layout (reads the pad fields) */
    char prev_policy[600];
    snprintf(prev_policy, sizeof prev_policy, "%s/agent_prev_policy.safetensors", harness_tmpdir());
    cphil_embed_config ec = {.prev_action = true};
    cphil_embed_layout L;
    cphil_embed_layout_init(&L, &ec);
    cphil_test_policy_opts po = {.backbone = "gru", .n_cont = L.n_cont, .n_ids = L.n_ids, .E = L.E,
                                 .layout_hash = L.hash, .hidden = 16, .layers = 1, .window = 5, .seed = 9};
    CHECK(cphil_write_test_policy(prev_policy, &po) == CPHIL_OK);
    const char *policies[2] = {g_policy, prev_policy};
    long compared = 0, items_seen = 0, nana_seen = 0, masked = 0;
    for (size_t k = 0; k < CPHIL_ARRAY_LEN(names); k++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", harness_replays_dir(), names[k]);
        cphil_replay *r = NULL;
        cphil_status rs = cphil_slp_read_file(path, &r);
        CHECK_MSG(rs == CPHIL_OK || rs == CPHIL_E_TRUNCATED, "%s: %s", path, cphil_last_error());
        if (!r) continue;
        cphil_bot_game g;
        cphil_bot_game_from_replay(r, &g);
        masked += g.fields != CPHIL_BOT_HAS_ALL;
        CHECK(g.stage == r->game.stage);
        for (int pi = 0; pi < 2; pi++) {
            cphil_agent_params p = cphil_agent_default_params();
            for (int q = 3; q >= 0; q--)
                if (r->game.players[q].type != 3) p.port = q; /* the lowest player */
            p.seed = 7 + k;
            p.mode = pi ? CPHIL_AGENT_STREAM : CPHIL_AGENT_WINDOW;
            cphil_agent *a = NULL, *b = NULL;
            CHECK(cphil_agent_open(policies[pi], &p, &a) == CPHIL_OK);
            CHECK(cphil_agent_open(policies[pi], &p, &b) == CPHIL_OK);
            CHECK(cphil_agent_game_start(a, r) == CPHIL_OK);
            CHECK(cphil_agent_game_start_bot(b, &g) == CPHIL_OK);
            static cphil_bot_frame s, lib;
            for (uint32_t i = 0; i < r->n_frames; i++) {
                cphil_frame f;
                cphil_replay_get_frame(r, i, &f);
                harness_frame(&f, &s);
                CHECK(cphil_bot_frame_from_frame(&f, &lib) == CPHIL_OK);
                CHECK_MSG(memcmp(&s, &lib, sizeof s) == 0, "%s frame %d: cphil_bot_frame_from_frame differs from the harness's mapping",
                          names[k], f.frame);
                cphil_controller_state ca, cb;
                CHECK(cphil_agent_step(a, &f, &ca) == CPHIL_OK);
                CHECK(cphil_agent_step_bot(b, &s, &cb) == CPHIL_OK);
                CHECK_MSG(same_ctrl(&ca, &cb), "%s frame %d: controls differ", names[k], f.frame);
                CHECK_MSG(cphil_agent_last_logits(a) ? same_logits(a, b) : !cphil_agent_last_logits(b),
                          "%s frame %d: logits differ", names[k], f.frame);
                if (cphil_agent_last_logits(a)) compared++;
                items_seen += f.n_items > 0;
                nana_seen += (f.ports[p.port][1].present & CPHIL_PRESENT_POST) != 0 ||
                             (f.ports[(p.port + 1) % 4][1].present & CPHIL_PRESENT_POST) != 0;
            }
            cphil_agent_close(a);
            cphil_agent_close(b);
        }
        cphil_replay_free(r);
    }
    CHECK_MSG(compared > 10000 && items_seen > 100 && nana_seen > 100 && masked >= 1,
              "coverage: %ld decisions, %ld frames with items, %ld with Nana, %ld replays lacking fields", compared,
              items_seen, nana_seen, masked);
    /* refusals: a player not in the game, a step before game start, items out of range */
    cphil_agent_params p = cphil_agent_default_params();
    p.port = 2;
    cphil_agent *a = NULL;
    CHECK(cphil_agent_open(g_policy, &p, &a) == CPHIL_OK);
    static cphil_bot_frame s;
    memset(&s, 0, sizeof s);
    cphil_controller_state c;
    CHECK(cphil_agent_step_bot(a, &s, &c) == CPHIL_E_ARG);
    cphil_bot_game g = cphil_bot_game_default();
    g.playing[0] = g.playing[1] = 1;
    CHECK(cphil_agent_game_start_bot(a, &g) == CPHIL_E_ARG);
    g.playing[2] = 1;
    CHECK(cphil_agent_game_start_bot(a, &g) == CPHIL_OK);
    s.n_items = CPHIL_BOT_MAX_ITEMS + 1;
    CHECK(cphil_agent_step_bot(a, &s, &c) == CPHIL_E_ARG);
    cphil_agent_close(a);
}

TEST(agent_example_runs) {
    setup();
    const char *b = getenv("CPHIL_BUILD");
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "%s/examples/agent_example '%s' '%s' 1 > '%s/agent_example.out' 2>&1",
             b && *b ? b : "build/rel", g_policy, g_replay, harness_tmpdir());
    int rc = system(cmd);
    CHECK_MSG(rc == 0, "agent_example failed (rc %d): see %s/agent_example.out", rc, harness_tmpdir());
}

TEST(bot_frame_example_runs) {
    setup();
    const char *b = getenv("CPHIL_BUILD");
    char cmd[2048], out[600];
    snprintf(out, sizeof out, "%s/bot_frame_example.out", harness_tmpdir());
    snprintf(cmd, sizeof cmd, "%s/examples/bot_frame_example '%s' 90 > '%s' 2>&1", b && *b ? b : "build/rel", g_policy, out);
    int rc = system(cmd);
    CHECK_MSG(rc == 0, "bot_frame_example failed (rc %d): see %s", rc, out);
    uint8_t *text = NULL;
    size_t n = 0;
    CHECK(cphil_file_read(out, 1 << 20, &text, &n) == CPHIL_OK);
    CHECK_MSG(n > 0 && strstr((const char *)text, "frame   50: ") != NULL, "bot_frame_example printed no decision for frame 50");
    cphil_free(text);
}

/* An agent on autoregressive heads (docs/model.md): deterministic, each control is the greedy
 * choice of its head's logits, and those logits are conditioned on the choices before them;
 * sampling (inside the step, head by head) is seeded and reproducible, including a window-mode
 * re-send of the newest frame (the generator rewinds to the decision's start). */
TEST(autoregressive_heads_agent) {
    setup();
    cphil_embed_layout L;
    cphil_embed_layout_init(&L, NULL);
    cphil_model_config c;
    cphil_model_config_default(&c, CPHIL_BACKBONE_LSTM);
    c.n_cont = L.n_cont, c.n_ids = L.n_ids, c.E = L.E, c.layout_hash = L.hash;
    c.hidden = 16, c.num_layers = 1, c.window = 6, c.precision = CPHIL_PREC_F32;
    c.heads = CPHIL_HEADS_AUTOREGRESSIVE;
    cphil_model m;
    CHECK(cphil_model_init(&m, &c) == CPHIL_OK);
    cphil_model_init_params(&m, 8);
    uint64_t z = 99;
    for (int i = 0; i < m.n_tensors; i++)
        if (strstr(m.tensors[i].name, ".ar.weight"))
            for (size_t k = 0; k < m.tensors[i].numel; k++) {
                z = z * 6364136223846793005ull + 1442695040888963407ull;
                m.params[m.tensors[i].offset + k] = (float)((double)(z >> 11) / 9007199254740992.0 * 4.0 - 2.0);
            }
    char path[700];
    snprintf(path, sizeof path, "%s/agent_ar.safetensors", harness_tmpdir());
    CHECK(cphil_policy_save(&m, path) == CPHIL_OK);
    cphil_model_free(&m);
    cphil_agent_params p = cphil_agent_default_params();
    p.deterministic = 1;
    cphil_agent *a;
    CHECK_MSG(cphil_agent_open(path, &p, &a) == CPHIL_OK, "%s", cphil_last_error());
    CHECK(controls_are_argmax(a, 150));
    cphil_agent_close(a);
    /* sampling: two agents with one seed agree; another seed differs */
    static cphil_controller_state s1[2000], s2[2000], s3[2000];
    p.deterministic = 0;
    p.seed = 21;
    cphil_agent *b1, *b2, *b3;
    CHECK(cphil_agent_open(path, &p, &b1) == CPHIL_OK);
    CHECK(cphil_agent_open(path, &p, &b2) == CPHIL_OK);
    p.seed = 22;
    CHECK(cphil_agent_open(path, &p, &b3) == CPHIL_OK);
    int n1 = drive(b1, s1, 2000), n2 = drive(b2, s2, 2000), n3 = drive(b3, s3, 2000);
    CHECK(n1 > 100 && n1 == n2 && n1 == n3);
    CHECK(memcmp(s1, s2, sizeof(cphil_controller_state) * (size_t)n1) == 0);
    CHECK(memcmp(s1, s3, sizeof(cphil_controller_state) * (size_t)n1) != 0);
    /* a duplicate of the newest frame (window mode) gives the same sampled controls */
    cphil_replay *r;
    CHECK(cphil_slp_read_file(g_replay, &r) == CPHIL_OK);
    CHECK(cphil_agent_game_start(b1, r) == CPHIL_OK);
    cphil_frame f;
    cphil_controller_state x, y;
    for (uint32_t i = 0; i < 160 && i < r->n_frames; i++) {
        cphil_replay_get_frame(r, i, &f);
        CHECK(cphil_agent_step(b1, &f, &x) == CPHIL_OK);
    }
    CHECK(cphil_agent_step(b1, &f, &y) == CPHIL_OK);
    CHECK(memcmp(&x, &y, sizeof x) == 0);
    cphil_replay_free(r);
    cphil_agent_close(b1);
    cphil_agent_close(b2);
    cphil_agent_close(b3);
}

int main(void) {
    RUN(open_and_get_config);
    RUN(controls_in_range_and_seeded);
    RUN(deterministic_mode_is_argmax);
    RUN(resent_frames_never_cold_start);
    RUN(gumbel_noise_matches_libm);
    RUN(sampling_equals_the_interleaved_reference);
    RUN(step_allocates_nothing);
    RUN(warm_changes_nothing);
    RUN(bad_files_and_arguments_are_refused);
    RUN(agent_frames_equal_dataset_rows);
    RUN(bot_frames_decide_as_parser_frames);
    RUN(agent_example_runs);
    RUN(bot_frame_example_runs);
    RUN(autoregressive_heads_agent);
    return harness_done();
}
