/* slp_writer.c — the .slp writer (3.18.0 layout) used by `cphil synth`.
 *
 * Implements the container (reference/slp_format.md section 1: `{U\x03raw[$U#l` + length + events
 * + `U\x08metadata` + UBJSON object + `}`), Event Payloads (2.2), Game Start (3), Pre/Post-Frame
 * (4, 5), Frame Start and Bookend (6.1, 6.3), Game End (7) and the metadata object (9) with keys
 * startAt, lastFrame, players (characters, names), playedOn. Big-endian throughout.
 * Does not write: Gecko codes (3.3), items, stage events, followers.
 */
#include "slp/slp_writer.h"

#include <string.h>

enum {
    EV_PAYLOADS = 0x35, EV_GAME_START = 0x36, EV_PRE = 0x37, EV_POST = 0x38, EV_GAME_END = 0x39,
    EV_FRAME_START = 0x3A, EV_ITEM = 0x3B, EV_BOOKEND = 0x3C
};
enum { SZ_GAME_START = 760, SZ_PRE = 66, SZ_POST = 84, SZ_GAME_END = 6, SZ_FRAME_START = 12,
       SZ_ITEM = 44, SZ_BOOKEND = 8 };

static uint8_t *reserve(cphil_slpw *w, size_t n) {
    if (w->failed) return NULL;
    if (w->len + n > w->cap) {
        size_t nc = w->cap ? w->cap : 1 << 16;
        while (nc < w->len + n) nc *= 2;
        uint8_t *nb = cphil_realloc(w->buf, w->cap, nc);
        if (!nb) {
            w->failed = 1;
            return NULL;
        }
        w->buf = nb;
        w->cap = nc;
    }
    uint8_t *p = w->buf + w->len;
    memset(p, 0, n);
    w->len += n;
    return p;
}

static void be16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static void be32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}
static void bef(uint8_t *p, float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    be32(p, u);
}

static void put_bytes(cphil_slpw *w, const void *d, size_t n) {
    uint8_t *p = reserve(w, n);
    if (p) memcpy(p, d, n);
}

cphil_status cphil_slpw_begin(cphil_slpw *w, const cphil_slpw_game *g) {
    memset(w, 0, sizeof *w);
    w->game = *g;
    w->last_frame = -123;
    static const uint8_t hdr[] = {'{', 'U', 3, 'r', 'a', 'w', '[', '$', 'U', '#', 'l', 0, 0, 0, 0};
    put_bytes(w, hdr, sizeof hdr);
    /* Event Payloads: 7 entries. */
    static const struct { uint8_t code; uint16_t size; } table[] = {
        {EV_GAME_START, SZ_GAME_START}, {EV_PRE, SZ_PRE}, {EV_POST, SZ_POST},
        {EV_GAME_END, SZ_GAME_END}, {EV_FRAME_START, SZ_FRAME_START}, {EV_ITEM, SZ_ITEM},
        {EV_BOOKEND, SZ_BOOKEND},
    };
    size_t n = sizeof table / sizeof table[0];
    uint8_t *p = reserve(w, 2 + 3 * n);
    if (!p) return cphil_err(CPHIL_E_NOMEM, "slp writer: out of memory");
    p[0] = EV_PAYLOADS;
    p[1] = (uint8_t)(1 + 3 * n);
    for (size_t i = 0; i < n; i++) {
        p[2 + 3 * i] = table[i].code;
        be16(p + 3 + 3 * i, table[i].size);
    }
    /* Game Start; offsets from the code byte (section 3). */
    p = reserve(w, 1 + SZ_GAME_START);
    if (!p) return cphil_err(CPHIL_E_NOMEM, "slp writer: out of memory");
    p[0] = EV_GAME_START;
    p[1] = CPHIL_SLPW_VERSION_MAJOR;
    p[2] = CPHIL_SLPW_VERSION_MINOR;
    p[3] = CPHIL_SLPW_VERSION_BUILD;
    p[5] = 0x32;  /* timer counting down, stock mode */
    p[6] = 0x01;
    p[7] = 0x86;
    p[8] = 0x4C;
    p[0x0D] = 0;                 /* not teams */
    p[0x10] = 0xFF;              /* items off (-1) */
    p[0x11] = 0xFF;              /* self-destruct -1 */
    be16(p + 0x13, g->stage);
    be32(p + 0x15, 480);         /* 8 minutes */
    for (int i = 0x28; i <= 0x2C; i++) p[i] = 0;
    bef(p + 0x35, 1.0f);         /* damage ratio */
    for (int i = 0; i < 4; i++) {
        const cphil_slpw_player *pl = &g->players[i];
        uint8_t *b = p + 0x65 + 36 * i;
        bool empty = pl->type == 3;
        b[0x00] = empty ? 26 : pl->character_ext;
        b[0x01] = pl->type;
        b[0x02] = empty ? 0 : pl->stocks;
        b[0x03] = pl->costume;
        b[0x08] = 9;             /* handicap */
        b[0x0C] = 0xC0;
        b[0x0F] = 1;             /* CPU level */
        bef(b + 0x18, 1.0f);
        bef(b + 0x1C, 1.0f);
        bef(b + 0x20, 1.0f);
    }
    for (int i = 4; i < 6; i++) p[0x65 + 36 * i + 1] = 3;
    be32(p + 0x13D, g->random_seed);
    for (int i = 0; i < 4; i++) {
        be32(p + 0x141 + 8 * i, 1); /* UCF */
        be32(p + 0x145 + 8 * i, 1);
    }
    p[0x1A1] = 0;  /* NTSC */
    p[0x1A2] = 0;
    p[0x1A3] = 2;  /* minor scene */
    p[0x1A4] = 2;  /* VS mode */
    for (int i = 0; i < 4; i++) {
        const cphil_slpw_player *pl = &g->players[i];
        /* Display names and connect codes are Shift-JIS; ASCII without '#' is the same bytes.
         * The '#' of a connect code is the 2-byte full-width form 0x81 0x94. */
        size_t nl = strnlen(pl->netplay, 30);
        memcpy(p + 0x1A5 + 31 * i, pl->netplay, nl);
        uint8_t *c = p + 0x221 + 10 * i;
        size_t k = 0;
        for (size_t j = 0; pl->code[j] && k + 2 < 10; j++) {
            if (pl->code[j] == '#') {
                c[k++] = 0x81;
                c[k++] = 0x94;
            } else {
                c[k++] = (uint8_t)pl->code[j];
            }
        }
    }
    p[0x2BD] = 1; /* English */
    be32(p + 0x2F1, 0);
    be32(p + 0x2F5, 0);
    return w->failed ? cphil_err(CPHIL_E_NOMEM, "slp writer: out of memory") : CPHIL_OK;
}

