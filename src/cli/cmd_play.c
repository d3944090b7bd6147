/* cmd_play.c — `cphil play`: a policy plays in a running Slippi Dolphin. Game state comes from
 * Dolphin's spectator server (cphil_live: ENet on its own thread, cursors, reconnect), the
 * controller goes out through the pipe device FIFO (cphil_pad: one write per frame ending in
 * FLUSH). The agent decides on the first simulation of each frame (docs/live.md "When the bot
 * decides"); with --blocking (Dolphin's BlockingPipes) every bookend, re-simulations included,
 * Game Start and every menu frame get exactly one FLUSH. In real time a frame whose bookend
 * arrives while newer ones already wait is still fed to the agent (its memory needs every frame)
 * but its controller write is skipped and counted as missed. At the menus, with --character /
 * --stage, the menu navigator (src/live/menus.c) answers each menu frame with the pad that moves
 * the port's cursor; otherwise the menus are the person's.
 */
#include "cli/opts.h"
#include "cphil_live.h"
#include "game/ids.h"
#include "live/live_log.h"
#include "live/menus.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LATE_NS 12000000ull /* libmelee's guard: a decision later than 12 ms may miss its frame */

static volatile sig_atomic_t g_stop;
static void on_signal(int sig) {
    (void)sig;
    g_stop = 1;
}

static struct play_cli {
    cli_agent agent; /* shared with cphil play-replay */
    const char *address, *user_dir, *pipe_path, *character, *stage, *menus_mode;
    long long games, net_timeout, spin_us, warm_us;
    double connect_timeout, menu_timeout;
    bool blocking, json, quiet;
} A;

static opt_def play_defs[] = {
    OPT_D("--address", OPT_STR, &A.address, "127.0.0.1:51441", 0, 0, "Dolphin's spectator server, HOST:PORT (IPv4 only)"),
    {.name = "--dolphin-user-dir", .kind = OPT_STR, .target = &A.user_dir, .metavar = "DIR",
     .help = "Dolphin's user directory (the FIFO is DIR/Pipes/slippibotN)"},
    {.name = "--pipe", .kind = OPT_STR, .target = &A.pipe_path, .metavar = "FIFO",
     .help = "the controller FIFO itself (instead of --dolphin-user-dir)"},
    OPT_D("--blocking", OPT_FLAG, &A.blocking, NULL, 0, 0,
          "Dolphin runs with BlockingPipes (lockstep): answer every bookend, re-sends included"),
    {.name = "--games", .kind = OPT_INT, .target = &A.games, .lo = 1, .hi = 1 << 30,
     .help = "stop after N games (default: until Dolphin closes or Ctrl-C)"},
    OPT_D("--connect-timeout", OPT_DOUBLE, &A.connect_timeout, "60", 0.1, 86400,
          "give up when Dolphin is not reachable for S seconds (30 after a drop)"),
    {.name = "--net-timeout", .kind = OPT_INT, .target = &A.net_timeout, .lo = 100, .hi = 600000, .metavar = "MS",
     .help = "declare the connection dead after MS ms of silence (default: ENet's 5-30 s)"},
    OPT_D("--spin-us", OPT_INT, &A.spin_us, "0", 0, 100000,
          "poll the connection without sleeping for up to N us before sleeping in the socket wait: costs a core, "
          "saves the wake-up when a bookend arrives"),
    OPT_D("--warm-us", OPT_INT, &A.warm_us, "0", 0, 15000,
          "from N us before the next frame is due (the last one's arrival + 1/59.94 s), poll the connection "
          "without sleeping until the frame comes and read the policy's weights into cache every 100 us "
          "meanwhile, so that a decision after an idle frame costs closer to what it costs back to back "
          "(docs/live.md, Latency); 0: off"),
    {.name = "--character", .kind = OPT_STR, .target = &A.character, .metavar = "C",
     .help = "pick C at the character select (fox, falco, marth, ...; needs the gecko code \"Optional: Extract Menu "
             "Info\" in Dolphin for menu frames), START when all are ready"},
    {.name = "--stage", .kind = OPT_STR, .target = &A.stage, .metavar = "S",
     .help = "pick S at the stage select (battlefield, final_destination, dreamland, pokemon_stadium, yoshis_story, "
             "fountain_of_dreams, random; fd, bf, ... too)"},
    {.name = "--menus", .kind = OPT_STR, .target = &A.menus_mode, .metavar = "auto|manual",
     .help = "auto (with --character/--stage, the default then) or manual: the menus are a person's"},
    OPT_D("--menu-timeout", OPT_DOUBLE, &A.menu_timeout, "20", 0.1, 86400,
          "give the menus back to the person when they make no progress for S seconds"),
    OPT_D("--json", OPT_FLAG, &A.json, NULL, 0, 0, "print the summary as JSON"),
    OPT_D("--quiet", OPT_FLAG, &A.quiet, NULL, 0, 0, "no live line"),
};
static opt_def agent_defs[CLI_AGENT_N];

