/* cmd_dolphin_setup.c — `cphil dolphin-setup`: prepare a Slippi Dolphin user directory for
 * `cphil play` (the FIFO, GCPadNew.ini, Dolphin.ini), saying what it changed. The work is in
 * src/live/dolphin_setup.c. */
#include "cli/cli.h"
#include "live/dolphin_setup.h"

#include <string.h>

static void usage(FILE *f) {
    fprintf(f,
            "usage: cphil dolphin-setup --user-dir DIR --port N [--spectator-port P] [--blocking]\n"
            "Prepares Slippi Dolphin's user directory DIR (Dolphin's -u; on Linux ~/.config/SlippiOnline by default)\n"
            "for a bot on controller port N, and prints every change:\n"
            "  DIR/Pipes/slippibotN          the controller FIFO (Dolphin opens pipes only at startup: restart it)\n"
            "  DIR/Config/GCPadNew.ini       [GCPadN]: the pipe device, sticks, and triggers as \"Axis L +\"\n"
            "  DIR/Config/Dolphin.ini        spectator server on port P (default 51441), BlockingPipes, background\n"
            "                                input, SIDeviceN-1 = 6 (standard controller); Ishiiruka and mainline keys\n"
            "  --blocking                    BlockingPipes = True: Dolphin waits for the bot every frame (lockstep;\n"
            "                                local play only, never netplay); without it: False\n"
            "A changed file is first copied to FILE.cphil-backup-<UTC time>; other settings are kept. Running it again\n"
            "changes nothing. Exit status: 0 done, 1 failure (e.g. Pipes/slippibotN is not a FIFO), 2 usage.\n");
}

static void note(void *user, const char *line) {
    (void)user;
    printf("dolphin-setup: %s\n", line);
}

int cmd_dolphin_setup(int argc, char **argv) {
    live_setup_params p = {NULL, 0, 51441, false};
    long long v;
    static const char *const valid[] = {"--user-dir", "--port", "--spectator-port", "--blocking", "--help", NULL};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return CLI_EXIT_OK;
        } else if (!strcmp(a, "--blocking")) p.blocking = true;
        else if (!strcmp(a, "--user-dir")) {
            if (!val) {
                cli_error("--user-dir needs a value");
                return CLI_EXIT_USAGE;
            }
            p.user_dir = val;
            i++;
        } else if (!strcmp(a, "--port")) {
            if (!cli_parse_int(a, val, 1, 4, &v)) return CLI_EXIT_USAGE;
            p.port = (int)v, i++;
        } else if (!strcmp(a, "--spectator-port")) {
            if (!cli_parse_int(a, val, 1, 65535, &v)) return CLI_EXIT_USAGE;
            p.spectator_port = (int)v, i++;
        } else {
            if (a[0] == '-') cli_unknown_option("dolphin-setup", a, valid);
            else cli_error("dolphin-setup: unexpected argument '%s'", a);
            return CLI_EXIT_USAGE;
        }
    }
    if (!p.user_dir || !p.port) {
        cli_error("dolphin-setup needs --user-dir DIR and --port N (cphil dolphin-setup --help)");
        return CLI_EXIT_USAGE;
    }
    if (live_dolphin_setup(&p, note, NULL)) {
        cli_error(NULL);
        return CLI_EXIT_FAIL;
    }
    return CLI_EXIT_OK;
}
