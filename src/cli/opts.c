/* opts.c — the one option parser of every command (see opts.h), its shared fragments (the
 * optimizer options of train and distill, the int8-file refusals of export and predict) and the
 * small helpers commands call after parsing (--threads, --device). */
#include "cli/opts.h"

#include "dist/dist.h"
#include "gpu/gpu.h"
#include "kernels/cpu/kernels.h"
#include "train/eval.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

long long cli_worker_threads(long long requested, int ranks, const char *device) {
    if (requested > 0) return requested;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    long long n = cores > 0 ? cores : 1;
    int local = cphil_dist_env_local_size();
    if (ranks > 1 && local > 1) n = cores / local > 1 ? cores / local : 1;
    if (device && strncmp(device, "cuda", 4) == 0) n = n > 1 ? n - 1 : 1;
    return n;
}

void cli_set_threads(long long n) {
    if (n <= 0) n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1) n = 1;
    if (n > 64) n = 64;
    cphil_threads_set((int)n);
}

int cli_use_device_for_eval(const char *device) {
    int gpu = -1;
    if (cphil_device_parse(device, &gpu) != CPHIL_OK) {
        cli_error(NULL);
        return CLI_EXIT_USAGE;
    }
    if (gpu >= 0 && cphil_gpu_check(gpu) != CPHIL_OK) {
        cli_error(NULL);
        return CLI_EXIT_FAIL;
    }
    cphil_eval_use_device(gpu);
    return CLI_EXIT_OK;
}

/* ---- shared fragments ------------------------------------------------------------------- */

const char *const cli_optim_precision_choices[] = {"bf16", "f32", NULL};
const char *const cli_optim_schedule_choices[] = {"cosine", "constant", NULL};

void cli_optim_defs(cli_optim *o, opt_def defs[CLI_OPTIM_N]) {
    const opt_def t[CLI_OPTIM_N] = {
        OPT_D("--epochs", OPT_INT, &o->epochs, "10", 1, 100000, "passes over the training data"),
        OPT_D("--lr", OPT_DOUBLE, &o->lr, "0.001", 0, 10, "peak learning rate (AdamW)"),
        OPT_D("--weight-decay", OPT_DOUBLE, &o->weight_decay, "1e-05", 0, 10, "AdamW decoupled weight decay"),
        {.name = "--schedule", .kind = OPT_ENUM, .target = &o->schedule, .def = "cosine",
         .choices = cli_optim_schedule_choices,
         .help = "learning rate after warmup: cosine to 0 at the last step, or constant"},
        OPT_D("--warmup-steps", OPT_INT, &o->warmup, "100", 0, 1e9, "linear warmup steps"),
        OPT_D("--max-grad-norm", OPT_DOUBLE, &o->max_grad_norm, "1", 0, 1e9, "clip the gradient norm (0 = off)"),
        OPT_D("--max-steps", OPT_INT, &o->max_steps, "0", 0, 4e18, "stop after N optimizer steps in total (0 = no limit)"),
        OPT_D("--seed", OPT_INT, &o->seed, "1", 0, 4e18, "seed of the initialisation and the data order"),
        {.name = "--precision", .kind = OPT_ENUM, .target = &o->precision, .def = "bf16",
         .choices = cli_optim_precision_choices, .help = "matmul precision (bf16: f32 master weights and accumulation)"},
        OPT_D("--threads", OPT_INT, &o->threads, "0", 0, 256,
              "worker threads (0 = all cores, all but one with --device cuda; ranks on one machine split "
              "them)"),
        OPT_D("--device", OPT_STR, &o->device, "cpu", 0, 0,
              "where to train: cpu, cuda or cuda:N (needs the CUDA build, make CUDA=1)"),
    };
    memcpy(defs, t, sizeof t);
}

static const char *const agent_modes[] = {"window", "stream", NULL};
static const char *const agent_precisions[] = {"auto", "f32", "bf16", "int8", NULL};

