/* cmd_train.c — `cphil train`: imitation learning from replays (or a dataset cache).
 *
 * Flags: ExPhil's (--replays --temporal --backbone --hidden --window-size --state-size
 * --expand-factor --conv-size --num-layers --epochs --max-files --precision) plus the dataset
 * filters and the optimizer, schedule, split, output and control flags (docs/training.md lists
 * each with its default). Prints a banner (config, what differs from the defaults, parameter
 * count, data summary, flags unused by the chosen backbone), a progress bar, and one report per
 * epoch with the best epoch marked. Ctrl-C saves a checkpoint and exits (status 130).
 * Deliberately not here: the loop (src/train/trainer.c), the data (train_data.c), the model.
 */
#include "cli/opts.h"
#include "gpu/gpu.h"
#include "train/policy_train.h"
#include "train/train_data.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const backbone_choices[] = {"mlp", "lstm", "gru", "mamba", "attention", NULL};
static const char *const heads_choices[] = {"independent", "autoregressive", NULL}; /* = cphil_heads_mode */

typedef struct train_cli {
    const char *replays, *data, *out, *name, *resume, *train_character;
    const char *characters[OPT_LIST_CAP], *stages[OPT_LIST_CAP];
    int n_characters, n_stages;
    bool temporal, dual_port, prev_action, early_stopping, dry_run, quiet;
    int backbone, heads;
    int hidden[8], n_hidden;
    long long window, state_size, expand, conv_size, num_layers, num_heads, max_files, player, frame_delay,
        batch, stride, tbptt, save_every, patience, stop_after, gpus;
    double val_split, label_smoothing, min_delta, button_weight;
    cli_optim o; /* the options shared with distill (opts.h) */
} train_cli;

static train_cli C;

