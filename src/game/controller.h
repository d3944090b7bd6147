/* controller.h — a player's controller <-> the six action heads (docs/interfaces.md "Targets").
 *
 * Source fields (Pre-Frame Update, reference/slp_format.md section 4): the PROCESSED joystick
 * and C-stick (f32 in [-1, 1], after the game's deadzone), the PHYSICAL buttons (u16 at 0x31)
 * and the PHYSICAL analog triggers L and R (f32 in [0, 1], 0x33 and 0x37). Processed sticks are
 * what the game acted on; physical buttons and triggers are what the player pressed (the
 * processed button word adds derived bits such as "any trigger").
 *
 * Heads, in this order everywhere:
 *   buttons  8 Bernoulli: A B X Y Z L R D-up (physical bits 0x0100 0x0200 0x0400 0x0800 0x0010
 *            0x0040 0x0020 0x0008)
 *   main_x, main_y, c_x, c_y  17 classes: axis value v in [-1,1] is mapped to u = (v+1)/2 in
 *            [0,1] and class k = round(16 u) (nearest of k/16), so neutral is 8 and both
 *            extremes (0 and 16) are reachable. (ExPhil used floor(16u) capped at 15: class 16
 *            was never a target; we do not copy that.)
 *   shoulder 5 classes: nearest k/4 of max(L, R) physical analog.
 * Decoding a class gives back the class centre: u = k/16 (v = 2u - 1), trigger k/4 on L.
 * Non-finite or out-of-range inputs (garbage R triggers of 1.0.0 files) are clamped: NaN maps to
 * neutral (stick 8, shoulder 0).
 */
#ifndef CPHIL_GAME_CONTROLLER_H
#define CPHIL_GAME_CONTROLLER_H

#include <stdint.h>

#define CPHIL_N_BUTTONS 8
#define CPHIL_N_AXES 5 /* categorical heads: main_x main_y c_x c_y shoulder */
#define CPHIL_STICK_CLASSES 17
#define CPHIL_SHOULDER_CLASSES 5
#define CPHIL_STICK_NEUTRAL 8

/* Index into cphil_target.cls[CPHIL_N_AXES] (model.h's CPHIL_HEAD_* index the heads, buttons first). */
enum { CPHIL_AXIS_MAIN_X, CPHIL_AXIS_MAIN_Y, CPHIL_AXIS_C_X, CPHIL_AXIS_C_Y, CPHIL_AXIS_SHOULDER };

/* Physical button bits of the Pre-Frame event. */
#define CPHIL_BTN_DLEFT 0x0001u
#define CPHIL_BTN_DRIGHT 0x0002u
#define CPHIL_BTN_DDOWN 0x0004u
#define CPHIL_BTN_DUP 0x0008u
#define CPHIL_BTN_Z 0x0010u
#define CPHIL_BTN_R 0x0020u
#define CPHIL_BTN_L 0x0040u
#define CPHIL_BTN_A 0x0100u
#define CPHIL_BTN_B 0x0200u
#define CPHIL_BTN_X 0x0400u
#define CPHIL_BTN_Y 0x0800u
#define CPHIL_BTN_START 0x1000u

/* A controller as the replay stores it (Pre-Frame fields). */
typedef struct cphil_controller {
    float main_x, main_y;     /* processed joystick, [-1, 1] */
    float c_x, c_y;           /* processed C-stick, [-1, 1] */
    float l_trigger, r_trigger; /* physical analog, [0, 1] */
    uint16_t buttons;         /* physical button bits (CPHIL_BTN_*) */
} cphil_controller;

/* One frame's targets for the six heads. */
typedef struct cphil_target {
    uint8_t buttons[CPHIL_N_BUTTONS]; /* 0/1 in head order A B X Y Z L R D-up */
    uint8_t cls[CPHIL_N_AXES];        /* main_x main_y c_x c_y (0..16), shoulder (0..4) */
} cphil_target;

/* The physical bit of head button i (0..7). */
uint16_t cphil_button_bit(int i);
/* Head name i (0..5: buttons main_x main_y c_x c_y shoulder) and button names (0..7). */
const char *cphil_head_name(int i);
const char *cphil_button_name(int i);

/* Nearest stick class (0..16) of a processed axis value v in [-1, 1] (clamped; NaN -> 8). */
int cphil_stick_class(float v);
/* Nearest shoulder class (0..4) of a trigger value t in [0, 1] (clamped; NaN -> 0). */
int cphil_shoulder_class(float t);
/* Class centres: stick class k -> v = k/8 - 1 in [-1, 1]; shoulder k -> k/4. */
float cphil_stick_value(int k);
float cphil_shoulder_value(int k);

/* Encode a controller into targets. */
void cphil_controller_encode(const cphil_controller *c, cphil_target *t);
/* Decode targets (e.g. sampled classes) into a controller: sticks at the class centres,
 * the shoulder class on the L trigger (R 0), buttons from the 0/1 flags (any nonzero = pressed). */
void cphil_controller_decode(const cphil_target *t, cphil_controller *c);

#endif
