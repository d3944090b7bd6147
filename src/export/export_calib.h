/* export_calib.h — calibration for static int8 ONNX export: the max |input| of every quantized
 * Linear, measured by running the policy in window mode over calibration data (a .npy of dense
 * inputs [N, W, E], or replays). Keyed by the Linear's weight name (cphil_export_amax_fn). */
#ifndef CPHIL_EXPORT_CALIB_H
#define CPHIL_EXPORT_CALIB_H

#include "export/export.h"

typedef struct cphil_export_calib cphil_export_calib;

cphil_status cphil_export_calib_run(const cphil_model *m, const char *data, cphil_export_calib **out);
bool cphil_export_calib_amax(void *ctx, const char *weight_name, float *amax);
long cphil_export_calib_windows(const cphil_export_calib *c);
void cphil_export_calib_free(cphil_export_calib *c);   /* NULL is fine */

#endif