#define D OPT_D
static opt_def train_defs[] = {
    /* data */
    {.name = "--replays", .kind = OPT_STR, .target = &C.replays, .help = "folder of .slp replays (searched recursively)", .metavar = "DIR"},
    {.name = "--data", .kind = OPT_STR, .target = &C.data, .help = "a dataset cache made by `cphil dataset` (instead of --replays)", .metavar = "PATH"},
    D("--max-files", OPT_INT, &C.max_files, "0", 0, 1e9, "use at most N replays after the filters (0 = all)"),
    {.name = "--character", .kind = OPT_LIST, .target = C.characters, .list_n = &C.n_characters, .help = "keep games with these characters (aliases: falcon, ics, puff, gnw...)", .metavar = "NAME..."},
    {.name = "--stage", .kind = OPT_LIST, .target = C.stages, .list_n = &C.n_stages, .help = "keep games on these stages (fd, bf, ys, dl, fod, ps...)", .metavar = "NAME..."},
    D("--player", OPT_INT, &C.player, "0", 0, 4, "learn the player on this port (1-4; 0 = the dataset's default)"),
    {.name = "--train-character", .kind = OPT_STR, .target = &C.train_character, .help = "learn every port playing this character", .metavar = "NAME"},
    D("--dual-port", OPT_FLAG, &C.dual_port, "off", 0, 0, "learn both players of each game"),
    D("--prev-action", OPT_FLAG, &C.prev_action, "off", 0, 0, "add the player's previous controller to the inputs"),
    D("--frame-delay", OPT_INT, &C.frame_delay, "0", 0, 60, "pair the state after frame t with the controller of frame t+1+D"),
    D("--val-split", OPT_DOUBLE, &C.val_split, "0.1", 0, 0.9, "fraction of replay FILES held out for validation"),
    /* model */
    D("--temporal", OPT_FLAG, &C.temporal, "off", 0, 0, "sequence model (implied by lstm, gru, mamba, attention)"),
    {.name = "--backbone", .kind = OPT_ENUM, .target = &C.backbone, .def = "mamba", .choices = backbone_choices, .help = "network between the input layer and the heads"},
    {.name = "--hidden", .kind = OPT_INTLIST, .target = C.hidden, .lo = 1, .hi = 65536, .list_n = &C.n_hidden, .help = "hidden size (temporal: one size, default 256; mlp: comma list, default 512,512)", .metavar = "H|H1,H2"},
    D("--window-size", OPT_INT, &C.window, "60", 1, 100000, "frames per training window (W)"),
    D("--num-layers", OPT_INT, &C.num_layers, "2", 1, 64, "layers of the temporal backbone"),
    D("--state-size", OPT_INT, &C.state_size, "16", 1, 1024, "Mamba SSM state size (N)"),
    D("--expand-factor", OPT_INT, &C.expand, "2", 1, 16, "Mamba inner width = expand x hidden"),
    D("--conv-size", OPT_INT, &C.conv_size, "4", 1, 64, "Mamba causal convolution width (K)"),
    D("--num-heads", OPT_INT, &C.num_heads, "4", 1, 256, "attention heads"),
    {.name = "--heads", .kind = OPT_ENUM, .target = &C.heads, .def = "independent", .choices = heads_choices, .help = "action heads: independent, or autoregressive (each head conditioned on the heads before it: the joint controller state)"},
    /* optimization */
    D("--batch-size", OPT_INT, &C.batch, "64", 1, 65536, "windows (or TBPTT streams) per step"),
    D("--label-smoothing", OPT_DOUBLE, &C.label_smoothing, "0", 0, 0.5, "label smoothing of the categorical heads"),
    D("--button-weight", OPT_DOUBLE, &C.button_weight, "1", 0, 100, "weight of the buttons term in the loss"),
    D("--stride", OPT_INT, &C.stride, "0", 0, 100000, "frames between window starts (0 = the window size)"),
    D("--tbptt", OPT_INT, &C.tbptt, "0", 0, 100000, "TBPTT chunk length: slots walk replays carrying state (lstm, gru; 0 = windows)"),
    D("--gpus", OPT_INT, &C.gpus, "0", 0, 1024, "with --device cuda: train on N GPUs of this machine, one process each (started through mpirun)"),
    /* output and control */
    D("--out", OPT_STR, &C.out, "checkpoints", 0, 0, "output folder"),
    {.name = "--name", .kind = OPT_STR, .target = &C.name, .help = "file name stem (default: the backbone name)", .metavar = "NAME"},
    {.name = "--resume", .kind = OPT_STR, .target = &C.resume, .help = "continue exactly from a checkpoint (NAME.ckpt)", .metavar = "PATH"},
    D("--save-every", OPT_INT, &C.save_every, "0", 0, 1e12, "also write NAME.ckpt every N steps (0 = at epoch ends)"),
    D("--early-stopping", OPT_FLAG, &C.early_stopping, "off", 0, 0, "stop when the validation loss stops improving"),
    D("--patience", OPT_INT, &C.patience, "5", 1, 100000, "epochs without improvement before early stopping"),
    D("--min-delta", OPT_DOUBLE, &C.min_delta, "0", 0, 1e9, "smallest validation-loss decrease that counts as improvement"),
    D("--dry-run", OPT_FLAG, &C.dry_run, "off", 0, 0, "print the banner (config, parameters, data) and stop"),
    D("--quiet", OPT_FLAG, &C.quiet, "off", 0, 0, "no progress bar and no per-epoch report"),
    /* test hook, not in --help: behave as if Ctrl-C arrived after step N */
    {.name = "--stop-after-steps", .kind = OPT_INT, .target = &C.stop_after, .def = "0", .hi = 4e18},
};
#undef D
static opt_def optim_defs[CLI_OPTIM_N];
static opts_spec spec = {
    .cmd = "train",
    .usage = "(--replays DIR | --data PATH) [options]",
    .about = "Trains a policy by imitation from replays (or a dataset cache); docs/training.md.",
    .groups = {{NULL, train_defs, (int)CPHIL_ARRAY_LEN(train_defs)},
               {"optimization (shared with cphil distill)", optim_defs, CLI_OPTIM_N}},
};

