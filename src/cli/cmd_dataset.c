/* cmd_dataset.c — `cphil dataset`: build a dataset cache from a folder of replays
 * (src/data/build.c; format and options in docs/data.md). */
#include "cli/cli.h"
#include "data/dataset.h"
#include "game/ids.h"

#include <stdlib.h>
#include <string.h>

static void ds_usage(FILE *f) {
    fprintf(f,
            "usage: cphil dataset --replays DIR --out PATH [options]\n"
            "Builds a dataset cache (compact per-frame records: embedding features, ids, targets)\n"
            "from every .slp under DIR (recursively). 1v1 games only unless --any-players.\n"
            "  --max-files N          use at most N replays (after filters and duplicates)\n"
            "  --character NAME...    keep games where some player plays one of these (aliases: falcon, ics, puff, gnw, ...)\n"
            "  --stage NAME...        keep games on these stages (fd, bf, ys, dl, fod, ps, or names/ids)\n"
            "  --player PORT          control this port (1-4; default: the lowest occupied port)\n"
            "  --train-character NAME...  control every port playing one of these (dittos give two entries)\n"
            "  --dual-port            control every port (two entries per game)\n"
            "  --any-players          keep games that are not 1v1\n"
            "  --val-split F          fraction of files held out for validation (default 0.1), by file\n"
            "  --seed S               split seed (default 1)\n"
            "  --prev-action          add the player's controller of frame t to the embedding\n"
            "  --jobs N               worker threads (default 2)\n"
            "  --json                 print the summary as one JSON object\n"
            "  --quiet                no progress bar\n");
}

/* Parse NAME... values (until the next --flag) with lookup(); false on an unknown name. */
static bool names(int argc, char **argv, int *i, const char *flag, int (*lookup)(const char *), int *out,
                  int *n) {
    int start = *i + 1;
    while (*i + 1 < argc && strncmp(argv[*i + 1], "--", 2) != 0) {
        const char *v = argv[++*i];
        /* comma-separated lists are accepted too */
        char buf[256];
        snprintf(buf, sizeof buf, "%s", v);
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
    if (*i + 1 == start) {
        cli_error("dataset: %s needs at least one name", flag);
        return false;
    }
    return true;
}

int cmd_dataset(int argc, char **argv) {
    cphil_ds_build_opts o;
    cphil_ds_build_default_opts(&o);
    bool json = false;
    static const char *const valid[] = {"--replays", "--out", "--max-files", "--character", "--characters",
                                        "--stage", "--stages", "--player", "--train-character", "--dual-port",
                                        "--any-players", "--val-split", "--seed", "--prev-action", "--jobs",
                                        "--json", "--quiet", "--help", NULL};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        long long x;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            ds_usage(stdout);
            return CLI_EXIT_OK;
        } else if (!strcmp(a, "--replays") || !strcmp(a, "--out")) {
            if (!v) {
                cli_error("dataset: %s needs a value", a);
                return CLI_EXIT_USAGE;
            }
            if (a[2] == 'r') o.replays_dir = v;
            else o.out_path = v;
            i++;
        } else if (!strcmp(a, "--max-files")) {
            if (!cli_parse_int(a, v, 1, 100000000, &x)) return CLI_EXIT_USAGE;
            o.max_files = (int)x;
            i++;
        } else if (!strcmp(a, "--character") || !strcmp(a, "--characters")) {
            if (!names(argc, argv, &i, a, cphil_char_lookup, o.characters, &o.n_characters)) return CLI_EXIT_USAGE;
        } else if (!strcmp(a, "--train-character")) {
            if (!names(argc, argv, &i, a, cphil_char_lookup, o.train_characters, &o.n_train_characters))
                return CLI_EXIT_USAGE;
        } else if (!strcmp(a, "--stage") || !strcmp(a, "--stages")) {
            if (!names(argc, argv, &i, a, cphil_stage_lookup, o.stages, &o.n_stages)) return CLI_EXIT_USAGE;
        } else if (!strcmp(a, "--player")) {
            if (!cli_parse_int(a, v, 1, 4, &x)) return CLI_EXIT_USAGE;
            o.player = (int)x;
            i++;
        } else if (!strcmp(a, "--dual-port")) {
            o.dual_port = true;
        } else if (!strcmp(a, "--any-players")) {
            o.any_players = true;
        } else if (!strcmp(a, "--val-split")) {
            double d;
            if (!cli_parse_double(a, v, 0.0, 0.95, &d)) return CLI_EXIT_USAGE;
            o.val_split = d;
            i++;
        } else if (!strcmp(a, "--seed")) {
            if (!cli_parse_int(a, v, 0, (long long)1 << 62, &x)) return CLI_EXIT_USAGE;
            o.seed = (uint64_t)x;
            i++;
        } else if (!strcmp(a, "--jobs")) {
            if (!cli_parse_int(a, v, 1, 64, &x)) return CLI_EXIT_USAGE;
            o.jobs = (int)x;
            i++;
        } else if (!strcmp(a, "--prev-action")) {
            o.embed.prev_action = true;
        } else if (!strcmp(a, "--json")) {
            json = true;
        } else if (!strcmp(a, "--quiet")) {
            o.quiet = true;
        } else {
            cli_unknown_option("dataset", a, valid);
            return CLI_EXIT_USAGE;
        }
    }
    if (!cli_require("dataset", "--replays", o.replays_dir != NULL, "--out", o.out_path != NULL, (char *)NULL) ||
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
