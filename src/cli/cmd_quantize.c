/* cmd_quantize.c — `cphil quantize`: write an int8 (dynamic or static activation scales) or bf16
 * copy of an f32 policy for cphil's engine, and report how closely it follows the f32 policy on
 * held-out frames: agreement of the chosen (deterministic) action per head and overall, and the
 * largest logit error. Frames come from replays (a folder or .slp files; embedded with the game
 * embedding, the player at --port or the lowest port), or from built-in synthetic games when
 * none are given. Calibration (static) and held-out frames come from different games (or the
 * two halves of a single game).
 * Does not: ONNX files (cphil export --format onnx --int8 does those), dataset caches.
 */
#include "cli/opts.h"
#include "game/embed.h"
#include "game/synth.h"
#include "infer/infer_policy.h"

#include <dirent.h>
#include <math.h>
#include <string.h>

static const char *const mode_names[] = {"dynamic", "static", NULL};
static const char *const precision_names[] = {"int8", "bf16", NULL};

static struct quantize_cli {
    const char *policy, *output, *calib;
    int mode, precision; /* mode 0 dynamic, 1 static; precision 0 int8, 1 bf16 */
    long long port, frames;
    bool json;
} A;

static opt_def quantize_defs[] = {
    {.name = "--policy", .kind = OPT_STR, .target = &A.policy, .required = true, .metavar = "P",
     .help = "the f32 policy file"},
    {.name = "--output", .kind = OPT_STR, .target = &A.output, .required = true, .metavar = "Q",
     .help = "the policy file to write"},
    {.name = "--mode", .kind = OPT_ENUM, .target = &A.mode, .def = "dynamic", .choices = mode_names,
     .help = "int8 activation scales: per call (dynamic) or calibrated on --calibration (static)"},
    {.name = "--precision", .kind = OPT_ENUM, .target = &A.precision, .def = "int8", .choices = precision_names,
     .help = "the weights of Q"},
    {.name = "--calibration", .kind = OPT_STR, .target = &A.calib, .metavar = "R",
     .help = "a folder of .slp replays or one .slp file: calibration (static) and held-out frames (default: 4 "
             "built-in synthetic games, held-out frames only; --mode static requires R)"},
    {.name = "--port", .kind = OPT_INT, .target = &A.port, .lo = 1, .hi = 4,
     .help = "the player to embed, 1..4 (default: the lowest port of each game)"},
    OPT_D("--frames", OPT_INT, &A.frames, "4000", 10, 100000000, "held-out frames to compare"),
    OPT_D("--json", OPT_FLAG, &A.json, NULL, 0, 0, "print the report as one JSON object"),
};

static opts_spec spec = {
    .cmd = "quantize",
    .usage = "--policy P --output Q [--mode dynamic|static] [--precision int8|bf16]\n"
             "                      [--calibration REPLAYS] [--port N] [--frames N] [--json]",
    .about = "Writes Q: int8 weights with per-output-channel scales (dynamic: activation scales per call;\n"
             "static: activation scales calibrated on replays) or bf16 weights, as a policy file the agent,\n"
             "bench and play-replay run. Prints the agreement of the chosen actions with the f32 policy on\n"
             "held-out frames and the largest logit error (window mode: each decision sees the last W frames).",
    .groups = {{NULL, quantize_defs, (int)CPHIL_ARRAY_LEN(quantize_defs)}},
};

typedef struct seqs {
    int n_cont, n_ids;
    int n;            /* sequences */
    int starts[4097]; /* frame offset of each sequence; starts[n] = tot */
    size_t tot;
    float *cont;
    int32_t *ids;
    size_t cap;
} seqs;

static cphil_status seqs_push(seqs *s, const float *cont, const int32_t *ids) {
    size_t tot = s->tot;
    if (tot == s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 8192;
        float *c = cphil_realloc(s->cont, s->cap * s->n_cont * sizeof(float), nc * s->n_cont * sizeof(float));
        if (!c) return cphil_err(CPHIL_E_NOMEM, "out of memory");
        s->cont = c;
        int32_t *i = cphil_realloc(s->ids, s->cap * s->n_ids * sizeof(int32_t), nc * s->n_ids * sizeof(int32_t));
        if (!i) return cphil_err(CPHIL_E_NOMEM, "out of memory");
        s->ids = i;
        s->cap = nc;
    }
    memcpy(s->cont + tot * s->n_cont, cont, sizeof(float) * s->n_cont);
    memcpy(s->ids + tot * s->n_ids, ids, sizeof(int32_t) * s->n_ids);
    s->tot++;
    return CPHIL_OK;
}

