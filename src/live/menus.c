/* menus.c — menu frames, the select-screen tables and the menu navigator (menus.h).
 * Byte offsets: reference/live_play.md 2.3 (official "Extract Menu Info" payload, 96 bytes on the
 * wire). The screen geometry follows libmelee's menuhelper (altf4/libmelee 0.41.1): its portrait
 * grid formula, its stage targets and its 1.5-unit tolerance; what libmelee does not give (the
 * stage icons' extent, the cursor speed) is the fake Dolphin's model, not the game's.
 */
#include "live/menus.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static uint32_t be32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }
static float bef(const uint8_t *p) {
    uint32_t u = be32(p);
    float f;
    memcpy(&f, &u, 4);
    return f;
}
static void put32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}
static void putf(uint8_t *p, float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    put32(p, u);
}

bool cphil_live_menu_parse(const uint8_t *b, size_t n, live_menu_frame *m) {
    if (!b || n < LIVE_MENU_MIN_BYTES || b[0] != 0x3E) return false;
    memset(m, 0, sizeof *m);
    m->scene = (uint16_t)(b[1] << 8 | b[2]);
    for (int i = 0; i < 4; i++) {
        m->cursor_x[i] = bef(b + 0x03 + 8 * i);
        m->cursor_y[i] = bef(b + 0x07 + 8 * i);
        m->port_status[i] = b[0x25 + i];
        m->css_char[i] = b[0x29 + i];
        m->coin[i] = b[0x2D + i];
    }
    m->ready = b[0x23];
    m->stage = b[0x24];
    m->sss_x = bef(b + 0x31);
    m->sss_y = bef(b + 0x35);
    m->frame = (int32_t)be32(b + 0x39);
    return true;
}

void cphil_live_menu_encode(const live_menu_frame *m, uint8_t out[LIVE_MENU_BYTES]) {
    memset(out, 0, LIVE_MENU_BYTES);
    out[0] = 0x3E;
    out[1] = (uint8_t)(m->scene >> 8);
    out[2] = (uint8_t)m->scene;
    for (int i = 0; i < 4; i++) {
        putf(out + 0x03 + 8 * i, m->cursor_x[i]);
        putf(out + 0x07 + 8 * i, m->cursor_y[i]);
        out[0x25 + i] = m->port_status[i];
        out[0x29 + i] = m->css_char[i];
        out[0x2D + i] = m->coin[i];
    }
    out[0x23] = m->ready;
    out[0x24] = m->stage;
    putf(out + 0x31, m->sss_x);
    putf(out + 0x35, m->sss_y);
    put32(out + 0x39, (uint32_t)m->frame);
}

/* ---- tables ------------------------------------------------------------------------------- */

/* Portrait centre of character select id k: rows of 9 from the top, the bottom row starting one
 * cell right (the random portrait sits first); libmelee menuhelper's formula. */
#define CSS_X(k) (-29.0f + 7.0f * (float)((k) < 18 ? (k) % 9 : (k) - 18 + 1))
#define CSS_Y(k) (4.5f + 7.0f * (float)(2 - (k) / 9))
#define CSS(k, name, ext) {name, k, ext, CSS_X(k), CSS_Y(k)}

/* by character select id; ext = the external id of Game Start (reference/slp_format.md 11) */
const live_css_slot cphil_live_css_table[] = {
    CSS(0, "doc", 22),      CSS(1, "mario", 8),     CSS(2, "luigi", 7),      CSS(3, "bowser", 5),
    CSS(4, "peach", 12),    CSS(5, "yoshi", 17),    CSS(6, "dk", 1),         CSS(7, "falcon", 0),
    CSS(8, "ganondorf", 25), CSS(9, "falco", 20),   CSS(10, "fox", 2),       CSS(11, "ness", 11),
    CSS(12, "ice_climbers", 14), CSS(13, "kirby", 4), CSS(14, "samus", 16),  CSS(15, "zelda", 18),
    CSS(16, "link", 6),     CSS(17, "young_link", 21), CSS(18, "pichu", 24), CSS(19, "pikachu", 13),
    CSS(20, "jigglypuff", 15), CSS(21, "mewtwo", 10), CSS(22, "game_and_watch", 3), CSS(23, "marth", 9),
    CSS(24, "roy", 23),
};
const int cphil_live_css_count = (int)CPHIL_ARRAY_LEN(cphil_live_css_table);