/* Which flags only some backbones use (for the banner's "unused" line). */
typedef struct flag_use {
    const char *flag;
    unsigned mask; /* bit b = used by backbone b */
} flag_use;
#define BB(b) (1u << (b))
static const flag_use uses[] = {
    {"--window-size", BB(CPHIL_BACKBONE_LSTM) | BB(CPHIL_BACKBONE_GRU) | BB(CPHIL_BACKBONE_MAMBA) | BB(CPHIL_BACKBONE_ATTENTION)},
    {"--num-layers", BB(CPHIL_BACKBONE_LSTM) | BB(CPHIL_BACKBONE_GRU) | BB(CPHIL_BACKBONE_MAMBA) | BB(CPHIL_BACKBONE_ATTENTION)},
    {"--state-size", BB(CPHIL_BACKBONE_MAMBA)},
    {"--expand-factor", BB(CPHIL_BACKBONE_MAMBA)},
    {"--conv-size", BB(CPHIL_BACKBONE_MAMBA)},
    {"--num-heads", BB(CPHIL_BACKBONE_ATTENTION)},
    {"--temporal", BB(CPHIL_BACKBONE_LSTM) | BB(CPHIL_BACKBONE_GRU) | BB(CPHIL_BACKBONE_MAMBA) | BB(CPHIL_BACKBONE_ATTENTION)},
    {"--tbptt", BB(CPHIL_BACKBONE_LSTM) | BB(CPHIL_BACKBONE_GRU)},
    {"--stride", BB(CPHIL_BACKBONE_MLP) | BB(CPHIL_BACKBONE_LSTM) | BB(CPHIL_BACKBONE_GRU) | BB(CPHIL_BACKBONE_MAMBA) | BB(CPHIL_BACKBONE_ATTENTION)},
};

/* Flags that only shape a cache built from --replays (with --data, the cache already fixed them). */
static const char *const data_only_flags[] = {"--val-split", "--max-files", "--character", "--stage",
                                              "--player", "--train-character", "--dual-port"};

static void on_sigint(int sig) {
    (void)sig;
    if (cphil_train_interrupt) {
        /* a second Ctrl-C: leave now (the checkpoint write in progress is atomic) */
        signal(SIGINT, SIG_DFL);
        raise(SIGINT);
    }
    cphil_train_interrupt = 1;
}

/* ---- progress and reports ---------------------------------------------------------------- */
typedef struct train_ui {
    cphil_progress bar;
    bool quiet, bar_open;
    int epoch;
    char label[32];
    size_t n_batches;
} train_ui;

static void ui_step(void *user, int epoch, size_t batch, size_t n_batches, double loss_ema, double fps) {
    train_ui *u = user;
    if (u->quiet) return;
    if (!u->bar_open || u->epoch != epoch) {
        snprintf(u->label, sizeof u->label, "epoch %d", epoch + 1);
        cphil_progress_begin(&u->bar, u->label, n_batches, u->quiet);
        u->bar_open = true;
        u->epoch = epoch;
    }
    char extra[96];
    snprintf(extra, sizeof extra, "loss %.4f  %.0f frames/s", loss_ema, fps);
    cphil_progress_update(&u->bar, batch, extra);
}

static void ui_epoch(void *user, const cphil_tr_epoch_report *r) {
    train_ui *u = user;
    if (u->bar_open) {
        cphil_progress_end(&u->bar);
        u->bar_open = false;
    }
    if (u->quiet) return;
    printf("epoch %d/%d  step %llu  train loss %.4f", r->epoch, r->epochs, (unsigned long long)r->step, r->train_loss);
    if (r->has_val) printf("  val loss %.4f", r->val_loss);
    printf("  %.1fs  %.0f frames/s%s\n", r->seconds, r->frames_per_sec, r->best ? "  * best" : "");
    if (r->has_val) {
        printf("  val accuracy:");
        for (int h = 0; h < CPHIL_TR_N_HEADS; h++) printf(" %s %.3f", cphil_head_names[h], r->val.acc[h]);
        printf("\n");
    }
    if (r->early_stop)
        printf("early stopping: no improvement for %d epochs (--patience)\n", r->epochs_without_improvement);
    fflush(stdout);
}

static void ui_note(void *user, const char *msg) {
    train_ui *u = user;
    if (u->bar_open) {
        cphil_progress_end(&u->bar);
        u->bar_open = false;
    }
    fprintf(stderr, "%s\n", msg);
}

