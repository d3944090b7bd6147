/* export_calib.c — activation ranges for static int8 export (see export_calib.h). */
#include "export/export_calib.h"

struct cphil_export_calib {
    long windows;
};

cphil_status cphil_export_calib_run(const cphil_model *m, const char *data, cphil_export_calib **out) {
    (void)m;
    (void)data;
    *out = NULL;
    return cphil_err(CPHIL_E_UNSUPPORTED, "export: --int8 static is not available in this build yet (needs the inference engine's calibration)");
}

bool cphil_export_calib_amax(void *ctx, const char *weight_name, float *amax) {
    (void)ctx;
    (void)weight_name;
    (void)amax;
    return false;
}

long cphil_export_calib_windows(const cphil_export_calib *c) { return c ? c->windows : 0; }

void cphil_export_calib_free(cphil_export_calib *c) { cphil_free(c); }
