/* opts.c — table-driven option parsing (see opts.h). */
#include "cli/opts.h"

#include "gpu/gpu.h"
#include "kernels/cpu/kernels.h"
#include "train/eval.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

opt_def *opts_find(opt_def *defs, int n_defs, const char *name) {
    for (int i = 0; i < n_defs; i++)
        if (!strcmp(defs[i].name, name)) return &defs[i];
    return NULL;
}

bool opts_was_set(opt_def *defs, int n_defs, const char *name) {
    opt_def *d = opts_find(defs, n_defs, name);
    return d && d->set;
}

static bool parse_intlist(const opt_def *d, const char *v) {
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
    cli_error("%s: '%s' is not a size or a comma list of at most 8 sizes in [%g, %g] (e.g. 256 or 64,64)",
              d->name, v, d->lo, d->hi);
    return false;
}

static bool set_value(opt_def *d, const char *v) {
    switch (d->kind) {
    case OPT_FLAG:
        *(bool *)d->target = v ? (strcmp(v, "0") && strcmp(v, "false") && strcmp(v, "no")) : true;
        return true;
    case OPT_INT: return cli_parse_int(d->name, v, (long long)d->lo, (long long)d->hi, (long long *)d->target);
    case OPT_DOUBLE: return cli_parse_double(d->name, v, d->lo, d->hi, (double *)d->target);
    case OPT_STR:
        if (!v) {
            cli_error("%s needs a value", d->name);
            return false;
        }
        *(const char **)d->target = v;
        return true;
    case OPT_ENUM: {
        if (!v) {
            cli_error("%s needs a value", d->name);
            return false;
        }
        for (int i = 0; d->choices[i]; i++)
            if (!strcmp(d->choices[i], v)) {
                *(int *)d->target = i;
                return true;
            }
        const char *near = cli_nearest(v, d->choices);
        char all[256] = "";
        for (int i = 0; d->choices[i]; i++) {
            if (i) strncat(all, "|", sizeof all - strlen(all) - 1);
            strncat(all, d->choices[i], sizeof all - strlen(all) - 1);
        }
        if (near) cli_error("%s: '%s' is not one of %s (did you mean '%s'?)", d->name, v, all, near);
        else cli_error("%s: '%s' is not one of %s", d->name, v, all);
        return false;
    }
    case OPT_LIST: {
        if (!v) {
            cli_error("%s needs a value", d->name);
            return false;
        }
        if (*d->list_n >= OPT_LIST_CAP) {
            cli_error("%s: more than %d values", d->name, OPT_LIST_CAP);
            return false;
        }
        ((const char **)d->target)[(*d->list_n)++] = v;
        return true;
    }
    case OPT_INTLIST:
        if (!v) {
            cli_error("%s needs a value", d->name);
            return false;
        }
        return parse_intlist(d, v);
    }
    return false;
}

