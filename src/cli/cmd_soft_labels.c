/* cmd_soft_labels.c — `cphil soft-labels --teacher P (--replays DIR | --data PATH) --output soft.bin
 * [--temperature 2.0] [--max-files N] [filters] [--batch-size B]`: runs the teacher over every
 * frame of the dataset (training and held-out replays) and stores its probabilities at
 * temperature T beside the dataset rows (src/train/softlabels.h). With --replays the dataset
 * cache is written beside the output as OUTPUT.ds and referenced, so `cphil distill` reads the
 * same records. Teacher frames are computed like `cphil eval` (src/train/eval.h). */
#include "cli/opts.h"
#include "gpu/gpu.h"
#include "core/safetensors.h"
#include "data/dataset.h"
#include "train/distill_loss.h"
#include "train/eval.h"
#include "train/softlabels.h"
#include "train/train_data.h"

#include <string.h>

typedef struct sl_cli {
    const char *device, *teacher, *replays, *data, *output, *train_character;
    const char *characters[OPT_LIST_CAP], *stages[OPT_LIST_CAP];
    int n_characters, n_stages;
    double temperature, val_split;
    long long max_files, batch, player, seed, threads, frame_delay;
    bool dual_port, quiet;
} sl_cli;
static sl_cli S;

#define D OPT_D
static opt_def sl_defs[] = {
    {.name = "--teacher", .kind = OPT_STR, .target = &S.teacher, .required = true, .help = "teacher policy (any backbone)", .metavar = "P"},
    {.name = "--replays", .kind = OPT_STR, .target = &S.replays, .help = "folder of .slp replays (the cache goes to OUTPUT.ds)", .metavar = "DIR"},
    {.name = "--data", .kind = OPT_STR, .target = &S.data, .help = "or a dataset cache (cphil dataset)", .metavar = "PATH"},
    {.name = "--output", .kind = OPT_STR, .target = &S.output, .required = true, .help = "soft-label file to write", .metavar = "soft.bin"},
    D("--temperature", OPT_DOUBLE, &S.temperature, "2", 0.05, 100, "softening temperature T"),
    D("--max-files", OPT_INT, &S.max_files, "0", 0, 1e9, "use at most N replays (0 = all)"),
    {.name = "--character", .kind = OPT_LIST, .target = S.characters, .list_n = &S.n_characters, .help = "keep games with these characters", .metavar = "NAME..."},
    {.name = "--stage", .kind = OPT_LIST, .target = S.stages, .list_n = &S.n_stages, .help = "keep games on these stages", .metavar = "NAME..."},
    D("--player", OPT_INT, &S.player, "0", 0, 4, "the player's port (1-4, as Slippi numbers them; 0 = the dataset's default)"),
    {.name = "--train-character", .kind = OPT_STR, .target = &S.train_character, .help = "every port playing this character", .metavar = "NAME"},
    D("--dual-port", OPT_FLAG, &S.dual_port, "off", 0, 0, "both players of each game"),
    D("--frame-delay", OPT_INT, &S.frame_delay, "0", 0, 60, "controller delay D"),
    D("--val-split", OPT_DOUBLE, &S.val_split, "0.1", 0, 0.9, "held-out fraction of files (with --replays)"),
    D("--seed", OPT_INT, &S.seed, "1", 0, 4e18, "split seed (with --replays)"),
    D("--batch-size", OPT_INT, &S.batch, "32", 1, 4096, "windows per teacher forward call"),
    D("--threads", OPT_INT, &S.threads, "0", 0, 256, "worker threads (0 = all cores)"),
    D("--device", OPT_STR, &S.device, "cpu", 0, 0, "where the policy runs: cpu, cuda or cuda:N (needs the CUDA build, make CUDA=1)"),
    D("--quiet", OPT_FLAG, &S.quiet, "off", 0, 0, "no progress bar and no summary"),
};
#undef D
static opts_spec spec = {
    .cmd = "soft-labels",
    .usage = "--teacher P (--replays DIR | --data PATH) --output soft.bin [--temperature 2.0]",
    .about = "Runs a teacher policy over every frame of a dataset and stores its probabilities at temperature T\n"
             "(for cphil distill). With --replays the dataset cache is written beside the output as OUTPUT.ds.",
    .groups = {{NULL, sl_defs, (int)CPHIL_ARRAY_LEN(sl_defs)}},
};

typedef struct sl_ctx {
    cphil_tr_data *d;
    bool held_out;
    double T;
    cphil_sl_writer w;
    double ent; /* mean entropy of the main_x distribution (summary) */
} sl_ctx;

static cphil_status on_frame(void *user, int replay, size_t f, const float *logits) {
    sl_ctx *c = user;
    float p[CPHIL_N_LOGITS];
    cphil_soft_probs(logits, c->T, p);
    uint64_t row = cphil_tr_data_replay_row(c->d, c->held_out, replay) + f;
    return cphil_sl_writer_add(&c->w, (uint32_t)row, p);
}

