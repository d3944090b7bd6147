/* cmd_distill.c — `cphil distill --soft-labels soft.bin --hidden 64,64 --epochs 10 --alpha 0.7
 * --output distilled`: trains an MLP student on a teacher's soft labels (src/train/softlabels.h)
 * and the human inputs of the same frames, with the loss of src/train/distill_loss.h:
 *   alpha * T^2 * KL(teacher at T || student at T) + (1 - alpha) * hard loss,
 * through the same training loop as `cphil train` (checkpoints, --resume, best files, curves).
 * The student's policy file is like any other (agent, bench, quantize, export take it).
 * --output NAME writes NAME_policy.safetensors, NAME.ckpt, NAME_best_policy.safetensors, ...
 * (an extension on NAME is dropped). Under mpirun, N ranks share each step like cphil train
 * (docs/distributed.md). */
#include "cli/opts.h"
#include "gpu/gpu.h"
#include "train/policy_train.h"
#include "train/train_data.h"

#include <string.h>

typedef struct distill_cli {
    const char *soft, *data, *output, *resume;
    int hidden[8], n_hidden;
    long long batch, stop_after;
    double alpha, val_split;
    bool quiet;
    cli_optim o; /* the options shared with train (opts.h) */
} distill_cli;
static distill_cli X;

#define D OPT_D
static opt_def distill_defs[] = {
    {.name = "--soft-labels", .kind = OPT_STR, .target = &X.soft, .required = true, .metavar = "FILE",
     .help = "soft-label file (make one with cphil soft-labels)"},
    {.name = "--data", .kind = OPT_STR, .target = &X.data, .help = "the dataset cache (default: the one the file names)", .metavar = "PATH"},
    {.name = "--hidden", .kind = OPT_INTLIST, .target = X.hidden, .def = "64,64", .lo = 1, .hi = 65536, .list_n = &X.n_hidden, .help = "student MLP hidden sizes", .metavar = "H1,H2"},
    D("--alpha", OPT_DOUBLE, &X.alpha, "0.7", 0, 1, "weight of the teacher term (1: teacher only, 0: human inputs only)"),
    D("--output", OPT_STR, &X.output, "distilled", 0, 0, "output stem: OUTPUT_policy.safetensors, OUTPUT.ckpt, ..."),
    D("--batch-size", OPT_INT, &X.batch, "128", 1, 65536, "frames per step"),
    D("--val-split", OPT_DOUBLE, &X.val_split, "0.1", 0, 0.9, "accepted so ExPhil's distill command line runs; the split is the dataset's (by file)"),
    {.name = "--resume", .kind = OPT_STR, .target = &X.resume, .help = "continue from OUTPUT.ckpt", .metavar = "PATH"},
    D("--quiet", OPT_FLAG, &X.quiet, "off", 0, 0, "no progress and no report"),
    {.name = "--stop-after-steps", .kind = OPT_INT, .target = &X.stop_after, .def = "0", .hi = 4e18},
};
#undef D
static opt_def optim_defs[CLI_OPTIM_N];
static opts_spec spec = {
    .cmd = "distill",
    .usage = "--soft-labels soft.bin [--hidden 64,64] [--epochs 10] [--alpha 0.7] [--output distilled]",
    .about = "Trains a small MLP student from a teacher's soft labels (cphil soft-labels) and the human inputs:\n"
             "loss = alpha * T^2 * KL(teacher at T || student at T) + (1 - alpha) * (BCE + CE on the human inputs).",
    .groups = {{NULL, distill_defs, (int)CPHIL_ARRAY_LEN(distill_defs)},
               {"optimization (shared with cphil train)", optim_defs, CLI_OPTIM_N}},
};

static void on_epoch(void *user, const cphil_tr_epoch_report *r) {
    (void)user;
    printf("epoch %d/%d  step %llu  train loss %.4f", r->epoch, r->epochs, (unsigned long long)r->step, r->train_loss);
    if (r->has_val) printf("  val loss %.4f", r->val_loss);
    printf("  %.1fs  %.0f frames/s%s\n", r->seconds, r->frames_per_sec, r->best ? "  * best" : "");
    if (r->has_val) {
        printf("  val accuracy vs human:");
        for (int h = 0; h < CPHIL_TR_N_HEADS; h++) printf(" %s %.3f", cphil_head_names[h], r->val.acc[h]);
        printf("\n");
    }
    fflush(stdout);
}
static void on_note(void *user, const char *msg) {
    (void)user;
    fprintf(stderr, "%s\n", msg);
}

