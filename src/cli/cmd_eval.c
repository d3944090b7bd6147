/* cmd_eval.c — `cphil eval --policy P (--replays DIR | --data PATH) [--json]`: per-head accuracy
 * and NLL on held-out files beside the most-frequent-class and repeat-previous-input baselines
 * (src/train/eval.h says how frames are scored). The split is the training split (same
 * --val-split and --seed as `cphil train`), so "held out" means files training never saw;
 * --all scores every file instead. */
#include "cli/opts.h"
#include "gpu/gpu.h"
#include "core/json.h"
#include "core/safetensors.h"
#include "train/eval.h"

#include <string.h>

typedef struct eval_cli {
    const char *device, *policy, *replays, *data, *train_character, *agree_with;
    const char *characters[OPT_LIST_CAP], *stages[OPT_LIST_CAP];
    int n_characters, n_stages;
    bool json, all, dual_port, quiet;
    long long max_files, player, batch, seed, threads, frame_delay;
    double val_split;
} eval_cli;
static eval_cli E;

#define D OPT_D
static opt_def eval_defs[] = {
    {.name = "--policy", .kind = OPT_STR, .target = &E.policy, .required = true, .metavar = "P",
     .help = "policy file (NAME_policy.safetensors)"},
    {.name = "--replays", .kind = OPT_STR, .target = &E.replays, .help = "folder of .slp replays", .metavar = "DIR"},
    {.name = "--data", .kind = OPT_STR, .target = &E.data, .help = "dataset cache (cphil dataset)", .metavar = "PATH"},
    D("--json", OPT_FLAG, &E.json, "off", 0, 0, "print one JSON object"),
    {.name = "--agree-with", .kind = OPT_STR, .target = &E.agree_with, .help = "also report agreement of the decisions with this policy (e.g. the teacher)", .metavar = "P2"},
    D("--all", OPT_FLAG, &E.all, "off", 0, 0, "score every file, not only the held-out ones"),
    D("--val-split", OPT_DOUBLE, &E.val_split, "0.1", 0, 0.9, "held-out fraction of files (as in training)"),
    D("--seed", OPT_INT, &E.seed, "1", 0, 4e18, "split seed (as in training)"),
    D("--max-files", OPT_INT, &E.max_files, "0", 0, 1e9, "use at most N replays (0 = all)"),
    {.name = "--character", .kind = OPT_LIST, .target = E.characters, .list_n = &E.n_characters, .help = "keep games with these characters", .metavar = "NAME..."},
    {.name = "--stage", .kind = OPT_LIST, .target = E.stages, .list_n = &E.n_stages, .help = "keep games on these stages", .metavar = "NAME..."},
    D("--player", OPT_INT, &E.player, "0", 0, 4, "the player's port (1-4, as Slippi numbers them; 0 = the dataset's default)"),
    {.name = "--train-character", .kind = OPT_STR, .target = &E.train_character, .help = "every port playing this character", .metavar = "NAME"},
    D("--dual-port", OPT_FLAG, &E.dual_port, "off", 0, 0, "both players of each game"),
    D("--frame-delay", OPT_INT, &E.frame_delay, "0", 0, 60, "controller delay D (as in training)"),
    D("--batch-size", OPT_INT, &E.batch, "32", 1, 4096, "windows per forward call"),
    D("--threads", OPT_INT, &E.threads, "0", 0, 256, "worker threads (0 = all cores)"),
    D("--device", OPT_STR, &E.device, "cpu", 0, 0, "where the policy runs: cpu, cuda or cuda:N (needs the CUDA build, make CUDA=1)"),
    D("--quiet", OPT_FLAG, &E.quiet, "off", 0, 0, "no progress bar"),
};
#undef D
static opts_spec spec = {
    .cmd = "eval",
    .usage = "--policy P (--replays DIR | --data PATH) [--json]",
    .about = "Per-head accuracy and likelihood of a policy on held-out replays (the training split: same\n"
             "--val-split and --seed as cphil train), beside the most-frequent-class and repeat-previous-input\n"
             "baselines.",
    .groups = {{NULL, eval_defs, (int)CPHIL_ARRAY_LEN(eval_defs)}},
};

