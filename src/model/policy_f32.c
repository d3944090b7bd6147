/* policy_f32.c — the public training API of model.h: workspace, forward, loss and backward of
 * the whole policy in f32 (bf16 matrix operands when the config says so), from policy_impl.h.
 * Not here: the layers (src/nn), AdamW (adamw.c), the double twin (policy_f64.c). */
#include "model/model.h"
#include "nn/nn.h"
#include "core/core.h"

#define R float
#define NN_FN(name) name
#include "model/policy_impl.h"

void cphil_loss_config_default(cphil_loss_config *lc) {
    for (int j = 0; j < CPHIL_N_BUTTONS; j++) lc->pos_weight[j] = 1.0f;
    lc->button_weight = 1.0f;
    lc->label_smoothing = 0.0f;
}

const float *cphil_model_forward(const cphil_model *m, cphil_model_ws *ws, const cphil_model_batch *batch) {
    CPHIL_ASSERT(batch->B == ws->B && batch->T == ws->T);
    CPHIL_ASSERT(m->cfg.backbone == ws->cfg.backbone && m->cfg.E == ws->cfg.E);
    ws->tf_btn = batch->buttons; /* autoregressive heads: teacher forcing when targets are given */
    ws->tf_cls = batch->cls;
    return policy_forward(ws, m->params, batch->cont, batch->ids);
}

float cphil_model_loss(const cphil_model *m, cphil_model_ws *ws, const cphil_model_batch *batch,
                       const cphil_loss_config *lc, cphil_loss_parts *parts) {
    (void)m;
    CPHIL_ASSERT(batch->B == ws->B && batch->T == ws->T);
    return policy_loss(ws, batch->buttons, batch->cls, batch->weight, lc, parts);
}

void cphil_model_backward(const cphil_model *m, cphil_model_ws *ws, const cphil_model_batch *batch,
                          float *grads) {
    CPHIL_ASSERT(batch->B == ws->B && batch->T == ws->T);
    policy_backward(ws, m->params, batch->cont, batch->ids, grads);
}

/* ---- additions for the trainer (src/train): distillation gradient, TBPTT carry ---------- */
float *cphil_model_dlogits(cphil_model_ws *ws) { return ws->dlogits; }

size_t cphil_model_carry_floats(const cphil_model_config *c, int B) {
    if (c->backbone == CPHIL_BACKBONE_LSTM) return (size_t)c->num_layers * 2 * (size_t)B * (size_t)c->hidden;
    if (c->backbone == CPHIL_BACKBONE_GRU) return (size_t)c->num_layers * (size_t)B * (size_t)c->hidden;
    return 0;
}

void cphil_model_set_carry(cphil_model_ws *ws, float *carry) { ws->carry = carry; }

void cphil_model_set_grads_hook(cphil_model_ws *ws, void (*fn)(void *user, size_t lo), void *user) {
    ws->grads_ready = fn;
    ws->grads_user = user;
}
