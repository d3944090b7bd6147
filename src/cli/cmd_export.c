/* cmd_export.c — `cphil export`: a policy to .npz (NumPy), ONNX (f32 / int8) or safetensors.
 * The graphs are built in src/export/export.c from the model's tensor table; docs/export.md. */
#include "cli/opts.h"
#include "export/export.h"
#include "export/export_calib.h"
#include "export/policy_io.h"

#include <string.h>

static const char *const formats[] = {"npz", "onnx", "safetensors", NULL};
static const char *const int8_modes[] = {"dynamic", "static", NULL};
enum { FMT_NPZ, FMT_ONNX, FMT_SAFETENSORS };

static struct export_cli {
    const char *policy, *output, *calib;
    int format, int8; /* int8: -1 none, 0 dynamic, 1 static */
    bool quiet;
} X;

static opt_def export_defs[] = {
    {.name = "--policy", .kind = OPT_STR, .target = &X.policy, .required = true, .metavar = "P",
     .help = "a .safetensors policy file, or random:BACKBONE[:key=value,...]"},
    {.name = "--format", .kind = OPT_ENUM, .target = &X.format, .choices = formats, .required = true,
     .help = "the file to write (below)"},
    {.name = "--output", .alias = "-o", .kind = OPT_STR, .target = &X.output, .required = true, .metavar = "F",
     .help = "output file"},
    {.name = "--int8", .kind = OPT_ENUM, .target = &X.int8, .choices = int8_modes,
     .help = "(onnx) int8 weights; dynamic: activations quantized per call (DynamicQuantizeLinear + "
             "MatMulInteger); static: QDQ with activation scales calibrated on --calibration"},
    {.name = "--calibration", .kind = OPT_STR, .target = &X.calib, .metavar = "DATA",
     .help = "(--int8 static) a .npy of dense inputs [N, W, E] (float), or a replay folder or .slp file "
             "(its windows, both ports, at most 4096 windows)"},
    OPT_D("--quiet", OPT_FLAG, &X.quiet, NULL, 0, 0, "print nothing on success"),
};

static opts_spec spec = {
    .cmd = "export",
    .usage = "--policy P --format npz|onnx|safetensors --output F [--int8 dynamic|static [--calibration DATA]]",
    .about = "Writes policy P as:\n"
             "  npz          every tensor (f32) under its PyTorch name + 'config' (JSON string)\n"
             "  onnx         opset 17; input state_sequence float [batch, W, E] (dense embedding),\n"
             "               outputs buttons [batch,8], main_x main_y c_x c_y [batch,17],\n"
             "               shoulder [batch,5]: logits of the last frame (docs/export.md)\n"
             "  safetensors  the policy file itself (f32), e.g. to save a random: policy",
    .notes = "P may be a file `cphil quantize` wrote: bf16 weights export as their f32 values; an int8\n"
             "file exports to onnx only, as an int8 graph with its own weights and activation mode\n"
             "(dynamic, or static with its stored scales; a matrix without one is quantized per call,\n"
             "as cphil's engine does), so --int8 and --calibration are not needed.",
    .groups = {{NULL, export_defs, (int)CPHIL_ARRAY_LEN(export_defs)}},
};

int cmd_export(int argc, char **argv) {
    int r = opts_parse(&spec, argc, argv);
    if (r) return opts_exit(r);
    const char *policy = X.policy, *output = X.output, *calib = X.calib;
    const char *format = formats[X.format], *int8 = X.int8 >= 0 ? int8_modes[X.int8] : NULL;
    bool quiet = X.quiet;
    if (!cli_check_output("export", "--output", output, false)) return CLI_EXIT_USAGE;
    bool is_onnx = X.format == FMT_ONNX;
    cphil_export_opts o = {CPHIL_EXPORT_F32, NULL, NULL, false};
    if (int8) {
        if (!is_onnx) {
            cli_error("export: --int8 applies to --format onnx only (the .npz and safetensors files hold f32 weights)");
            return CLI_EXIT_USAGE;
        }
        o.quant = X.int8 == 1 ? CPHIL_EXPORT_INT8_STATIC : CPHIL_EXPORT_INT8_DYNAMIC;
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
        bool file_static = pq.weights == CPHIL_POLICY_W_INT8_STATIC;
        cphil_export_quant fq = file_static ? CPHIL_EXPORT_INT8_STATIC : CPHIL_EXPORT_INT8_DYNAMIC;
        if (!cli_int8_file_ok("export", policy, file_static, int8, calib != NULL, !is_onnx)) {
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
    } else if (X.format == FMT_NPZ) {
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
