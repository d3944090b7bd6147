/* export_calib.h — int8 support of the export path, on cphil's inference engine (src/infer):
 *  - calibration for static int8 ONNX export: the max |input| of every quantized Linear,
 *    measured by running the policy in window mode over calibration data (a .npy of dense
 *    inputs [N, W, E], a .slp replay or a folder of replays: windows of every player, ends
 *    spread over the game, at most 4096 windows), keyed by the Linear's weight name
 *    (cphil_export_amax_fn);
 *  - a "dense engine": the engine in window mode on arbitrary dense windows (its input layer a
 *    dense product over all E columns), f32 or int8, for `cphil predict --int8`. */
#ifndef CPHIL_EXPORT_CALIB_H
#define CPHIL_EXPORT_CALIB_H

#include "export/export.h"

typedef struct cphil_export_calib cphil_export_calib;

cphil_status cphil_export_calib_run(const cphil_model *m, const char *data, cphil_export_calib **out);
bool cphil_export_calib_amax(void *ctx, const char *weight_name, float *amax);
long cphil_export_calib_windows(const cphil_export_calib *c);
/* The engine's matrices and their calibrated max |input|, in the engine's order. */
int cphil_export_calib_count(const cphil_export_calib *c);
const char *cphil_export_calib_name(const cphil_export_calib *c, int i);
float cphil_export_calib_value(const cphil_export_calib *c, int i);
void cphil_export_calib_free(cphil_export_calib *c);   /* NULL is fine */

/* The calibration windows of `data` (see above) as dense [N, W, E] (cphil_alloc'd). */
cphil_status cphil_export_calib_windows_of(const cphil_model *m, const char *data, float **X, int *N, int *W);

typedef struct cphil_dense_engine cphil_dense_engine;
/* cphil's engine on m's weights (f32, or int8 per output channel with dynamic activations). */
cphil_status cphil_dense_engine_open(const cphil_model *m, bool int8, cphil_dense_engine **out);
void cphil_dense_engine_close(cphil_dense_engine *e);
/* Static int8: activation scales from a calibration (amax / 127 per matrix). */
cphil_status cphil_dense_engine_set_static(cphil_dense_engine *e, const cphil_export_calib *c);
/* The same from any source of ranges (e.g. an int8 static file's, cphil_policy_quant_amax);
 * a matrix amax does not know keeps per-call (dynamic) activation scales. */
cphil_status cphil_dense_engine_set_static_fn(cphil_dense_engine *e, cphil_export_amax_fn amax, void *ctx);
/* Window mode on X [N, W, E] (the last min(W, window) frames of each) -> logits [N, 81]; amax
 * (NULL or n_mats floats) accumulates each matrix's max |input|. */
cphil_status cphil_dense_engine_run(cphil_dense_engine *e, const float *X, int N, int W, float *logits, float *amax);

#endif