int cmd_soft_labels(int argc, char **argv) {
    int r = opts_parse(&spec, argc, argv);
    if (r) return opts_exit(r);
    cli_set_threads(S.threads);
    if ((r = cli_use_device_for_eval(S.device)) != CLI_EXIT_OK) return r;
    if (!cli_require("soft-labels", "--replays DIR or --data PATH", S.replays || S.data, (char *)NULL))
        return CLI_EXIT_USAGE;
    if (S.replays && S.data) {
        cli_error("soft-labels: give one of --replays and --data, not both");
        return CLI_EXIT_USAGE;
    }
    if (!cli_check_output("soft-labels", "--output", S.output, true)) return CLI_EXIT_USAGE;
    double t0 = cphil_now_sec();
    char ds_path[4096];
    {
        char dir[4096];
        snprintf(dir, sizeof dir, "%s", S.output);
        char *sl = strrchr(dir, '/');
        if (sl && sl != dir) {
            *sl = '\0';
            if (cphil_mkdir_p(dir) != CPHIL_OK) {
                cli_error(NULL);
                return CLI_EXIT_FAIL;
            }
        }
    }
    if (S.replays) {
        /* a persistent cache beside the output: distill reads the same records */
        snprintf(ds_path, sizeof ds_path, "%s.ds", S.output);
        cphil_ds_build_opts b;
        cphil_ds_build_default_opts(&b);
        b.replays_dir = S.replays;
        b.out_path = ds_path;
        b.max_files = (int)S.max_files;
        b.val_split = S.val_split;
        b.seed = (uint64_t)S.seed;
        b.player = (int)S.player;
        b.dual_port = S.dual_port;
        b.quiet = S.quiet;
        b.jobs = S.threads > 0 ? (int)S.threads : 2;
        /* the teacher's layout decides --prev-action */
        cphil_st_file *tf = NULL;
        if (cphil_st_open(S.teacher, 0, &tf) == CPHIL_OK) {
            const char *tm = cphil_st_meta(tf, "cphil_train");
            b.embed.prev_action = tm && strstr(tm, "\"prev_action\":true");
            cphil_st_close(tf);
        }
        if (S.n_characters || S.n_stages || S.train_character) {
            cli_error("soft-labels: with --replays, filters go through `cphil dataset` first; build the cache with "
                      "the filters and pass it with --data");
            return CLI_EXIT_USAGE;
        }
        cphil_ds_build_report rep;
        memset(&rep, 0, sizeof rep);
        cphil_status st = cphil_dataset_build(&b, &rep);
        cphil_ds_build_report_free(&rep);
        if (st) {
            cli_error(NULL);
            return CLI_EXIT_FAIL;
        }
    } else {
        snprintf(ds_path, sizeof ds_path, "%s", S.data);
    }
    cphil_tr_data_opts o;
    memset(&o, 0, sizeof o);
    o.data = ds_path;
    o.frame_delay = S.frame_delay;
    o.quiet = S.quiet;
    /* prev_action must match the cache: read it from the cache itself */
    cphil_dataset tmp;
    if (cphil_dataset_open(&tmp, ds_path, false) != CPHIL_OK) {
        cli_error(NULL);
        return CLI_EXIT_FAIL;
    }
    o.prev_action = (tmp.h->flags & 1) != 0;
    cphil_dataset_close(&tmp);
    cphil_tr_data *d = NULL;
    if (cphil_tr_data_open(&o, &d) != CPHIL_OK) {
        cli_error(NULL);
        return CLI_EXIT_FAIL;
    }
    sl_ctx c;
    memset(&c, 0, sizeof c);
    c.d = d;
    c.T = S.temperature;
    cphil_sl_writer_init(&c.w);
    uint64_t layout = 0;
    char cfg[4096] = "{}";
    int rc = CLI_EXIT_OK;
    for (int held = 0; held < 2 && rc == CLI_EXIT_OK; held++) {
        c.held_out = held;
        if (cphil_tr_run_policy(S.teacher, d, held, (int)S.batch, S.quiet, on_frame, &c, &layout, cfg, sizeof cfg) !=
            CPHIL_OK) {
            cli_error(NULL);
            rc = CLI_EXIT_FAIL;
        }
    }
    cphil_tr_data_summary sum;
    cphil_tr_data_get_summary(d, &sum);
    if (rc == CLI_EXIT_OK && layout && layout != sum.layout_hash) {
        cli_error("soft-labels: the teacher was trained on embedding layout %016llx, the dataset has %016llx",
                  (unsigned long long)layout, (unsigned long long)sum.layout_hash);
        rc = CLI_EXIT_FAIL;
    }
    if (rc == CLI_EXIT_OK) {
        uint64_t ck, rows;
        uint32_t flags, fd;
        cphil_tr_data_identity(d, &ck, &rows, &flags, &fd);
        size_t ml = strlen(cfg) + strlen(S.teacher) + strlen(ds_path) + 256;
        char *meta = cphil_alloc(ml);
        if (!meta) {
            cli_error("out of memory");
            rc = CLI_EXIT_FAIL;
        } else {
            snprintf(meta, ml, "{\"teacher\":\"%s\",\"teacher_config\":%s,\"dataset\":\"%s\",\"temperature\":%g}",
                     S.teacher, cfg, ds_path, S.temperature);
            if (cphil_sl_writer_write(&c.w, S.output, sum.layout_hash, flags, ck, rows, (float)S.temperature, fd,
                                      meta) != CPHIL_OK) {
                cli_error(NULL);
                rc = CLI_EXIT_FAIL;
            }
            cphil_free(meta);
        }
    }
    if (rc == CLI_EXIT_OK && !S.quiet)
        printf("soft-labels: %llu frames (%llu training, %llu held out) of %s at T = %g -> %s (%.1f MB, f16) in %.1fs\n",
               (unsigned long long)c.w.n, (unsigned long long)sum.train_frames, (unsigned long long)sum.val_frames,
               ds_path, S.temperature, S.output, (double)(c.w.n * (4 + 162)) / 1e6, cphil_now_sec() - t0);
    cphil_sl_writer_free(&c.w);
    cphil_tr_data_close(d);
    return rc;
}
