/* cmd_predict.c — `cphil predict`: a policy's window-mode logits on given dense inputs, written
 * as .npz under the ONNX output names, so any runtime can be checked against cphil. */
#include "cli/opts.h"
#include "export/export_calib.h"
#include "export/npy.h"
#include "export/policy_io.h"
#include "export/predict.h"
#include "cli/predict_engine.h"

#include <stdlib.h>
#include <string.h>

static const char *const int8_modes[] = {"dynamic", "static", NULL};

static struct predict_cli {
    const char *policy, *input, *output, *replay, *frames, *calib;
    long long port;
    int int8; /* -1 none, 0 dynamic, 1 static */
    bool quiet, engine;
} args;

static opt_def predict_defs[] = {
    {.name = "--policy", .kind = OPT_STR, .target = &args.policy, .required = true, .metavar = "P",
     .help = "a .safetensors policy file, or random:BACKBONE[:key=value,...]"},
    {.name = "--input", .kind = OPT_STR, .target = &args.input, .metavar = "X.npy",
     .help = "dense inputs [N, W, E] (float32, float64 or float16; W the policy's window, any W for mlp)"},
    {.name = "--replay", .kind = OPT_STR, .target = &args.replay, .metavar = "R",
     .help = "instead of --input: the windows of replay R (.slp) for --port that end at --frames"},
    OPT_D("--port", OPT_INT, &args.port, NULL, 1, 4, "(--replay) the player, 1-4"),
    {.name = "--frames", .kind = OPT_STR, .target = &args.frames, .metavar = "A:B",
     .help = "(--replay) the windows ending at frame numbers A to B (the replay's numbering, -123 first)"},
    {.name = "--output", .alias = "-o", .kind = OPT_STR, .target = &args.output, .required = true, .metavar = "out.npz",
     .help = "the .npz to write"},
    {.name = "--int8", .kind = OPT_ENUM, .target = &args.int8, .choices = int8_modes,
     .help = "run cphil's int8 engine (int8 weights per output channel); dynamic: activations quantized per "
             "call; static: scales calibrated on --calibration"},
    {.name = "--calibration", .kind = OPT_STR, .target = &args.calib, .metavar = "DATA",
     .help = "(--int8 static) a .npy [N, W, E], a .slp or a folder of them (as cphil export --int8 static)"},
    OPT_D("--engine", OPT_FLAG, &args.engine, NULL, 0, 0,
          "(--replay, A >= -39) run the agent's engine: cphil_agent_step frame by frame (below)"),
    OPT_D("--quiet", OPT_FLAG, &args.quiet, NULL, 0, 0, "print nothing on success"),
};

static opts_spec spec = {
    .cmd = "predict",
    .usage = "--policy P (--input X.npy | --replay R --port N --frames A:B) --output out.npz\n"
             "                     [--int8 dynamic|static [--calibration DATA]] [--engine] [--quiet]",
    .about = "Runs policy P in window mode, f32, on the dense inputs X [N, W, E] (any floats: the input layer\n"
             "does the dense product), and writes out.npz with state_sequence [N, W, E] (the inputs used) and the\n"
             "last frame's logits buttons [N, 8], main_x main_y c_x c_y [N, 17], shoulder [N, 5]: the names and\n"
             "shapes of the ONNX export's outputs (cphil export --format onnx). With --replay, the windows are\n"
             "embedded as the agent does and left-padded with the first frame (window mode).",
    .notes = "P may be a file `cphil quantize` wrote: bf16 weights run as their f32 values; an int8 file\n"
             "runs on cphil's int8 engine with its own weights and activation mode (dynamic, or static\n"
             "with its stored scales), so --int8 and --calibration are not needed. That int8 run is a\n"
             "dense twin of the engine (the input layer a dense product, all windows in one pass).\n"
             "--engine: P goes through cphil_agent_step frame by frame (window mode, the file's precision:\n"
             "int8 files with their id gather table and activation scales); state_sequence holds the\n"
             "windows the agent decided on, densified (left-padded with frame -39, where it starts).",
    .groups = {{NULL, predict_defs, (int)CPHIL_ARRAY_LEN(predict_defs)}},
};