void cli_agent_defs(cli_agent *a, opt_def defs[CLI_AGENT_N]) {
    const opt_def t[CLI_AGENT_N] = {
        {.name = "--policy", .kind = OPT_STR, .target = &a->policy, .required = true, .metavar = "P",
         .help = "the policy file (any precision cphil quantize writes)"},
        {.name = "--port", .kind = OPT_INT, .target = &a->port, .lo = 1, .hi = 4, .required = true,
         .help = "the controlled port, 1..4: the agent plays that player's seat"},
        {.name = "--mode", .kind = OPT_ENUM, .target = &a->mode, .def = "window", .choices = agent_modes,
         .help = "window: the last W frames recomputed each frame; stream: carried state, O(1) per frame"},
        {.name = "--precision", .kind = OPT_ENUM, .target = &a->precision, .def = "auto", .choices = agent_precisions,
         .help = "the engine's precision (auto: the file's)"},
        OPT_D("--temperature", OPT_DOUBLE, &a->temperature, "1", 1e-6, 1e6, "sampling temperature of the stick and shoulder heads"),
        OPT_D("--deterministic", OPT_FLAG, &a->deterministic, NULL, 0, 0, "take the most likely class of every head (no sampling)"),
        OPT_D("--seed", OPT_INT, &a->seed, "0", 0, 4611686018427387904.0, "sampling seed: the same seed and frames give the same controls"),
        {.name = "--log", .kind = OPT_STR, .target = &a->log, .metavar = "FILE.jsonl",
         .help = "one JSON line per decision (game, frame, controller, classes, latency_us): the same lines from "
                 "cphil play and from cphil play-replay --decide first on the replay of the game"},
    };
    memcpy(defs, t, sizeof t);
}

cphil_agent_params cli_agent_params(const cli_agent *a) {
    cphil_agent_params p = cphil_agent_default_params();
    p.mode = a->mode == 1 ? CPHIL_AGENT_STREAM : CPHIL_AGENT_WINDOW;
    p.precision = (cphil_agent_precision)a->precision;
    p.port = (int)a->port - 1;
    p.seed = (uint64_t)a->seed;
    p.temperature = (float)a->temperature;
    p.deterministic = a->deterministic;
    return p;
}

bool cli_int8_file_ok(const char *cmd, const char *policy, bool file_static, const char *int8, bool calibration,
                      bool f32_format) {
    const char *mode = file_static ? "static" : "dynamic";
    const char *why = f32_format ? "the .npz and safetensors exports hold f32 weights: export the f32 policy it was "
                                   "quantized from, or use --format onnx"
                      : calibration ? (file_static ? "its activation scales are in the file: drop --calibration"
                                                   : "it quantizes activations per call (dynamic): drop --calibration")
                      : int8 && strcmp(int8, mode) ? "its weights and activation mode are used as they are: drop --int8"
                                                   : NULL;
    if (why)
        cli_error("%s: %s holds int8 %s weights (written by cphil quantize) and runs as it is; %s", cmd, policy, mode,
                  why);
    return why == NULL;
}

/* ---- parsing ---------------------------------------------------------------------------- */

