/* cmd_dolphin_setup.c — `cphil dolphin-setup`: prepare a Slippi Dolphin user directory for
 * `cphil play` (the FIFO, GCPadNew.ini, Dolphin.ini), saying what it changed. The work is in
 * src/live/dolphin_setup.c. */
#include "cli/opts.h"
#include "live/dolphin_setup.h"

#include <string.h>

static live_setup_params P = {NULL, 0, 51441, false};
static long long port, spectator_port;

static opt_def setup_defs[] = {
    {.name = "--user-dir", .kind = OPT_STR, .target = &P.user_dir, .required = true, .metavar = "DIR",
     .help = "Slippi Dolphin's user directory (Dolphin's -u; on Linux ~/.config/SlippiOnline by default)"},
    {.name = "--port", .kind = OPT_INT, .target = &port, .lo = 1, .hi = 4, .required = true,
     .help = "the bot's controller port"},
    OPT_D("--spectator-port", OPT_INT, &spectator_port, "51441", 1, 65535, "Dolphin's spectator server port"),
    OPT_D("--blocking", OPT_FLAG, &P.blocking, NULL, 0, 0,
          "BlockingPipes = True: Dolphin waits for the bot every frame (lockstep; local play only, never netplay); "
          "without it: False"),
};

static opts_spec spec = {
    .cmd = "dolphin-setup",
    .usage = "--user-dir DIR --port N [--spectator-port P] [--blocking]",
    .about = "Prepares Slippi Dolphin's user directory DIR for a bot on controller port N, and prints every change:\n"
             "  DIR/Pipes/slippibotN          the controller FIFO (Dolphin opens pipes only at startup: restart it)\n"
             "  DIR/Config/GCPadNew.ini       [GCPadN]: the pipe device, sticks, and triggers as \"Axis L +\"\n"
             "  DIR/Config/Dolphin.ini        spectator server on port P, BlockingPipes, background input,\n"
             "                                SIDeviceN-1 = 6 (standard controller); Ishiiruka and mainline keys",
    .notes = "A changed file is first copied to FILE.cphil-backup-<UTC time>; other settings are kept. Running it again\n"
             "changes nothing. Exit status: 0 done, 1 failure (e.g. Pipes/slippibotN is not a FIFO), 2 usage.",
    .groups = {{NULL, setup_defs, (int)CPHIL_ARRAY_LEN(setup_defs)}},
};

static void note(void *user, const char *line) {
    (void)user;
    printf("dolphin-setup: %s\n", line);
}

int cmd_dolphin_setup(int argc, char **argv) {
    int r = opts_parse(&spec, argc, argv);
    if (r) return opts_exit(r);
    live_setup_params p = P;
    p.port = (int)port;
    p.spectator_port = (int)spectator_port;
    if (cphil_live_dolphin_setup(&p, note, NULL)) {
        cli_error(NULL);
        return CLI_EXIT_FAIL;
    }
    return CLI_EXIT_OK;
}