/* ---- config ------------------------------------------------------------------------------ */
static int build_model_config(cphil_model_config *mc, bool *temporal_unused) {
    cphil_model_config_default(mc, (cphil_backbone)C.backbone);
    bool mlp = C.backbone == CPHIL_BACKBONE_MLP;
    *temporal_unused = mlp && C.temporal;
    if (C.n_hidden > 0) {
        if (mlp) {
            mc->n_mlp = C.n_hidden;
            for (int i = 0; i < C.n_hidden; i++) mc->mlp_hidden[i] = C.hidden[i];
        } else {
            if (C.n_hidden != 1) {
                cli_error("--hidden: the %s backbone takes one size (e.g. --hidden 256); comma lists are for "
                          "--backbone mlp",
                          backbone_choices[C.backbone]);
                return -1;
            }
            mc->hidden = C.hidden[0];
        }
    }
    mc->num_layers = (int)C.num_layers;
    mc->window = mlp ? 1 : (int)C.window;
    mc->state_size = (int)C.state_size;
    mc->expand = (int)C.expand;
    mc->conv_size = (int)C.conv_size;
    mc->num_heads = (int)C.num_heads;
    mc->precision = C.o.precision == 0 ? CPHIL_PREC_BF16 : CPHIL_PREC_F32;
    mc->heads = (cphil_heads_mode)C.heads;
    return 0;
}

static void print_banner(const cphil_model_config *mc, const cphil_tr_data_summary *ds, size_t n_params,
                         const char *name, bool temporal_unused) {
    char js[4096];
    size_t jl;
    printf("cphil train: %s", backbone_choices[mc->backbone]);
    if (mc->backbone == CPHIL_BACKBONE_MLP) {
        printf(" hidden ");
        for (int i = 0; i < mc->n_mlp; i++) printf("%s%d", i ? "," : "", mc->mlp_hidden[i]);
    } else {
        printf(" hidden %d, %d layers, window %d", mc->hidden, mc->num_layers, mc->window);
        if (mc->backbone == CPHIL_BACKBONE_MAMBA)
            printf(", state %d, expand %d, conv %d", mc->state_size, mc->expand, mc->conv_size);
        if (mc->backbone == CPHIL_BACKBONE_ATTENTION) printf(", %d heads", mc->num_heads);
    }
    printf(", %s%s\n", mc->precision == CPHIL_PREC_F32 ? "f32" : "bf16 (f32 master weights)",
           mc->heads == CPHIL_HEADS_AUTOREGRESSIVE ? ", autoregressive heads" : "");
    printf("  parameters     %zu (%.2f M)\n", n_params, (double)n_params / 1e6);
    printf("  embedding      %d wide (%d continuous + %d ids), layout %016llx\n", ds->E, ds->n_cont, ds->n_ids,
           (unsigned long long)ds->layout_hash);
    printf("  data           %s: %d files used (%d found, %d skipped%s%s), train %d files / %llu frames, "
           "held out %d files / %llu frames\n",
           C.data ? C.data : C.replays, ds->files_used, ds->files_found, ds->files_skipped,
           ds->skipped_note[0] ? ": " : "", ds->skipped_note, ds->train_files, (unsigned long long)ds->train_frames,
           ds->val_files, (unsigned long long)ds->val_frames);
    printf("  button rates  ");
    for (int k = 0; k < CPHIL_N_BUTTONS; k++) printf(" %s %.3f", cphil_button_names[k], ds->button_rates[k]);
    printf("\n");
    printf("  optimizer      AdamW lr %g (%s after %lld warmup steps), weight decay %g, clip %g, batch %lld\n",
           C.o.lr, cli_optim_schedule_choices[C.o.schedule], C.o.warmup, C.o.weight_decay, C.o.max_grad_norm, C.batch);
    if (C.tbptt) printf("  tbptt          streams of %lld-frame chunks, recurrent state carried\n", C.tbptt);
    else if (mc->backbone != CPHIL_BACKBONE_MLP)
        printf("  windows        %d frames, stride %lld, loss on every position\n", mc->window,
               C.stride ? C.stride : (long long)mc->window);
    printf("  output         %s/%s_policy.safetensors, %s/%s.ckpt (+ _best), curves .csv/.svg\n", C.out, name,
           C.out, name);
    printf("  seed           %lld (the same seed and data give the same bits)\n", C.o.seed);
    printf("  changed from the defaults:\n");
    if (opts_print_changed(stdout, &spec, "    ") == 0) printf("    (none)\n");
    char unused[512] = "";
    for (size_t i = 0; i < CPHIL_ARRAY_LEN(uses); i++)
        if (opts_was_set(&spec, uses[i].flag) && !(uses[i].mask & BB(mc->backbone))) {
            strncat(unused, " ", sizeof unused - strlen(unused) - 1);
            strncat(unused, uses[i].flag, sizeof unused - strlen(unused) - 1);
        }
    (void)temporal_unused;
    if (C.data)
        for (size_t i = 0; i < CPHIL_ARRAY_LEN(data_only_flags); i++)
            if (opts_was_set(&spec, data_only_flags[i])) {
                strncat(unused, " ", sizeof unused - strlen(unused) - 1);
                strncat(unused, data_only_flags[i], sizeof unused - strlen(unused) - 1);
            }
    if (unused[0] && C.data)
        printf("  unused:        %s (no effect: the backbone does not use them, or the --data cache fixed them when "
               "it was built)\n",
               unused);
    else if (unused[0]) printf("  unused by %s: %s (accepted, no effect)\n", backbone_choices[mc->backbone], unused);
    if (cphil_model_config_to_json(mc, js, sizeof js, &jl) == CPHIL_OK) printf("  model config   %s\n", js);
    fflush(stdout);
}

