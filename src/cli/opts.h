/* opts.h — a table-driven option parser for the commands with many flags (train, eval,
 * soft-labels, distill). One table per command gives each flag's name, kind, target, default
 * (as text), range or choices and help; from it come parsing (unknown flags and bad values are
 * errors that name the flag and suggest the nearest valid one), --help, and the banner's
 * "differs from the defaults" list. Accepts `--flag value` and `--flag=value`.
 * Deliberately simple: no short options, no option abbreviations. */
#ifndef CPHIL_CLI_OPTS_H
#define CPHIL_CLI_OPTS_H

#include "cli/cli.h"

typedef enum opt_kind {
    OPT_FLAG,   /* bool, no value (also --no-<name> to clear) */
    OPT_INT,    /* long long in [lo, hi] */
    OPT_DOUBLE, /* double in [lo, hi] */
    OPT_STR,    /* const char * */
    OPT_ENUM,   /* int index into choices (NULL-terminated) */
    OPT_LIST,   /* const char ** collected; the flag takes one or more values until the next --flag */
    OPT_INTLIST /* comma list of ints in [lo, hi] into int[cap] (count in *list_n) */
} opt_kind;

#define OPT_LIST_CAP 32

typedef struct opt_def {
    const char *name; /* "--hidden" */
    opt_kind kind;
    void *target;     /* bool*, long long*, double*, const char**, int*, const char*[OPT_LIST_CAP], int[] */
    const char *def;  /* default as text (NULL: none) */
    double lo, hi;
    const char *const *choices; /* OPT_ENUM */
    int *list_n;                /* OPT_LIST / OPT_INTLIST: count */
    const char *help;
    const char *metavar;
    bool set;                   /* given on the command line */
} opt_def;

/* Apply every default, then parse argv[1..]. Returns 0 ok, 1 after printing --help, -1 on an
 * error (already printed, naming the flag and the nearest valid one). Positional arguments are
 * errors unless `positional` is non-NULL (they are appended to it, up to OPT_LIST_CAP). */
int opts_parse(const char *cmd, opt_def *defs, int n_defs, int argc, char **argv, const char **positional,
               int *n_positional, const char *usage_line);
void opts_help(FILE *f, const char *cmd, const opt_def *defs, int n_defs, const char *usage_line);
opt_def *opts_find(opt_def *defs, int n_defs, const char *name);
bool opts_was_set(opt_def *defs, int n_defs, const char *name);
/* Print "  --flag value" for each flag given with a value different from its default. */
int opts_print_changed(FILE *f, const opt_def *defs, int n_defs, const char *indent);
/* The value of a flag as text (for banners and metadata). */
void opts_value_text(const opt_def *d, char *buf, size_t n);

/* --threads N for the matrix products (src/kernels): 0 = every online core (at most 64). Results do
 * not depend on the count (kernels.h). */
void cli_set_threads(long long n);
/* --device of the commands that only run a policy (eval, soft-labels): parse it, check the GPU,
 * and make src/train/eval.c run the policy there. Returns CLI_EXIT_OK or the exit status of the
 * error it printed. */
int cli_use_device_for_eval(const char *device);

#endif