static void write_pre(cphil_slpw *w, const cphil_slpw_pre *e) {
    uint8_t *p = reserve(w, 1 + SZ_PRE);
    if (!p) return;
    p[0] = EV_PRE;
    be32(p + 0x01, (uint32_t)e->frame);
    p[0x05] = e->index;
    p[0x06] = e->follower;
    be32(p + 0x07, e->seed);
    be16(p + 0x0B, e->action);
    bef(p + 0x0D, e->x);
    bef(p + 0x11, e->y);
    bef(p + 0x15, e->facing);
    bef(p + 0x19, e->joy_x);
    bef(p + 0x1D, e->joy_y);
    bef(p + 0x21, e->c_x);
    bef(p + 0x25, e->c_y);
    bef(p + 0x29, e->trigger);
    be32(p + 0x2D, e->buttons_processed);
    be16(p + 0x31, e->buttons);
    bef(p + 0x33, e->l);
    bef(p + 0x37, e->r);
    p[0x3B] = (uint8_t)e->raw_x;
    bef(p + 0x3C, e->percent);
    p[0x40] = (uint8_t)e->raw_y;
    p[0x41] = (uint8_t)e->raw_cx;
    p[0x42] = (uint8_t)e->raw_cy;
}

static void write_post(cphil_slpw *w, const cphil_slpw_post *e) {
    uint8_t *p = reserve(w, 1 + SZ_POST);
    if (!p) return;
    p[0] = EV_POST;
    be32(p + 0x01, (uint32_t)e->frame);
    p[0x05] = e->index;
    p[0x06] = e->follower;
    p[0x07] = e->character;
    be16(p + 0x08, e->action);
    bef(p + 0x0A, e->x);
    bef(p + 0x0E, e->y);
    bef(p + 0x12, e->facing);
    bef(p + 0x16, e->percent);
    bef(p + 0x1A, e->shield);
    p[0x1E] = e->last_attack;
    p[0x1F] = e->combo;
    p[0x20] = e->last_hit_by;
    p[0x21] = e->stocks;
    bef(p + 0x22, e->action_frame);
    memcpy(p + 0x26, e->flags, 5);
    bef(p + 0x2B, e->misc);
    p[0x2F] = e->airborne;
    be16(p + 0x30, e->ground);
    p[0x32] = e->jumps;
    p[0x33] = e->lcancel;
    p[0x34] = e->hurtbox;
    bef(p + 0x35, e->self_air_x);
    bef(p + 0x39, e->self_y);
    bef(p + 0x3D, e->attack_x);
    bef(p + 0x41, e->attack_y);
    bef(p + 0x45, e->self_ground_x);
    bef(p + 0x49, e->hitlag);
    be32(p + 0x4D, e->animation);
    be16(p + 0x51, e->last_hit_instance);
    be16(p + 0x53, e->instance);
    if (e->index < 4 && !e->follower) {
        w->post_count[e->index]++;
        w->post_char[e->index] = e->character;
    }
}