/* libmelee menuhelper.choose_stage's targets; stage bytes as libmelee's enums.Stage; ext ids of
 * Game Start (ids.c). The legal stages only: libmelee gives no others. */
const live_sss_slot cphil_live_sss_table[] = {
    {"battlefield", 0x18, 31, 1.0f, -9.0f},      {"final_destination", 0x19, 32, 6.7f, -9.0f},
    {"dreamland", 0x1A, 28, 12.5f, -9.0f},       {"pokemon_stadium", 0x12, 3, 15.0f, 3.5f},
    {"yoshis_story", 0x06, 8, 3.5f, 15.5f},      {"fountain_of_dreams", 0x08, 2, 10.0f, 15.5f},
    {"random", 0x1D, -1, -13.5f, 3.5f},
};
const int cphil_live_sss_count = (int)CPHIL_ARRAY_LEN(cphil_live_sss_table);

const live_css_slot *cphil_live_css_by_ext(int ext_id) {
    for (int i = 0; i < cphil_live_css_count; i++)
        if (cphil_live_css_table[i].ext_id == ext_id) return &cphil_live_css_table[i];
    return NULL;
}
const live_css_slot *cphil_live_css_by_id(int css_id) {
    for (int i = 0; i < cphil_live_css_count; i++)
        if (cphil_live_css_table[i].css_id == css_id) return &cphil_live_css_table[i];
    return NULL;
}
const live_sss_slot *cphil_live_sss_by_ext(int ext_id) {
    for (int i = 0; i < cphil_live_sss_count; i++)
        if (cphil_live_sss_table[i].ext_id == ext_id) return &cphil_live_sss_table[i];
    return NULL;
}
const live_sss_slot *cphil_live_sss_by_byte(int stage_byte) {
    for (int i = 0; i < cphil_live_sss_count; i++)
        if (cphil_live_sss_table[i].stage_byte == stage_byte) return &cphil_live_sss_table[i];
    return NULL;
}
const live_css_slot *cphil_live_css_at(float x, float y) {
    for (int i = 0; i < cphil_live_css_count; i++)
        if (fabsf(x - cphil_live_css_table[i].x) < LIVE_CSS_HALF && fabsf(y - cphil_live_css_table[i].y) < LIVE_CSS_HALF)
            return &cphil_live_css_table[i];
    return NULL;
}
const live_sss_slot *cphil_live_sss_at(float x, float y) {
    for (int i = 0; i < cphil_live_sss_count; i++)
        if (fabsf(x - cphil_live_sss_table[i].x) < LIVE_SSS_HALF && fabsf(y - cphil_live_sss_table[i].y) < LIVE_SSS_HALF)
            return &cphil_live_sss_table[i];
    return NULL;
}

static void names(char *out, size_t cap, const void *tab, size_t stride, int n) {
    size_t k = 0;
    if (cap) out[0] = '\0';
    for (int i = 0; i < n && k + 1 < cap; i++) {
        const char *nm = *(const char *const *)((const char *)tab + stride * (size_t)i);
        int w = snprintf(out + k, cap - k, "%s%s", i ? ", " : "", nm);
        if (w < 0) break;
        k += (size_t)w;
    }
}
void cphil_live_css_names(char *out, size_t cap) { names(out, cap, cphil_live_css_table, sizeof cphil_live_css_table[0], cphil_live_css_count); }
void cphil_live_sss_names(char *out, size_t cap) { names(out, cap, cphil_live_sss_table, sizeof cphil_live_sss_table[0], cphil_live_sss_count); }

