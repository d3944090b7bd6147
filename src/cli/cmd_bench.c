/* cmd_bench.c — `cphil bench`: the default architecture table measured on this machine (one
 * core, pinned, after a warm-up): mlp, lstm, gru, mamba, attention at the default sizes with the
 * default embedding, random weights, f32 / bf16 / int8, window and stream mode; parameters and
 * p50 / p99 microseconds per decision (input layer with its id gathers, backbone, heads and
 * sampling included). `--policy P` benches one policy file instead. The timing loop lives in
 * src/infer/infer_bench.c (shared with bench/bench_infer).
 */
#include "cli/opts.h"
#include "infer/infer_bench.h"
#include "infer/infer_policy.h"

#include <sched.h>
#include <string.h>

static const char *const bb_names[] = {"mlp", "lstm", "gru", "mamba", "attention", NULL};
static const char *const pr_names[] = {"f32", "bf16", "int8", NULL};
static const char *const mode_names[] = {"window", "stream", NULL};

static struct bench_cli {
    const char *policy, *bbs, *precs, *modes;
    double seconds;
    long long cpu;
    bool json;
} A;

static opt_def bench_defs[] = {
    {.name = "--policy", .kind = OPT_STR, .target = &A.policy, .metavar = "P",
     .help = "bench this policy file (int8 files run int8; f32 files run --precision)"},
    {.name = "--backbone", .kind = OPT_ENUMLIST, .target = &A.bbs, .choices = bb_names,
     .help = "rows of the default table, default all (not with --policy)"},
    {.name = "--precision", .kind = OPT_ENUMLIST, .target = &A.precs, .choices = pr_names, .help = "precisions to run, default all"},
    {.name = "--mode", .kind = OPT_ENUMLIST, .target = &A.modes, .choices = mode_names, .help = "modes to run, default both"},
    OPT_D("--seconds", OPT_DOUBLE, &A.seconds, "0.4", 0.001, 3600, "measuring time per row"),
    {.name = "--cpu", .kind = OPT_INT, .target = &A.cpu, .lo = 0, .hi = 4095,
     .help = "core to pin to (default: the current one)"},
    OPT_D("--json", OPT_FLAG, &A.json, NULL, 0, 0,
          "one JSON object per row: backbone, precision, mode, params, p50_us, p99_us"),
};

static opts_spec spec = {
    .cmd = "bench",
    .usage = "[--policy P] [--backbone B[,B..]] [--precision f32,bf16,int8] [--mode window,stream]\n"
             "                   [--seconds S] [--cpu N] [--json]",
    .about = "Measures decisions per frame: parameters, p50 and p99 microseconds per decision (input layer,\n"
             "backbone, heads and sampling), one thread pinned to one core, after a warm-up.\n"
             "Without --policy: the default architecture table, every backbone at the sizes cphil trains by\n"
             "default (hidden 256, 2 layers, window 60, state 16, expand 2, conv 4, 4 heads; MLP 512-512;\n"
             "the sizes of ExPhil, the project cphil reimplements), random weights, the default embedding.",
    .notes = "Timings are noisy on a shared machine; compare ratios measured in the same run.",
    .groups = {{NULL, bench_defs, (int)CPHIL_ARRAY_LEN(bench_defs)}},
};

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
    A.cpu = -1; /* no default: the current core */
    int r = opts_parse(&spec, argc, argv);
    if (r) return opts_exit(r);
    const char *policy = A.policy, *bbs = A.bbs, *precs = A.precs, *modes = A.modes;
    double seconds = A.seconds;
    long long cpu = A.cpu;
    bool json = A.json;
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
    if (p && cphil_infer_policy_precision(p) == CPHIL_W_I8 && precs && !cphil_bench_in_list(precs, "int8")) {
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
               sched_getcpu(), cphil_infer_isa_name(cphil_infer_isa_get()));
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
    cphil_wtype file = cphil_infer_policy_precision(p);
    for (int pr = 0; pr < 3 && rc == CLI_EXIT_OK; pr++) {
        if (file == CPHIL_W_I8 ? pr != CPHIL_W_I8 : !cphil_bench_in_list(precs ? precs : cphil_bench_precision_name(file),
                                                                     cphil_bench_precision_name((cphil_wtype)pr)))
            continue;
        cphil_infer_model *m = NULL;
        if (cphil_infer_policy_build(p, (cphil_wtype)pr, &m)) {
            cli_error(NULL);
            rc = CLI_EXIT_FAIL;
            break;
        }
        for (int mode = 0; mode < 2; mode++) {
            const char *mn = mode ? "stream" : "window";
            if (!cphil_bench_in_list(modes, mn)) continue;
            cphil_bench_row row = {cphil_backbone_name(sp->backbone), cphil_bench_precision_name((cphil_wtype)pr), mn,
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
