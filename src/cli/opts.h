/* opts.h — the one option parser of every cphil command. A command declares its flags in a
 * table (opt_def: name, kind, destination, default as text, range or choices, help line); the
 * table, split into groups where commands share options (the optimizer flags of train and
 * distill, the agent flags of play and play-replay), and a few lines of prose form an opts_spec.
 * From that one spec come: parsing (`--flag value` and `--flag=value`), the same error messages
 * in every command (unknown flag with "did you mean", missing value, bad number, out of range,
 * not one of the choices, missing required flag: each names the command, the flag, the value and
 * what would be accepted; exit status 2), `--help` (so the help cannot drift from the code), and
 * the banner's "changed from the defaults" list.
 * Deliberately simple: no bundled short options, no abbreviations; a flag may have one alias
 * ("-o" for "--output"). Before this parser nine commands parsed by hand (docs/layout.md). */
#ifndef CPHIL_CLI_OPTS_H
#define CPHIL_CLI_OPTS_H

#include "cli/cli.h"

typedef enum opt_kind {
    OPT_FLAG,     /* bool, no value (also --no-<name> to clear) */
    OPT_INT,      /* long long in [lo, hi] */
    OPT_DOUBLE,   /* double in [lo, hi] */
    OPT_STR,      /* const char * (NULL until given, unless a default) */
    OPT_ENUM,     /* int: index into choices (NULL-terminated); -1 until given when there is no default */
    OPT_LIST,     /* const char *[OPT_LIST_CAP]: one or more values until the next --flag, count in *list_n */
    OPT_INTLIST,  /* comma list of at most 8 ints in [lo, hi] into int[8] (count in *list_n) */
    OPT_ENUMLIST  /* const char *: a comma list whose every item is one of choices (kept as the text) */
} opt_kind;

#define OPT_LIST_CAP 32

typedef struct opt_def {
    const char *name; /* "--hidden" */
    opt_kind kind;
    void *target;     /* bool*, long long*, double*, const char**, int*, const char*[OPT_LIST_CAP], int[8] */
    const char *def;  /* default as text (NULL: none; an int or number target then keeps the
                       * value the command gave it before parsing) */
    double lo, hi;    /* OPT_INT, OPT_DOUBLE, OPT_INTLIST: the accepted range */
    const char *const *choices; /* OPT_ENUM, OPT_ENUMLIST */
    int *list_n;                /* OPT_LIST / OPT_INTLIST: count */
    const char *help;           /* NULL: hidden from --help (test hooks) */
    const char *metavar;        /* the value's name in --help ("P", "DIR") */
    bool set;                   /* given on the command line (written by opts_parse) */
    const char *alias;          /* a second spelling ("-o", "--characters") or NULL */
    bool required;              /* opts_parse refuses the command line without it */
} opt_def;

/* Shorthand for the common entries (designated initializers; everything else zero). */
#define OPT_D(nm, k, tgt, dflt, l, h, hlp) {.name = nm, .kind = k, .target = tgt, .def = dflt, .lo = l, .hi = h, .help = hlp}

typedef struct opt_group {
    const char *title; /* heading in --help; NULL: "options" */
    opt_def *defs;
    int n;
} opt_group;

#define OPT_MAX_GROUPS 4

typedef struct opts_spec {
    const char *cmd;   /* "export" */
    const char *usage; /* after "usage: cphil <cmd> " */
    const char *about; /* printed under the usage line (NULL: nothing) */
    const char *notes; /* printed after the options (NULL: nothing) */
    opt_group groups[OPT_MAX_GROUPS];
    /* positional arguments; without `positional` every argument must be a flag */
    const char *positional_name; /* "FILE" (for "missing FILE") */
    const char **positional;
    int positional_cap;
    int *n_positional;
    int min_positional;
} opts_spec;

enum { OPTS_OK = 0, OPTS_HELP = 1, OPTS_ERROR = -1 };

