/* cmd_fake_dolphin.c — `cphil fake-dolphin`: serve a replay as Slippi Dolphin streams a game
 * (spectator server over ENet, pipe controller input read back), for testing bots without
 * Dolphin. The work is in src/live/fake_dolphin.c; this file parses options and prints. */
#include "cli/cli.h"
#include "live/fake_dolphin.h"
#include "live/menus.h"

#include <signal.h>
#include <string.h>

static volatile sig_atomic_t g_stop;
static void on_signal(int sig) {
    (void)sig;
    g_stop = 1;
}

static void usage(FILE *f) {
    fprintf(f,
            "usage: cphil fake-dolphin --replay R [--port P] [--realtime | --lockstep] [--user-dir DIR]\n"
            "                          [--record FILE.jsonl] [--fault LIST] [--fault-frame F] [--pause-ms MS]\n"
            "                          [--menus] [--menu-frames N] [--start-delay S] [--wait-client S] [--stall-ms MS] [--bind HOST] [--json] [--quiet]\n"
            "Serves one replay exactly as Slippi Dolphin's spectator server streams a game (ENet/UDP, JSON messages,\n"
            "base64 events batched per frame, cursors, catch-up, rollback re-sends of online replays, end_game, then\n"
            "dolphin_closed) and reads the controller FIFOs in DIR/Pipes/ the way Dolphin's pipe device does,\n"
            "recording the pad state at every FLUSH.\n"
            "  --port P          spectator port (default 51441; Dolphin's SlippiSpectatorLocalPort)\n"
            "  --realtime        one frame every 1/59.94 s (default); FLUSHes that come too late are counted\n"
            "  --lockstep        BlockingPipes: after Game Start, every bookend and every menu frame, wait for a FLUSH\n"
            "  --user-dir DIR    Dolphin user dir: reads every FIFO in DIR/Pipes/ (makes slippibot1 when there is none)\n"
            "  --pipe-port N     the FIFO made when Pipes/ is empty: slippibotN (default 1)\n"
            "  --record FILE     JSONL, one line per FLUSH: what it answered, the GameCube bytes, the classes\n"
            "  --fault LIST      comma list: %s\n"
            "  --fault-frame F   the frame whose bookend triggers the faults (default 60)\n"
            "  --pause-ms MS     length of the pause fault (default 3000)\n"
            "  --menu-frames N   menu frames (character select, then stage select) before the game (default 0)\n"
            "  --menus           simulate the select screens from the pipe's pad (cursor, A, B, START) until a stage\n"
            "                    is chosen, at most --menu-frames (default 3600) frames; reports what was chosen\n"
            "  --start-delay S   seconds at the menus without menu frames (no gecko code) before the game (default 0)\n"
            "  --wait-client S   seconds to wait for a first client (default 30)\n"
            "  --stall-ms MS     lockstep: give up when no FLUSH comes for this long (default 10000)\n"
            "  --bind HOST       address to listen on (default 127.0.0.1; Dolphin listens on all interfaces)\n"
            "Exit status: 0 served, 1 failure (bad replay, port in use, no client, a lockstep client stalled), 2 usage.\n",
            live_fake_fault_names);
}

static void log_line(void *user, const char *line) {
    if (*(bool *)user) return;
    fprintf(stderr, "fake-dolphin: %s\n", line);
}

int cmd_fake_dolphin(int argc, char **argv) {
    live_fake_params p;
    live_fake_default_params(&p);
    const char *replay = NULL;
    bool json = false, quiet = false;
    long long v;
    double d;
    static const char *const valid[] = {"--replay", "--port", "--realtime", "--lockstep", "--user-dir", "--pipe-port",
                                        "--record", "--fault", "--fault-frame", "--pause-ms", "--menu-frames", "--menus",
                                        "--start-delay", "--wait-client", "--stall-ms", "--bind", "--json", "--quiet", "--help", NULL};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return CLI_EXIT_OK;
        } else if (!strcmp(a, "--realtime")) p.lockstep = false;
        else if (!strcmp(a, "--lockstep")) p.lockstep = true;
        else if (!strcmp(a, "--json")) json = true;
        else if (!strcmp(a, "--quiet")) quiet = true;
        else if (!strcmp(a, "--menus")) p.menus = true;
        else if (!strcmp(a, "--replay") || !strcmp(a, "--user-dir") || !strcmp(a, "--record") || !strcmp(a, "--bind") ||
                 !strcmp(a, "--fault")) {
            if (!val) {
                cli_error("%s needs a value", a);
                return CLI_EXIT_USAGE;
            }
            if (!strcmp(a, "--replay")) replay = val;
            else if (!strcmp(a, "--user-dir")) p.user_dir = val;
            else if (!strcmp(a, "--record")) p.record_path = val;
            else if (!strcmp(a, "--bind")) p.bind_host = val;
            else {
                const char *bad;
                size_t bl;
                if (!live_fake_parse_faults(val, &p.faults, &bad, &bl)) {
                    cli_error("--fault: '%.*s' is not one of: %s", (int)bl, bad, live_fake_fault_names);
                    return CLI_EXIT_USAGE;
                }
            }
            i++;
        } else if (!strcmp(a, "--port")) {
            if (!cli_parse_int(a, val, 1, 65535, &v)) return CLI_EXIT_USAGE;
            p.port = (int)v, i++;
        } else if (!strcmp(a, "--pipe-port")) {
            if (!cli_parse_int(a, val, 1, 4, &v)) return CLI_EXIT_USAGE;
            p.pipe_port = (int)v, i++;
        } else if (!strcmp(a, "--fault-frame")) {
            if (!cli_parse_int(a, val, -123, 1 << 30, &v)) return CLI_EXIT_USAGE;
            p.fault_frame = (int)v, i++;
        } else if (!strcmp(a, "--pause-ms")) {
            if (!cli_parse_int(a, val, 0, 600000, &v)) return CLI_EXIT_USAGE;
            p.pause_ms = (int)v, i++;
        } else if (!strcmp(a, "--menu-frames")) {
            if (!cli_parse_int(a, val, 0, 1000000, &v)) return CLI_EXIT_USAGE;
            p.menu_frames = (int)v, i++;
        } else if (!strcmp(a, "--start-delay")) {
            if (!cli_parse_double(a, val, 0, 86400, &d)) return CLI_EXIT_USAGE;
            p.start_delay_ms = (int)(d * 1000), i++;
        } else if (!strcmp(a, "--stall-ms")) {
            if (!cli_parse_int(a, val, 1, 3600000, &v)) return CLI_EXIT_USAGE;
            p.stall_ms = (int)v, i++;
        } else if (!strcmp(a, "--wait-client")) {
            if (!cli_parse_double(a, val, 0.001, 86400, &d)) return CLI_EXIT_USAGE;
            p.wait_client_ms = (int)(d * 1000), i++;
        } else {
            cli_unknown_option("fake-dolphin", a, valid);
            return CLI_EXIT_USAGE;
        }
    }
    if (!replay) {
        cli_error("fake-dolphin needs --replay R (cphil fake-dolphin --help)");
        return CLI_EXIT_USAGE;
    }
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
    cphil_status s = live_fake_run(&p, &st);
    cphil_free(data);
    const live_css_slot *mc = st.menu_character >= 0 ? live_css_by_id(st.menu_character) : NULL;
    const live_sss_slot *ms = st.menu_stage >= 0 ? live_sss_by_byte(st.menu_stage) : NULL;
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