int opts_parse(const char *cmd, opt_def *defs, int n_defs, int argc, char **argv, const char **positional,
               int *n_positional, const char *usage_line) {
    for (int i = 0; i < n_defs; i++) {
        defs[i].set = false;
        if (defs[i].list_n) *defs[i].list_n = 0;
        if (defs[i].kind == OPT_FLAG) *(bool *)defs[i].target = defs[i].def && !strcmp(defs[i].def, "on");
        else if (defs[i].def && defs[i].kind != OPT_LIST) set_value(&defs[i], defs[i].def);
        else if (defs[i].kind == OPT_STR) *(const char **)defs[i].target = NULL;
    }
    if (n_positional) *n_positional = 0;
    const char *names[128];
    int nn = 0;
    for (int i = 0; i < n_defs && nn < 126; i++) names[nn++] = defs[i].name;
    names[nn++] = "--help";
    names[nn] = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            opts_help(stdout, cmd, defs, n_defs, usage_line);
            return 1;
        }
        if (strncmp(a, "--", 2) != 0) {
            if (positional && n_positional && *n_positional < OPT_LIST_CAP) {
                positional[(*n_positional)++] = a;
                continue;
            }
            cli_error("%s: unexpected argument '%s' (options start with --; see cphil %s --help)", cmd, a, cmd);
            return -1;
        }
        char name[96];
        const char *eq = strchr(a, '=');
        size_t ln = eq ? (size_t)(eq - a) : strlen(a);
        if (ln >= sizeof name) ln = sizeof name - 1;
        memcpy(name, a, ln);
        name[ln] = '\0';
        opt_def *d = opts_find(defs, n_defs, name);
        bool negate = false;
        if (!d && !strncmp(name, "--no-", 5)) {
            char pos[96];
            snprintf(pos, sizeof pos, "--%s", name + 5);
            d = opts_find(defs, n_defs, pos);
            if (d && d->kind == OPT_FLAG) negate = true;
            else d = NULL;
        }
        if (!d) {
            cli_unknown_option(cmd, name, names);
            return -1;
        }
        d->set = true;
        if (d->kind == OPT_FLAG) {
            if (eq) {
                cli_error("%s takes no value (got '%s')", d->name, a);
                return -1;
            }
            *(bool *)d->target = !negate;
            continue;
        }
        const char *v = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
        if (!eq && v && !strncmp(v, "--", 2) && d->kind != OPT_DOUBLE && d->kind != OPT_INT) {
            cli_error("%s needs a value (got the flag '%s')", d->name, v);
            return -1;
        }
        if (!set_value(d, v)) return -1;
        if (d->kind == OPT_LIST && !eq)
            while (i + 1 < argc && strncmp(argv[i + 1], "--", 2) != 0)
                if (!set_value(d, argv[++i])) return -1;
    }
    return 0;
}

void opts_value_text(const opt_def *d, char *buf, size_t n) {
    buf[0] = '\0';
    switch (d->kind) {
    case OPT_FLAG: snprintf(buf, n, "%s", *(const bool *)d->target ? "on" : "off"); break;
    case OPT_INT: snprintf(buf, n, "%lld", *(const long long *)d->target); break;
    case OPT_DOUBLE: snprintf(buf, n, "%g", *(const double *)d->target); break;
    case OPT_STR: snprintf(buf, n, "%s", *(const char *const *)d->target ? *(const char *const *)d->target : "-"); break;
    case OPT_ENUM: snprintf(buf, n, "%s", d->choices[*(const int *)d->target]); break;
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

int opts_print_changed(FILE *f, const opt_def *defs, int n_defs, const char *indent) {
    int k = 0;
    for (int i = 0; i < n_defs; i++) {
        const opt_def *d = &defs[i];
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

void opts_help(FILE *f, const char *cmd, const opt_def *defs, int n_defs, const char *usage_line) {
    fprintf(f, "usage: cphil %s %s\n\noptions:\n", cmd, usage_line ? usage_line : "[options]");
    for (int i = 0; i < n_defs; i++) {
        const opt_def *d = &defs[i];
        if (!d->help) continue; /* hidden (test hooks) */
        char left[64];
        const char *mv = d->metavar ? d->metavar : d->kind == OPT_FLAG ? "" : d->kind == OPT_INT ? "N" : "X";
        if (d->kind == OPT_ENUM && !d->metavar) {
            char ch[48] = "";
            for (int k = 0; d->choices[k]; k++) {
                if (k) strncat(ch, "|", sizeof ch - strlen(ch) - 1);
                strncat(ch, d->choices[k], sizeof ch - strlen(ch) - 1);
            }
            snprintf(left, sizeof left, "%s %s", d->name, ch);
        } else {
            snprintf(left, sizeof left, "%s%s%s", d->name, *mv ? " " : "", mv);
        }
        fprintf(f, "  %-30s %s", left, d->help);
        if (d->def && d->kind != OPT_FLAG) fprintf(f, " [%s]", d->def);
        fputc('\n', f);
    }
}
