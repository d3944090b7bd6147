/* policy_f64.c — policy_impl.h in double (policy_f64.h); only for gradient checks. */
#include "model/policy_f64.h"
#include "nn/nn.h"
#include "core/core.h"

#define R double
#define NN_FN(name) name##_f64
#include "model/policy_impl.h"

const double *cphil_model_forward_f64(cphil_model_ws_f64 *ws, const double *params,
                                      const double *cont, const int32_t *ids) {
    return policy_forward_f64(ws, params, cont, ids);
}
double cphil_model_loss_f64(cphil_model_ws_f64 *ws, const uint8_t *buttons, const uint8_t *cls,
                            const float *weight, const cphil_loss_config *lc) {
    return policy_loss_f64(ws, buttons, cls, weight, lc, NULL);
}
void cphil_model_backward_f64(cphil_model_ws_f64 *ws, const double *params, const double *cont,
                              const int32_t *ids, double *grads) {
    policy_backward_f64(ws, params, cont, ids, grads);
}
void cphil_model_set_targets_f64(cphil_model_ws_f64 *ws, const uint8_t *buttons, const uint8_t *cls) {
    ws->tf_btn = buttons;
    ws->tf_cls = cls;
}