/* Embed every frame >= -39 of one replay as one sequence. */
static cphil_status add_replay(seqs *s, const cphil_embed_layout *L, const cphil_replay *r, int port) {
    if (s->n >= 4096) return CPHIL_OK;
    int self = port;
    if (self < 0)
        for (int p = 0; p < CPHIL_SLP_PORTS; p++)
            if (r->game.players[p].type != 3) {
                self = p;
                break;
            }
    cphil_embed_game g;
    cphil_status st = cphil_embed_game_init(&g, r, self < 0 ? 0 : self, -1);
    if (st) return st;
    float cont[CPHIL_EMBED_MAX_CONT];
    int32_t ids[CPHIL_EMBED_MAX_IDS];
    s->starts[s->n] = (int)s->tot;
    for (uint32_t i = 0; i < r->n_frames; i++) {
        cphil_frame f;
        cphil_replay_get_frame(r, i, &f);
        if (f.frame < -39) continue;
        cphil_embed_frame(L, &g, &f, cont, ids);
        if ((st = seqs_push(s, cont, ids))) return st;
    }
    if ((int)s->tot > s->starts[s->n]) s->starts[++s->n] = (int)s->tot;
    return CPHIL_OK;
}

static cphil_status load_frames(seqs *s, const cphil_embed_layout *L, const char *src, int port, const char **note) {
    if (!src) {
        *note = "4 synthetic games (cphil synth)";
        for (int k = 0; k < 4; k++) {
            cphil_synth_opts o = {.seed = 77, .stocks = 2, .max_seconds = 40};
            uint8_t *data;
            size_t size;
            cphil_synth_summary sum;
            cphil_status st = cphil_synth_game(&o, k, &data, &size, &sum);
            if (st) return st;
            cphil_replay *r = NULL;
            st = cphil_slp_read_mem(data, size, "synth", &r);
            cphil_free(data);
            if (!st) st = add_replay(s, L, r, port);
            cphil_replay_free(r);
            if (st) return st;
        }
        return CPHIL_OK;
    }
    *note = src;
    char paths[512][1024];
    int np = 0;
    if (cphil_path_is_dir(src)) {
        DIR *d = opendir(src);
        if (!d) return cphil_err(CPHIL_E_IO, "%s: cannot open the folder", src);
        struct dirent *e;
        while ((e = readdir(d)) && np < 512) {
            size_t n = strlen(e->d_name);
            if (n > 4 && !strcmp(e->d_name + n - 4, ".slp")) snprintf(paths[np++], sizeof paths[0], "%s/%s", src, e->d_name);
        }
        closedir(d);
        /* a stable order */
        for (int i = 1; i < np; i++)
            for (int j = i; j > 0 && strcmp(paths[j - 1], paths[j]) > 0; j--) {
                char t[1024];
                memcpy(t, paths[j], sizeof t);
                memcpy(paths[j], paths[j - 1], sizeof t);
                memcpy(paths[j - 1], t, sizeof t);
            }
    } else {
        snprintf(paths[np++], sizeof paths[0], "%s", src);
    }
    if (!np) return cphil_err(CPHIL_E_ARG, "%s: no .slp replays found", src);
    for (int i = 0; i < np; i++) {
        cphil_replay *r = NULL;
        cphil_status st = cphil_slp_read_file(paths[i], &r);
        if (st && st != CPHIL_E_TRUNCATED) {
            fprintf(stderr, "cphil: quantize: skipping %s: %s\n", paths[i], cphil_last_error());
            continue;
        }
        st = add_replay(s, L, r, port);
        cphil_replay_free(r);
        if (st) fprintf(stderr, "cphil: quantize: skipping %s: %s\n", paths[i], cphil_last_error());
    }
    if (s->n == 0 || s->tot == 0) return cphil_err(CPHIL_E_ARG, "%s: no usable frames", src);
    return CPHIL_OK;
}

/* Which sequences are held out: odd ones; with one sequence, its second half. */
typedef struct span { int a, b; } span;
static int split(const seqs *s, span *cal, span *held, int max) {
    int nc = 0, nh = 0;
    if (s->n == 1) {
        int mid = (s->starts[0] + s->starts[1]) / 2;
        cal[nc++] = (span){s->starts[0], mid};
        held[nh++] = (span){mid, s->starts[1]};
    } else {
        for (int i = 0; i < s->n && nc < max && nh < max; i++) {
            if (i % 2 == 0) cal[nc++] = (span){s->starts[i], s->starts[i + 1]};
            else held[nh++] = (span){s->starts[i], s->starts[i + 1]};
        }
    }
    return nc | (nh << 16);
}

