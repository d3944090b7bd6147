/* cmd_synth.c — `cphil synth`: write synthetic replays of the scripted two-player game
 * (src/game/synth.c; the rule is documented in docs/data.md). */
#include "cli/opts.h"
#include "game/synth.h"

#include <string.h>

static struct synth_cli {
    long long games, seed, stocks, max_seconds;
    const char *out;
    bool quiet;
} A;

static opt_def synth_defs[] = {
    {.name = "--games", .kind = OPT_INT, .target = &A.games, .lo = 1, .hi = 100000, .required = true,
     .help = "number of games"},
    {.name = "--out", .kind = OPT_STR, .target = &A.out, .required = true, .metavar = "DIR",
     .help = "output folder (created)"},
    OPT_D("--seed", OPT_INT, &A.seed, "1", 0, 4611686018427387904.0, "series seed; the same seed gives the same files"),
    OPT_D("--stocks", OPT_INT, &A.stocks, "4", 1, 99, "starting stocks"),
    OPT_D("--max-seconds", OPT_INT, &A.max_seconds, "180", 1, 3600, "time limit per game"),
    OPT_D("--quiet", OPT_FLAG, &A.quiet, NULL, 0, 0, "no progress bar"),
};

static opts_spec spec = {
    .cmd = "synth",
    .usage = "--games N --out DIR [--seed S] [--stocks K] [--max-seconds T] [--quiet]",
    .about = "Writes N synthetic .slp replays (DIR/synth_0000.slp, ...) of a simple two-player game\n"
             "whose scripted players follow a fixed rule of the game state (docs/data.md).",
    .groups = {{NULL, synth_defs, (int)CPHIL_ARRAY_LEN(synth_defs)}},
};

int cmd_synth(int argc, char **argv) {
    int r = opts_parse(&spec, argc, argv);
    if (r) return opts_exit(r);
    long long games = A.games, seed = A.seed;
    const char *out = A.out;
    bool quiet = A.quiet;
    if (cphil_mkdir_p(out) != CPHIL_OK) {
        cli_error(NULL);
        return CLI_EXIT_FAIL;
    }
    cphil_synth_opts o = {(uint64_t)seed, (int)A.stocks, (int)A.max_seconds};
    cphil_progress pr;
    cphil_progress_begin(&pr, "synth", (uint64_t)games, quiet);
    long long frames = 0;
    int time_outs = 0;
    for (long long g = 0; g < games; g++) {
        uint8_t *data = NULL;
        size_t size = 0;
        cphil_synth_summary sum;
        cphil_status s = cphil_synth_game(&o, (int)g, &data, &size, &sum);
        if (s == CPHIL_OK) {
            char path[4096];
            snprintf(path, sizeof path, "%s/synth_%04lld.slp", out, g);
            s = cphil_file_write_atomic(path, data, size);
        }
        cphil_free(data);
        if (s != CPHIL_OK) {
            cphil_progress_end(&pr);
            cli_error(NULL);
            return CLI_EXIT_FAIL;
        }
        frames += sum.frames;
        time_outs += sum.end_method == 1;
        cphil_progress_update(&pr, (uint64_t)g + 1, NULL);
    }
    cphil_progress_end(&pr);
    printf("synth: wrote %lld games (%lld frames, %d ended on time) to %s (seed %lld)\n", games,
           frames, time_outs, out, seed);
    return CLI_EXIT_OK;
}