/* Every opt_def of every group of spec s, as `d`. */
#define FOR_EACH_DEF(s, d)                                                                                   \
    for (int g_ = 0; g_ < OPT_MAX_GROUPS; g_++)                                                               \
        for (opt_def *d = (s)->groups[g_].defs, *end_##d = d ? d + (s)->groups[g_].n : NULL; d && d < end_##d; d++)

opt_def *opts_find(const opts_spec *s, const char *name) {
    FOR_EACH_DEF(s, d) {
        if (!strcmp(d->name, name) || (d->alias && !strcmp(d->alias, name))) return d;
    }
    return NULL;
}

bool opts_was_set(const opts_spec *s, const char *name) {
    opt_def *d = opts_find(s, name);
    return d && d->set;
}

int opts_exit(int r) { return r == OPTS_HELP ? CLI_EXIT_OK : r == OPTS_OK ? CLI_EXIT_OK : CLI_EXIT_USAGE; }

/* "mlp|lstm|gru" (sep '|') or "f32,bf16,int8" (sep ',') */
static void join_choices(const char *const *choices, char sep, char *buf, size_t n) {
    buf[0] = '\0';
    for (int i = 0; choices[i]; i++) {
        size_t len = strlen(buf);
        snprintf(buf + len, n - len, "%s%s", i ? (char[]){sep, '\0'} : "", choices[i]);
    }
}

/* The value's description for errors: "a whole number in [1, 4]". */
static void accepts(const opt_def *d, char *buf, size_t n) {
    if (d->kind == OPT_INT) snprintf(buf, n, "a whole number in [%lld, %lld]", (long long)d->lo, (long long)d->hi);
    else snprintf(buf, n, "a number in [%g, %g]", d->lo, d->hi);
}

static bool parse_number(const char *cmd, const opt_def *d, const char *v) {
    char *end = NULL;
    char want[96];
    accepts(d, want, sizeof want);
    if (d->kind == OPT_INT) {
        long long x = strtoll(v, &end, 10);
        if (end == v || *end != '\0') {
            cli_error("%s: %s: '%s' is not a whole number (%s takes %s)", cmd, d->name, v, d->name, want);
            return false;
        }
        if (x < (long long)d->lo || x > (long long)d->hi) {
            cli_error("%s: %s: '%s' is out of range (%s takes %s)", cmd, d->name, v, d->name, want);
            return false;
        }
        *(long long *)d->target = x;
        return true;
    }
    double x = strtod(v, &end);
    if (end == v || *end != '\0' || x != x) {
        cli_error("%s: %s: '%s' is not a number (%s takes %s)", cmd, d->name, v, d->name, want);
        return false;
    }
    if (!(x >= d->lo && x <= d->hi)) {
        cli_error("%s: %s: '%s' is out of range (%s takes %s)", cmd, d->name, v, d->name, want);
        return false;
    }
    *(double *)d->target = x;
    return true;
}

static bool parse_intlist(const char *cmd, const opt_def *d, const char *v) {
    int *out = d->target, n = 0;
    const char *p = v;
    if (!*p) goto bad;
    while (*p) {
        char *end;
        long long x = strtoll(p, &end, 10);
        if (end == p || x < (long long)d->lo || x > (long long)d->hi || n >= 8) goto bad;
        out[n++] = (int)x;
        p = end;
        if (*p == ',') {
            p++;
            if (!*p) goto bad;
        } else if (*p) {
            goto bad;
        }
    }
    *d->list_n = n;
    return true;
bad:
    cli_error("%s: %s: '%s' is not a size or a comma list of at most 8 sizes in [%g, %g] (e.g. 256 or 64,64)", cmd,
              d->name, v, d->lo, d->hi);
    return false;
}

static bool not_a_choice(const char *cmd, const opt_def *d, const char *item, char sep) {
    char all[256];
    join_choices(d->choices, sep, all, sizeof all);
    const char *near = cli_nearest(item, d->choices);
    if (near) cli_error("%s: %s: '%s' is not one of %s (did you mean '%s'?)", cmd, d->name, item, all, near);
    else cli_error("%s: %s: '%s' is not one of %s", cmd, d->name, item, all);
    return false;
}

static bool parse_enumlist(const char *cmd, const opt_def *d, const char *v) {
    const char *p = v;
    for (;;) {
        const char *c = strchr(p, ',');
        size_t len = c ? (size_t)(c - p) : strlen(p);
        char item[64];
        snprintf(item, sizeof item, "%.*s", (int)(len < 63 ? len : 63), p);
        bool ok = false;
        for (int i = 0; d->choices[i]; i++) ok |= len == strlen(d->choices[i]) && !strncmp(p, d->choices[i], len);
        if (!ok) return not_a_choice(cmd, d, item, ',');
        if (!c) break;
        p = c + 1;
    }
    *(const char **)d->target = v;
    return true;
}

static bool set_value(const char *cmd, opt_def *d, const char *v) {
    switch (d->kind) {
    case OPT_FLAG:
        *(bool *)d->target = strcmp(v, "0") && strcmp(v, "false") && strcmp(v, "no") && strcmp(v, "off");
        return true;
    case OPT_INT:
    case OPT_DOUBLE: return parse_number(cmd, d, v);
    case OPT_STR: *(const char **)d->target = v; return true;
    case OPT_ENUM:
        for (int i = 0; d->choices[i]; i++)
            if (!strcmp(d->choices[i], v)) {
                *(int *)d->target = i;
                return true;
            }
        return not_a_choice(cmd, d, v, '|');
    case OPT_LIST:
        if (*d->list_n >= OPT_LIST_CAP) {
            cli_error("%s: %s: more than %d values", cmd, d->name, OPT_LIST_CAP);
            return false;
        }
        ((const char **)d->target)[(*d->list_n)++] = v;
        return true;
    case OPT_INTLIST: return parse_intlist(cmd, d, v);
    case OPT_ENUMLIST: return parse_enumlist(cmd, d, v);
    }
    return false;
}

static const char *metavar(const opt_def *d) {
    if (d->metavar) return d->metavar;
    switch (d->kind) {
    case OPT_INT: return "N";
    case OPT_DOUBLE: return "X";
    case OPT_LIST: return "NAME...";
    case OPT_ENUMLIST: return "L";
    default: {
        /* the flag's name in capitals: --output OUTPUT, --device DEVICE */
        static char up[64];
        size_t k = 0;
        for (const char *p = d->name + 2; *p && k + 1 < sizeof up; p++)
            up[k++] = *p == '-' ? '_' : (*p >= 'a' && *p <= 'z') ? (char)(*p - 'a' + 'A') : *p;
        up[k] = '\0';
        return up;
    }
    }
}

/* Is `a` an option (as opposed to a value or a positional argument)? Negative numbers are values. */
static bool is_option(const char *a) {
    return a[0] == '-' && a[1] && !(a[1] >= '0' && a[1] <= '9') && a[1] != '.';
}

static void apply_defaults(opts_spec *s) {
    FOR_EACH_DEF(s, d) {
        d->set = false;
        if (d->list_n) *d->list_n = 0;
        switch (d->kind) {
        case OPT_FLAG: *(bool *)d->target = d->def && !strcmp(d->def, "on"); break;
        case OPT_STR:
        case OPT_ENUMLIST: *(const char **)d->target = d->def; break;
        case OPT_ENUM:
            *(int *)d->target = -1;
            if (d->def) set_value(s->cmd, d, d->def);
            break;
        case OPT_LIST: break;
        default:
            if (d->def) set_value(s->cmd, d, d->def);
        }
    }
}

int opts_parse(opts_spec *s, int argc, char **argv) {
    const char *cmd = s->cmd;
    apply_defaults(s);
    if (s->n_positional) *s->n_positional = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            opts_help(stdout, s);
            return OPTS_HELP;
        }
        if (!is_option(a)) {
            if (!s->positional) {
                cli_error("%s: unexpected argument '%s' (options start with --; see cphil %s --help)", cmd, a, cmd);
                return OPTS_ERROR;
            }
            if (*s->n_positional >= s->positional_cap) {
                cli_error("%s: more than %d %s arguments", cmd, s->positional_cap, s->positional_name);
                return OPTS_ERROR;
            }
            s->positional[(*s->n_positional)++] = a;
            continue;
        }
        char name[96];
        const char *eq = strncmp(a, "--", 2) ? NULL : strchr(a, '=');
        size_t ln = eq ? (size_t)(eq - a) : strlen(a);
        if (ln >= sizeof name) ln = sizeof name - 1;
        memcpy(name, a, ln);
        name[ln] = '\0';
        opt_def *d = opts_find(s, name);
        bool negate = false;
        if (!d && !strncmp(name, "--no-", 5)) {
            char pos[96];
            snprintf(pos, sizeof pos, "--%s", name + 5);
            d = opts_find(s, pos);
            if (d && d->kind == OPT_FLAG) negate = true;
            else d = NULL;
        }
        if (!d) {
            const char *names[160];
            int nn = 0;
            FOR_EACH_DEF(s, e) {
                if (nn < 158) names[nn++] = e->name;
            }
            names[nn++] = "--help";
            names[nn] = NULL;
            cli_unknown_option(cmd, name, names);
            return OPTS_ERROR;
        }
        d->set = true;
        if (d->kind == OPT_FLAG) {
            if (eq) {
                cli_error("%s: %s takes no value (got '%s')", cmd, d->name, a);
                return OPTS_ERROR;
            }
            *(bool *)d->target = !negate;
            continue;
        }
        const char *v = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
        if (!v || (!eq && is_option(v) && (d->kind != OPT_INT && d->kind != OPT_DOUBLE ? true : v[1] == '-'))) {
            if (v) cli_error("%s: %s needs a value, got the option '%s' (%s %s: %s)", cmd, d->name, v, d->name,
                             metavar(d), d->help ? d->help : "see --help");
            else cli_error("%s: %s needs a value (%s %s: %s)", cmd, d->name, d->name, metavar(d),
                           d->help ? d->help : "see --help");
            return OPTS_ERROR;
        }
        if (!set_value(cmd, d, v)) return OPTS_ERROR;
        if (d->kind == OPT_LIST && !eq)
            while (i + 1 < argc && !is_option(argv[i + 1]))
                if (!set_value(cmd, d, argv[++i])) return OPTS_ERROR;
    }
    /* every required flag (and the positional arguments) named at once */
    char missing[512] = "";
    int n = 0;
    FOR_EACH_DEF(s, d) {
        if (d->required && !d->set) {
            size_t len = strlen(missing);
            snprintf(missing + len, sizeof missing - len, "%s%s", n++ ? ", " : "", d->name);
        }
    }
    if (s->positional && *s->n_positional < s->min_positional) {
        size_t len = strlen(missing);
        snprintf(missing + len, sizeof missing - len, "%s%s", n++ ? ", " : "", s->positional_name);
    }
    if (n) {
        cli_error("%s: missing %s (cphil %s --help)", cmd, missing, cmd);
        return OPTS_ERROR;
    }
    return OPTS_OK;
}