/* `--gpus N` outside a launcher: this process becomes `mpirun -np N <this cphil> train <the same
 * arguments>` (docs/distributed.md), so the N ranks rendezvous over MPI like any mpirun job and
 * each takes the GPU of its local rank. Returns only when mpirun cannot be started. */
static int launch_gpus(int argc, char **argv, long long n) {
    if (!cphil_dist_compiled()) {
        cli_error("train: --gpus %lld: this cphil was built without MPI, which starts and connects the processes; "
                  "install Open MPI (scripts/setup.sh) and rebuild",
                  n);
        return CLI_EXIT_FAIL;
    }
    char self[4096];
    ssize_t k = readlink("/proc/self/exe", self, sizeof self - 1);
    if (k <= 0) {
        cli_error("train: --gpus: cannot find this program's path (/proc/self/exe) to start its ranks");
        return CLI_EXIT_FAIL;
    }
    self[k] = '\0';
    char np[32];
    snprintf(np, sizeof np, "%lld", n);
    char **av = cphil_calloc((size_t)argc + 8, sizeof(char *));
    if (!av) {
        cli_error("train: out of memory");
        return CLI_EXIT_FAIL;
    }
    int j = 0;
    av[j++] = "mpirun";
    if (geteuid() == 0) av[j++] = "--allow-run-as-root"; /* containers run as root */
    av[j++] = "-np";
    av[j++] = np;
    av[j++] = self;
    for (int i = 0; i < argc; i++) av[j++] = argv[i]; /* "train" and every option, --gpus included */
    av[j] = NULL;
    fflush(stdout);
    fflush(stderr);
    execvp("mpirun", av);
    cphil_free(av);
    cli_error("train: --gpus %lld: cannot start mpirun (%s): install Open MPI (scripts/setup.sh installs "
              "openmpi-bin), or start the ranks yourself: mpirun -np %lld cphil train --device cuda ...",
              n, strerror(errno), n);
    return CLI_EXIT_FAIL;
}

