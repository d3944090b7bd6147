/* cli.h — the cphil binary's subcommands. Each command lives in src/cli/cmd_<name>.c, defines
 * `int cmd_<name>(int argc, char **argv)` (argv[0] is the command name) and is listed once in
 * commands.def. Commands print; the library never does. Exit codes: 0 ok, 1 failure, 2 usage. */
#ifndef CPHIL_CLI_H
#define CPHIL_CLI_H

#include "core/core.h"

#define CLI_EXIT_OK 0
#define CLI_EXIT_FAIL 1
#define CLI_EXIT_USAGE 2

#define CPHIL_COMMAND(name, fn, summary) int fn(int argc, char **argv);
#include "cli/commands.def"
#undef CPHIL_COMMAND

/* Print "cphil: <msg>" to stderr (the library's last error when msg is NULL). */
void cli_error(const char *fmt, ...) CPHIL_PRINTF(1, 2);
/* For an unknown option: print it with the nearest valid option from `valid` (NULL-terminated). */
void cli_unknown_option(const char *cmd, const char *opt, const char *const *valid);
/* Levenshtein distance, for "did you mean" hints. */
int cli_edit_distance(const char *a, const char *b);
/* Nearest of `valid` to `s` (NULL if none is close). */
const char *cli_nearest(const char *s, const char *const *valid);
/* A whole number inside a flag's value (e.g. the port of --address HOST:PORT); flags themselves go
 * through opts_parse (opts.h). Returns false and prints an error naming `flag` on a bad value. */
bool cli_parse_int(const char *flag, const char *v, long long lo, long long hi, long long *out);
/* Required flags: pairs (const char *flag, int given) ending with a NULL flag. Prints
 * "<cmd>: missing --a, --b (cphil <cmd> --help)" naming every flag not given and returns false. */
bool cli_require(const char *cmd, ...);
/* An output file path: refuses (printing why, false) a path ending in '/', an existing folder, or
 * (unless the command makes it: makes_folder) a path whose folder does not exist, before any work. */
bool cli_check_output(const char *cmd, const char *flag, const char *path, bool makes_folder);

#endif
