/* cmd_bench.c — `cphil bench`: the default architecture table measured on this machine (one
 * core, pinned, after a warm-up): mlp, lstm, gru, mamba, attention at the default sizes with the
 * default embedding, random weights, f32 / bf16 / int8, window and stream mode; parameters and
 * p50 / p99 microseconds per decision (input layer with its id gathers, backbone, heads and
 * sampling included). `--policy P` benches one policy file instead. The timing loop lives in
 * src/infer/infer_bench.c (shared with bench/bench_infer).
 */
#include "cli/cli.h"
#include "infer/infer_bench.h"
#include "infer/infer_policy.h"

#include <sched.h>
#include <string.h>

static void bench_usage(FILE *f) {
    fprintf(f,
            "usage: cphil bench [--policy P] [--backbone B[,B..]] [--precision f32,bf16,int8] [--mode window,stream]\n"
            "                   [--seconds S] [--cpu N] [--json]\n"
            "Measures decisions per frame: parameters, p50 and p99 microseconds per decision (input layer,\n"
            "backbone, heads and sampling), one thread pinned to one core, after a warm-up.\n"
            "Without --policy: the default architecture table, every backbone at the sizes cphil trains by\n"
            "default (hidden 256, 2 layers, window 60, state 16, expand 2, conv 4, 4 heads; MLP 512-512;\n"
            "the sizes of ExPhil, the project cphil reimplements), random weights, the default embedding.\n"
            "  --policy P      bench this policy file (int8 files run int8; f32 files run --precision)\n"
            "  --backbone L    comma list of mlp,lstm,gru,mamba,attention (default all; not with --policy)\n"
            "  --precision L   comma list of f32,bf16,int8 (default all)\n"
            "  --mode L        comma list of window,stream (default both)\n"
            "  --seconds S     measuring time per row (default 0.4)\n"
            "  --cpu N         core to pin to (default: the current one)\n"
            "  --json          one JSON object per row: backbone, precision, mode, params, p50_us, p99_us\n"
            "Timings are noisy on a shared machine; compare ratios measured in the same run.\n");
}

/* Every name in a comma list must be one of `valid` (a typo would silently bench nothing). */
static bool check_list(const char *flag, const char *list, const char *const *valid) {
    if (!list) return true;
    const char *p = list;
    for (;;) {
        const char *c = strchr(p, ',');
        size_t len = c ? (size_t)(c - p) : strlen(p);
        char item[64];
        snprintf(item, sizeof item, "%.*s", (int)(len < 63 ? len : 63), p);
        bool ok = false;
        for (int i = 0; valid[i]; i++) ok |= len == strlen(valid[i]) && !strncmp(p, valid[i], len);
        if (!ok) {
            char all[128] = "";
            for (int i = 0; valid[i]; i++) {
                if (i) strncat(all, ",", sizeof all - strlen(all) - 1);
                strncat(all, valid[i], sizeof all - strlen(all) - 1);
            }
            const char *near = cli_nearest(item, valid);
            cli_error("bench: %s: '%s' is not one of %s%s%s%s", flag, item, all, near ? " (did you mean '" : "",
                      near ? near : "", near ? "'?)" : "");
            return false;
        }
        if (!c) return true;
        p = c + 1;
    }
}

typedef struct bench_out {
    bool json;
    int rows;
} bench_out;

static void print_row(void *user, const cphil_bench_row *w) {
    bench_out *o = user;
    o->rows++;
    bool json = o->json;
    const cphil_bench_result *r = &w->r;
    if (json)
        printf("{\"backbone\":\"%s\",\"precision\":\"%s\",\"mode\":\"%s\",\"params\":%lld,\"p50_us\":%.2f,"
               "\"p99_us\":%.2f,\"mean_us\":%.2f,\"max_us\":%.2f,\"iters\":%ld,\"fps60_ready\":%s}\n",
               w->backbone, w->precision, w->mode, (long long)w->params, r->p50_us, r->p99_us, r->mean_us, r->max_us,
               r->iters, r->p99_us < 16667.0 ? "true" : "false");
    else
        printf("%-10s %-5s %-7s %10lld %10.1f %10.1f   %-5s %9.0fx\n", w->backbone, w->precision, w->mode,
               (long long)w->params, r->p50_us, r->p99_us, r->p99_us < 16667.0 ? "yes" : "NO", 16667.0 / r->p99_us);
    fflush(stdout);
}

