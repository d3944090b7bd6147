/* cmd_dataset.c — `cphil dataset`: build a dataset cache from a folder of replays
 * (src/data/build.c; format and options in docs/data.md). */
#include "cli/opts.h"
#include "data/dataset.h"
#include "game/ids.h"

#include <stdlib.h>
#include <string.h>

static struct dataset_cli {
    const char *replays, *out;
    const char *characters[OPT_LIST_CAP], *stages[OPT_LIST_CAP], *train_characters[OPT_LIST_CAP];
    int n_characters, n_stages, n_train_characters;
    long long max_files, player, seed, jobs;
    double val_split;
    bool dual_port, any_players, prev_action, json, quiet;
} A;

static opt_def ds_defs[] = {
    {.name = "--replays", .kind = OPT_STR, .target = &A.replays, .required = true, .metavar = "DIR",
     .help = "folder of .slp replays (searched recursively)"},
    {.name = "--out", .kind = OPT_STR, .target = &A.out, .required = true, .metavar = "PATH", .help = "the cache to write"},
    {.name = "--max-files", .kind = OPT_INT, .target = &A.max_files, .lo = 1, .hi = 100000000,
     .help = "use at most N replays (after filters and duplicates)"},
    {.name = "--character", .alias = "--characters", .kind = OPT_LIST, .target = A.characters,
     .list_n = &A.n_characters,
     .help = "keep games where some player plays one of these (aliases: falcon, ics, puff, gnw, ...; commas too)"},
    {.name = "--stage", .alias = "--stages", .kind = OPT_LIST, .target = A.stages, .list_n = &A.n_stages,
     .help = "keep games on these stages (fd, bf, ys, dl, fod, ps, or names/ids)"},
    {.name = "--player", .kind = OPT_INT, .target = &A.player, .lo = 1, .hi = 4, .metavar = "PORT",
     .help = "control this port (1-4; default: the lowest occupied port)"},
    {.name = "--train-character", .kind = OPT_LIST, .target = A.train_characters, .list_n = &A.n_train_characters,
     .help = "control every port playing one of these (dittos give two entries)"},
    OPT_D("--dual-port", OPT_FLAG, &A.dual_port, NULL, 0, 0, "control every port (two entries per game)"),
    OPT_D("--any-players", OPT_FLAG, &A.any_players, NULL, 0, 0, "keep games that are not 1v1"),
    OPT_D("--val-split", OPT_DOUBLE, &A.val_split, "0.1", 0, 0.95, "fraction of files held out for validation, by file"),
    OPT_D("--seed", OPT_INT, &A.seed, "1", 0, 4611686018427387904.0, "split seed"),
    OPT_D("--prev-action", OPT_FLAG, &A.prev_action, NULL, 0, 0, "add the player's controller of frame t to the embedding"),
    OPT_D("--jobs", OPT_INT, &A.jobs, "2", 1, 64, "worker threads"),
    OPT_D("--json", OPT_FLAG, &A.json, NULL, 0, 0, "print the summary as one JSON object"),
    OPT_D("--quiet", OPT_FLAG, &A.quiet, NULL, 0, 0, "no progress bar"),
};

static opts_spec spec = {
    .cmd = "dataset",
    .usage = "--replays DIR --out PATH [options]",
    .about = "Builds a dataset cache (compact per-frame records: embedding features, ids, targets)\n"
             "from every .slp under DIR (recursively). 1v1 games only unless --any-players.",
    .groups = {{NULL, ds_defs, (int)CPHIL_ARRAY_LEN(ds_defs)}},
};