void opts_value_text(const opt_def *d, char *buf, size_t n) {
    buf[0] = '\0';
    switch (d->kind) {
    case OPT_FLAG: snprintf(buf, n, "%s", *(const bool *)d->target ? "on" : "off"); break;
    case OPT_INT: snprintf(buf, n, "%lld", *(const long long *)d->target); break;
    case OPT_DOUBLE: snprintf(buf, n, "%g", *(const double *)d->target); break;
    case OPT_STR:
    case OPT_ENUMLIST:
        snprintf(buf, n, "%s", *(const char *const *)d->target ? *(const char *const *)d->target : "-");
        break;
    case OPT_ENUM: {
        int k = *(const int *)d->target;
        snprintf(buf, n, "%s", k >= 0 ? d->choices[k] : "-");
        break;
    }
    case OPT_LIST: {
        size_t o = 0;
        for (int i = 0; i < *d->list_n && o < n; i++)
            o += (size_t)snprintf(buf + o, n - o, "%s%s", i ? " " : "", ((const char *const *)d->target)[i]);
        if (!*d->list_n) snprintf(buf, n, "-");
        break;
    }
    case OPT_INTLIST: {
        size_t o = 0;
        for (int i = 0; i < *d->list_n && o < n; i++)
            o += (size_t)snprintf(buf + o, n - o, "%s%d", i ? "," : "", ((const int *)d->target)[i]);
        break;
    }
    }
}