/* Apply every default, then parse argv[1..]. Returns OPTS_OK, OPTS_HELP after printing --help to
 * stdout, or OPTS_ERROR after printing one error (cli_error) that names the flag and what it
 * accepts. Values are not copied: string targets point into argv. */
int opts_parse(opts_spec *s, int argc, char **argv);
/* The exit status for a non-OK opts_parse result: CLI_EXIT_OK after --help, CLI_EXIT_USAGE after an error. */
int opts_exit(int r);
void opts_help(FILE *f, const opts_spec *s);
opt_def *opts_find(const opts_spec *s, const char *name);
bool opts_was_set(const opts_spec *s, const char *name);
/* Print "  --flag value  (default D)" for each flag given with a value different from its default. */
int opts_print_changed(FILE *f, const opts_spec *s, const char *indent);
/* The value of a flag as text (for banners and metadata). */
void opts_value_text(const opt_def *d, char *buf, size_t n);

/* ---- shared fragments ------------------------------------------------------------------- */

/* The optimizer and run options train and distill share: one table fragment, so the two commands
 * accept the same spellings, ranges and defaults. */
typedef struct cli_optim {
    long long epochs, warmup, max_steps, seed, threads;
    double lr, weight_decay, max_grad_norm;
    int precision; /* 0 bf16, 1 f32 (cli_optim_precision_choices) */
    int schedule;  /* 0 cosine, 1 constant (cli_optim_schedule_choices) */
    const char *device;
} cli_optim;
#define CLI_OPTIM_N 11
extern const char *const cli_optim_precision_choices[];
extern const char *const cli_optim_schedule_choices[];
/* Fill defs[CLI_OPTIM_N] with the shared entries, targets in *o. */
void cli_optim_defs(cli_optim *o, opt_def defs[CLI_OPTIM_N]);

/* The agent options play and play-replay share (one table fragment): the policy, the seat, and
 * how the agent decides. */
typedef struct cli_agent {
    const char *policy, *log;
    long long port, seed;
    double temperature;
    int mode;      /* 0 window, 1 stream (cphil_agent_mode) */
    int precision; /* auto, f32, bf16, int8 (cphil_agent_precision) */
    bool deterministic;
} cli_agent;
#define CLI_AGENT_N 8
/* Fill defs[CLI_AGENT_N] with the shared entries, targets in *a (--policy and --port required). */
void cli_agent_defs(cli_agent *a, opt_def defs[CLI_AGENT_N]);
/* The agent parameters the options ask for (port 1..4 becomes index 0..3). */
cphil_agent_params cli_agent_params(const cli_agent *a);

/* An int8 policy file (written by cphil quantize) runs as it is: its weights, its activation mode
 * and its scales. Shared by export and predict: true when the request agrees with the file; else
 * prints "<cmd>: P holds int8 <mode> weights (written by cphil quantize) and runs as it is: <what
 * to drop or use instead>" and returns false (exit CLI_EXIT_USAGE). file_static: the file holds
 * static activation scales; int8: the --int8 value given (NULL: none); calibration: --calibration
 * was given; f32_format: the requested output holds f32 weights (export --format npz|safetensors). */
bool cli_int8_file_ok(const char *cmd, const char *policy, bool file_static, const char *int8, bool calibration,
                      bool f32_format);

/* --threads N for the matrix products (src/kernels): 0 = every online core (at most 64). Results do
 * not depend on the count (kernels.h). */
void cli_set_threads(long long n);
/* The worker threads of train and distill: `requested` (--threads) when given; else every online
 * core, split between the ranks on this machine (`ranks` > 1: CPHIL's launcher environment says how
 * many share it), less one with --device cuda (there the threads are the batch loader's, and the
 * main thread waits for the GPU on a core of its own). */
long long cli_worker_threads(long long requested, int ranks, const char *device);
/* --device of the commands that only run a policy (eval, soft-labels): parse it, check the GPU,
 * and make src/train/eval.c run the policy there. Returns CLI_EXIT_OK or the exit status of the
 * error it printed. */
int cli_use_device_for_eval(const char *device);

#endif
