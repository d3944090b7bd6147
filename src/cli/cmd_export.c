/* cmd_export.c — `cphil export`: a policy to .npz (NumPy), ONNX (f32 / int8) or safetensors.
 * The graphs are built in src/export/export.c from the model's tensor table; docs/export.md. */
#include "cli/cli.h"
#include "export/export.h"
#include "export/export_calib.h"
#include "export/policy_io.h"

#include <string.h>

static void export_usage(FILE *f) {
    fprintf(f,
            "usage: cphil export --policy P --format npz|onnx|safetensors --output F\n"
            "                    [--int8 dynamic|static [--calibration DATA]] [--quiet]\n"
            "Writes policy P (a .safetensors policy file, or random:BACKBONE[:key=value,...]) as:\n"
            "  npz          every tensor (f32) under its PyTorch name + 'config' (JSON string)\n"
            "  onnx         opset 17; input state_sequence float [batch, W, E] (dense embedding),\n"
            "               outputs buttons [batch,8], main_x main_y c_x c_y [batch,17],\n"
            "               shoulder [batch,5]: logits of the last frame (docs/export.md)\n"
            "  safetensors  the policy file itself (f32), e.g. to save a random: policy\n"
            "  --int8 dynamic   (onnx) int8 weights, activations quantized per call\n"
            "                   (DynamicQuantizeLinear + MatMulInteger)\n"
            "  --int8 static    (onnx) QDQ with activation scales calibrated on DATA:\n"
            "  --calibration DATA   a .npy of dense inputs [N, W, E] (float), or a replay folder\n"
            "                   or .slp file (its windows, both ports, at most 4096 windows)\n"
            "  --quiet          print nothing on success\n"
            "P may be a file `cphil quantize` wrote: bf16 weights export as their f32 values; an int8\n"
            "file exports to onnx only, as an int8 graph with its own weights and activation mode\n"
            "(dynamic, or static with its stored scales; a matrix without one is quantized per call,\n"
            "as cphil's engine does), so --int8 and --calibration are not needed.\n");
}

