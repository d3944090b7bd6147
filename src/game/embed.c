/* embed.c — the values of the game-state embedding (one final frame -> cont[] + ids[]).
 *
 * Implements cphil_embed_game_init and cphil_embed_frame; the layout and the description of
 * every feature are in embed_layout.c and docs/embedding.md. The same function serves the
 * dataset builder and the agent. Allocates nothing. Deliberately not: normalization by data
 * statistics (fixed scales keep live play and training identical), per-frame history (the
 * model's window or recurrent state carries time). Reference: reference/slp_format.md 4-6.
 */
#include "game/embed.h"

#include "game/synth.h" /* cphil_stage_edge */

#include <math.h>
#include <string.h>

static inline float fin(float v) { return isfinite(v) ? v : 0.0f; }
static inline float clampf(float v, float lo, float hi) {
    v = fin(v);
    return v < lo ? lo : (v > hi ? hi : v);
}
static inline float sgn(float v) { return v > 0.0f ? 1.0f : (v < 0.0f ? -1.0f : 0.0f); }

/* Does the event `code` carry a field ending at byte `end` (offset + width, from the code byte)? */
static uint8_t has_field(const cphil_replay *r, int code, int end) {
    return r->declared[code] && (int)r->payload_size[code] + 1 >= end;
}

cphil_status cphil_embed_game_init_parts(cphil_embed_game *g, int stage, const int playing[4], unsigned fields,
                                        int self, int opp) {
    memset(g, 0, sizeof *g);
    if (self < 0 || self >= CPHIL_SLP_PORTS || !playing[self])
        return cphil_err(CPHIL_E_ARG, "embed: port %d is not a player in this game", self + 1);
    if (opp < 0 || opp >= CPHIL_SLP_PORTS || opp == self || !playing[opp]) {
        opp = -1;
        for (int p = 0; p < CPHIL_SLP_PORTS; p++)
            if (p != self && playing[p]) {
                opp = p;
                break;
            }
    }
    g->self = self;
    g->opp = opp;
    g->stage = stage;
    g->edge = cphil_stage_edge(stage);
    g->has_post_v2 = (fields & CPHIL_BOT_HAS_STATE_FLAGS) != 0;
    g->has_hurtbox = (fields & CPHIL_BOT_HAS_HURTBOX) != 0;
    g->has_speeds = (fields & CPHIL_BOT_HAS_SPEEDS) != 0;
    g->has_hitlag = (fields & CPHIL_BOT_HAS_HITLAG) != 0;
    g->has_items = (fields & CPHIL_BOT_HAS_ITEMS) != 0;
    return CPHIL_OK;
}

unsigned cphil_embed_replay_fields(const cphil_replay *r) {
    return (has_field(r, 0x38, 0x33) ? CPHIL_BOT_HAS_STATE_FLAGS : 0u) | /* jumps at 0x32 */
           (has_field(r, 0x38, 0x35) ? CPHIL_BOT_HAS_HURTBOX : 0u) |     /* hurtbox at 0x34 */
           (has_field(r, 0x38, 0x49) ? CPHIL_BOT_HAS_SPEEDS : 0u) |      /* ground x speed at 0x45..0x48 */
           (has_field(r, 0x38, 0x4D) ? CPHIL_BOT_HAS_HITLAG : 0u) |      /* hitlag at 0x49..0x4C */
           (r->declared[0x3B] ? CPHIL_BOT_HAS_ITEMS : 0u);
}

cphil_status cphil_embed_game_init(cphil_embed_game *g, const cphil_replay *r, int self, int opp) {
    int playing[CPHIL_SLP_PORTS];
    for (int p = 0; p < CPHIL_SLP_PORTS; p++) playing[p] = r->game.players[p].type != 3;
    return cphil_embed_game_init_parts(g, r->game.stage, playing, cphil_embed_replay_fields(r), self, opp);
}

