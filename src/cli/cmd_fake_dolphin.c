/* cmd_fake_dolphin.c — `cphil fake-dolphin`: serve a replay as Slippi Dolphin streams a game
 * (spectator server over ENet, pipe controller input read back), for testing bots without
 * Dolphin. The work is in src/live/fake_dolphin.c; this file parses options and prints. */
#include "cli/opts.h"
#include "live/fake_dolphin.h"
#include "live/menus.h"

#include <signal.h>
#include <string.h>

static volatile sig_atomic_t g_stop;
static void on_signal(int sig) {
    (void)sig;
    g_stop = 1;
}

static struct fake_cli {
    const char *replay, *user_dir, *record, *bind, *faults;
    long long port, pipe_port, fault_frame, pause_ms, menu_frames, stall_ms;
    double start_delay, wait_client;
    bool realtime, lockstep, json, quiet, menus;
} A;

static opt_def fake_defs[] = {
    {.name = "--replay", .kind = OPT_STR, .target = &A.replay, .required = true, .metavar = "R",
     .help = "the replay to serve (.slp)"},
    OPT_D("--port", OPT_INT, &A.port, "51441", 1, 65535, "spectator port (Dolphin's SlippiSpectatorLocalPort)"),
    OPT_D("--realtime", OPT_FLAG, &A.realtime, NULL, 0, 0,
          "one frame every 1/59.94 s (the default); FLUSHes that come too late are counted"),
    OPT_D("--lockstep", OPT_FLAG, &A.lockstep, NULL, 0, 0,
          "BlockingPipes: after Game Start, every bookend and every menu frame, wait for a FLUSH"),
    {.name = "--user-dir", .kind = OPT_STR, .target = &A.user_dir, .metavar = "DIR",
     .help = "Dolphin user dir: reads every FIFO in DIR/Pipes/ (makes slippibot1 when there is none)"},
    OPT_D("--pipe-port", OPT_INT, &A.pipe_port, "1", 1, 4, "the FIFO made when Pipes/ is empty: slippibotN"),
    {.name = "--record", .kind = OPT_STR, .target = &A.record, .metavar = "FILE.jsonl",
     .help = "JSONL, one line per FLUSH: what it answered, the GameCube bytes, the classes"},
    {.name = "--fault", .kind = OPT_STR, .target = &A.faults, .metavar = "LIST",
     .help = "comma list of faults to inject (below)"},
    OPT_D("--fault-frame", OPT_INT, &A.fault_frame, "60", -123, 1 << 30, "the frame whose bookend triggers the faults"),
    OPT_D("--pause-ms", OPT_INT, &A.pause_ms, "3000", 0, 600000, "length of the pause fault"),
    OPT_D("--menu-frames", OPT_INT, &A.menu_frames, "0", 0, 1000000,
          "menu frames (character select, then stage select) before the game"),
    OPT_D("--menus", OPT_FLAG, &A.menus, NULL, 0, 0,
          "simulate the select screens from the pipe's pad (cursor, A, B, START) until a stage is chosen, at most "
          "--menu-frames (3600 when not given) frames; reports what was chosen"),
    OPT_D("--start-delay", OPT_DOUBLE, &A.start_delay, "0", 0, 86400,
          "seconds at the menus without menu frames (no gecko code) before the game"),
    OPT_D("--wait-client", OPT_DOUBLE, &A.wait_client, "30", 0.001, 86400, "seconds to wait for a first client"),
    OPT_D("--stall-ms", OPT_INT, &A.stall_ms, "10000", 1, 3600000, "lockstep: give up when no FLUSH comes for this long"),
    {.name = "--bind", .kind = OPT_STR, .target = &A.bind, .metavar = "HOST",
     .help = "address to listen on (default 127.0.0.1; Dolphin listens on all interfaces)"},
    OPT_D("--json", OPT_FLAG, &A.json, NULL, 0, 0, "print the statistics as one JSON object"),
    OPT_D("--quiet", OPT_FLAG, &A.quiet, NULL, 0, 0, "no log lines"),
};

static opts_spec spec = {
    .cmd = "fake-dolphin",
    .usage = "--replay R [--port P] [--realtime | --lockstep] [--user-dir DIR] [--record FILE.jsonl]\n"
             "                          [--fault LIST] [options]",
    .about = "Serves one replay exactly as Slippi Dolphin's spectator server streams a game (ENet/UDP, JSON messages,\n"
             "base64 events batched per frame, cursors, catch-up, rollback re-sends of online replays, end_game, then\n"
             "dolphin_closed) and reads the controller FIFOs in DIR/Pipes/ the way Dolphin's pipe device does,\n"
             "recording the pad state at every FLUSH.",
    .groups = {{NULL, fake_defs, (int)CPHIL_ARRAY_LEN(fake_defs)}},
};

static void log_line(void *user, const char *line) {
    if (*(bool *)user) return;
    fprintf(stderr, "fake-dolphin: %s\n", line);
}