int cmd_export(int argc, char **argv) {
    const char *policy = NULL, *format = NULL, *output = NULL, *int8 = NULL, *calib = NULL;
    bool quiet = false;
    static const char *const valid[] = {"--policy", "--format", "--output", "--int8", "--calibration",
                                        "--quiet", "--help", NULL};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        const char **dst = NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            export_usage(stdout);
            return CLI_EXIT_OK;
        } else if (!strcmp(a, "--quiet")) {
            quiet = true;
            continue;
        } else if (!strcmp(a, "--policy")) dst = &policy;
        else if (!strcmp(a, "--format")) dst = &format;
        else if (!strcmp(a, "--output") || !strcmp(a, "-o")) dst = &output;
        else if (!strcmp(a, "--int8")) dst = &int8;
        else if (!strcmp(a, "--calibration")) dst = &calib;
        else {
            cli_unknown_option("export", a, valid);
            return CLI_EXIT_USAGE;
        }
        if (!v) {
            cli_error("export: %s needs a value", a);
            return CLI_EXIT_USAGE;
        }
        *dst = v;
        i++;
    }
    if (!cli_require("export", "--policy", policy != NULL, "--format", format != NULL, "--output", output != NULL,
                     (char *)NULL) ||
        !cli_check_output("export", "--output", output, false))
        return CLI_EXIT_USAGE;
    static const char *const formats[] = {"npz", "onnx", "safetensors", NULL};
    bool is_onnx = !strcmp(format, "onnx");
    if (!is_onnx && strcmp(format, "npz") && strcmp(format, "safetensors")) {
        const char *near = cli_nearest(format, formats);
        cli_error("export: unknown format '%s'%s%s%s (npz, onnx or safetensors)", format, near ? " (did you mean '" : "",
                  near ? near : "", near ? "'?)" : "");
        return CLI_EXIT_USAGE;
    }
    cphil_export_opts o = {CPHIL_EXPORT_F32, NULL, NULL, false};
    if (int8) {
        if (!is_onnx) {
            cli_error("export: --int8 applies to --format onnx only (the .npz and safetensors files hold f32 weights)");
            return CLI_EXIT_USAGE;
        }
        if (!strcmp(int8, "dynamic")) o.quant = CPHIL_EXPORT_INT8_DYNAMIC;
        else if (!strcmp(int8, "static")) o.quant = CPHIL_EXPORT_INT8_STATIC;
        else {
            cli_error("export: --int8 '%s': use dynamic or static", int8);
            return CLI_EXIT_USAGE;
        }
    }
    if (calib && o.quant != CPHIL_EXPORT_INT8_STATIC) {
        cli_error("export: --calibration is only used with --int8 static");
        return CLI_EXIT_USAGE;
    }
    cphil_model m;
    cphil_policy_quant pq;
    cphil_status s = cphil_export_load_policy_quant(policy, &m, &pq);
    if (s) {
        cli_error(NULL);
        return CLI_EXIT_FAIL;
    }
    bool file_int8 = pq.weights == CPHIL_POLICY_W_INT8_DYNAMIC || pq.weights == CPHIL_POLICY_W_INT8_STATIC;
    if (file_int8) {
        /* the file's own quantization: its weights, its activation mode and scales */
        cphil_export_quant fq = pq.weights == CPHIL_POLICY_W_INT8_STATIC ? CPHIL_EXPORT_INT8_STATIC : CPHIL_EXPORT_INT8_DYNAMIC;
        const char *why = !is_onnx ? "the .npz and safetensors exports hold f32 weights: export the f32 policy it was "
                                     "quantized from, or use --format onnx"
                          : calib ? "its activation scales are in the file: drop --calibration"
                          : int8 && o.quant != fq ? "its weights and activation mode are used as they are: drop --int8"
                                                  : NULL;
        if (why) {
            cli_error("export: %s holds %s weights (written by cphil quantize); %s", policy,
                      cphil_policy_weights_name(pq.weights), why);
            cphil_model_free(&m);
            cphil_policy_quant_free(&pq);
            return CLI_EXIT_USAGE;
        }
        o.quant = fq;
        if (fq == CPHIL_EXPORT_INT8_STATIC) {
            o.amax = cphil_policy_quant_amax;
            o.amax_ctx = &pq;
            o.missing_dynamic = true;
        }
    }
    if (o.quant == CPHIL_EXPORT_INT8_STATIC && !calib && !file_int8) {
        cli_error("export: --int8 static needs --calibration DATA (a .npy of inputs [N, W, E] or replays)");
        cphil_model_free(&m);
        cphil_policy_quant_free(&pq);
        return CLI_EXIT_USAGE;
    }
    double t0 = cphil_now_sec();
    int nodes = 0;
    cphil_export_calib *cal = NULL;
    if (o.quant == CPHIL_EXPORT_INT8_STATIC && !file_int8) {
        s = cphil_export_calib_run(&m, calib, &cal);
        o.amax = cphil_export_calib_amax;
        o.amax_ctx = cal;
    }
    if (s) {
    } else if (is_onnx) {
        s = cphil_export_onnx(&m, &o, output, &nodes);
    } else if (!strcmp(format, "npz")) {
        s = cphil_export_npz(&m, output);
    } else {
        s = cphil_policy_save(&m, output);
    }
    if (s) {
        cli_error(NULL);
    } else if (!quiet) {
        if (file_int8)
            printf("wrote %s (%s, the file's %s weights, %s, %d tensors, %zu parameters", output, format,
                   cphil_policy_weights_name(pq.weights), cphil_backbone_name(m.cfg.backbone), m.n_tensors, m.n_weights);
        else
            printf("wrote %s (%s%s%s, %s, %d tensors, %zu parameters", output, format, int8 ? " int8 " : "",
                   int8 ? int8 : "", cphil_backbone_name(m.cfg.backbone), m.n_tensors, m.n_weights);
        if (is_onnx) printf(", %d nodes", nodes);
        if (cal) printf(", calibrated on %ld windows", cphil_export_calib_windows(cal));
        printf(") in %.2f s\n", cphil_now_sec() - t0);
    }
    cphil_export_calib_free(cal);
    cphil_model_free(&m);
    cphil_policy_quant_free(&pq);
    return s ? CLI_EXIT_FAIL : CLI_EXIT_OK;
}