static int action_id(int a) { return a >= 0 && a < CPHIL_EMBED_ACTION_VOCAB - 1 ? a : CPHIL_EMBED_ACTION_VOCAB - 1; }
static int char_id(int c) { return c >= 0 && c < CPHIL_EMBED_CHAR_VOCAB - 1 ? c : CPHIL_EMBED_CHAR_VOCAB - 1; }
static int stage_id(int s) { return s >= 0 && s < CPHIL_EMBED_STAGE_VOCAB - 1 ? s : CPHIL_EMBED_STAGE_VOCAB - 1; }
static int item_id(int t) { return t >= 0 && t < CPHIL_EMBED_ITEM_VOCAB - 2 ? t : CPHIL_EMBED_ITEM_VOCAB - 2; }

/* The player block (CPHIL_EMBED_PLAYER_FEATS values). */
static void player_feats(const cphil_embed_game *g, const cphil_char_frame *c, float *o) {
    memset(o, 0, sizeof(float) * CPHIL_EMBED_PLAYER_FEATS);
    if (!c || !(c->present & CPHIL_PRESENT_POST)) return;
    const cphil_post_frame *p = &c->post;
    float x = fin(p->x), y = fin(p->y);
    o[0] = 1.0f;
    o[1] = clampf(x * 0.05f, -10.0f, 10.0f);
    o[2] = clampf(y * 0.05f, -10.0f, 10.0f);
    o[3] = clampf(p->percent * 0.01f, 0.0f, 5.0f);
    o[4] = clampf(p->shield / 60.0f, 0.0f, 1.0f);
    o[5] = clampf((float)p->stocks / 4.0f, 0.0f, 1.0f);
    o[6] = sgn(fin(p->facing));
    if (g->has_post_v2) {
        o[7] = p->airborne ? 0.0f : 1.0f;
        o[8] = clampf((float)p->jumps / 6.0f, 0.0f, 1.0f);
        if (p->flags4 & 0x02) o[14] = clampf(p->misc_as / 120.0f, 0.0f, 1.0f);
        o[18] = (p->flags3 & 0x80) ? 1.0f : 0.0f;
        o[19] = (p->flags2 & 0x08) ? 1.0f : 0.0f;
        o[20] = (p->flags2 & 0x20) ? 1.0f : 0.0f;
        o[21] = (p->flags5 & 0x40) ? 1.0f : 0.0f;
    }
    if (g->has_speeds) {
        o[9] = clampf(p->self_air_x * 0.5f, -10.0f, 10.0f);
        o[10] = clampf(p->self_y * 0.5f, -10.0f, 10.0f);
        o[11] = clampf(p->attack_x * 0.5f, -10.0f, 10.0f);
        o[12] = clampf(p->attack_y * 0.5f, -10.0f, 10.0f);
        o[13] = clampf(p->self_ground_x * 0.5f, -10.0f, 10.0f);
    }
    if (g->has_hitlag) o[15] = clampf(p->hitlag / 20.0f, 0.0f, 1.0f);
    o[16] = clampf(p->action_frame / 60.0f, 0.0f, 2.0f);
    if (g->has_hurtbox) o[17] = p->hurtbox ? 1.0f : 0.0f;
    if (g->edge > 0.0f) {
        o[22] = fabsf(x) > g->edge ? 1.0f : 0.0f;
        o[23] = clampf((g->edge - fabsf(x)) / g->edge, -2.0f, 1.0f);
    }
}