/* Resolve NAME values (each may be a comma list) with lookup() into ids; false on an unknown name. */
static bool names(const char *flag, const char *const *vals, int n_vals, int (*lookup)(const char *), int *out,
                  int *n) {
    for (int v = 0; v < n_vals; v++) {
        char buf[256];
        snprintf(buf, sizeof buf, "%s", vals[v]);
        char *save = NULL;
        for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            int id = lookup(t);
            if (id < 0) {
                char *end;
                long x = strtol(t, &end, 10);
                if (*end == '\0' && x >= 0 && x < 256) id = (int)x;
            }
            if (id < 0) {
                cli_error("dataset: %s: unknown name '%s'", flag, t);
                return false;
            }
            if (*n >= CPHIL_DS_MAX_NAMES) {
                cli_error("dataset: %s: at most %d names", flag, CPHIL_DS_MAX_NAMES);
                return false;
            }
            out[(*n)++] = id;
        }
    }
    return true;
}

int cmd_dataset(int argc, char **argv) {
    cphil_ds_build_opts o;
    cphil_ds_build_default_opts(&o);
    int r = opts_parse(&spec, argc, argv);
    if (r) return opts_exit(r);
    o.replays_dir = A.replays;
    o.out_path = A.out;
    if (A.max_files) o.max_files = (int)A.max_files;
    if (A.player) o.player = (int)A.player;
    o.dual_port = A.dual_port;
    o.any_players = A.any_players;
    o.val_split = A.val_split;
    o.seed = (uint64_t)A.seed;
    o.jobs = (int)A.jobs;
    o.embed.prev_action = A.prev_action;
    o.quiet = A.quiet;
    bool json = A.json;
    if (!names("--character", A.characters, A.n_characters, cphil_char_lookup, o.characters, &o.n_characters) ||
        !names("--train-character", A.train_characters, A.n_train_characters, cphil_char_lookup, o.train_characters,
               &o.n_train_characters) ||
        !names("--stage", A.stages, A.n_stages, cphil_stage_lookup, o.stages, &o.n_stages) ||
        !cli_check_output("dataset", "--out", o.out_path, false))
        return CLI_EXIT_USAGE;
    if ((o.player > 0) + o.dual_port + (o.n_train_characters > 0) > 1) {
        cli_error("dataset: --player, --dual-port and --train-character choose the controlled ports: use one");
        return CLI_EXIT_USAGE;
    }
    cphil_ds_build_report rep;
    cphil_status s = cphil_dataset_build(&o, &rep);
    FILE *out = json ? stdout : stderr;
    if (json) {
        cphil_json_out j;
        cphil_json_begin(&j, stdout);
        cphil_json_obj_open(&j);
        cphil_json_key(&j, "ok");
        cphil_json_bool(&j, s == CPHIL_OK);
        cphil_json_key(&j, "error");
        if (s) cphil_json_str(&j, cphil_last_error());
        else cphil_json_null(&j);
        cphil_json_key(&j, "out");
        cphil_json_str(&j, o.out_path);
        cphil_json_key(&j, "files_found");
        cphil_json_uint(&j, rep.files_found);
        cphil_json_key(&j, "files_used");
        cphil_json_uint(&j, rep.files_used);
        cphil_json_key(&j, "val_files");
        cphil_json_uint(&j, rep.val_files);
        cphil_json_key(&j, "entries");
        cphil_json_uint(&j, rep.entries);
        cphil_json_key(&j, "frames");
        cphil_json_uint(&j, rep.rows);
        cphil_json_key(&j, "train_frames");
        cphil_json_uint(&j, rep.train_rows);
        cphil_json_key(&j, "val_frames");
        cphil_json_uint(&j, rep.val_rows);
        cphil_json_key(&j, "seconds");
        cphil_json_num(&j, rep.seconds);
        cphil_json_key(&j, "bytes");
        cphil_json_uint(&j, rep.bytes_written);
        cphil_json_key(&j, "skipped");
        cphil_json_obj_open(&j);
        for (int k = 1; k < CPHIL_DS_SKIP_COUNT; k++) {
            cphil_json_key(&j, cphil_ds_skip_name((cphil_ds_skip)k));
            cphil_json_uint(&j, rep.skipped[k]);
        }
        cphil_json_obj_close(&j);
        cphil_json_key(&j, "damaged_kept");
        cphil_json_uint(&j, rep.damaged_kept);
        cphil_json_key(&j, "button_press_rate");
        cphil_json_obj_open(&j);
        for (int b = 0; b < CPHIL_N_BUTTONS; b++) {
            cphil_json_key(&j, cphil_button_name(b));
            cphil_json_num(&j, rep.rows ? (double)rep.button_presses[b] / (double)rep.rows : 0.0);
        }
        cphil_json_obj_close(&j);
        cphil_json_key(&j, "files");
        cphil_json_arr_open(&j);
        for (uint32_t i = 0; rep.files && i < rep.files_found; i++) {
            cphil_json_obj_open(&j);
            cphil_json_key(&j, "path");
            cphil_json_str(&j, rep.files[i].path);
            cphil_json_key(&j, "status");
            cphil_json_str(&j, cphil_ds_skip_name(rep.files[i].skip));
            cphil_json_key(&j, "message");
            cphil_json_str(&j, rep.files[i].message);
            cphil_json_obj_close(&j);
        }
        cphil_json_arr_close(&j);
        cphil_json_obj_close(&j);
        fputc('\n', stdout);
    } else {
        fprintf(out, "dataset: %u files found, %u used (%u validation), %u skipped\n", rep.files_found,
                rep.files_used, rep.val_files, rep.files_found - rep.files_used);
        for (int k = 1; k < CPHIL_DS_SKIP_COUNT; k++)
            if (rep.skipped[k]) fprintf(out, "  skipped %-18s %u\n", cphil_ds_skip_name((cphil_ds_skip)k), rep.skipped[k]);
        for (uint32_t i = 0; rep.files && i < rep.files_found; i++)
            if (rep.files[i].skip == CPHIL_DS_SKIP_DAMAGED || rep.files[i].skip == CPHIL_DS_SKIP_DUPLICATE)
                fprintf(out, "  %s %s: %s\n", cphil_ds_skip_name(rep.files[i].skip), rep.files[i].path,
                        rep.files[i].message ? rep.files[i].message : "");
            else if (rep.files[i].skip == CPHIL_DS_USED && rep.files[i].message)
                fprintf(out, "  warning: %s\n", rep.files[i].message);
        if (s == CPHIL_OK) {
            fprintf(out, "  frames %llu (train %llu, validation %llu) in %u entries; %.2f s, %.0f frames/s; %.1f MB -> %s\n",
                    (unsigned long long)rep.rows, (unsigned long long)rep.train_rows,
                    (unsigned long long)rep.val_rows, rep.entries, rep.seconds,
                    rep.seconds > 0 ? (double)rep.rows / rep.seconds : 0.0, (double)rep.bytes_written / 1e6,
                    o.out_path);
            fprintf(out, "  characters (controlled):");
            for (int c = 0; c < 64; c++)
                if (rep.char_entries[c]) {
                    const char *nm = cphil_char_ext_short(c);
                    fprintf(out, " %s %u", nm ? nm : "?", rep.char_entries[c]);
                }
            fprintf(out, "\n  stages:");
            for (int c = 0; c < 64; c++)
                if (rep.stage_files[c]) {
                    const char *nm = cphil_stage_name(c);
                    fprintf(out, " %s %u;", nm ? nm : "other", rep.stage_files[c]);
                }
            fprintf(out, "\n  button press rates:");
            for (int b = 0; b < CPHIL_N_BUTTONS; b++)
                fprintf(out, " %s %.3f", cphil_button_name(b),
                        rep.rows ? (double)rep.button_presses[b] / (double)rep.rows : 0.0);
            fprintf(out, "\n");
        }
    }
    cphil_ds_build_report_free(&rep);
    if (s) {
        if (!json) cli_error(NULL);
        return CLI_EXIT_FAIL;
    }
    return CLI_EXIT_OK;
}