int cmd_bench(int argc, char **argv) {
    const char *policy = NULL, *bbs = NULL, *precs = NULL, *modes = NULL;
    double seconds = 0.4;
    long long cpu = -1;
    bool json = false;
    static const char *const valid[] = {"--policy", "--backbone", "--precision", "--mode", "--seconds",
                                        "--cpu", "--json", "--help", NULL};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            bench_usage(stdout);
            return CLI_EXIT_OK;
        } else if (!strcmp(a, "--json")) json = true;
        else if (!strcmp(a, "--policy") || !strcmp(a, "--backbone") || !strcmp(a, "--precision") || !strcmp(a, "--mode")) {
            if (!v) {
                cli_error("%s needs a value", a);
                return CLI_EXIT_USAGE;
            }
            if (!strcmp(a, "--policy")) policy = v;
            else if (!strcmp(a, "--backbone")) bbs = v;
            else if (!strcmp(a, "--precision")) precs = v;
            else modes = v;
            i++;
        } else if (!strcmp(a, "--seconds")) {
            if (!cli_parse_double(a, v, 0.001, 3600, &seconds)) return CLI_EXIT_USAGE;
            i++;
        } else if (!strcmp(a, "--cpu")) {
            if (!cli_parse_int(a, v, 0, 4095, &cpu)) return CLI_EXIT_USAGE;
            i++;
        } else {
            cli_unknown_option("bench", a, valid);
            return CLI_EXIT_USAGE;
        }
    }
    static const char *const bb_names[] = {"mlp", "lstm", "gru", "mamba", "attention", NULL};
    static const char *const pr_names[] = {"f32", "bf16", "int8", NULL};
    static const char *const mode_names[] = {"window", "stream", NULL};
    if (!check_list("--backbone", bbs, bb_names) || !check_list("--precision", precs, pr_names) ||
        !check_list("--mode", modes, mode_names))
        return CLI_EXIT_USAGE;
    if (policy && bbs) {
        cli_error("bench: --backbone picks rows of the default table; with --policy the file's backbone is benched");
        return CLI_EXIT_USAGE;
    }
    /* open the policy before printing the table's header: an error is the only output */
    cphil_infer_policy *p = NULL;
    if (policy && cphil_infer_policy_open(policy, &p)) {
        cli_error(NULL);
        return CLI_EXIT_FAIL;
    }
    if (p && cphil_infer_policy_precision(p) == INFER_I8 && precs && !cphil_bench_in_list(precs, "int8")) {
        cli_error("bench: %s is an int8 file (it runs int8 only); --precision %s selects nothing", policy, precs);
        cphil_infer_policy_close(p);
        return CLI_EXIT_USAGE;
    }
    bench_out out = {json, 0};
    cpu_set_t set;
    CPU_ZERO(&set);
    int c = cpu >= 0 ? (int)cpu : sched_getcpu();
    CPU_SET(c < 0 ? 0 : c, &set);
    if (sched_setaffinity(0, sizeof set, &set) != 0) cli_error("bench: could not pin to cpu %d (timings unpinned)", c);
    if (!json) {
        printf("# cphil bench: one thread pinned to cpu %d, isa %s; per decision (input layer, backbone, heads, sampling)\n",
               sched_getcpu(), infer_isa_name(infer_isa_get()));
        printf("%-10s %-5s %-7s %10s %10s %10s   %-5s %9s\n", "backbone", "prec", "mode", "params", "p50_us", "p99_us",
               "60fps", "headroom");
    }
    if (!policy) {
        if (cphil_bench_table(bbs, precs, modes, seconds, print_row, &out)) {
            cli_error(NULL);
            return CLI_EXIT_FAIL;
        }
        return CLI_EXIT_OK;
    }
    const cphil_infer_spec *sp = cphil_infer_policy_spec(p);
    int n_cont, n_ids, E, off[64], wid[64];
    cphil_bench_default_embedding(&n_cont, &n_ids, &E, off, wid);
    bool def = n_cont == sp->n_cont && n_ids == sp->n_ids && E == sp->E;
    cphil_bench_frames fr;
    int rc = CLI_EXIT_OK;
    if (cphil_bench_frames_make(&fr, sp, def ? off : NULL, def ? wid : NULL)) {
        cli_error(NULL);
        cphil_infer_policy_close(p);
        return CLI_EXIT_FAIL;
    }
    infer_dtype file = cphil_infer_policy_precision(p);
    for (int pr = 0; pr < 3 && rc == CLI_EXIT_OK; pr++) {
        if (file == INFER_I8 ? pr != INFER_I8 : !cphil_bench_in_list(precs ? precs : cphil_bench_precision_name(file),
                                                                     cphil_bench_precision_name((infer_dtype)pr)))
            continue;
        cphil_infer_model *m = NULL;
        if (cphil_infer_policy_build(p, (infer_dtype)pr, &m)) {
            cli_error(NULL);
            rc = CLI_EXIT_FAIL;
            break;
        }
        for (int mode = 0; mode < 2; mode++) {
            const char *mn = mode ? "stream" : "window";
            if (!cphil_bench_in_list(modes, mn)) continue;
            cphil_bench_row row = {cphil_backbone_name(sp->backbone), cphil_bench_precision_name((infer_dtype)pr), mn,
                                   cphil_infer_model_params(m), {0, 0, 0, 0, 0}};
            if (cphil_bench_run(m, (cphil_infer_mode)mode, &fr, seconds, &row.r)) {
                cli_error(NULL);
                rc = CLI_EXIT_FAIL;
                break;
            }
            print_row(&out, &row);
        }
        cphil_infer_model_free(m);
    }
    cphil_bench_frames_free(&fr);
    cphil_infer_policy_close(p);
    if (rc == CLI_EXIT_OK && !out.rows) {
        cli_error("bench: --precision %s selects no precision this file runs", precs ? precs : "-");
        rc = CLI_EXIT_USAGE;
    }
    return rc;
}