/* Write the inputs and the logits under the ONNX names. */
static cphil_status write_npz(const char *output, const float *X, int N, int W, int E, const float *logits) {
    cphil_npz_writer *z = NULL;
    cphil_status s = cphil_npz_writer_open(output, &z);
    if (!s) s = cphil_npz_writer_add(z, "state_sequence", CPHIL_DT_F32, 3, (int64_t[]){N, W, E}, X);
    for (int h = 0; h < CPHIL_N_HEADS && !s; h++) {
        int C = cphil_head_classes[h], off = cphil_head_offset[h];
        float *col = cphil_alloc((size_t)N * C * sizeof(float));
        if (!col) {
            s = cphil_err(CPHIL_E_NOMEM, "predict: out of memory");
            break;
        }
        for (int n = 0; n < N; n++) memcpy(col + (size_t)n * C, logits + (size_t)n * CPHIL_N_LOGITS + off, (size_t)C * sizeof(float));
        s = cphil_npz_writer_add(z, cphil_head_names[h], CPHIL_DT_F32, 2, (int64_t[]){N, C}, col);
        cphil_free(col);
    }
    if (z) {
        if (s) cphil_npz_writer_abort(z);
        else s = cphil_npz_writer_close(z);
    }
    return s;
}

static int predict_engine(const char *policy, const char *replay, int port, int32_t fa, int32_t fb, const char *output,
                          bool quiet) {
    cli_engine_out e;
    double t0 = cphil_now_sec();
    cphil_status s = cli_predict_engine(policy, replay, port, fa, fb, &e);
    double dt = cphil_now_sec() - t0;
    if (!s) s = write_npz(output, e.X, e.N, e.W, e.E, e.logits);
    if (s) cli_error(NULL);
    else if (!quiet)
        printf("wrote %s: %d decisions of the agent's engine (%s, %s, %s activations, window %d, E %d) in %.3f s\n", output,
               e.N, e.cfg.backbone, e.cfg.precision, e.cfg.activations, e.W, e.E, dt);
    cli_engine_out_free(&e);
    return s ? CLI_EXIT_FAIL : CLI_EXIT_OK;
}