/* ---- the navigator ------------------------------------------------------------------------ */

#define NAV_TOL 1.5f      /* libmelee's wiggle room: close enough to the centre to press */
#define NAV_SETTLE 10     /* stage select: frames before moving (libmelee waits 20 of the global counter) */
#define BTN_A 0x0100
#define BTN_B 0x0200
#define BTN_START 0x1000

void cphil_live_menu_nav_init(live_menu_nav *n, int port, const live_css_slot *c, const live_sss_slot *s) {
    memset(n, 0, sizeof *n);
    n->port = port;
    n->character = c;
    n->stage = s;
    n->stuck_frames = 1200;
    cphil_live_menu_nav_reset(n);
}

void cphil_live_menu_nav_reset(live_menu_nav *n) {
    n->state = LIVE_NAV_IDLE;
    n->scene = 0xFFFF;
    n->last_buttons = 0;
    n->frames_in_state = n->frames_since_progress = n->presses = n->sss_frames = 0;
    n->best_dist = INFINITY;
    n->announced_selected = n->announced_wait = false;
}

/* Stick toward the target on one axis. The game reads the processed stick (raw / 80, so 80 of
 * the pipe's 127 steps is full tilt) and ignores |p| < 0.2875: push with at least 0.4 so a small
 * error still moves the cursor, and in proportion to the error so it does not overshoot. */
static float axis(float err) {
    if (fabsf(err) <= NAV_TOL * 0.5f) return 0.5f;
    float p = err / 6.0f;
    if (p > 1) p = 1;
    if (p < -1) p = -1;
    if (fabsf(p) < 0.4f) p = p < 0 ? -0.4f : 0.4f;
    return 0.5f + 0.5f * p * 80.0f / 127.0f;
}

/* Move toward (tx, ty) or, there, press `button` on alternate frames (a one-frame press each). */
static void approach(live_menu_nav *n, float cx, float cy, float tx, float ty, uint16_t button, live_nav_state move,
                     live_nav_state press, live_menu_pad *pad) {
    float dx = tx - cx, dy = ty - cy, d = fmaxf(fabsf(dx), fabsf(dy));
    if (d < n->best_dist - 0.25f) { /* the cursor came closer: progress */
        n->best_dist = d;
        n->frames_since_progress = 0;
    }
    if (fabsf(dx) <= NAV_TOL && fabsf(dy) <= NAV_TOL) {
        n->state = press;
        if (!(n->last_buttons & button)) {
            pad->buttons = button;
            n->presses++;
        }
        return;
    }
    n->state = move;
    pad->x = axis(dx);
    pad->y = axis(dy);
}

