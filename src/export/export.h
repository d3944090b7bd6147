/* export.h — policies out to other runtimes: .npz (NumPy) and ONNX (f32, int8 dynamic, int8
 * static QDQ), built from the model's tensor table (src/model/model.h).
 *
 * ONNX graph contract (opset 17, IR 8): input `state_sequence` float [batch, W, E] (batch is
 * symbolic; for the MLP the window is symbolic too and only the last frame is used), the dense
 * embedding of docs/interfaces.md; outputs `buttons` [batch, 8], `main_x` `main_y` `c_x` `c_y`
 * [batch, 17], `shoulder` [batch, 5]: logits of the last frame, as cphil's window mode computes
 * them. LSTM/GRU use the ONNX LSTM/GRU operators (gate order converted from PyTorch's i f g o /
 * r z n to ONNX's i o f c / z r h, GRU with linear_before_reset=1); Mamba's selective scan is
 * unrolled over the window; attention uses LayerNormalization, RoPE (rotate-half) and a causal
 * additive mask. docs/export.md has the details and the quantization scheme.
 *
 * int8 (every Linear; LSTM/GRU weights too; conv, norms, scan, softmax stay f32):
 *  dynamic: weights int8 symmetric per output channel; activations quantized per call with
 *           DynamicQuantizeLinear -> MatMulInteger -> Cast -> Mul(scale) (the pattern ONNX
 *           Runtime fuses into DynamicQuantizeMatMul). LSTM/GRU weights are stored int8 and
 *           dequantized (DequantizeLinear), the recurrence runs in f32.
 *  static:  QDQ: activations QuantizeLinear/DequantizeLinear with a calibrated per-tensor int8
 *           scale (amax / 127, zero point 0), weights int8 per output channel + DequantizeLinear
 *           (with missing_dynamic, a Linear without a calibrated range takes the dynamic form).
 * Deliberately not: training graphs, external data (> 2 GB), other opsets.
 */
#ifndef CPHIL_EXPORT_H
#define CPHIL_EXPORT_H

#include "core/core.h"
#include "model/model.h"

typedef enum cphil_export_quant {
    CPHIL_EXPORT_F32 = 0,
    CPHIL_EXPORT_INT8_DYNAMIC,
    CPHIL_EXPORT_INT8_STATIC
} cphil_export_quant;

/* RMSNorm / LayerNorm epsilon of cphil's models (the graph bakes it in). */
#define CPHIL_EXPORT_NORM_EPS 1e-5f

/* For static int8: the calibrated max |input| of the Linear whose weight is `weight_name`
 * (e.g. "input_proj.weight", "lstm.weight_ih_l0" for the LSTM input side). Return false when
 * unknown (the exporter then fails with a message naming the tensor). */
typedef bool (*cphil_export_amax_fn)(void *ctx, const char *weight_name, float *amax);

typedef struct cphil_export_opts {
    cphil_export_quant quant;
    cphil_export_amax_fn amax;  /* static only */
    void *amax_ctx;
    bool missing_dynamic;       /* static: a Linear amax does not know is quantized per call
                                 * (DynamicQuantizeLinear) instead of failing: the engine's rule
                                 * for an int8 file without a scale for that matrix */
} cphil_export_opts;

/* Write m as an ONNX model to path (atomic). Errors: CPHIL_E_ARG (bad options, missing
 * calibration), CPHIL_E_MISMATCH (a tensor the graph needs is not in the table), CPHIL_E_IO,
 * CPHIL_E_NOMEM. n_nodes (may be NULL) receives the node count. */
cphil_status cphil_export_onnx(const cphil_model *m, const cphil_export_opts *opts, const char *path,
                               int *n_nodes);

/* Write every tensor of the table as f32 under its PyTorch name plus `config` (the model config
 * JSON as a string, as np.savez(config=...) stores it) to an .npz (stored zip, atomic). */
cphil_status cphil_export_npz(const cphil_model *m, const char *path);

/* Names of the Linears (by weight name) whose inputs static int8 needs calibrated, in graph
 * order; returns the count, fills names[0..cap) with pointers into m's table (or static
 * strings). */
int cphil_export_quant_points(const cphil_model *m, const char **names, int cap);

#endif /* CPHIL_EXPORT_H */