int cmd_predict(int argc, char **argv) {
    int r = opts_parse(&spec, argc, argv);
    if (r) return opts_exit(r);
    const char *policy = args.policy, *input = args.input, *output = args.output, *replay = args.replay, *frames = args.frames,
               *calib = args.calib, *int8 = args.int8 >= 0 ? int8_modes[args.int8] : NULL;
    long long port = args.port;
    bool quiet = args.quiet, engine = args.engine;
    if (!cli_require("predict", "--input X.npy or --replay R", input || replay, (char *)NULL)) return CLI_EXIT_USAGE;
    if (input && replay) {
        cli_error("predict: give one of --input and --replay, not both");
        return CLI_EXIT_USAGE;
    }
    if (!cli_check_output("predict", "--output", output, false)) return CLI_EXIT_USAGE;
    if ((int8 && !strcmp(int8, "static")) != (calib != NULL)) {
        cli_error("predict: --int8 static needs --calibration DATA (and --calibration goes with --int8 static)");
        return CLI_EXIT_USAGE;
    }
    int32_t fa = 0, fb = 0;
    if (replay) {
        char *end = NULL;
        long a0 = frames ? strtol(frames, &end, 10) : 0;
        long b0 = (end && *end == ':') ? strtol(end + 1, &end, 10) : 0;
        if (!frames || !port || !end || *end || a0 > b0 || a0 < -123 || b0 > (1L << 30)) {
            cli_error("predict: --replay needs --port N (1-4) and --frames A:B (frame numbers, A <= B)");
            return CLI_EXIT_USAGE;
        }
        fa = (int32_t)a0;
        fb = (int32_t)b0;
    } else if (frames || port) {
        cli_error("predict: --port and --frames go with --replay");
        return CLI_EXIT_USAGE;
    }
    if (engine && (!replay || int8 || calib)) {
        cli_error("predict: --engine runs the agent on a replay (--replay R --port N --frames A:B) with the file's own "
                  "precision: %s", !replay ? "give --replay" : "drop --int8 and --calibration");
        return CLI_EXIT_USAGE;
    }
    if (engine) return predict_engine(policy, replay, (int)port, fa, fb, output, quiet);
    cphil_npy_array x;
    memset(&x, 0, sizeof x);
    cphil_model m;
    memset(&m, 0, sizeof m);
    cphil_policy_quant pq;
    memset(&pq, 0, sizeof pq);
    float *X = NULL, *logits = NULL;
    int N = 0, W = 0, E = 0;
    cphil_status s = CPHIL_OK;
    if (replay) {
        s = cphil_export_load_policy_quant(policy, &m, &pq);
        if (!s) s = cphil_predict_replay_windows(&m, replay, (int)port, fa, fb, 0, &X, &N, &W);
        E = m.cfg.E;
    } else {
        s = cphil_npy_read(input, &x);
    }
    if (!s && !replay) {
        if (x.ndim != 3 || x.shape[0] < 1 || x.shape[1] < 1 || x.shape[2] < 1 || x.shape[0] > (1 << 24) ||
            x.shape[1] > 100000 || x.shape[2] > (1 << 20)) {
            s = cphil_err(CPHIL_E_ARG, "%s: expected a [N, W, E] array (N, W, E >= 1), got rank %d", input, x.ndim);
        } else {
            N = (int)x.shape[0];
            W = (int)x.shape[1];
            E = (int)x.shape[2];
            /* f32 inputs are used in place: x.data is the .npy's private map (no 2nd copy) */
            X = x.dtype == CPHIL_DT_F32 ? (float *)x.data : cphil_alloc(x.numel * sizeof(float));
            if (!X) s = cphil_err(CPHIL_E_NOMEM, "predict: out of memory");
        }
    }
    if (!s && !replay) {
        if (x.dtype == CPHIL_DT_F32) (void)0;
        else if (x.dtype == CPHIL_DT_F64) for (size_t i = 0; i < x.numel; i++) X[i] = (float)((const double *)x.data)[i];
        else if (x.dtype == CPHIL_DT_F16) for (size_t i = 0; i < x.numel; i++) X[i] = cphil_f16_to_f32(((const uint16_t *)x.data)[i]);
        else s = cphil_err(CPHIL_E_ARG, "%s: inputs must be float (f4, f8 or f2), not %s", input, cphil_dtype_name(x.dtype));
    }
    if (!s && !replay)
        for (size_t i = 0; i < x.numel && !s; i++)
            if (!(X[i] == X[i]) || X[i] - X[i] != 0)
                s = cphil_err(CPHIL_E_NUMERIC, "%s: element %zu is not finite", input, i);
    if (!s && !replay) s = cphil_export_load_policy_quant(policy, &m, &pq);
    bool file_static = pq.weights == CPHIL_POLICY_W_INT8_STATIC;
    if (!s && (file_static || pq.weights == CPHIL_POLICY_W_INT8_DYNAMIC)) {
        /* an int8 file runs as it is: its weights, its activation mode and scales */
        if (!cli_int8_file_ok("predict", policy, file_static, int8, calib != NULL, false)) {
            if (X != (float *)x.data) cphil_free(X);
            cphil_npy_array_free(&x);
            cphil_model_free(&m);
            cphil_policy_quant_free(&pq);
            return CLI_EXIT_USAGE;
        }
        int8 = file_static ? "static" : "dynamic";
    }
    if (!s) {
        logits = cphil_alloc((size_t)N * CPHIL_N_LOGITS * sizeof(float));
        if (!logits) s = cphil_err(CPHIL_E_NOMEM, "predict: out of memory");
    }
    double t0 = cphil_now_sec(); /* reset below for the int8 engine (after calibration) */
    if (!s && !int8) s = cphil_predict_dense(&m, X, N, W, E, logits);
    if (!s && int8) {
        if (E != m.cfg.E || W < 1 || (m.cfg.backbone != CPHIL_BACKBONE_MLP && W != m.cfg.window))
            s = cphil_err(CPHIL_E_ARG, "predict: inputs [%d, %d, %d] do not fit the policy (window %d, E %d)", N, W, E,
                          m.cfg.window, m.cfg.E);
        cphil_dense_engine *eng = NULL;
        cphil_export_calib *cal = NULL;
        if (!s && calib) s = cphil_export_calib_run(&m, calib, &cal);
        if (!s) s = cphil_dense_engine_open(&m, true, &eng);
        if (!s && cal) s = cphil_dense_engine_set_static(eng, cal);
        if (!s && file_static) s = cphil_dense_engine_set_static_fn(eng, cphil_policy_quant_amax, &pq);
        t0 = cphil_now_sec();
        if (!s) s = cphil_dense_engine_run(eng, X, N, W, logits, NULL);
        cphil_dense_engine_close(eng);
        cphil_export_calib_free(cal);
    }
    double dt = cphil_now_sec() - t0;
    if (!s) s = write_npz(output, X, N, W, E, logits);
    if (s) cli_error(NULL);
    else if (!quiet)
        printf("wrote %s: %d windows of %d frames x %d (%s policy, window mode, %s) in %.3f s\n", output, N, W, E,
               cphil_backbone_name(m.cfg.backbone), !int8 ? "f32" : !strcmp(int8, "static") ? "cphil int8 engine, static" : "cphil int8 engine, dynamic", dt);
    cphil_free(logits);
    if (X != (float *)x.data) cphil_free(X);
    cphil_npy_array_free(&x);
    cphil_model_free(&m);
    cphil_policy_quant_free(&pq);
    return s ? CLI_EXIT_FAIL : CLI_EXIT_OK;
}