static int train_main(int argc, char **argv, cphil_dist *dist) {
    cli_optim_defs(&C.o, optim_defs);
    int r = opts_parse(&spec, argc, argv);
    if (r) return opts_exit(r);
    const int rank = cphil_dist_rank(dist), ranks = cphil_dist_size(dist);
    if (C.gpus > 0) {
        if (strncmp(C.o.device, "cuda", 4) != 0) {
            cli_error("train: --gpus %lld needs --device cuda (CPU ranks: mpirun -np N cphil train ...)", C.gpus);
            return CLI_EXIT_USAGE;
        }
        if (!cphil_gpu_compiled()) {
            cli_error("train: --gpus %lld: this cphil was built without CUDA (build with make CUDA=1)", C.gpus);
            return CLI_EXIT_USAGE;
        }
        if (cphil_dist_env_world() == 0) return launch_gpus(argc, argv, C.gpus);
        if (C.gpus != ranks) {
            cli_error("train: --gpus %lld, but this is one of %d ranks started by a launcher: give the launcher's "
                      "rank count, or leave --gpus out under mpirun",
                      C.gpus, ranks);
            return CLI_EXIT_USAGE;
        }
    }
    /* several ranks on one machine share its cores: by default each takes its part of them */
    cli_set_threads(cli_worker_threads(C.o.threads, ranks, C.o.device));
    if (rank > 0) C.quiet = true; /* rank 0 alone prints (and writes files: trainer.c) */
    if (ranks > 1 && C.tbptt && strncmp(C.o.device, "cuda", 4) == 0) {
        cli_error("train: --tbptt with %d GPU ranks: the GPU trainer does not gather the ranks' carried recurrent "
                  "state into its checkpoint; train TBPTT on CPU ranks or one GPU, or use windows",
                  ranks);
        return CLI_EXIT_USAGE;
    }
    if (!C.replays == !C.data) {
        cli_error("train: give exactly one of --replays DIR or --data PATH (cphil train --help)");
        return CLI_EXIT_USAGE;
    }
    if (C.tbptt && C.backbone != CPHIL_BACKBONE_LSTM && C.backbone != CPHIL_BACKBONE_GRU) {
        cli_error("train: --tbptt carries recurrent state, which the %s backbone does not have here "
                  "(use --backbone lstm or gru, or windows without --tbptt)",
                  backbone_choices[C.backbone]);
        return CLI_EXIT_USAGE;
    }
    cphil_model_config mc;
    bool temporal_unused = false;
    if (build_model_config(&mc, &temporal_unused)) return CLI_EXIT_USAGE;
    const char *name = C.name ? C.name : backbone_choices[C.backbone];

    cphil_tr_data_opts dopt;
    memset(&dopt, 0, sizeof dopt);
    dopt.replays = C.replays;
    dopt.data = C.data;
    dopt.max_files = C.max_files;
    for (int i = 0; i < C.n_characters && i < CPHIL_TR_MAX_FILTER; i++) dopt.characters[dopt.n_characters++] = C.characters[i];
    for (int i = 0; i < C.n_stages && i < CPHIL_TR_MAX_FILTER; i++) dopt.stages[dopt.n_stages++] = C.stages[i];
    dopt.player = C.player;
    dopt.train_character = C.train_character;
    dopt.dual_port = C.dual_port;
    dopt.prev_action = C.prev_action;
    dopt.frame_delay = C.frame_delay;
    dopt.val_split = C.val_split;
    dopt.tbptt = (int)C.tbptt;
    dopt.window = C.tbptt ? (int)C.tbptt : mc.window;
    dopt.stride = C.stride ? (int)C.stride : dopt.window;
    dopt.batch = (int)C.batch;
    dopt.seed = (uint64_t)C.o.seed;
    dopt.threads = (int)C.o.threads;
    dopt.parallel_fill = strncmp(C.o.device, "cuda", 4) == 0; /* the CPU is the GPU's loader */
    dopt.quiet = C.quiet;
    dopt.rank = rank;
    dopt.ranks = ranks;
    cphil_tr_data *data = NULL;
    cphil_status st = cphil_tr_data_open(&dopt, &data);
    if (st) {
        cli_error(NULL);
        return CLI_EXIT_FAIL;
    }
    cphil_tr_data_summary ds;
    cphil_tr_data_get_summary(data, &ds);
    mc.n_cont = ds.n_cont;
    mc.n_ids = ds.n_ids;
    mc.E = ds.E;
    mc.layout_hash = ds.layout_hash;
    if ((st = cphil_model_config_validate(&mc)) != CPHIL_OK) {
        cli_error(NULL);
        cphil_tr_data_close(data);
        return CLI_EXIT_USAGE;
    }

    cphil_tr_policy_opts po;
    cphil_tr_policy_opts_default(&po);
    po.seed = (uint64_t)C.o.seed;
    po.weight_decay = C.o.weight_decay;
    po.max_grad_norm = C.o.max_grad_norm;
    po.label_smoothing = C.label_smoothing;
    po.button_weight = C.button_weight;
    po.B = dopt.batch;
    po.T = dopt.window;
    po.tbptt = C.tbptt > 0;
    po.threads = (int)C.o.threads;
    po.dist = ranks > 1 ? dist : NULL;
    size_t bucket_bytes = 0;
    if (ranks > 1 && cphil_dist_env_bucket_bytes(CPHIL_DIST_BUCKET_DEFAULT, &bucket_bytes) != CPHIL_OK) {
        cli_error(NULL);
        cphil_tr_data_close(data);
        return CLI_EXIT_USAGE;
    }
    po.bucket_floats = bucket_bytes / sizeof(float);
    /* the same loop drives the CPU policy or its GPU twin (src/gpu/), through the model table */
    int gpu = -1;
    if ((st = cphil_device_parse(C.o.device, &gpu)) != CPHIL_OK) {
        cli_error(NULL);
        cphil_tr_data_close(data);
        return CLI_EXIT_USAGE;
    }
    /* GPU ranks: `--device cuda` (no index) takes the rank's GPU on its machine; under mpirun the
     * gradients go through NCCL at every rank count (-np 1 included), and without mpirun when
     * CPHIL_GPU_NCCL=1 (the same path, for tests) */
    if (gpu >= 0 && mc.heads == CPHIL_HEADS_AUTOREGRESSIVE) {
        cli_error("train: --heads autoregressive trains on the CPU only for now (the GPU twin has independent heads; "
                  "drop --device)");
        cphil_tr_data_close(data);
        return CLI_EXIT_USAGE;
    }
    if (gpu >= 0 && ranks > 1 && !strcmp(C.o.device, "cuda")) gpu = cphil_dist_env_local_rank();
    const char *nccl_env = getenv("CPHIL_GPU_NCCL");
    po.nccl = gpu >= 0 && (cphil_dist_env_world() > 0 || (nccl_env && !strcmp(nccl_env, "1")));
    if (po.nccl) po.dist = dist;
    cphil_tr_policy *pol = NULL;
    cphil_gpu_policy *gpol = NULL;
    const cphil_tr_model_ops *mops = gpu >= 0 ? &cphil_gpu_policy_ops : &cphil_tr_policy_ops;
    void *model = NULL;
    if (gpu >= 0) st = cphil_gpu_policy_create(gpu, &mc, &po, &gpol), model = gpol;
    else st = cphil_tr_policy_create(&mc, &po, &pol), model = pol;
    if (st != CPHIL_OK) {
        cli_error(NULL);
        cphil_tr_data_close(data);
        return CLI_EXIT_FAIL;
    }
    if (!C.quiet || C.dry_run) {
        print_banner(&mc, &ds, (gpol ? cphil_gpu_policy_model(gpol) : cphil_tr_policy_model(pol))->n_weights, name,
                     temporal_unused);
        if (gpol) printf("device: %s\n", cphil_gpu_policy_device(gpol));
        if (ranks > 1)
            printf("ranks: %d (MPI), batch %lld per rank = %lld windows per step; rank 0 writes the files\n", ranks,
                   C.batch, C.batch * ranks);
    }
    if (C.dry_run && rank > 0) {
        cphil_tr_policy_free(pol);
        cphil_gpu_policy_free(gpol);
        cphil_tr_data_close(data);
        return CLI_EXIT_OK;
    }
    if (C.dry_run) {
        printf("dry run: nothing trained\n");
        cphil_tr_policy_free(pol);
        cphil_gpu_policy_free(gpol);
        cphil_tr_data_close(data);
        return CLI_EXIT_OK;
    }

    cphil_trainer_opts to;
    cphil_trainer_opts_default(&to);
    to.epochs = (int)C.o.epochs;
    to.lr = C.o.lr;
    to.schedule = C.o.schedule == 0 ? CPHIL_TR_SCHED_COSINE : CPHIL_TR_SCHED_CONSTANT;
    to.warmup_steps = C.o.warmup;
    to.seed = (uint64_t)C.o.seed;
    to.out_dir = C.out;
    to.name = name;
    to.resume = C.resume;
    to.save_every = C.save_every;
    to.early_stopping = C.early_stopping;
    to.patience = (int)C.patience;
    to.min_delta = C.min_delta;
    to.max_steps = C.o.max_steps;
    to.stop_after_steps = C.stop_after;
    to.dist = dist;
    to.global_batch = C.batch * ranks;
    if (pol) to.rank_state = cphil_tr_policy_rank_state; /* TBPTT: each rank's slots' carried state */
    char meta[1024];
    snprintf(meta, sizeof meta,
             "{\"trained_by\":\"cphil train\",\"prev_action\":%s,\"frame_delay\":%lld,\"train_files\":%d,"
             "\"train_frames\":%llu,\"val_files\":%d,\"seed\":%lld}",
             C.prev_action ? "true" : "false", C.frame_delay, ds.train_files, (unsigned long long)ds.train_frames,
             ds.val_files, C.o.seed);
    to.meta_json = meta;
    char title[256];
    snprintf(title, sizeof title, "cphil train %s (%s)", name, backbone_choices[C.backbone]);
    to.title = title;

    train_ui ui = {.quiet = C.quiet};
    cphil_tr_callbacks cb = {&ui, ui_step, ui_epoch, ui_note};
    cphil_train_interrupt = 0;
    signal(SIGINT, on_sigint);
    cphil_tr_result res;
    st = cphil_train_run(&to, mops, model, &cphil_tr_data_ops_impl, data, rank == 0 ? &cb : NULL, &res);
    signal(SIGINT, SIG_DFL);
    if (ui.bar_open) cphil_progress_end(&ui.bar);
    int rc = CLI_EXIT_OK;
    if (st) {
        if (ranks > 1) fprintf(stderr, "cphil train: rank %d of %d stopped:\n", rank, ranks);
        cli_error(NULL);
        rc = CLI_EXIT_FAIL;
    } else if (res.interrupted) {
        rc = 130;
    } else if (!C.quiet) {
        char p[1024];
        cphil_tr_path(&to, "policy", p, sizeof p);
        printf("done: %d epochs, %llu steps in %.1fs; best epoch %d (val loss %.4f)\n", res.epochs_done,
               (unsigned long long)res.steps, res.seconds, res.best_epoch, res.best_val_loss);
        printf("wrote %s", p);
        cphil_tr_path(&to, "best_policy", p, sizeof p);
        printf(", %s", p);
        cphil_tr_path(&to, "csv", p, sizeof p);
        printf(", %s", p);
        cphil_tr_path(&to, "svg", p, sizeof p);
        printf(", %s\n", p);
        printf("next: cphil eval --policy %s/%s_best_policy.safetensors %s %s\n", C.out, name,
               C.data ? "--data" : "--replays", C.data ? C.data : C.replays);
    }
    cphil_tr_result_free(&res);
    cphil_tr_policy_free(pol);
    cphil_gpu_policy_free(gpol);
    cphil_tr_data_close(data);
    return rc;
}

/* The ranks (docs/distributed.md): joined before anything else, so a build without MPI started
 * by mpirun refuses at once; a rank that fails ends the whole job (MPI_Abort) instead of leaving
 * the others waiting for it. */
int cmd_train(int argc, char **argv) {
    cphil_dist *dist = NULL;
    if (cphil_dist_open(0, &dist) != CPHIL_OK) {
        cli_error(NULL);
        return CLI_EXIT_FAIL;
    }
    int rc = train_main(argc, argv, dist);
    if (rc != CLI_EXIT_OK && rc != 130 && cphil_dist_size(dist) > 1) cphil_dist_abort(dist, rc);
    cphil_dist_close(dist);
    return rc;
}