/* --warm-us: the live client calls this shortly before the next frame is due */
static void warm_agent(void *agent) { (void)cphil_agent_warm((cphil_agent *)agent); }

static opts_spec spec = {
    .cmd = "play",
    .usage = "--policy P --port N [--address HOST:PORT] [--dolphin-user-dir DIR | --pipe FIFO]\n"
             "                  [--mode window|stream] [--precision auto|f32|bf16|int8] [--temperature T | --deterministic]\n"
             "                  [--seed S] [--games N] [--blocking] [--log FILE.jsonl] [--connect-timeout S]\n"
             "                  [--net-timeout MS] [--spin-us N] [--warm-us N] [--character C] [--stage S] [--menus auto|manual]\n"
             "                  [--menu-timeout S] [--json] [--quiet]",
    .about = "Plays a policy in a running Slippi Dolphin: game state from Dolphin's spectator server (ENet/UDP), the\n"
             "controller through the pipe input device <DIR>/Pipes/slippibot<N> (cphil dolphin-setup prepares both).",
    .notes = "Prints a live line (frames, decision latency, late and missed frames) and a summary per game.\n"
             "Exit status: 0 when the games are played or Dolphin closes between games (or Ctrl-C), 1 on a failure\n"
             "(Dolphin unreachable, closed mid-game, controller pipe closed), 2 usage.",
    .groups = {{"agent (shared with cphil play-replay)", agent_defs, CLI_AGENT_N}, {NULL, play_defs, (int)CPHIL_ARRAY_LEN(play_defs)}},
};

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

typedef struct game_stats {
    uint64_t bookends, resends, decisions, writes, late, missed;
    int32_t last_frame;
    uint64_t *lat, *e2e; /* decision (step) and arrival-to-write latencies, ns */
    uint64_t *hand, *ovh; /* arrival to the event in hand (parse, hand-over), arrival-to-write less the step */
    size_t n_lat, n_e2e, cap;
} game_stats;

static void pct(uint64_t *v, size_t n, double *p50, double *p99, double *mx) {
    qsort(v, n, sizeof *v, cmp_u64);
    *p50 = n ? v[n / 2] / 1e3 : 0;
    *p99 = n ? v[(size_t)((n - 1) * 0.99)] / 1e3 : 0;
    *mx = n ? v[n - 1] / 1e3 : 0;
}

