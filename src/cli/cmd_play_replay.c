/* cmd_play_replay.c — `cphil play-replay`: drive an agent through replays as if live. Each
 * replay's bytes go through the incremental parser in small pieces; every final frame goes to
 * cphil_agent_step as soon as the parser reports it. Reports decision latency (the whole step:
 * embedding, engine, sampling), decisions over the 16.68 ms frame (CPHIL_FRAME_NS), and how often the
 * agent's deterministic choice after frame t equals the human's input on frame t+1 (the pairing
 * the dataset trains on), per head.
 */
#include "cli/opts.h"
#include "game/controller.h"
#include "live/live_log.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const decide_names[] = {"final", "first", NULL};

static struct play_replay_cli {
    cli_agent agent; /* shared with cphil play */
    long long chunk;
    int decide; /* 0 final, 1 first */
    bool json;
} A;

static opt_def pr_defs[] = {
    OPT_D("--chunk", OPT_INT, &A.chunk, "512", 1, 1 << 30, "bytes fed to the parser at a time"),
    {.name = "--decide", .kind = OPT_ENUM, .target = &A.decide, .def = "final", .choices = decide_names,
     .help = "decide on each frame's final copy or, as cphil play does live, on its first simulation (they "
             "differ only in online games with rollback)"},
    OPT_D("--json", OPT_FLAG, &A.json, NULL, 0, 0, "print the report as one JSON object"),
};
static opt_def agent_defs[CLI_AGENT_N];

#define MAX_REPLAYS 4096
static const char *args[MAX_REPLAYS];
static int n_args;

static opts_spec spec = {
    .cmd = "play-replay",
    .usage = "--policy P --port N REPLAY... [--mode window|stream] [--precision auto|f32|bf16|int8]\n"
             "                         [--temperature T] [--seed S] [--deterministic] [--chunk BYTES] [--json]\n"
             "                         [--log FILE.jsonl] [--decide final|first]",
    .about = "Feeds each replay (a .slp file, or a folder: its .slp files, not recursive) through the\n"
             "incremental parser and an agent frame by frame, as if live.\n"
             "Prints decision latency (p50, p99, max microseconds, the whole step), decisions longer\n"
             "than a frame (16.68 ms), and per head how often the agent's deterministic choice equals the human's next input.",
    .groups = {{"agent (shared with cphil play)", agent_defs, CLI_AGENT_N}, {NULL, pr_defs, (int)CPHIL_ARRAY_LEN(pr_defs)}},
    .positional_name = "REPLAY",
    .positional = args,
    .positional_cap = MAX_REPLAYS,
    .n_positional = &n_args,
    .min_positional = 1,
};

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

typedef struct run {
    cphil_agent *agent;
    int port;
    cphil_status err;
    uint64_t *lat;
    size_t n_lat, cap_lat;
    int have_prev;
    uint8_t prev_btn[8], prev_cls[5];
    uint64_t same[7], total; /* buttons (all 8), main_x, main_y, c_x, c_y, shoulder, all six */
    uint64_t btn_same, btn_total;
    uint64_t frames;
    bool first;           /* decide on first simulations (on_copy) instead of final frames */
    int game;
    cphil_atomic_file *log;
} run;

static void on_start(void *user, const cphil_replay *r) {
    run *u = user;
    if (u->err) return;
    u->err = cphil_agent_game_start(u->agent, r);
    u->have_prev = 0;
}

