/* controller.c — controller <-> action-head targets (nearest-class discretization).
 *
 * Implements the encoding fixed in docs/interfaces.md "Targets" and documented in
 * docs/embedding.md; see controller.h for the fields used. Deliberately not here: sampling from
 * logits (src/infer) and the analog deadzone the game applies (the processed values already
 * carry it). Reference: reference/slp_format.md section 4 (Pre-Frame fields and button bits).
 */
#include "game/controller.h"

#include <math.h>

static const uint16_t button_bits[CPHIL_N_BUTTONS] = {
    CPHIL_BTN_A, CPHIL_BTN_B, CPHIL_BTN_X, CPHIL_BTN_Y,
    CPHIL_BTN_Z, CPHIL_BTN_L, CPHIL_BTN_R, CPHIL_BTN_DUP,
};
static const char *const button_names[CPHIL_N_BUTTONS] = {"A", "B", "X", "Y", "Z", "L", "R", "D_UP"};
static const char *const head_names[6] = {"buttons", "main_x", "main_y", "c_x", "c_y", "shoulder"};

uint16_t cphil_button_bit(int i) { return (i >= 0 && i < CPHIL_N_BUTTONS) ? button_bits[i] : 0; }
const char *cphil_button_name(int i) { return (i >= 0 && i < CPHIL_N_BUTTONS) ? button_names[i] : "?"; }
const char *cphil_head_name(int i) { return (i >= 0 && i < 6) ? head_names[i] : "?"; }

int cphil_stick_class(float v) {
    if (!(v == v)) return CPHIL_STICK_NEUTRAL; /* NaN */
    if (v < -1.0f) v = -1.0f;
    if (v > 1.0f) v = 1.0f;
    /* u = (v+1)/2 in [0,1]; nearest k/16 -> k = floor(16u + 0.5) = floor(8v + 8.5). */
    int k = (int)floorf(8.0f * v + 8.5f);
    return k < 0 ? 0 : (k > 16 ? 16 : k);
}

int cphil_shoulder_class(float t) {
    if (!(t == t)) return 0;
    if (t < 0.0f) t = 0.0f;
    if (t > 1.0f) t = 1.0f;
    int k = (int)floorf(4.0f * t + 0.5f);
    return k < 0 ? 0 : (k > 4 ? 4 : k);
}

float cphil_stick_value(int k) {
    if (k < 0) k = 0;
    if (k > 16) k = 16;
    return (float)k / 8.0f - 1.0f;
}

float cphil_shoulder_value(int k) {
    if (k < 0) k = 0;
    if (k > 4) k = 4;
    return (float)k / 4.0f;
}

void cphil_controller_encode(const cphil_controller *c, cphil_target *t) {
    for (int i = 0; i < CPHIL_N_BUTTONS; i++) t->buttons[i] = (c->buttons & button_bits[i]) ? 1 : 0;
    t->cls[CPHIL_AXIS_MAIN_X] = (uint8_t)cphil_stick_class(c->main_x);
    t->cls[CPHIL_AXIS_MAIN_Y] = (uint8_t)cphil_stick_class(c->main_y);
    t->cls[CPHIL_AXIS_C_X] = (uint8_t)cphil_stick_class(c->c_x);
    t->cls[CPHIL_AXIS_C_Y] = (uint8_t)cphil_stick_class(c->c_y);
    float l = c->l_trigger == c->l_trigger ? c->l_trigger : 0.0f;
    float r = c->r_trigger == c->r_trigger ? c->r_trigger : 0.0f;
    t->cls[CPHIL_AXIS_SHOULDER] = (uint8_t)cphil_shoulder_class(l > r ? l : r);
}

void cphil_controller_decode(const cphil_target *t, cphil_controller *c) {
    uint16_t b = 0;
    for (int i = 0; i < CPHIL_N_BUTTONS; i++)
        if (t->buttons[i]) b |= button_bits[i];
    c->buttons = b;
    c->main_x = cphil_stick_value(t->cls[CPHIL_AXIS_MAIN_X]);
    c->main_y = cphil_stick_value(t->cls[CPHIL_AXIS_MAIN_Y]);
    c->c_x = cphil_stick_value(t->cls[CPHIL_AXIS_C_X]);
    c->c_y = cphil_stick_value(t->cls[CPHIL_AXIS_C_Y]);
    c->l_trigger = cphil_shoulder_value(t->cls[CPHIL_AXIS_SHOULDER]);
    c->r_trigger = 0.0f;
}
