/* cmd_synth.c — `cphil synth`: write synthetic replays of the scripted two-player game
 * (src/game/synth.c; the rule is documented in docs/data.md). */
#include "cli/cli.h"
#include "game/synth.h"

#include <string.h>

static void synth_usage(FILE *f) {
    fprintf(f,
            "usage: cphil synth --games N --out DIR [--seed S] [--stocks K] [--max-seconds T] [--quiet]\n"
            "Writes N synthetic .slp replays (DIR/synth_0000.slp, ...) of a simple two-player game\n"
            "whose scripted players follow a fixed rule of the game state (docs/data.md).\n"
            "  --games N        number of games (1..100000)\n"
            "  --out DIR        output folder (created)\n"
            "  --seed S         series seed (default 1); the same seed gives the same files\n"
            "  --stocks K       starting stocks (default 4)\n"
            "  --max-seconds T  time limit per game (default 180)\n"
            "  --quiet          no progress bar\n");
}

int cmd_synth(int argc, char **argv) {
    long long games = -1, seed = 1, stocks = 4, max_seconds = 180;
    const char *out = NULL;
    bool quiet = false;
    static const char *const valid[] = {"--games", "--out", "--seed", "--stocks", "--max-seconds",
                                        "--quiet", "--help", NULL};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            synth_usage(stdout);
            return CLI_EXIT_OK;
        } else if (!strcmp(a, "--games")) {
            if (!cli_parse_int(a, v, 1, 100000, &games)) return CLI_EXIT_USAGE;
            i++;
        } else if (!strcmp(a, "--seed")) {
            if (!cli_parse_int(a, v, 0, (long long)1 << 62, &seed)) return CLI_EXIT_USAGE;
            i++;
        } else if (!strcmp(a, "--stocks")) {
            if (!cli_parse_int(a, v, 1, 99, &stocks)) return CLI_EXIT_USAGE;
            i++;
        } else if (!strcmp(a, "--max-seconds")) {
            if (!cli_parse_int(a, v, 1, 3600, &max_seconds)) return CLI_EXIT_USAGE;
            i++;
        } else if (!strcmp(a, "--out")) {
            if (!v) {
                cli_error("synth: --out needs a folder");
                return CLI_EXIT_USAGE;
            }
            out = v;
            i++;
        } else if (!strcmp(a, "--quiet")) {
            quiet = true;
        } else {
            cli_unknown_option("synth", a, valid);
            return CLI_EXIT_USAGE;
        }
    }
    if (!cli_require("synth", "--games", games >= 0, "--out", out != NULL, (char *)NULL)) return CLI_EXIT_USAGE;
    if (cphil_mkdir_p(out) != CPHIL_OK) {
        cli_error(NULL);
        return CLI_EXIT_FAIL;
    }
    cphil_synth_opts o = {(uint64_t)seed, (int)stocks, (int)max_seconds};
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