void cphil_slpw_frame(cphil_slpw *w, int32_t frame, uint32_t seed, const cphil_slpw_pre *pre,
                      const cphil_slpw_post *post, int n) {
    uint8_t *p = reserve(w, 1 + SZ_FRAME_START);
    if (!p) return;
    p[0] = EV_FRAME_START;
    be32(p + 1, (uint32_t)frame);
    be32(p + 5, seed);
    be32(p + 9, (uint32_t)(frame + 123)); /* scene frame counter */
    for (int i = 0; i < n; i++) write_pre(w, &pre[i]);
    for (int i = 0; i < n; i++) write_post(w, &post[i]);
    p = reserve(w, 1 + SZ_BOOKEND);
    if (!p) return;
    p[0] = EV_BOOKEND;
    be32(p + 1, (uint32_t)frame);
    be32(p + 5, (uint32_t)frame); /* latest finalized frame: no rollback */
    w->last_frame = frame;
}

void cphil_slpw_end(cphil_slpw *w, uint8_t method, int8_t lras, const int8_t placements[4]) {
    uint8_t *p = reserve(w, 1 + SZ_GAME_END);
    if (!p) return;
    p[0] = EV_GAME_END;
    p[1] = method;
    p[2] = (uint8_t)lras;
    for (int i = 0; i < 4; i++) p[3 + i] = (uint8_t)placements[i];
}

/* UBJSON helpers: keys and strings with a uint8 length ('U'), ints as int32 ('l'). */
static void ub_key(cphil_slpw *w, const char *k) {
    size_t n = strlen(k);
    uint8_t h[2] = {'U', (uint8_t)n};
    put_bytes(w, h, 2);
    put_bytes(w, k, n);
}
static void ub_str(cphil_slpw *w, const char *s) {
    uint8_t t = 'S';
    put_bytes(w, &t, 1);
    ub_key(w, s);
}
static void ub_int(cphil_slpw *w, int32_t v) {
    uint8_t *p = reserve(w, 5);
    if (!p) return;
    p[0] = 'l';
    be32(p + 1, (uint32_t)v);
}
static void ub_ch(cphil_slpw *w, char c) { put_bytes(w, &c, 1); }

cphil_status cphil_slpw_finish(cphil_slpw *w, const uint8_t **data, size_t *size) {
    if (w->failed) return cphil_err(CPHIL_E_NOMEM, "slp writer: out of memory");
    size_t raw_len = w->len - 15;
    if (raw_len > 0x7FFFFFFF) return cphil_err(CPHIL_E_ARG, "slp writer: raw element too large");
    be32(w->buf + 11, (uint32_t)raw_len);
    ub_key(w, "metadata");
    ub_ch(w, '{');
    ub_key(w, "startAt");
    ub_str(w, w->game.start_at[0] ? w->game.start_at : "2026-01-01T00:00:00Z");
    ub_key(w, "lastFrame");
    ub_int(w, w->last_frame);
    ub_key(w, "players");
    ub_ch(w, '{');
    for (int i = 0; i < 4; i++) {
        const cphil_slpw_player *pl = &w->game.players[i];
        if (pl->type == 3) continue;
        char k[4] = {(char)('0' + i), 0};
        ub_key(w, k);
        ub_ch(w, '{');
        ub_key(w, "characters");
        ub_ch(w, '{');
        if (w->post_count[i]) {
            char ck[8];
            snprintf(ck, sizeof ck, "%u", (unsigned)w->post_char[i]);
            ub_key(w, ck);
            ub_int(w, (int32_t)w->post_count[i]);
        }
        ub_ch(w, '}');
        ub_key(w, "names");
        ub_ch(w, '{');
        ub_key(w, "netplay");
        ub_str(w, pl->netplay);
        ub_key(w, "code");
        ub_str(w, pl->code);
        ub_ch(w, '}');
        ub_ch(w, '}');
    }
    ub_ch(w, '}');
    ub_key(w, "playedOn");
    ub_str(w, "dolphin");
    ub_ch(w, '}');
    ub_ch(w, '}');
    if (w->failed) return cphil_err(CPHIL_E_NOMEM, "slp writer: out of memory");
    *data = w->buf;
    *size = w->len;
    return CPHIL_OK;
}

void cphil_slpw_free(cphil_slpw *w) {
    if (!w) return;
    cphil_free(w->buf);
    memset(w, 0, sizeof *w);
}