int opts_print_changed(FILE *f, const opts_spec *s, const char *indent) {
    int k = 0;
    FOR_EACH_DEF(s, d) {
        if (!d->set) continue;
        char v[256];
        opts_value_text(d, v, sizeof v);
        const char *def = d->kind == OPT_FLAG ? (d->def ? d->def : "off") : d->def;
        if (def && !strcmp(def, v)) continue;
        if (d->kind == OPT_FLAG) fprintf(f, "%s%s  (default %s)\n", indent, d->name, def ? def : "off");
        else if (def) fprintf(f, "%s%s %s  (default %s)\n", indent, d->name, v, def);
        else fprintf(f, "%s%s %s\n", indent, d->name, v);
        k++;
    }
    return k;
}

/* Help text after the flag column, wrapped at 100 columns with continuation lines under it. */
static void help_wrapped(FILE *f, const char *text) {
    enum { COL = 33, WIDTH = 100 };
    int col = COL;
    const char *p = text;
    while (*p) {
        while (*p == ' ') p++;
        size_t w = strcspn(p, " ");
        if (!w) break;
        if (col > COL && col + 1 + (int)w > WIDTH) {
            fprintf(f, "\n%*s", COL, "");
            col = COL;
        } else if (col > COL) {
            fputc(' ', f);
            col++;
        }
        fprintf(f, "%.*s", (int)w, p);
        col += (int)w;
        p += w;
    }
    fputc('\n', f);
}