int cmd_fake_dolphin(int argc, char **argv) {
    static char notes[1024];
    snprintf(notes, sizeof notes,
             "Faults (--fault): %s\n"
             "Exit status: 0 served, 1 failure (bad replay, port in use, no client, a lockstep client stalled), 2 usage.",
             cphil_live_fake_fault_names);
    spec.notes = notes;
    int r = opts_parse(&spec, argc, argv);
    if (r) return opts_exit(r);
    if (A.realtime && A.lockstep) {
        cli_error("fake-dolphin: give one of --realtime and --lockstep");
        return CLI_EXIT_USAGE;
    }
    live_fake_params p;
    cphil_live_fake_default_params(&p);
    const char *replay = A.replay;
    bool json = A.json, quiet = A.quiet;
    p.lockstep = A.lockstep;
    p.menus = A.menus;
    if (A.user_dir) p.user_dir = A.user_dir;
    if (A.record) p.record_path = A.record;
    if (A.bind) p.bind_host = A.bind;
    if (A.faults) {
        const char *bad;
        size_t bl;
        if (!cphil_live_fake_parse_faults(A.faults, &p.faults, &bad, &bl)) {
            cli_error("fake-dolphin: --fault: '%.*s' is not one of: %s", (int)bl, bad, cphil_live_fake_fault_names);
            return CLI_EXIT_USAGE;
        }
    }
    p.port = (int)A.port;
    p.pipe_port = (int)A.pipe_port;
    p.fault_frame = (int)A.fault_frame;
    p.pause_ms = (int)A.pause_ms;
    p.menu_frames = (int)A.menu_frames;
    p.start_delay_ms = (int)(A.start_delay * 1000);
    p.stall_ms = (int)A.stall_ms;
    p.wait_client_ms = (int)(A.wait_client * 1000);
    uint8_t *data = NULL;
    size_t size = 0;
    if (cphil_file_read(replay, (size_t)1 << 30, &data, &size)) {
        cli_error(NULL);
        return CLI_EXIT_FAIL;
    }
    p.replay = data;
    p.replay_len = size;
    p.replay_name = replay;
    p.stop = &g_stop;
    p.log = log_line;
    p.log_user = &quiet;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    live_fake_stats st;
    cphil_status s = cphil_live_fake_run(&p, &st);
    cphil_free(data);
    const live_css_slot *mc = st.menu_character >= 0 ? cphil_live_css_by_id(st.menu_character) : NULL;
    const live_sss_slot *ms = st.menu_stage >= 0 ? cphil_live_sss_by_byte(st.menu_stage) : NULL;
    if (json) {
        printf("{\"status\":\"%s\",\"messages\":%llu,\"game_events\":%llu,\"bookends\":%llu,\"resends\":%llu,"
               "\"menu_frames\":%llu,\"need_inputs\":%llu,\"flushes\":%llu,\"commands\":%llu,\"invalid_lines\":%llu,"
               "\"split_bursts\":%llu,\"late\":%llu,\"clients\":%llu,\"connect_requests\":%llu,\"first_frame\":%d,"
               "\"last_frame\":%d,\"menu_character\":%s%s%s,\"menu_stage\":%s%s%s,\"seconds\":%.3f}\n",
               cphil_status_name(s), (unsigned long long)st.messages, (unsigned long long)st.game_events,
               (unsigned long long)st.bookends, (unsigned long long)st.resends, (unsigned long long)st.menu_frames,
               (unsigned long long)st.need_inputs, (unsigned long long)st.flushes, (unsigned long long)st.commands,
               (unsigned long long)st.invalid_lines, (unsigned long long)st.split_bursts, (unsigned long long)st.late,
               (unsigned long long)st.clients, (unsigned long long)st.connect_requests, (int)st.first_frame,
               (int)st.last_frame, mc ? "\"" : "", mc ? mc->name : "null", mc ? "\"" : "", ms ? "\"" : "",
               ms ? ms->name : "null", ms ? "\"" : "", st.seconds);
    } else if (!quiet || s) {
        fprintf(stderr,
                "fake-dolphin: %llu messages, %llu bookends (%llu re-sent), %llu menu frames; FLUSH %llu of %llu awaited, "
                "%llu invalid lines, %llu split writes, %llu late; %llu client connections, %.1f s\n",
                (unsigned long long)st.messages, (unsigned long long)st.bookends, (unsigned long long)st.resends,
                (unsigned long long)st.menu_frames, (unsigned long long)st.flushes, (unsigned long long)st.need_inputs,
                (unsigned long long)st.invalid_lines, (unsigned long long)st.split_bursts, (unsigned long long)st.late,
                (unsigned long long)st.clients, st.seconds);
    }
    if (s) {
        cli_error(NULL);
        return CLI_EXIT_FAIL;
    }
    return CLI_EXIT_OK;
}