static int argmax(const float *x, int n) {
    int b = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[b]) b = i;
    return b;
}

int cmd_quantize(int argc, char **argv) {
    int r = opts_parse(&spec, argc, argv);
    if (r) return opts_exit(r);
    const char *policy = A.policy, *output = A.output, *calib = A.calib;
    bool json = A.json, is_static = A.mode == 1;
    cphil_wtype dt = A.precision == 1 ? CPHIL_W_BF16 : CPHIL_W_I8;
    long long port = A.port, max_frames = A.frames;
    if (!cli_check_output("quantize", "--output", output, false)) return CLI_EXIT_USAGE;
    if (is_static && dt != CPHIL_W_I8) {
        cli_error("quantize: --mode static applies to --precision int8 only");
        return CLI_EXIT_USAGE;
    }
    /* static scales are fixed by the calibration frames: the built-in scripted games cover a narrow
     * slice of the game's states, so scales from them clip real play; no silent default */
    if (is_static && !calib) {
        cli_error("quantize: --mode static needs --calibration REPLAYS: the activation scales are fixed by the "
                  "calibration frames, and the built-in scripted games are a poor stand-in for the replays the "
                  "policy will see (use replays like its training data; to calibrate on scripted games anyway, "
                  "write some with cphil synth and pass that folder)");
        return CLI_EXIT_USAGE;
    }
    int rc = CLI_EXIT_FAIL;
    cphil_infer_policy *pf = NULL, *pq = NULL;
    cphil_infer_model *mf = NULL, *mq = NULL;
    cphil_infer_state *sf = NULL, *sq = NULL;
    seqs S;
    memset(&S, 0, sizeof S);
    float *amax = NULL, *scales = NULL;
    const char **names = NULL;
    span cal[2048], held[2048];
    if (cphil_infer_policy_open(policy, &pf)) goto fail;
    const cphil_model_config *cfg = cphil_infer_policy_config(pf);
    cphil_embed_layout L;
    if (cphil_model_find_layout(cfg, &L, policy)) goto fail;
    S.n_cont = L.n_cont;
    S.n_ids = L.n_ids;
    const char *note = "";
    if (load_frames(&S, &L, calib, (int)port - 1, &note)) goto fail;
    int sp = split(&S, cal, held, 2048), ncal = sp & 0xffff, nheld = sp >> 16;
    if (!nheld) {
        cphil_err(CPHIL_E_ARG, "need at least two games (or one long one) for calibration and held-out frames");
        goto fail;
    }
    if (cphil_infer_policy_build(pf, CPHIL_W_F32, &mf)) goto fail;
    int nm = cphil_infer_model_n_mats(mf);
    if (is_static) {
        amax = cphil_calloc((size_t)nm, sizeof(float));
        scales = cphil_calloc((size_t)nm, sizeof(float));
        names = cphil_calloc((size_t)nm, sizeof(char *));
        if (!amax || !scales || !names) { cphil_err(CPHIL_E_NOMEM, "out of memory"); goto fail; }
        if (cphil_infer_state_open(mf, CPHIL_INFER_WINDOW, &sf)) goto fail;
        cphil_infer_state_calibrate(sf, amax);
        float lg[CPHIL_N_LOGITS];
        long used = 0;
        for (int k = 0; k < ncal && used < max_frames; k++) {
            cphil_infer_state_reset(sf);
            for (int t = cal[k].a; t < cal[k].b && used < max_frames; t++, used++)
                if (cphil_infer_step(sf, S.cont + (size_t)t * S.n_cont, S.ids + (size_t)t * S.n_ids, lg)) goto fail;
        }
        cphil_infer_state_calibrate(sf, NULL);
        cphil_infer_state_close(sf);
        sf = NULL;
        for (int i = 0; i < nm; i++) {
            names[i] = cphil_infer_model_mat_name(mf, i);
            scales[i] = amax[i] > 0.f ? amax[i] / 127.f : 0.f;
        }
    }
    if (cphil_infer_policy_write_quantized(pf, output, dt, is_static ? nm : 0, names, scales)) goto fail;
    /* evaluate the written file against the f32 policy on held-out frames */
    if (cphil_infer_policy_open(output, &pq)) goto fail;
    if (cphil_infer_policy_build(pq, cphil_infer_policy_precision(pq), &mq)) goto fail;
    if (cphil_infer_state_open(mf, CPHIL_INFER_WINDOW, &sf) || cphil_infer_state_open(mq, CPHIL_INFER_WINDOW, &sq)) goto fail;
    uint64_t same[7] = {0}, n = 0, btn_same = 0;
    double max_err = 0, max_rel = 0;
    for (int k = 0; k < nheld && (long long)n < max_frames; k++) {
        cphil_infer_state_reset(sf);
        cphil_infer_state_reset(sq);
        for (int t = held[k].a; t < held[k].b && (long long)n < max_frames; t++, n++) {
            float a[CPHIL_N_LOGITS], b[CPHIL_N_LOGITS];
            const float *c = S.cont + (size_t)t * S.n_cont;
            const int32_t *id = S.ids + (size_t)t * S.n_ids;
            if (cphil_infer_step(sf, c, id, a) || cphil_infer_step(sq, c, id, b)) goto fail;
            int all = 1, bs = 1;
            for (int i = 0; i < 8; i++) {
                int s = (a[i] > 0) == (b[i] > 0);
                bs &= s;
                btn_same += s;
            }
            same[0] += bs;
            all &= bs;
            double scale = 0;
            for (int i = 0; i < CPHIL_N_LOGITS; i++) scale = fmax(scale, fabs(a[i]));
            for (int h = 1; h < CPHIL_N_HEADS; h++) {
                int s = argmax(a + cphil_head_offset[h], cphil_head_classes[h]) == argmax(b + cphil_head_offset[h], cphil_head_classes[h]);
                same[h] += s;
                all &= s;
            }
            same[6] += all;
            for (int i = 0; i < CPHIL_N_LOGITS; i++) {
                double e = fabs((double)a[i] - b[i]);
                max_err = fmax(max_err, e);
                max_rel = fmax(max_rel, e / fmax(scale, 1e-6));
            }
        }
    }
    double head_mean = 0;
    for (int h = 0; h < 6; h++) head_mean += (double)same[h] / (double)n / 6.0;
    const char *kind = dt == CPHIL_W_BF16 ? "bf16" : is_static ? "int8-static" : "int8-dynamic";
    if (json) {
        printf("{\"policy\":\"%s\",\"output\":\"%s\",\"kind\":\"%s\",\"frames\":%llu,\"frames_source\":\"%s\","
               "\"agreement_heads_mean\":%.5f,\"agreement_all_heads\":%.5f,\"agreement\":{",
               policy, output, kind, (unsigned long long)n, note, head_mean, (double)same[6] / n);
        for (int h = 0; h < 6; h++) printf("%s\"%s\":%.5f", h ? "," : "", cphil_head_names[h], (double)same[h] / n);
        printf("},\"button_each\":%.5f,\"max_logit_error\":%.6g,\"max_relative_logit_error\":%.6g}\n",
               (double)btn_same / (8.0 * n), max_err, max_rel);
    } else {
        printf("wrote %s (%s weights%s)\n", output, dt == CPHIL_W_BF16 ? "bf16" : "int8 per-output-channel",
               dt == CPHIL_W_BF16 ? "" : is_static ? ", static activation scales" : ", dynamic activation scales");
        printf("held-out frames: %llu (window mode; from %s)\n", (unsigned long long)n, note);
        printf("agreement of the chosen actions with the f32 policy:\n");
        for (int h = 0; h < 6; h++) printf("  %-9s %7.3f%%\n", cphil_head_names[h], 100.0 * same[h] / n);
        printf("  mean      %7.3f%%  (all six heads at once: %.3f%%; each button: %.3f%%)\n", 100.0 * head_mean,
               100.0 * same[6] / n, 100.0 * btn_same / (8.0 * n));
        printf("largest logit error: %.4g (%.3f%% of the largest logit)\n", max_err, 100.0 * max_rel);
    }
    rc = CLI_EXIT_OK;
fail:
    if (rc != CLI_EXIT_OK) cli_error(NULL);
    cphil_infer_state_close(sf);
    cphil_infer_state_close(sq);
    cphil_infer_model_free(mf);
    cphil_infer_model_free(mq);
    cphil_infer_policy_close(pf);
    cphil_infer_policy_close(pq);
    cphil_free(S.cont);
    cphil_free(S.ids);
    cphil_free(amax);
    cphil_free(scales);
    cphil_free(names);
    return rc;
}