static int distill_main(int argc, char **argv, cphil_dist *dist) {
    cli_optim_defs(&X.o, optim_defs);
    int r = opts_parse(&spec, argc, argv);
    if (r) return opts_exit(r);
    /* ranks (docs/distributed.md): --batch-size per rank, rank 0 alone prints and writes */
    const int rank = cphil_dist_rank(dist), ranks = cphil_dist_size(dist);
    cli_set_threads(cli_worker_threads(X.o.threads, ranks, X.o.device));
    if (rank > 0) X.quiet = true;
    if (ranks > 1 && strncmp(X.o.device, "cuda", 4) == 0) {
        cli_error("distill: --device cuda with %d ranks: GPU ranks are for cphil train; distill on CPU ranks, or on "
                  "one GPU without mpirun",
                  ranks);
        return CLI_EXIT_USAGE;
    }
    cphil_softlabels sl;
    if (cphil_softlabels_read(X.soft, &sl) != CPHIL_OK) {
        cli_error(NULL);
        return CLI_EXIT_FAIL;
    }
    char ds_path[4096] = "";
    if (X.data) snprintf(ds_path, sizeof ds_path, "%s", X.data);
    else {
        const char *p = strstr(sl.meta, "\"dataset\":\"");
        if (p) {
            p += 11;
            size_t k = 0;
            while (p[k] && p[k] != '"' && k + 1 < sizeof ds_path) ds_path[k] = p[k], k++;
            ds_path[k] = '\0';
        }
    }
    int rc = CLI_EXIT_OK;
    cphil_tr_data *d = NULL;
    cphil_tr_policy *pol = NULL;
    cphil_gpu_policy *gpol = NULL;
    cphil_tr_result res;
    memset(&res, 0, sizeof res);
    if (!ds_path[0]) {
        cli_error("distill: %s names no dataset; pass --data PATH", X.soft);
        rc = CLI_EXIT_USAGE;
        goto out;
    }
    cphil_tr_data_opts o;
    memset(&o, 0, sizeof o);
    o.data = ds_path;
    o.prev_action = (sl.flags & 1) != 0;
    o.frame_delay = sl.frame_delay;
    o.quiet = X.quiet;
    o.rank = rank;
    o.ranks = ranks;
    if (cphil_tr_data_open(&o, &d) != CPHIL_OK || cphil_tr_data_attach_soft(d, &sl, X.soft, (int)X.batch) != CPHIL_OK) {
        cli_error(NULL);
        rc = CLI_EXIT_FAIL;
        goto out;
    }
    cphil_tr_data_summary ds;
    cphil_tr_data_get_summary(d, &ds);
    cphil_model_config mc;
    cphil_model_config_default(&mc, CPHIL_BACKBONE_MLP);
    mc.n_mlp = X.n_hidden;
    for (int i = 0; i < X.n_hidden; i++) mc.mlp_hidden[i] = X.hidden[i];
    mc.window = 1;
    mc.n_cont = ds.n_cont;
    mc.n_ids = ds.n_ids;
    mc.E = ds.E;
    mc.layout_hash = ds.layout_hash;
    mc.precision = X.o.precision == 0 ? CPHIL_PREC_BF16 : CPHIL_PREC_F32;
    cphil_tr_policy_opts po;
    cphil_tr_policy_opts_default(&po);
    po.seed = (uint64_t)X.o.seed;
    po.weight_decay = X.o.weight_decay;
    po.max_grad_norm = X.o.max_grad_norm;
    po.B = (int)X.batch;
    po.T = 1;
    po.distill_T = sl.temperature;
    po.distill_alpha = X.alpha;
    po.dist = ranks > 1 ? dist : NULL;
    size_t bucket_bytes = 0;
    if (ranks > 1 && cphil_dist_env_bucket_bytes(CPHIL_DIST_BUCKET_DEFAULT, &bucket_bytes) != CPHIL_OK) {
        cli_error(NULL);
        rc = CLI_EXIT_USAGE;
        goto out;
    }
    po.bucket_floats = bucket_bytes / sizeof(float);
    int gpu = -1;
    if (cphil_device_parse(X.o.device, &gpu) != CPHIL_OK) {
        cli_error(NULL);
        rc = CLI_EXIT_USAGE;
        goto out;
    }
    if (cphil_model_config_validate(&mc) != CPHIL_OK ||
        (gpu >= 0 ? cphil_gpu_policy_create(gpu, &mc, &po, &gpol) : cphil_tr_policy_create(&mc, &po, &pol)) != CPHIL_OK) {
        cli_error(NULL);
        rc = CLI_EXIT_FAIL;
        goto out;
    }
    cphil_model *student = gpol ? cphil_gpu_policy_model(gpol) : cphil_tr_policy_model(pol);
    /* OUTPUT -> dir + name stem */
    char dir[4096], name[1024];
    const char *slash = strrchr(X.output, '/');
    if (slash) {
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - X.output), X.output);
        snprintf(name, sizeof name, "%s", slash + 1);
    } else {
        snprintf(dir, sizeof dir, ".");
        snprintf(name, sizeof name, "%s", X.output);
    }
    char *dot = strrchr(name, '.');
    if (dot && dot != name) *dot = '\0';
    if (!X.quiet) {
        printf("cphil distill: student mlp ");
        for (int i = 0; i < mc.n_mlp; i++) printf("%s%d", i ? "," : "", mc.mlp_hidden[i]);
        printf(", %zu parameters; teacher %s at T = %g; alpha %g\n", student->n_weights, X.soft,
               (double)sl.temperature, X.alpha);
        printf("  loss = alpha * T^2 * KL(teacher || student at T) + (1 - alpha) * (BCE + CE on the human inputs)\n");
        printf("  data %s: %llu training frames, %llu held-out frames (the dataset's split by file)\n", ds_path,
               (unsigned long long)ds.train_frames, (unsigned long long)ds.val_frames);
        if (opts_was_set(&spec, "--val-split"))
            printf("  note: --val-split has no effect here: the split is the dataset's (set it in cphil dataset / "
                   "soft-labels)\n");
        if (ranks > 1)
            printf("  ranks: %d (MPI), batch %lld per rank = %lld frames per step; rank 0 writes the files\n", ranks,
                   X.batch, X.batch * ranks);
        fflush(stdout);
    }
    cphil_trainer_opts to;
    cphil_trainer_opts_default(&to);
    to.epochs = (int)X.o.epochs;
    to.lr = X.o.lr;
    to.schedule = X.o.schedule == 0 ? CPHIL_TR_SCHED_COSINE : CPHIL_TR_SCHED_CONSTANT;
    to.warmup_steps = X.o.warmup;
    to.seed = (uint64_t)X.o.seed;
    to.out_dir = dir;
    to.name = name;
    to.resume = X.resume;
    to.max_steps = X.o.max_steps;
    to.stop_after_steps = X.stop_after;
    to.dist = dist;
    to.global_batch = X.batch * ranks;
    char meta[1024];
    snprintf(meta, sizeof meta,
             "{\"trained_by\":\"cphil distill\",\"prev_action\":%s,\"frame_delay\":%u,\"alpha\":%g,\"temperature\":%g,"
             "\"seed\":%lld}",
             (sl.flags & 1) ? "true" : "false", sl.frame_delay, X.alpha, (double)sl.temperature, X.o.seed);
    to.meta_json = meta;
    to.title = "cphil distill";
    cphil_tr_callbacks cb = {NULL, NULL, X.quiet ? NULL : on_epoch, on_note};
    if (cphil_train_run(&to, gpol ? &cphil_gpu_policy_ops : &cphil_tr_policy_ops, gpol ? (void *)gpol : (void *)pol,
                        &cphil_tr_distill_ops, d, rank == 0 ? &cb : NULL, &res) != CPHIL_OK) {
        if (ranks > 1) fprintf(stderr, "cphil distill: rank %d of %d stopped:\n", rank, ranks);
        cli_error(NULL);
        rc = CLI_EXIT_FAIL;
    } else if (res.interrupted) {
        rc = 130;
    } else if (!X.quiet) {
        printf("done: %d epochs, %llu steps in %.1fs; wrote %s/%s_policy.safetensors and %s/%s_best_policy.safetensors\n",
               res.epochs_done, (unsigned long long)res.steps, res.seconds, dir, name, dir, name);
    }
out:
    cphil_tr_result_free(&res);
    cphil_tr_policy_free(pol);
    cphil_gpu_policy_free(gpol);
    cphil_tr_data_close(d);
    cphil_softlabels_close(&sl);
    return rc;
}

/* The ranks, joined before anything else (as cmd_train does): a rank that fails ends the job. */
int cmd_distill(int argc, char **argv) {
    cphil_dist *dist = NULL;
    if (cphil_dist_open(0, &dist) != CPHIL_OK) {
        cli_error(NULL);
        return CLI_EXIT_FAIL;
    }
    int rc = distill_main(argc, argv, dist);
    if (rc != CLI_EXIT_OK && rc != 130 && cphil_dist_size(dist) > 1) cphil_dist_abort(dist, rc);
    cphil_dist_close(dist);
    return rc;
}