int cmd_play(int argc, char **argv) {
    cli_agent_defs(&A.agent, agent_defs);
    int pr = opts_parse(&spec, argc, argv);
    if (pr) return opts_exit(pr);
    const char *policy = A.agent.policy, *address = A.address, *user_dir = A.user_dir, *pipe_path = A.pipe_path,
               *log_path = A.agent.log;
    long long port = A.agent.port, games = A.games, net_timeout = A.net_timeout, spin_us = A.spin_us,
              warm_us = A.warm_us;
    double connect_timeout = A.connect_timeout, menu_timeout = A.menu_timeout;
    const char *character = A.character, *stage = A.stage, *menus_mode = A.menus_mode;
    bool blocking = A.blocking, json = A.json, quiet = A.quiet;
    cphil_agent_params ap = cli_agent_params(&A.agent);
    if (!user_dir == !pipe_path) {
        cli_error("play needs exactly one of --dolphin-user-dir DIR or --pipe FIFO (where the controller goes)");
        return CLI_EXIT_USAGE;
    }
    /* the menus: names against the select screens' tables (menus.c) */
    const live_css_slot *want_c = NULL;
    const live_sss_slot *want_s = NULL;
    if (character) {
        int ext = cphil_char_lookup(character);
        if (!(want_c = ext >= 0 ? cphil_live_css_by_ext(ext) : NULL)) {
            char names[512];
            cphil_live_css_names(names, sizeof names);
            cli_error("--character: '%s' is not on the character select screen; one of: %s", character, names);
            return CLI_EXIT_USAGE;
        }
    }
    if (stage) {
        int ext = cphil_stage_lookup(stage);
        want_s = !strcmp(stage, "random") ? cphil_live_sss_by_ext(-1) : ext >= 0 ? cphil_live_sss_by_ext(ext) : NULL;
        if (!want_s) {
            char names[512];
            cphil_live_sss_names(names, sizeof names);
            cli_error("--stage: '%s' is not a stage the bot can pick; one of: %s", stage, names);
            return CLI_EXIT_USAGE;
        }
    }
    bool auto_menus = want_c || want_s;
    if (menus_mode && strcmp(menus_mode, "auto") && strcmp(menus_mode, "manual")) {
        cli_error("--menus: '%s' is not auto or manual", menus_mode);
        return CLI_EXIT_USAGE;
    }
    if (menus_mode && !strcmp(menus_mode, "manual") && auto_menus) {
        cli_error("--menus manual leaves the menus to a person: it does not go with --character or --stage");
        return CLI_EXIT_USAGE;
    }
    if (menus_mode && !strcmp(menus_mode, "auto") && !auto_menus) {
        cli_error("--menus auto needs --character C and/or --stage S (what to pick)");
        return CLI_EXIT_USAGE;
    }
    char host[64];
    long long sport = 51441;
    {
        const char *colon = strrchr(address, ':');
        size_t hl = colon ? (size_t)(colon - address) : strlen(address);
        if (hl == 0 || hl >= sizeof host) {
            cli_error("--address: '%s' is not HOST:PORT (e.g. 127.0.0.1:51441)", address);
            return CLI_EXIT_USAGE;
        }
        memcpy(host, address, hl);
        host[hl] = '\0';
        if (colon && !cli_parse_int("--address port", colon + 1, 1, 65535, &sport)) return CLI_EXIT_USAGE;
    }
    char fifo[1100];
    if (pipe_path) snprintf(fifo, sizeof fifo, "%s", pipe_path);
    else snprintf(fifo, sizeof fifo, "%s/Pipes/slippibot%lld", user_dir, port);

    signal(SIGPIPE, SIG_IGN); /* a closed Dolphin gives EPIPE on write, reported by cphil_pad */

    cphil_agent *agent = NULL;
    cphil_live *live = NULL;
    cphil_pad *pad = NULL;
    cphil_atomic_file logf;
    bool log_open = false;
    game_stats g;
    memset(&g, 0, sizeof g);
    int rc = CLI_EXIT_OK;
    if (cphil_agent_open(policy, &ap, &agent)) {
        cli_error(NULL);
        return CLI_EXIT_FAIL;
    }
    cphil_agent_config cfg;
    cphil_agent_get_config(agent, &cfg);
    cphil_live_params lp = cphil_live_default_params();
    lp.host = host;
    lp.port = (int)sport;
    lp.connect_timeout_ms = (int)(connect_timeout * 1000);
    lp.net_timeout_ms = (int)net_timeout;
    lp.spin_us = (int)spin_us;
    lp.warm_us = (int)warm_us;
    lp.warm = warm_agent;
    lp.warm_ctx = agent;
    if (cphil_live_open(&lp, &live)) {
        cli_error(NULL);
        rc = CLI_EXIT_FAIL;
        goto done;
    }
    if (!quiet)
        fprintf(stderr, "play: %s (%s, %s, %s mode) as port %lld; Dolphin at %s:%lld; controller %s%s\n", policy,
                cfg.backbone, cfg.precision, cfg.mode, port, host, sport, fifo, blocking ? " (blocking)" : "");
    if (cphil_pad_open(fifo, (int)(connect_timeout * 1000), &pad)) {
        cli_error(NULL);
        rc = CLI_EXIT_FAIL;
        goto done;
    }
    /* from here on Ctrl-C ends the loop, so the log is committed (before, it just exits) */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    if (log_path) {
        if (cphil_atomic_open(&logf, log_path)) {
            cli_error(NULL);
            rc = CLI_EXIT_FAIL;
            goto done;
        }
        log_open = true;
    }
    g.cap = 1 << 16;
    g.lat = cphil_alloc(g.cap * sizeof *g.lat);
    g.e2e = cphil_alloc(g.cap * sizeof *g.e2e);
    g.hand = cphil_alloc(g.cap * sizeof *g.hand);
    g.ovh = cphil_alloc(g.cap * sizeof *g.ovh);
    if (!g.lat || !g.e2e || !g.hand || !g.ovh) {
        cli_error("out of memory");
        rc = CLI_EXIT_FAIL;
        goto done;
    }
    bool tty = isatty(2) && !quiet;
    bool agent_ok = false, have_ctrl = false, in_game = false;
    int games_done = 0, game_no = 0;
    double last_line = 0;
    /* menus: without the "Extract Menu Info" gecko code Dolphin sends nothing between games */
    double idle_since = cphil_now_sec();
    bool seen_menu = false, menu_hint = false;
    cphil_controller_state ctrl;
    memset(&ctrl, 0, sizeof ctrl);
    live_menu_nav nav;
    cphil_live_menu_nav_init(&nav, (int)port - 1, want_c, want_s);
    nav.stuck_frames = (int)(menu_timeout * 60);
    bool menu_short_warned = false;
    uint64_t tot_late = 0, tot_missed = 0, tot_dec = 0;
    while (!g_stop) {
        cphil_live_event ev;
        if (cphil_live_next(live, 100, &ev)) {
            cli_error(NULL);
            rc = CLI_EXIT_FAIL;
            break;
        }
        cphil_status ws = CPHIL_OK;
        if (ev.type != CPHIL_LIVE_TIMEOUT && ev.type != CPHIL_LIVE_WARNING) idle_since = cphil_now_sec();
        switch (ev.type) {
        case CPHIL_LIVE_TIMEOUT:
            if (!in_game && !seen_menu && !menu_hint && !quiet && cphil_now_sec() - idle_since > 5) {
                menu_hint = true;
                if (auto_menus)
                    fprintf(stderr,
                            "%splay: no menu frames have come from Dolphin in 5 s, so the bot cannot pick %s%s%s: enable "
                            "the gecko code \"Optional: Extract Menu Info\" in Dolphin (Dolphin updates overwrite "
                            "GameSettings/GALE01r2.ini; re-enable it). Until then the menus are yours\n",
                            tty ? "\r\033[K" : "", want_c ? want_c->name : "", want_c && want_s ? " and " : "",
                            want_s ? want_s->name : "");
                else
                    fprintf(stderr,
                            "%splay: waiting for a game; no menu frames have come from Dolphin. The menus are yours to "
                            "play (start a game by hand); for the bot to see menu frames, enable the gecko code "
                            "\"Optional: Extract Menu Info\" in Dolphin\n",
                            tty ? "\r\033[K" : "");
            }
            break;
        case CPHIL_LIVE_CONNECTED:
        case CPHIL_LIVE_DISCONNECTED:
        case CPHIL_LIVE_WARNING:
            if (!quiet) fprintf(stderr, "%splay: %s\n", tty ? "\r\033[K" : "", ev.text);
            break;
        case CPHIL_LIVE_GAME_START: {
            game_no = ev.game;
            in_game = true;
            cphil_live_menu_nav_reset(&nav); /* the next visit to the menus starts afresh */
            g.bookends = g.resends = g.decisions = g.writes = g.late = g.missed = 0;
            g.n_lat = g.n_e2e = 0;
            g.last_frame = 0;
            have_ctrl = false;
            cphil_status s = cphil_agent_game_start(agent, ev.game_info);
            agent_ok = s == CPHIL_OK;
            if (!agent_ok) fprintf(stderr, "play: game %d: %s; the bot stays neutral this game\n", ev.game, cphil_last_error());
            else if (!quiet) fprintf(stderr, "play: game %d started (stage %u)\n", ev.game, ev.game_info->game.stage);
            ws = cphil_pad_neutral(pad); /* all released and neutral: the game reads pads on its first frame */
            break;
        }
        case CPHIL_LIVE_FRAME: {
            uint64_t t_ev = cphil_now_ns(); /* the event in hand: parsed and handed over */
            g.bookends++;
            g.resends += ev.resend;
            g.last_frame = ev.frame_number;
            uint64_t dec_ns = 0;
            if (ev.decide && agent_ok) {
                uint64_t t0 = cphil_now_ns();
                cphil_status s = cphil_agent_step(agent, ev.frame, &ctrl);
                dec_ns = cphil_now_ns() - t0;
                if (s) {
                    fprintf(stderr, "play: game %d frame %d: %s; the bot stays neutral this game\n", ev.game,
                            (int)ev.frame_number, cphil_last_error());
                    agent_ok = false;
                    memset(&ctrl, 0, sizeof ctrl);
                    ctrl.main_x = ctrl.main_y = ctrl.c_x = ctrl.c_y = 0.5f;
                } else {
                    have_ctrl = true;
                    g.decisions++;
                    if (g.n_lat < g.cap) g.lat[g.n_lat++] = dec_ns;
                }
            }
            bool write = blocking || (!ev.resend && ev.pending_bookends == 0);
            if (!blocking && ev.decide && ev.pending_bookends > 0) g.missed++;
            if (write) {
                ws = have_ctrl ? cphil_pad_write(pad, &ctrl) : cphil_pad_neutral(pad);
                uint64_t e2e = cphil_now_ns() - ev.arrival_ns;
                if (ev.decide) {
                    g.late += e2e > LATE_NS;
                    if (g.n_e2e < g.cap) {
                        g.hand[g.n_e2e] = t_ev - ev.arrival_ns;
                        g.ovh[g.n_e2e] = e2e - dec_ns;
                        g.e2e[g.n_e2e++] = e2e;
                    }
                }
                g.writes++;
            }
            if (ev.decide && agent_ok && log_open) {
                char line[512];
                size_t n = cphil_live_log_format(line, sizeof line, ev.game, ev.frame_number, &ctrl, dec_ns / 1e3);
                if (cphil_atomic_write(&logf, line, n)) {
                    cli_error(NULL);
                    rc = CLI_EXIT_FAIL;
                    g_stop = 1;
                }
            }
            double now = cphil_now_sec();
            if (tty && now - last_line > 0.25) {
                last_line = now;
                double p50 = 0, p99 = 0;
                if (g.n_lat) {
                    /* the newest window, so the line follows the current game */
                    size_t n = g.n_lat < 600 ? g.n_lat : 600;
                    uint64_t tmp[600];
                    memcpy(tmp, g.lat + g.n_lat - n, n * sizeof *tmp);
                    qsort(tmp, n, sizeof *tmp, cmp_u64);
                    p50 = tmp[n / 2] / 1e3;
                    p99 = tmp[(size_t)((n - 1) * 0.99)] / 1e3;
                }
                fprintf(stderr, "\r\033[Kgame %d frame %d | decisions %llu, p50 %.0f us p99 %.0f us | late %llu missed %llu",
                        ev.game, (int)ev.frame_number, (unsigned long long)g.decisions, p50, p99,
                        (unsigned long long)g.late, (unsigned long long)g.missed);
            }
            break;
        }
        case CPHIL_LIVE_MENU:
            seen_menu |= !ev.in_game;
            if (auto_menus && !ev.in_game) {
                /* one write per menu frame: the navigator's pad for the next frame (also the one
                 * FLUSH a lockstep Dolphin waits for) */
                live_menu_frame mf;
                if (cphil_live_menu_parse(ev.menu, ev.menu_len, &mf)) {
                    live_menu_pad mp;
                    char msg[600];
                    if (cphil_live_menu_nav_step(&nav, &mf, &mp, msg, sizeof msg) && !quiet)
                        fprintf(stderr, "%splay: %s\n", tty ? "\r\033[K" : "", msg);
                    cphil_pad_raw raw = {mp.buttons, mp.x, mp.y, 0.5f, 0.5f, 0.0f, 0.0f};
                    ws = cphil_pad_write_raw(pad, &raw);
                    break;
                }
                if (!menu_short_warned && !quiet)
                    fprintf(stderr, "%splay: a menu frame of %u bytes (not a 0x3E frame of at least %d): ignored\n",
                            tty ? "\r\033[K" : "", ev.menu_len, LIVE_MENU_MIN_BYTES);
                menu_short_warned = true;
            }
            /* lockstep Dolphin waits for a FLUSH per menu frame; a menu frame inside a game
             * (Dolphin bug) gets the current state again, not a neutral one */
            if (blocking) ws = ev.in_game && have_ctrl ? cphil_pad_write(pad, &ctrl) : cphil_pad_neutral(pad);
            break;
        case CPHIL_LIVE_GAME_END: {
            in_game = false;
            double p50, p99, mx, e50, e99, emx;
            pct(g.lat, g.n_lat, &p50, &p99, &mx);
            pct(g.e2e, g.n_e2e, &e50, &e99, &emx);
            double h50, h99, hmx, o50, o99, omx;
            pct(g.hand, g.n_e2e, &h50, &h99, &hmx);
            pct(g.ovh, g.n_e2e, &o50, &o99, &omx);
            tot_late += g.late;
            tot_missed += g.missed;
            tot_dec += g.decisions;
            const cphil_replay *r = ev.game_info;
            const char *how = ev.dolphin_closed ? "Dolphin closed mid-game"
                              : ev.interrupted ? "interrupted (no end_game)"
                                               : "ended";
            if (json)
                printf("{\"game\":%d,\"end\":\"%s\",\"method\":%d,\"last_frame\":%d,\"bookends\":%llu,\"resends\":%llu,"
                       "\"decisions\":%llu,\"writes\":%llu,\"late\":%llu,\"missed\":%llu,\"decision_p50_us\":%.2f,"
                       "\"decision_p99_us\":%.2f,\"decision_max_us\":%.2f,\"write_p50_us\":%.2f,\"write_p99_us\":%.2f,"
                       "\"write_max_us\":%.2f,\"handoff_p50_us\":%.2f,\"handoff_p99_us\":%.2f,\"overhead_p50_us\":%.2f,"
                       "\"overhead_p99_us\":%.2f}\n",
                       ev.game, ev.dolphin_closed ? "closed" : ev.interrupted ? "interrupted" : "ended",
                       r && r->end.present ? r->end.method : -1, (int)g.last_frame, (unsigned long long)g.bookends,
                       (unsigned long long)g.resends, (unsigned long long)g.decisions, (unsigned long long)g.writes,
                       (unsigned long long)g.late, (unsigned long long)g.missed, p50, p99, mx, e50, e99, emx, h50, h99, o50, o99);
            if (!quiet)
                fprintf(stderr,
                        "%sgame %d %s at frame %d: %llu bookends (%llu re-sent), %llu decisions; decision p50 %.1f us, "
                        "p99 %.1f us, max %.1f us; bookend to write p50 %.1f us, p99 %.1f us; late %llu, missed %llu\n",
                        tty ? "\r\033[K" : "", ev.game, how, (int)g.last_frame, (unsigned long long)g.bookends,
                        (unsigned long long)g.resends, (unsigned long long)g.decisions, p50, p99, mx, e50, e99,
                        (unsigned long long)g.late, (unsigned long long)g.missed);
            if (ev.dolphin_closed) {
                cli_error("Dolphin closed during game %d (frame %d)", ev.game, (int)g.last_frame);
                rc = CLI_EXIT_FAIL;
                g_stop = 1;
                break;
            }
            if (!ev.interrupted) games_done++;
            if (games && games_done >= games) g_stop = 1;
            break;
        }
        case CPHIL_LIVE_CLOSED:
            if (!quiet) fprintf(stderr, "play: Dolphin closed after %d game(s)\n", games_done);
            if (games && games_done < games) {
                cli_error("Dolphin closed after %d of %lld games", games_done, games);
                rc = CLI_EXIT_FAIL;
            }
            g_stop = 1;
            break;
        case CPHIL_LIVE_LOST:
            cli_error("%s", ev.text);
            rc = CLI_EXIT_FAIL;
            g_stop = 1;
            break;
        }
        if (ws) {
            cli_error(NULL);
            rc = CLI_EXIT_FAIL;
            break;
        }
    }
    (void)game_no;
    if (in_game && rc == CLI_EXIT_OK && !quiet) fprintf(stderr, "%splay: stopped during game %d\n", tty ? "\r\033[K" : "", game_no);
    if (!quiet) {
        cphil_live_stats ls;
        cphil_live_get_stats(live, &ls);
        fprintf(stderr,
                "play: %d game(s), %llu decisions, late %llu, missed %llu; %llu messages, %llu reconnects, %llu duplicates "
                "dropped, %llu skipped (malformed %llu, zero-length %llu, unknown type %llu, truncated events %llu); unknown "
                "events skipped by size %llu, menu frames inside games %llu\n",
                games_done, (unsigned long long)tot_dec, (unsigned long long)tot_late, (unsigned long long)tot_missed,
                (unsigned long long)ls.messages, (unsigned long long)ls.reconnects, (unsigned long long)ls.duplicates,
                (unsigned long long)(ls.malformed + ls.zero_length + ls.unknown_types + ls.truncated_events),
                (unsigned long long)ls.malformed, (unsigned long long)ls.zero_length, (unsigned long long)ls.unknown_types,
                (unsigned long long)ls.truncated_events, (unsigned long long)ls.unknown_events,
                (unsigned long long)ls.menu_in_game);
    }
done:
    if (log_open) {
        if (cphil_atomic_commit(&logf)) {
            cli_error(NULL);
            rc = CLI_EXIT_FAIL;
        }
    }
    cphil_pad_close(pad);
    cphil_live_close(live);
    cphil_agent_close(agent);
    cphil_free(g.lat);
    cphil_free(g.e2e);
    cphil_free(g.hand);
    cphil_free(g.ovh);
    return rc;
}
