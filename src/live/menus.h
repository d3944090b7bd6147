/* menus.h — Melee's character and stage select screens as the "Extract Menu Info" gecko code
 * reports them (the 0x3E menu frame, reference/live_play.md 2.3), the screen coordinates of each
 * character portrait and stage icon, and a closed-loop navigator that moves one port's cursor to
 * a chosen character and stage from the menu frames (src/live/menus.c, docs/live.md "Menus").
 * The fake Dolphin simulates the same screens with the same tables. Internal to src/live/ and the
 * commands that use it; depends on core only.
 */
#ifndef CPHIL_LIVE_MENUS_H
#define CPHIL_LIVE_MENUS_H

#include "core/core.h"

#define LIVE_MENU_BYTES 96          /* what Dolphin sends: the event zero-padded to 32-byte blocks */
#define LIVE_MENU_MIN_BYTES 0x3D    /* through the frame counter: shorter is not a menu frame */
#define LIVE_SCENE_CSS 0x0002       /* (minor << 8) | major, as libmelee reads bytes 1..2 */
#define LIVE_SCENE_SSS 0x0102
#define LIVE_SCENE_SSS_ONLINE 0x0108
#define LIVE_SCENE_ONLINE_CSS 0x0008
#define LIVE_COIN_DOWN 2            /* coin state 0x2D+i: 0 none, 1 in hand, 2 down, 3 unplugged */
#define LIVE_CSS_NONE 0xFF          /* the fake's "no character yet" (the game's own value is unconfirmed) */

/* One menu frame, decoded (big-endian fields at the offsets of reference/live_play.md 2.3). */
typedef struct live_menu_frame {
    uint16_t scene;
    float cursor_x[4], cursor_y[4]; /* character select cursor per port */
    uint8_t ready;                  /* 0x23: ready-to-fight banner, 10 hidden .. 0 fully shown */
    uint8_t stage;                  /* 0x24: the stage byte (libmelee's Stage values) */
    uint8_t port_status[4];         /* 0 human, 1 CPU, 3 off */
    uint8_t css_char[4];            /* character select ids (cphil_live_css_table) */
    uint8_t coin[4];
    float sss_x, sss_y;             /* stage select cursor */
    int32_t frame;                  /* global frame counter */
} live_menu_frame;

/* false when n < LIVE_MENU_MIN_BYTES or byte 0 is not 0x3E */
bool cphil_live_menu_parse(const uint8_t *b, size_t n, live_menu_frame *out);
void cphil_live_menu_encode(const live_menu_frame *m, uint8_t out[LIVE_MENU_BYTES]);

/* The character select grid: 9 + 9 + 7 portraits (all characters unlocked) with the random
 * portrait first in the bottom row. Coordinates are libmelee menuhelper's (0.41): a 7-unit cell,
 * centres x = -29 + 7 column, y = 4.5 + 7 (2 - row); they are not checked against a real Dolphin
 * here (docs/live.md says so). Correct them in menus.c's table. */
typedef struct live_css_slot {
    const char *name;   /* the canonical name cphil prints and accepts */
    uint8_t css_id;     /* the id in menu frames (0x29+i) */
    int ext_id;         /* the external (Game Start) character id */
    float x, y;         /* portrait centre in cursor coordinates */
} live_css_slot;
typedef struct live_sss_slot {
    const char *name;
    uint8_t stage_byte; /* the value of 0x24 for this stage */
    int ext_id;         /* the external (Game Start) stage id; -1 for random */
    float x, y;         /* icon centre in stage-cursor coordinates */
} live_sss_slot;
#define LIVE_CSS_HALF 3.5f  /* half a portrait cell */
#define LIVE_SSS_HALF 2.5f  /* half a stage icon, as the fake draws it (the stage icons differ in size) */
extern const live_css_slot cphil_live_css_table[];
extern const int cphil_live_css_count;
extern const live_sss_slot cphil_live_sss_table[];
extern const int cphil_live_sss_count;
const live_css_slot *cphil_live_css_by_ext(int ext_id);
const live_css_slot *cphil_live_css_by_id(int css_id);
const live_sss_slot *cphil_live_sss_by_ext(int ext_id);  /* -1: random */
const live_sss_slot *cphil_live_sss_by_byte(int stage_byte);
/* the portrait / stage icon under a cursor, NULL when none */
const live_css_slot *cphil_live_css_at(float x, float y);
const live_sss_slot *cphil_live_sss_at(float x, float y);
/* "doc, mario, ..." for messages */
void cphil_live_css_names(char *out, size_t cap);
void cphil_live_sss_names(char *out, size_t cap);

/* ---- the navigator ----------------------------------------------------------------------
 * Fed every menu frame, it says what the port's controller does on the next frame: at character
 * select, the main stick toward the portrait (closed loop on the reported cursor), A on arrival
 * (a press of one frame, then released), then wait for the port's character and coin to show it,
 * then START once the ready banner is fully shown; at stage select likewise with A on the stage
 * (A itself starts the game there). A coin down on the wrong character is picked up with B.
 * Bounded: when nothing progresses for stuck_frames menu frames it gives up with a message and
 * leaves the menus to the person (LIVE_NAV_GAVE_UP) until reset. */
typedef struct live_menu_pad {
    uint16_t buttons;       /* GameCube bits: A 0x0100, B 0x0200, START 0x1000 */
    float x, y;             /* main stick, pipe values in [0, 1], 0.5 neutral */
} live_menu_pad;

typedef enum live_nav_state {
    LIVE_NAV_IDLE = 0,      /* not at a screen it acts on (main menu, results, ...): neutral */
    LIVE_NAV_CSS_MOVE, LIVE_NAV_CSS_PRESS, LIVE_NAV_CSS_READY, LIVE_NAV_SSS_MOVE, LIVE_NAV_SSS_PRESS,
    LIVE_NAV_GAVE_UP
} live_nav_state;

typedef struct live_menu_nav {
    int port;                        /* 0..3 */
    const live_css_slot *character;  /* NULL: the character select is the person's */
    const live_sss_slot *stage;      /* NULL: the stage select is the person's */
    int stuck_frames;                /* give up after this many menu frames without progress (default 1200) */
    /* state */
    live_nav_state state;
    uint16_t scene;
    uint16_t last_buttons;
    int frames_in_state, frames_since_progress, presses, sss_frames;
    float best_dist;
    bool announced_selected, announced_wait;
} live_menu_nav;

void cphil_live_menu_nav_init(live_menu_nav *n, int port, const live_css_slot *c, const live_sss_slot *s);
/* Forget the progress (a new visit to the menus, after a game). */
void cphil_live_menu_nav_reset(live_menu_nav *n);
/* One menu frame in, the pad for the next frame out. Returns true when msg holds something to
 * tell the person (a selection made, a wait, giving up), at most once per event. */
bool cphil_live_menu_nav_step(live_menu_nav *n, const live_menu_frame *m, live_menu_pad *pad, char *msg, size_t cap);

#endif
