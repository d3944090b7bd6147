/* cmd_predict.c — `cphil predict`: a policy's window-mode logits on given dense inputs, written
 * as .npz under the ONNX output names, so any runtime can be checked against cphil. */
#include "cli/cli.h"
#include "export/export_calib.h"
#include "export/npy.h"
#include "export/policy_io.h"
#include "export/predict.h"
#include "cli/predict_engine.h"

#include <stdlib.h>
#include <string.h>

static void predict_usage(FILE *f) {
    fprintf(f,
            "usage: cphil predict --policy P (--input X.npy | --replay R --port N --frames A:B)\n"
            "                     --output out.npz [--int8 dynamic|static [--calibration DATA]] [--engine]\n"
            "                     [--quiet]\n"
            "Runs policy P (a .safetensors policy file or random:BACKBONE[:key=value,...]) in window\n"
            "mode, f32, on the dense inputs X [N, W, E] (any floats: the input layer does the dense\n"
            "product), and writes out.npz with state_sequence [N, W, E] (the inputs used) and the\n"
            "last frame's logits buttons [N, 8], main_x main_y c_x c_y [N, 17], shoulder [N, 5]:\n"
            "the names and shapes of the ONNX export's outputs (cphil export --format onnx).\n"
            "X may be float32, float64 or float16; W must be the policy's window (any W for mlp).\n"
            "--replay R --port N --frames A:B: instead, the windows of replay R (.slp) for port N\n"
            "(1-4) that end at frame numbers A to B (the replay's numbering, -123 first), embedded\n"
            "as the agent does and left-padded with the first frame (window mode).\n"
            "--int8 dynamic: run cphil's int8 engine instead (int8 weights per output channel,\n"
            "activations quantized per call); --int8 static --calibration DATA: with activation\n"
            "scales calibrated on DATA (a .npy [N, W, E], a .slp or a folder of them), the same\n"
            "calibration `cphil export --int8 static` uses.\n"
            "P may be a file `cphil quantize` wrote: bf16 weights run as their f32 values; an int8 file\n"
            "runs on cphil's int8 engine with its own weights and activation mode (dynamic, or static\n"
            "with its stored scales), so --int8 and --calibration are not needed. That int8 run is a\n"
            "dense twin of the engine (the input layer a dense product, all windows in one pass).\n"
            "--engine (with --replay R --port N --frames A:B, A >= -39): run the engine the agent runs\n"
            "instead: P goes through cphil_agent_step frame by frame (window mode, the file's precision:\n"
            "int8 files with their id gather table and activation scales); state_sequence holds the\n"
            "windows the agent decided on, densified (left-padded with frame -39, where it starts).\n");
}

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
    const char *policy = NULL, *input = NULL, *output = NULL, *replay = NULL, *frames = NULL, *int8 = NULL, *calib = NULL;
    long long port = 0;
    bool quiet = false, engine = false;
    static const char *const valid[] = {"--policy", "--input", "--output", "--replay", "--port", "--frames", "--int8", "--calibration",
                                        "--engine", "--quiet", "--help", NULL};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        const char **dst = NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            predict_usage(stdout);
            return CLI_EXIT_OK;
        } else if (!strcmp(a, "--quiet")) {
            quiet = true;
            continue;
        } else if (!strcmp(a, "--engine")) {
            engine = true;
            continue;
        } else if (!strcmp(a, "--policy")) dst = &policy;
        else if (!strcmp(a, "--input")) dst = &input;
        else if (!strcmp(a, "--output") || !strcmp(a, "-o")) dst = &output;
        else if (!strcmp(a, "--replay")) dst = &replay;
        else if (!strcmp(a, "--frames")) dst = &frames;
        else if (!strcmp(a, "--int8")) dst = &int8;
        else if (!strcmp(a, "--calibration")) dst = &calib;
        else if (!strcmp(a, "--port")) {
            if (!cli_parse_int(a, v, 1, 4, &port)) return CLI_EXIT_USAGE;
            i++;
            continue;
        } else {
            cli_unknown_option("predict", a, valid);
            return CLI_EXIT_USAGE;
        }
        if (!v) {
            cli_error("predict: %s needs a value", a);
            return CLI_EXIT_USAGE;
        }
        *dst = v;
        i++;
    }
    if (!cli_require("predict", "--policy", policy != NULL, "--output", output != NULL, "--input X.npy or --replay R",
                     input || replay, (char *)NULL))
        return CLI_EXIT_USAGE;
    if (input && replay) {
        cli_error("predict: give one of --input and --replay, not both");
        return CLI_EXIT_USAGE;
    }
    if (!cli_check_output("predict", "--output", output, false)) return CLI_EXIT_USAGE;
    if (int8 && strcmp(int8, "dynamic") && strcmp(int8, "static")) {
        cli_error("predict: --int8 '%s': use dynamic or static", int8);
        return CLI_EXIT_USAGE;
    }
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
        const char *mode = file_static ? "static" : "dynamic";
        if (calib || (int8 && strcmp(int8, mode)))
            s = cphil_err(CPHIL_E_ARG, "predict: %s holds int8 %s weights (written by cphil quantize) and runs as they are: "
                          "drop %s", policy, mode, calib ? "--calibration" : "--int8");
        int8 = mode;
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
