/* policy_f64.h — the whole policy in double, for finite-difference gradient checks only
 * (tests/test_nn.c). Same math and workspace as the f32 API of model.h (policy_impl.h); params
 * and grads are double blocks laid out like cphil_model.params (n_floats elements). */
#ifndef CPHIL_POLICY_F64_H
#define CPHIL_POLICY_F64_H
#include "model/model.h"

typedef struct cphil_model_ws_f64 cphil_model_ws_f64;
cphil_status cphil_model_ws_create_f64(const cphil_model *m, int B, int T, cphil_model_ws_f64 **out);
void cphil_model_ws_free_f64(cphil_model_ws_f64 *ws);
size_t cphil_model_ws_bytes_f64(const cphil_model_ws_f64 *ws);
/* cont [B, T, n_cont]; returns logits [B, T, 81] */
const double *cphil_model_forward_f64(cphil_model_ws_f64 *ws, const double *params,
                                      const double *cont, const int32_t *ids);
double cphil_model_loss_f64(cphil_model_ws_f64 *ws, const uint8_t *buttons, const uint8_t *cls,
                            const float *weight, const cphil_loss_config *lc);
/* Autoregressive heads: condition on these targets in later forwards (teacher forcing; NULL:
 * greedy, the default). */
void cphil_model_set_targets_f64(cphil_model_ws_f64 *ws, const uint8_t *buttons, const uint8_t *cls);
void cphil_model_backward_f64(cphil_model_ws_f64 *ws, const double *params, const double *cont,
                              const int32_t *ids, double *grads);
#endif
