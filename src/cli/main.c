/* main.c — the cphil binary: dispatches `cphil <command> [options]` to src/cli/cmd_*.c. */
#include "cli/opts.h"
#include "dist/dist.h"
#include "gpu/gpu.h"
#include "kernels/cpu/kernels.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct cli_command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} cli_command;

static const cli_command commands[] = {
#define CPHIL_COMMAND(name, fn, summary) {name, fn, summary},
#include "cli/commands.def"
#undef CPHIL_COMMAND
};

static void usage(FILE *f) {
    fprintf(f, "cphil %s — train Super Smash Bros. Melee bots from Slippi replays and run them in real time\n\n",
            CPHIL_VERSION_STRING);
    fprintf(f, "usage: cphil <command> [options]    (cphil <command> --help for its options)\n\ncommands:\n");
    for (size_t i = 0; i < CPHIL_ARRAY_LEN(commands); i++)
        fprintf(f, "  %-14s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\nDocumentation: README.md and docs/ in the source tree.\n");
}

void cli_error(const char *fmt, ...) {
    fputs("cphil: ", stderr);
    if (!fmt) {
        fputs(cphil_last_error(), stderr);
    } else {
        va_list ap;
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
    }
    fputc('\n', stderr);
}

int cli_edit_distance(const char *a, const char *b) {
    size_t n = strlen(a), m = strlen(b);
    if (n > 63 || m > 63) return 99;
    int d[64][64];
    for (size_t i = 0; i <= n; i++) d[i][0] = (int)i;
    for (size_t j = 0; j <= m; j++) d[0][j] = (int)j;
    for (size_t i = 1; i <= n; i++)
        for (size_t j = 1; j <= m; j++) {
            int c = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
            int x = d[i - 1][j] + 1, y = d[i][j - 1] + 1;
            d[i][j] = c < x ? (c < y ? c : y) : (x < y ? x : y);
        }
    return d[n][m];
}

const char *cli_nearest(const char *s, const char *const *valid) {
    const char *best = NULL;
    int bd = 1 << 30;
    for (size_t i = 0; valid && valid[i]; i++) {
        int dd = cli_edit_distance(s, valid[i]);
        if (dd < bd) {
            bd = dd;
            best = valid[i];
        }
    }
    int len = (int)strlen(s);
    return (best && bd <= (len < 6 ? 2 : len / 3 + 1)) ? best : NULL;
}

void cli_unknown_option(const char *cmd, const char *opt, const char *const *valid) {
    const char *near = cli_nearest(opt, valid);
    if (near) cli_error("%s: unknown option '%s' (did you mean '%s'?)", cmd, opt, near);
    else cli_error("%s: unknown option '%s' (see cphil %s --help)", cmd, opt, cmd);
}

bool cli_parse_int(const char *flag, const char *v, long long lo, long long hi, long long *out) {
    if (!v) {
        cli_error("%s needs a value", flag);
        return false;
    }
    char *end = NULL;
    long long x = strtoll(v, &end, 10);
    if (end == v || *end != '\0' || x < lo || x > hi) {
        cli_error("%s: '%s' is not a whole number in [%lld, %lld]", flag, v, lo, hi);
        return false;
    }
    *out = x;
    return true;
}

bool cli_require(const char *cmd, ...) {
    char missing[256] = "";
    int n = 0;
    va_list ap;
    va_start(ap, cmd);
    for (const char *flag; (flag = va_arg(ap, const char *)) != NULL;) {
        int given = va_arg(ap, int);
        if (given) continue;
        size_t len = strlen(missing);
        snprintf(missing + len, sizeof missing - len, "%s%s", n++ ? ", " : "", flag);
    }
    va_end(ap);
    if (n) cli_error("%s: missing %s (cphil %s --help)", cmd, missing, cmd);
    return n == 0;
}

bool cli_check_output(const char *cmd, const char *flag, const char *path, bool makes_folder) {
    size_t n = strlen(path);
    struct stat st;
    if (n == 0) {
        cli_error("%s: %s is empty: give a file name", cmd, flag);
        return false;
    }
    if (path[n - 1] == '/' || (stat(path, &st) == 0 && S_ISDIR(st.st_mode))) {
        cli_error("%s: %s '%s' names a folder, not a file: give a file name (e.g. %s%sout)", cmd, flag, path, path,
                  path[n - 1] == '/' ? "" : "/");
        return false;
    }
    /* the folder the file goes into must exist (the write goes to a temporary file beside it) */
    const char *slash = strrchr(path, '/');
    if (!makes_folder && slash && slash != path) {
        char dir[4096];
        size_t dn = (size_t)(slash - path);
        if (dn < sizeof dir) {
            memcpy(dir, path, dn);
            dir[dn] = '\0';
            if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
                cli_error("%s: %s '%s': the folder '%s' does not exist (create it first)", cmd, flag, path, dir);
                return false;
            }
        }
    }
    return true;
}

int cmd_version(int argc, char **argv) {
    /* no options, but the parser still refuses a typo or a stray argument */
    static opts_spec spec = {.cmd = "version",
                             .usage = "",
                             .about = "Prints the version, the CPU features (kernel tier) cphil will use, and whether\n"
                                      "CUDA and MPI are compiled in."};
    int r = opts_parse(&spec, argc, argv);
    if (r) return opts_exit(r);
    printf("cphil %s\n", CPHIL_VERSION_STRING);
    printf("%s\n", cphil_isa_describe());
    char gpus[1024];
    int n = cphil_gpu_describe_all(gpus, sizeof gpus);
    printf("cuda: %s%s\n", cphil_gpu_compiled() ? (n > 0 ? "compiled in; " : "") : "", gpus);
    printf("mpi: %s\n", cphil_dist_compiled() ? "compiled in (mpirun -np N cphil train: docs/distributed.md)"
                                              : "not compiled in (scripts/setup.sh installs Open MPI; then rebuild)");
    return CLI_EXIT_OK;
}

int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return argc < 2 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
    }
    /* kernel path: CPHIL_ISA=scalar|avx2|avx512 forces one; refuse a path this CPU lacks */
    if (cphil_isa_init() != CPHIL_OK) {
        cli_error(NULL);
        return CLI_EXIT_USAGE;
    }
    if (!strcmp(argv[1], "--version")) return cmd_version(argc - 1, argv + 1);
    const char *names[CPHIL_ARRAY_LEN(commands) + 1];
    for (size_t i = 0; i < CPHIL_ARRAY_LEN(commands); i++) {
        if (!strcmp(argv[1], commands[i].name)) return commands[i].run(argc - 1, argv + 1);
        names[i] = commands[i].name;
    }
    names[CPHIL_ARRAY_LEN(commands)] = NULL;
    const char *near = cli_nearest(argv[1], names);
    if (near) cli_error("unknown command '%s' (did you mean '%s'?)", argv[1], near);
    else cli_error("unknown command '%s' (cphil --help lists them)", argv[1]);
    return CLI_EXIT_USAGE;
}