static void help_group(FILE *f, const opt_group *g) {
    for (int i = 0; i < g->n; i++) {
        const opt_def *d = &g->defs[i];
        if (!d->help) continue; /* hidden (test hooks) */
        char left[160], ch[128], text[1024];
        const char *mv = metavar(d);
        if (d->kind == OPT_ENUM && !d->metavar) {
            join_choices(d->choices, '|', ch, sizeof ch);
            mv = ch;
        }
        if (d->kind == OPT_FLAG)
            snprintf(left, sizeof left, "%s%s%s", d->name, d->alias ? ", " : "", d->alias ? d->alias : "");
        else
            snprintf(left, sizeof left, "%s%s%s %s", d->name, d->alias ? ", " : "", d->alias ? d->alias : "", mv);
        if (strlen(left) > 30) fprintf(f, "  %s\n  %-30s ", left, "");
        else fprintf(f, "  %-30s ", left);
        size_t o = (size_t)snprintf(text, sizeof text, "%s", d->help);
        if (d->kind == OPT_ENUMLIST && o < sizeof text) {
            join_choices(d->choices, ',', ch, sizeof ch);
            o += (size_t)snprintf(text + o, sizeof text - o, "; a comma list of %s", ch);
        }
        if (d->required && o < sizeof text) snprintf(text + o, sizeof text - o, " (required)");
        else if (d->def && d->kind != OPT_FLAG && o < sizeof text) snprintf(text + o, sizeof text - o, " (default %s)", d->def);
        help_wrapped(f, text);
    }
}

void opts_help(FILE *f, const opts_spec *s) {
    fprintf(f, "usage: cphil %s%s%s\n", s->cmd, s->usage && !*s->usage ? "" : " ", s->usage ? s->usage : "[options]");
    if (s->about) fprintf(f, "%s%s", s->about, s->about[strlen(s->about) - 1] == '\n' ? "" : "\n");
    if (!s->groups[0].defs) fprintf(f, "\noptions:\n");
    for (int g = 0; g < OPT_MAX_GROUPS; g++) {
        if (!s->groups[g].defs) continue;
        fprintf(f, "\n%s:\n", s->groups[g].title ? s->groups[g].title : "options");
        help_group(f, &s->groups[g]);
    }
    fprintf(f, "  %-30s %s\n", "--help, -h", "print this help");
    if (s->notes) fprintf(f, "\n%s%s", s->notes, s->notes[strlen(s->notes) - 1] == '\n' ? "" : "\n");
}
