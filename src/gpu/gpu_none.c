/* gpu_none.c — the GPU path of gpu.h in a build without CUDA (plain `make`): every request says
 * that this binary has no CUDA and how to get one. Compiled instead of src/gpu/gpu_*.c. */
#include "gpu/gpu.h"

#include "core/core.h"

#include <stdio.h>
#include <string.h>

bool cphil_gpu_compiled(void) { return false; }

int cphil_gpu_describe_all(char *buf, size_t n) {
    snprintf(buf, n, "not compiled in (build with `make CUDA=1` for build/cuda/cphil)");
    return 0;
}

static cphil_status no_cuda(void) {
    return cphil_err(CPHIL_E_UNSUPPORTED,
                     "this cphil was built without CUDA: build the GPU variant with `make CUDA=1` (CUDA 13 at "
                     "/usr/local/cuda) and run build/cuda/cphil, or drop --device to use the CPU");
}

cphil_status cphil_gpu_check(int device) {
    (void)device;
    return no_cuda();
}

cphil_status cphil_gpu_policy_create(int device, const cphil_model_config *cfg, const cphil_tr_policy_opts *o,
                                     cphil_gpu_policy **out) {
    (void)device, (void)cfg, (void)o;
    *out = NULL;
    return no_cuda();
}
void cphil_gpu_policy_free(cphil_gpu_policy *p) { (void)p; }
cphil_model *cphil_gpu_policy_model(cphil_gpu_policy *p) {
    (void)p;
    return NULL;
}
const char *cphil_gpu_policy_device(const cphil_gpu_policy *p) {
    (void)p;
    return "none";
}
static cphil_status none_step(void *self, const cphil_tr_batch *b, double lr, double *loss) {
    (void)self, (void)b, (void)lr, (void)loss;
    return no_cuda();
}
static cphil_status none_eval(void *self, const cphil_tr_batch *b, float *logits, double *loss) {
    (void)self, (void)b, (void)logits, (void)loss;
    return no_cuda();
}
static int none_sections(void *self, cphil_tr_section *out, int cap) {
    (void)self, (void)out, (void)cap;
    return 0;
}
static cphil_status none_save(void *self, const char *path, const char *meta) {
    (void)self, (void)path, (void)meta;
    return no_cuda();
}
static const char *none_config(void *self) {
    (void)self;
    return "{}";
}
const cphil_tr_model_ops cphil_gpu_policy_ops = {none_step, none_eval, none_sections, none_save, none_config, 0};
cphil_status cphil_gpu_policy_time(cphil_gpu_policy *p, const cphil_tr_batch *tb, double lr, int warmup, int steps,
                                   double *gpu_ms) {
    (void)p, (void)tb, (void)lr, (void)warmup, (void)steps, (void)gpu_ms;
    return no_cuda();
}
size_t cphil_gpu_policy_device_bytes(const cphil_gpu_policy *p) {
    (void)p;
    return 0;
}
cphil_status cphil_gpu_forward_create(int device, const cphil_model *m, int B, int T, cphil_gpu_forward **out) {
    (void)device, (void)m, (void)B, (void)T;
    *out = NULL;
    return no_cuda();
}
cphil_status cphil_gpu_forward_run(cphil_gpu_forward *f, const float *cont, const int32_t *ids, const float **logits) {
    (void)f, (void)cont, (void)ids, (void)logits;
    return no_cuda();
}
void cphil_gpu_forward_free(cphil_gpu_forward *f) { (void)f; }