static void nana_feats(const cphil_embed_game *g, const cphil_char_frame *leader,
                       const cphil_char_frame *c, float *o) {
    memset(o, 0, sizeof(float) * CPHIL_EMBED_NANA_FEATS);
    if (!c || !(c->present & CPHIL_PRESENT_POST)) return;
    const cphil_post_frame *p = &c->post;
    o[0] = 1.0f;
    o[1] = clampf(p->x * 0.05f, -10.0f, 10.0f);
    o[2] = clampf(p->y * 0.05f, -10.0f, 10.0f);
    o[3] = clampf(p->percent * 0.01f, 0.0f, 5.0f);
    o[4] = sgn(fin(p->facing));
    if (g->has_post_v2) o[5] = p->airborne ? 0.0f : 1.0f;
    o[6] = clampf(p->action_frame / 60.0f, 0.0f, 2.0f);
    if (leader && (leader->present & CPHIL_PRESENT_POST))
        o[7] = clampf((fin(p->x) - fin(leader->post.x)) * 0.05f, -10.0f, 10.0f);
}

void cphil_embed_frame(const cphil_embed_layout *L, const cphil_embed_game *g,
                       const cphil_frame *f, float *cont, int32_t *ids) {
    const cphil_char_frame *s = &f->ports[g->self][0];
    const cphil_char_frame *o = g->opp >= 0 ? &f->ports[g->opp][0] : NULL;
    bool s_ok = (s->present & CPHIL_PRESENT_POST) != 0;
    bool o_ok = o && (o->present & CPHIL_PRESENT_POST);
    float *c = cont;
    /* game */
    c[0] = g->has_post_v2;
    c[1] = g->has_hurtbox;
    c[2] = g->has_speeds;
    c[3] = g->has_hitlag;
    c[4] = g->has_items;
    c[5] = clampf((float)(f->frame > 0 ? f->frame : 0) / 28800.0f, 0.0f, 1.0f);
    c += CPHIL_EMBED_GAME_FEATS;
    player_feats(g, s, c);
    c += CPHIL_EMBED_PLAYER_FEATS;
    player_feats(g, o, c);
    c += CPHIL_EMBED_PLAYER_FEATS;
    nana_feats(g, s, &f->ports[g->self][1], c);
    c += CPHIL_EMBED_NANA_FEATS;
    nana_feats(g, o, o ? &f->ports[g->opp][1] : NULL, c);
    c += CPHIL_EMBED_NANA_FEATS;
    /* relative */
    memset(c, 0, sizeof(float) * CPHIL_EMBED_REL_FEATS);
    float sx = s_ok ? fin(s->post.x) : 0.0f, sy = s_ok ? fin(s->post.y) : 0.0f;
    if (s_ok && o_ok) {
        float dx = fin(o->post.x) - sx, dy = fin(o->post.y) - sy;
        c[0] = clampf(dx * 0.005f, -2.0f, 2.0f);
        c[1] = clampf(dy * 0.01f, -2.0f, 2.0f);
        c[2] = clampf(sqrtf(dx * dx + dy * dy) * 0.005f, 0.0f, 2.0f);
        c[3] = dx * fin(s->post.facing) > 0.0f ? 1.0f : 0.0f;
        c[4] = -dx * fin(o->post.facing) > 0.0f ? 1.0f : 0.0f;
    }
    c += CPHIL_EMBED_REL_FEATS;
    /* nearest items: a small insertion sort of the 3 nearest (ties keep event order) */
    int near[CPHIL_EMBED_N_ITEMS];
    float nd[CPHIL_EMBED_N_ITEMS];
    int nn = 0;
    for (uint32_t i = 0; i < f->n_items; i++) {
        const cphil_item *it = &f->items[i];
        float dx = fin(it->x) - sx, dy = fin(it->y) - sy, d = dx * dx + dy * dy;
        int pos = nn;
        while (pos > 0 && nd[pos - 1] > d) pos--;
        if (pos >= CPHIL_EMBED_N_ITEMS) continue;
        int last = nn < CPHIL_EMBED_N_ITEMS ? nn : CPHIL_EMBED_N_ITEMS - 1;
        for (int k = last; k > pos; k--) {
            near[k] = near[k - 1];
            nd[k] = nd[k - 1];
        }
        near[pos] = (int)i;
        nd[pos] = d;
        if (nn < CPHIL_EMBED_N_ITEMS) nn++;
    }
    int item_type[CPHIL_EMBED_N_ITEMS];
    for (int k = 0; k < CPHIL_EMBED_N_ITEMS; k++) {
        memset(c, 0, sizeof(float) * CPHIL_EMBED_ITEM_FEATS);
        item_type[k] = CPHIL_EMBED_ITEM_VOCAB - 1; /* empty slot */
        if (k < nn) {
            const cphil_item *it = &f->items[near[k]];
            float dx = fin(it->x) - sx, dy = fin(it->y) - sy;
            c[0] = 1.0f;
            c[1] = it->owner == g->self ? 1.0f : 0.0f;
            c[2] = (g->opp >= 0 && it->owner == g->opp) ? 1.0f : 0.0f;
            c[3] = clampf(dx * 0.05f, -10.0f, 10.0f);
            c[4] = clampf(dy * 0.05f, -10.0f, 10.0f);
            c[5] = clampf(it->vx * 0.5f, -10.0f, 10.0f);
            c[6] = clampf(it->vy * 0.5f, -10.0f, 10.0f);
            c[7] = clampf(sqrtf(nd[k]) * 0.005f, 0.0f, 2.0f);
            item_type[k] = item_id(it->type);
        }
        c += CPHIL_EMBED_ITEM_FEATS;
    }
    if (L->cfg.prev_action) {
        memset(c, 0, sizeof(float) * CPHIL_EMBED_PREV_FEATS);
        if (s->present & CPHIL_PRESENT_PRE) {
            static const uint16_t bits[8] = {0x0100, 0x0200, 0x0400, 0x0800, 0x0010, 0x0040, 0x0020, 0x0008};
            for (int i = 0; i < 8; i++) c[i] = (s->pre.buttons_physical & bits[i]) ? 1.0f : 0.0f;
            c[8] = clampf(s->pre.joystick_x, -1.0f, 1.0f);
            c[9] = clampf(s->pre.joystick_y, -1.0f, 1.0f);
            c[10] = clampf(s->pre.cstick_x, -1.0f, 1.0f);
            c[11] = clampf(s->pre.cstick_y, -1.0f, 1.0f);
            float l = clampf(s->pre.trigger_l, 0.0f, 1.0f), r = clampf(s->pre.trigger_r, 0.0f, 1.0f);
            c[12] = l > r ? l : r;
        }
        c += CPHIL_EMBED_PREV_FEATS;
    }
    /* ids: absolute dense columns */
    const cphil_embed_block *b = &L->blocks[L->n_blocks - L->n_ids];
    ids[0] = b[0].offset + (s_ok ? action_id(s->post.action_state) : CPHIL_EMBED_ACTION_VOCAB - 1);
    ids[1] = b[1].offset + (o_ok ? action_id(o->post.action_state) : CPHIL_EMBED_ACTION_VOCAB - 1);
    ids[2] = b[2].offset + (s_ok ? char_id(s->post.character) : CPHIL_EMBED_CHAR_VOCAB - 1);
    ids[3] = b[3].offset + (o_ok ? char_id(o->post.character) : CPHIL_EMBED_CHAR_VOCAB - 1);
    const cphil_char_frame *sn = &f->ports[g->self][1];
    const cphil_char_frame *on = g->opp >= 0 ? &f->ports[g->opp][1] : NULL;
    ids[4] = b[4].offset + ((sn->present & CPHIL_PRESENT_POST) ? action_id(sn->post.action_state) : CPHIL_EMBED_ACTION_VOCAB - 1);
    ids[5] = b[5].offset + ((on && (on->present & CPHIL_PRESENT_POST)) ? action_id(on->post.action_state) : CPHIL_EMBED_ACTION_VOCAB - 1);
    ids[6] = b[6].offset + stage_id(g->stage);
    for (int k = 0; k < CPHIL_EMBED_N_ITEMS; k++) ids[7 + k] = b[7 + k].offset + item_type[k];
}