static void decide(run *u, const cphil_frame *f) {
    if (u->err) return;
    u->frames++;
    /* the human's input on this frame vs the agent's choice after the previous frame */
    const cphil_char_frame *cf = &f->ports[u->port][0];
    if (u->have_prev && (cf->present & CPHIL_PRESENT_PRE)) {
        cphil_controller c = {cf->pre.joystick_x, cf->pre.joystick_y, cf->pre.cstick_x, cf->pre.cstick_y,
                              cf->pre.trigger_l, cf->pre.trigger_r, cf->pre.buttons_physical};
        cphil_target t;
        cphil_controller_encode(&c, &t);
        int bsame = 1, all = 1;
        for (int i = 0; i < 8; i++) {
            int s = t.buttons[i] == u->prev_btn[i];
            bsame &= s;
            u->btn_same += s;
            u->btn_total++;
        }
        u->same[0] += bsame;
        all &= bsame;
        for (int h = 0; h < 5; h++) {
            int s = t.cls[h] == u->prev_cls[h];
            u->same[1 + h] += s;
            all &= s;
        }
        u->same[6] += all;
        u->total++;
    }
    cphil_controller_state out;
    uint64_t a = now_ns();
    cphil_status s = cphil_agent_step(u->agent, f, &out);
    uint64_t d = now_ns() - a;
    if (s) {
        u->err = s;
        return;
    }
    if (u->log) {
        char line[512];
        size_t n = cphil_live_log_format(line, sizeof line, u->game, f->frame, &out, d / 1e3);
        if (cphil_atomic_write(u->log, line, n)) {
            u->err = CPHIL_E_IO;
            return;
        }
    }
    u->have_prev = cphil_agent_last_choice(u->agent, u->prev_btn, u->prev_cls);
    if (!u->have_prev) return; /* before the first decision frame */
    if (u->n_lat == u->cap_lat) {
        size_t nc = u->cap_lat ? u->cap_lat * 2 : 65536;
        uint64_t *p = cphil_realloc(u->lat, u->cap_lat * sizeof *p, nc * sizeof *p);
        if (!p) {
            u->err = cphil_err(CPHIL_E_NOMEM, "out of memory");
            return;
        }
        u->lat = p;
        u->cap_lat = nc;
    }
    u->lat[u->n_lat++] = d;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* A folder argument stands for its .slp files (sorted, one level); an empty one is an error. The
 * names are allocated (owned[]) and freed by the caller. */
static bool expand_folder(const char *dir, const char **replays, int *n_rep, char **owned, int *n_owned) {
    DIR *d = opendir(dir);
    if (!d) {
        cli_error("play-replay: %s: cannot open the folder", dir);
        return false;
    }
    int first = *n_rep;
    struct dirent *e;
    bool ok = true;
    while (ok && (e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (n <= 4 || strcmp(e->d_name + n - 4, ".slp")) continue;
        if (*n_rep >= MAX_REPLAYS) { /* never cut the list short without saying so */
            cli_error("play-replay: %s: more than %d replays in all; give fewer files or folders", dir, MAX_REPLAYS);
            ok = false;
            break;
        }
        size_t len = strlen(dir) + n + 2;
        char *path = cphil_alloc(len);
        if (!path) {
            cli_error("play-replay: out of memory listing %s", dir);
            ok = false;
            break;
        }
        snprintf(path, len, "%s/%s", dir, e->d_name);
        if (cphil_path_is_dir(path)) {
            cphil_free(path);
            continue;
        }
        owned[(*n_owned)++] = path;
        replays[(*n_rep)++] = path;
    }
    closedir(d);
    if (!ok) return false;
    if (*n_rep == first) {
        cli_error("play-replay: %s: a folder without .slp replays", dir);
        return false;
    }
    qsort(replays + first, (size_t)(*n_rep - first), sizeof *replays, cmp_str);
    return true;
}

static void on_frame(void *user, const cphil_replay *r, const cphil_frame *f) {
    (void)r;
    run *u = user;
    if (!u->first) decide(u, f);
}

static void on_copy(void *user, const cphil_replay *r, const cphil_frame *f) {
    (void)r;
    run *u = user;
    if (u->first && f->copies == 1) decide(u, f);
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int cmd_play_replay(int argc, char **argv) {
    cli_agent_defs(&A.agent, agent_defs);
    int pr = opts_parse(&spec, argc, argv);
    if (pr) return opts_exit(pr);
    const char *policy = A.agent.policy, *log_path = A.agent.log;
    bool first = A.decide == 1, json = A.json;
    long long chunk = A.chunk;
    cphil_agent_params p = cli_agent_params(&A.agent);
    static const char *replays[MAX_REPLAYS];
    static char *owned[MAX_REPLAYS];
    int n_rep = 0, n_owned = 0;
    bool expanded = true;
    for (int i = 0; i < n_args && expanded; i++) {
        if (!cphil_path_is_dir(args[i])) {
            if (n_rep < MAX_REPLAYS) replays[n_rep++] = args[i];
        } else {
            expanded = expand_folder(args[i], replays, &n_rep, owned, &n_owned);
        }
    }
    if (!expanded) {
        for (int i = 0; i < n_owned; i++) cphil_free(owned[i]);
        return CLI_EXIT_FAIL;
    }
    run u;
    memset(&u, 0, sizeof u);
    u.port = p.port;
    u.first = first;
    cphil_atomic_file logf;
    if (cphil_agent_open(policy, &p, &u.agent)) {
        cli_error(NULL);
        for (int i = 0; i < n_owned; i++) cphil_free(owned[i]);
        return CLI_EXIT_FAIL;
    }
    cphil_agent_config cfg;
    cphil_agent_get_config(u.agent, &cfg);
    if (log_path) {
        if (cphil_atomic_open(&logf, log_path)) {
            cli_error(NULL);
            cphil_agent_close(u.agent);
            return CLI_EXIT_FAIL;
        }
        u.log = &logf;
    }
    int rc = CLI_EXIT_OK;
    int used = 0;
    for (int r = 0; r < n_rep; r++) {
        uint8_t *data = NULL;
        size_t size = 0;
        if (cphil_file_read(replays[r], (size_t)1 << 30, &data, &size)) {
            cli_error(NULL);
            rc = CLI_EXIT_FAIL;
            continue;
        }
        cphil_slp_callbacks cb = {on_start, on_frame, NULL, &u};
        cphil_slp_stream *st = NULL;
        u.game = r + 1;
        cphil_status s = cphil_slp_stream_open(&st, &cb, replays[r]);
        if (!s) cphil_slp_stream_on_copy(st, on_copy);
        for (size_t off = 0; !s && off < size && !u.err; off += (size_t)chunk)
            s = cphil_slp_stream_feed(st, data + off, CPHIL_MIN((size_t)chunk, size - off));
        if (!s && !u.err) s = cphil_slp_stream_finish(st);
        if (s == CPHIL_E_TRUNCATED) s = CPHIL_OK;
        cphil_slp_stream_close(st);
        cphil_free(data);
        if (s || u.err) {
            cli_error("%s: %s", replays[r], cphil_last_error());
            u.err = CPHIL_OK;
            rc = CLI_EXIT_FAIL;
            continue;
        }
        used++;
    }
    for (int i = 0; i < n_owned; i++) cphil_free(owned[i]);
    /* no report of zeros: with no replay played, or no decision made, there is nothing to report */
    if (!used || !u.n_lat) {
        if (!used) cli_error("play-replay: no replay could be played (%d given; errors above)", n_rep);
        else cli_error("play-replay: the agent made no decision (no frame from %d on in %d replay%s)",
                       CPHIL_AGENT_FIRST_FRAME, used, used == 1 ? "" : "s");
        cphil_free(u.lat);
        cphil_agent_close(u.agent);
        return CLI_EXIT_FAIL;
    }
    if (u.n_lat > 1) qsort(u.lat, u.n_lat, sizeof *u.lat, cmp_u64); /* never qsort(NULL, 0): undefined */
    double p50 = u.n_lat ? u.lat[u.n_lat / 2] / 1e3 : 0, p99 = u.n_lat ? u.lat[(size_t)((u.n_lat - 1) * 0.99)] / 1e3 : 0;
    double mx = u.n_lat ? u.lat[u.n_lat - 1] / 1e3 : 0;
    uint64_t missed = 0;
    for (size_t i = 0; i < u.n_lat; i++) missed += u.lat[i] > CPHIL_FRAME_NS;
    static const char *const hn[7] = {"buttons", "main_x", "main_y", "c_x", "c_y", "shoulder", "all"};
    double tot = u.total ? (double)u.total : 1;
    if (json) {
        printf("{\"policy\":\"%s\",\"backbone\":\"%s\",\"precision\":\"%s\",\"mode\":\"%s\",\"replays\":%d,"
               "\"frames\":%llu,\"decisions\":%zu,\"p50_us\":%.2f,\"p99_us\":%.2f,\"max_us\":%.2f,\"missed_16ms\":%llu,"
               "\"agreement\":{",
               policy, cfg.backbone, cfg.precision, cfg.mode, used, (unsigned long long)u.frames, u.n_lat, p50, p99, mx,
               (unsigned long long)missed);
        for (int h = 0; h < 7; h++) printf("%s\"%s\":%.4f", h ? "," : "", hn[h], u.same[h] / tot);
        printf(",\"button_each\":%.4f},\"compared\":%llu}\n", u.btn_total ? (double)u.btn_same / u.btn_total : 0.0,
               (unsigned long long)u.total);
    } else {
        printf("policy %s: %s, %s, %s mode, %lld parameters\n", policy, cfg.backbone, cfg.precision, cfg.mode, cfg.params);
        printf("replays %d, frames %llu, decisions %zu\n", used, (unsigned long long)u.frames, u.n_lat);
        printf("decision latency (whole step): p50 %.1f us, p99 %.1f us, max %.1f us; longer than a frame (16.68 ms): %llu\n", p50, p99,
               mx, (unsigned long long)missed);
        printf("agreement of the deterministic choice with the human's next input (%llu frames):\n",
               (unsigned long long)u.total);
        for (int h = 0; h < 7; h++) printf("  %-9s %6.2f%%\n", hn[h], 100.0 * u.same[h] / tot);
        printf("  %-9s %6.2f%% (each button separately)\n", "button", u.btn_total ? 100.0 * u.btn_same / u.btn_total : 0.0);
    }
    if (u.log) {
        if (rc == CLI_EXIT_OK) {
            if (cphil_atomic_commit(u.log)) {
                cli_error(NULL);
                rc = CLI_EXIT_FAIL;
            }
        } else {
            cphil_atomic_abort(u.log);
        }
    }
    cphil_free(u.lat);
    cphil_agent_close(u.agent);
    return rc;
}