static void json_head(cphil_json_out *j, const char *key, const cphil_head_report *r, int h) {
    cphil_json_key(j, key);
    cphil_json_obj_open(j);
    cphil_json_key(j, "acc");
    cphil_json_num(j, r->acc[h]);
    cphil_json_key(j, "nll");
    cphil_json_num(j, r->nll[h]);
    cphil_json_obj_close(j);
}

/* prev_action of the training run, from the policy's "cphil_train" metadata (false if absent). */
static bool policy_prev_action(const char *path) {
    cphil_st_file *f = NULL;
    if (cphil_st_open(path, 0, &f) != CPHIL_OK) return false;
    const char *t = cphil_st_meta(f, "cphil_train");
    bool pa = t && strstr(t, "\"prev_action\":true") != NULL;
    cphil_st_close(f);
    return pa;
}

int cmd_eval(int argc, char **argv) {
    int r = opts_parse(&spec, argc, argv);
    if (r) return opts_exit(r);
    cli_set_threads(E.threads);
    if ((r = cli_use_device_for_eval(E.device)) != CLI_EXIT_OK) return r;
    if (!cli_require("eval", "--replays DIR or --data PATH", E.replays || E.data,
                     (char *)NULL))
        return CLI_EXIT_USAGE;
    if (E.replays && E.data) {
        cli_error("eval: give one of --replays and --data, not both");
        return CLI_EXIT_USAGE;
    }
    cphil_model m;
    if (cphil_policy_load(E.policy, &m) != CPHIL_OK) {
        cli_error(NULL);
        return CLI_EXIT_FAIL;
    }
    cphil_tr_data_opts o;
    memset(&o, 0, sizeof o);
    o.replays = E.replays;
    o.data = E.data;
    o.max_files = E.max_files;
    for (int i = 0; i < E.n_characters && i < CPHIL_TR_MAX_FILTER; i++) o.characters[o.n_characters++] = E.characters[i];
    for (int i = 0; i < E.n_stages && i < CPHIL_TR_MAX_FILTER; i++) o.stages[o.n_stages++] = E.stages[i];
    o.player = E.player;
    o.train_character = E.train_character;
    o.dual_port = E.dual_port;
    o.prev_action = policy_prev_action(E.policy);
    o.frame_delay = E.frame_delay;
    o.val_split = E.all ? 0 : E.val_split;
    o.window = m.cfg.backbone == CPHIL_BACKBONE_MLP ? 1 : m.cfg.window;
    o.stride = o.window;
    o.batch = (int)E.batch;
    o.seed = (uint64_t)E.seed;
    o.threads = (int)E.threads;
    o.quiet = E.quiet || E.json;
    o.all_files_eval = E.all;
    cphil_tr_data *d = NULL;
    if (cphil_tr_data_open(&o, &d) != CPHIL_OK) {
        cli_error(NULL);
        cphil_model_free(&m);
        return CLI_EXIT_FAIL;
    }
    cphil_tr_data_summary ds;
    cphil_tr_data_get_summary(d, &ds);
    int rc = CLI_EXIT_OK;
    if (m.cfg.layout_hash && ds.layout_hash != m.cfg.layout_hash) {
        cli_error("eval: %s was trained on embedding layout %016llx, these replays embed as %016llx "
                  "(a different cphil version or --prev-action setting)",
                  E.policy, (unsigned long long)m.cfg.layout_hash, (unsigned long long)ds.layout_hash);
        rc = CLI_EXIT_FAIL;
        goto out;
    }
    /* a table of zeros is no result: too few replays for the split is an error with its remedy */
    if (!E.all && (ds.val_files == 0 || ds.val_frames == 0)) {
        cli_error("eval: no held-out frames: %d usable replay%s %s %d validation file%s at --val-split %g "
                  "(held-out files are whole replays: give more replays, a larger --val-split, or --all to "
                  "evaluate on every file)",
                  ds.files_used, ds.files_used == 1 ? "" : "s", ds.files_used == 1 ? "gives" : "give", ds.val_files, ds.val_files == 1 ? "" : "s", E.val_split);
        rc = CLI_EXIT_FAIL;
        goto out;
    }
    if (E.all && ds.train_frames + ds.val_frames == 0) {
        cli_error("eval: the data has no frames to evaluate");
        rc = CLI_EXIT_FAIL;
        goto out;
    }
    cphil_eval_result res;
    if (cphil_eval_policy(&m, d, !E.all, (int)E.batch, o.quiet, &res) != CPHIL_OK) {
        cli_error(NULL);
        rc = CLI_EXIT_FAIL;
        goto out;
    }
    double agree[CPHIL_TR_N_HEADS] = {0}, agree_all = 0;
    if (E.agree_with) {
        cphil_model other;
        if (cphil_policy_load(E.agree_with, &other) != CPHIL_OK) {
            cli_error(NULL);
            rc = CLI_EXIT_FAIL;
            goto out;
        }
        cphil_status ast = other.cfg.layout_hash && other.cfg.layout_hash != ds.layout_hash
                               ? cphil_err(CPHIL_E_MISMATCH, "%s: another embedding layout", E.agree_with)
                               : cphil_eval_agreement(&m, &other, d, !E.all, (int)E.batch, o.quiet, agree, &agree_all);
        cphil_model_free(&other);
        if (ast) {
            cli_error(NULL);
            rc = CLI_EXIT_FAIL;
            goto out;
        }
    }
    if (E.json) {
        cphil_json_out j;
        cphil_json_begin(&j, stdout);
        cphil_json_obj_open(&j);
        cphil_json_key(&j, "policy");
        cphil_json_str(&j, E.policy);
        cphil_json_key(&j, "backbone");
        cphil_json_str(&j, cphil_backbone_name(m.cfg.backbone));
        cphil_json_key(&j, "held_out");
        cphil_json_bool(&j, !E.all);
        cphil_json_key(&j, "files");
        cphil_json_int(&j, res.files);
        cphil_json_key(&j, "frames");
        cphil_json_uint(&j, res.frames);
        cphil_json_key(&j, "baseline_fit_frames");
        cphil_json_uint(&j, res.fit_frames);
        cphil_json_key(&j, "seconds");
        cphil_json_num(&j, res.seconds);
        cphil_json_key(&j, "heads");
        cphil_json_obj_open(&j);
        for (int h = 0; h < CPHIL_TR_N_HEADS; h++) {
            cphil_json_key(&j, cphil_head_names[h]);
            cphil_json_obj_open(&j);
            json_head(&j, "model", &res.model, h);
            json_head(&j, "most_frequent", &res.most_frequent, h);
            json_head(&j, "repeat_prev", &res.repeat_prev, h);
            cphil_json_obj_close(&j);
        }
        cphil_json_obj_close(&j);
        cphil_json_key(&j, "action_acc");
        cphil_json_obj_open(&j);
        cphil_json_key(&j, "model");
        cphil_json_num(&j, res.model.acc_all);
        cphil_json_key(&j, "most_frequent");
        cphil_json_num(&j, res.most_frequent.acc_all);
        cphil_json_key(&j, "repeat_prev");
        cphil_json_num(&j, res.repeat_prev.acc_all);
        cphil_json_obj_close(&j);
        cphil_json_key(&j, "button_acc");
        cphil_json_obj_open(&j);
        for (int k = 0; k < CPHIL_N_BUTTONS; k++) {
            cphil_json_key(&j, cphil_button_names[k]);
            cphil_json_num(&j, res.model.btn_acc[k]);
        }
        cphil_json_obj_close(&j);
        if (E.agree_with) {
            cphil_json_key(&j, "agreement");
            cphil_json_obj_open(&j);
            cphil_json_key(&j, "with");
            cphil_json_str(&j, E.agree_with);
            cphil_json_key(&j, "action");
            cphil_json_num(&j, agree_all);
            for (int h = 0; h < CPHIL_TR_N_HEADS; h++) {
                cphil_json_key(&j, cphil_head_names[h]);
                cphil_json_num(&j, agree[h]);
            }
            cphil_json_obj_close(&j);
        }
        cphil_json_key(&j, "change_rate");
        cphil_json_obj_open(&j);
        const char *who[2] = {"model", "human"};
        for (int w = 0; w < 2; w++) {
            cphil_json_key(&j, who[w]);
            cphil_json_obj_open(&j);
            cphil_json_key(&j, "action");
            cphil_json_num(&j, w ? res.change_human_all : res.change_model_all);
            for (int h = 0; h < CPHIL_TR_N_HEADS; h++) {
                cphil_json_key(&j, cphil_head_names[h]);
                cphil_json_num(&j, w ? res.change_human[h] : res.change_model[h]);
            }
            cphil_json_obj_close(&j);
        }
        cphil_json_obj_close(&j);
        cphil_json_key(&j, "nll_total");
        cphil_json_obj_open(&j);
        cphil_json_key(&j, "model");
        cphil_json_num(&j, res.model.nll_total);
        cphil_json_key(&j, "most_frequent");
        cphil_json_num(&j, res.most_frequent.nll_total);
        cphil_json_key(&j, "repeat_prev");
        cphil_json_num(&j, res.repeat_prev.nll_total);
        cphil_json_obj_close(&j);
        cphil_json_obj_close(&j);
        fputc('\n', stdout);
    } else {
        printf("cphil eval: %s (%s) on %d %s files, %llu frames; baselines fitted on %llu training frames; %.1fs\n",
               E.policy, cphil_backbone_name(m.cfg.backbone), res.files, E.all ? "" : "held-out",
               (unsigned long long)res.frames, (unsigned long long)res.fit_frames, res.seconds);
        printf("%-9s %10s %10s | %10s %10s | %10s %10s\n", "head", "acc", "nll", "mostfreq", "nll", "repeat", "nll");
        for (int h = 0; h < CPHIL_TR_N_HEADS; h++) {
            printf("%-9s %10.4f %10.4f | %10.4f %10.4f | %10.4f %10.4f %s\n", cphil_head_names[h], res.model.acc[h],
                   res.model.nll[h], res.most_frequent.acc[h], res.most_frequent.nll[h], res.repeat_prev.acc[h],
                   res.repeat_prev.nll[h],
                   res.model.acc[h] > res.most_frequent.acc[h] && res.model.nll[h] < res.most_frequent.nll[h]
                       ? "beats most-frequent"
                       : "");
        }
        printf("%-9s %10s %10.4f | %10s %10.4f | %10s %10.4f\n", "total", "", res.model.nll_total, "",
               res.most_frequent.nll_total, "", res.repeat_prev.nll_total);
        printf("%-9s %10.4f %10s | %10.4f %10s | %10.4f %10s\n", "action", res.model.acc_all, "",
               res.most_frequent.acc_all, "", res.repeat_prev.acc_all, "");
        if (E.agree_with) {
            printf("agreement with %s: action %.4f;", E.agree_with, agree_all);
            for (int h = 0; h < CPHIL_TR_N_HEADS; h++) printf(" %s %.4f", cphil_head_names[h], agree[h]);
            printf("\n");
        }
        printf("state changes from the previous frame: model %.4f, human %.4f (per head, model/human:",
               res.change_model_all, res.change_human_all);
        for (int h = 0; h < CPHIL_TR_N_HEADS; h++)
            printf(" %s %.3f/%.3f", cphil_head_names[h], res.change_model[h], res.change_human[h]);
        printf(")\n");
        printf("buttons (each):");
        for (int k = 0; k < CPHIL_N_BUTTONS; k++) printf(" %s %.4f", cphil_button_names[k], res.model.btn_acc[k]);
        printf("\n(acc: argmax = target; buttons: all 8 right at sigmoid > 0.5; action: all six heads right. nll: nats per frame, buttons summed over the 8)\n");
    }
out:
    cphil_tr_data_close(d);
    cphil_model_free(&m);
    return rc;
}