bool cphil_live_menu_nav_step(live_menu_nav *n, const live_menu_frame *m, live_menu_pad *pad, char *msg, size_t cap) {
    pad->buttons = 0;
    pad->x = pad->y = 0.5f;
    bool said = false;
    if (cap) msg[0] = '\0';
    if (m->scene != n->scene) {
        n->scene = m->scene;
        n->frames_since_progress = 0;
        n->presses = 0;
        n->best_dist = INFINITY;
        n->sss_frames = 0;
    }
    if (n->state == LIVE_NAV_GAVE_UP) return false;
    live_nav_state before = n->state;
    int p = n->port;
    n->frames_since_progress++;
    if (m->scene == LIVE_SCENE_CSS && n->character) {
        const live_css_slot *c = n->character;
        bool chosen = m->css_char[p] == c->css_id && m->coin[p] == LIVE_COIN_DOWN;
        if (chosen) {
            n->state = LIVE_NAV_CSS_READY;
            if (before != LIVE_NAV_CSS_READY) n->frames_since_progress = 0;
            if (!n->announced_selected) {
                n->announced_selected = true;
                snprintf(msg, cap, "menus: %s chosen for port %d", c->name, p + 1);
                said = true;
            }
            if (m->ready == 0) { /* the banner is up: START (one-frame presses) goes to the stage select */
                if (!(n->last_buttons & BTN_START)) pad->buttons = BTN_START;
            } else {
                /* the others are still choosing: waiting on a person is not being stuck */
                n->frames_since_progress = 0;
                if (!n->announced_wait && n->frames_in_state > n->stuck_frames) {
                    n->announced_wait = true;
                    snprintf(msg, cap, "menus: %s chosen; waiting for the other players (the ready banner is not up)",
                             c->name);
                    said = true;
                }
            }
        } else if (m->coin[p] == LIVE_COIN_DOWN) { /* our coin is down on someone else: pick it up */
            n->state = LIVE_NAV_CSS_MOVE;
            if (!(n->last_buttons & BTN_B)) pad->buttons = BTN_B;
        } else {
            approach(n, m->cursor_x[p], m->cursor_y[p], c->x, c->y, BTN_A, LIVE_NAV_CSS_MOVE, LIVE_NAV_CSS_PRESS, pad);
        }
    } else if ((m->scene == LIVE_SCENE_SSS || m->scene == LIVE_SCENE_SSS_ONLINE) && n->stage) {
        const live_sss_slot *s = n->stage;
        if (++n->sss_frames <= NAV_SETTLE) {
            n->state = LIVE_NAV_SSS_MOVE;
            n->frames_since_progress = 0;
        } else {
            approach(n, m->sss_x, m->sss_y, s->x, s->y, BTN_A, LIVE_NAV_SSS_MOVE, LIVE_NAV_SSS_PRESS, pad);
            if (pad->buttons && n->presses == 1) {
                snprintf(msg, cap, "menus: A on %s at the stage select", s->name);
                said = true;
            }
        }
    } else {
        n->state = LIVE_NAV_IDLE; /* not ours to play: neutral */
        n->frames_since_progress = 0;
    }
    if (n->state != before) n->frames_in_state = 0;
    n->frames_in_state++;
    if (n->frames_since_progress > n->stuck_frames) {
        double secs = n->stuck_frames / 60.0;
        switch (n->state) {
        case LIVE_NAV_CSS_MOVE:
        case LIVE_NAV_SSS_MOVE: {
            bool css = n->state == LIVE_NAV_CSS_MOVE;
            snprintf(msg, cap,
                     "menus: port %d's %s cursor has not come closer to %s in %.0f s (at %.1f, %.1f; target %.1f, %.1f): "
                     "is Dolphin's controller %d the pipe device (cphil dolphin-setup) and the port the bot plays? "
                     "The menus are left to you",
                     p + 1, css ? "character" : "stage", css ? n->character->name : n->stage->name, secs,
                     css ? m->cursor_x[p] : m->sss_x, css ? m->cursor_y[p] : m->sss_y,
                     css ? n->character->x : n->stage->x, css ? n->character->y : n->stage->y, p + 1);
            break;
        }
        case LIVE_NAV_CSS_PRESS:
            snprintf(msg, cap,
                     "menus: pressed A on %s %d times in %.0f s but the menu frames do not show it chosen for port %d "
                     "(character %u, coin %u): the portrait table may be off for this game (docs/live.md); the menus "
                     "are left to you",
                     n->character->name, n->presses, secs, p + 1, m->css_char[p], m->coin[p]);
            break;
        case LIVE_NAV_CSS_READY:
            snprintf(msg, cap, "menus: pressed START with the ready banner shown for %.0f s but the stage select did not "
                               "come; the menus are left to you", secs);
            break;
        default:
            snprintf(msg, cap, "menus: pressed A on %s %d times in %.0f s but the game did not start; the menus are left "
                               "to you", n->stage ? n->stage->name : "the stage", n->presses, secs);
            break;
        }
        n->state = LIVE_NAV_GAVE_UP;
        pad->buttons = 0;
        pad->x = pad->y = 0.5f;
        said = true;
    }
    n->last_buttons = pad->buttons;
    return said;
}
