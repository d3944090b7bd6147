/* agent_bot.c — the agent driven from the compact per-frame structs of include/cphil.h
 * (cphil_bot_game, cphil_bot_frame) instead of the replay parser's types, for harnesses that read
 * the game another way. A bot frame is written into a parser frame on the stack (only the fields
 * the embedding reads; everything else zero) and goes through cphil_agent_step, so the two entry
 * points share one embedding, engine and sampler and cannot drift apart. Allocates nothing.
 * Also the reverse direction (parser types -> bot structs), which the equivalence test and
 * harnesses that have replays use.
 */
#include "cphil.h"

#include "core/core.h"
#include "game/embed.h"

#include <string.h>

static int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

/* Physical button bits of the Pre-Frame, in the order of cphil_bot_pad.button (A B X Y Z L R D-up):
 * the order and bits the embedding's previous-controller features read. */
static const uint16_t pad_bits[8] = {0x0100, 0x0200, 0x0400, 0x0800, 0x0010, 0x0040, 0x0020, 0x0008};

cphil_bot_game cphil_bot_game_default(void) {
    cphil_bot_game g;
    memset(&g, 0, sizeof g);
    g.fields = CPHIL_BOT_HAS_ALL;
    return g;
}

void cphil_bot_game_from_replay(const cphil_replay *r, cphil_bot_game *out) {
    memset(out, 0, sizeof *out);
    out->stage = r->game.stage;
    for (int p = 0; p < CPHIL_SLP_PORTS; p++) out->playing[p] = r->game.players[p].type != 3;
    out->fields = cphil_embed_replay_fields(r);
}

static void player_from(const cphil_char_frame *c, cphil_bot_player *o) {
    memset(o, 0, sizeof *o);
    if (c->present & CPHIL_PRESENT_POST) {
        const cphil_post_frame *p = &c->post;
        o->present = 1;
        o->character = p->character;
        o->action_state = p->action_state;
        o->action_frame = p->action_frame;
        o->x = p->x;
        o->y = p->y;
        o->facing = p->facing;
        o->percent = p->percent;
        o->shield = p->shield;
        o->stocks = p->stocks;
        o->on_ground = !p->airborne;
        o->jumps_left = p->jumps;
        o->hitstun_left = (p->flags4 & 0x02) ? p->misc_as : 0.0f; /* misc holds other things outside hitstun */
        o->hitlag_left = p->hitlag;
        o->in_hitlag = (p->flags2 & 0x20) != 0;
        o->shielding = (p->flags3 & 0x80) != 0;
        o->fastfall = (p->flags2 & 0x08) != 0;
        o->dead = (p->flags5 & 0x40) != 0;
        o->invulnerable = p->hurtbox != 0;
        o->speed_air_x = p->self_air_x;
        o->speed_y = p->self_y;
        o->speed_attack_x = p->attack_x;
        o->speed_attack_y = p->attack_y;
        o->speed_ground_x = p->self_ground_x;
    }
    if (c->present & CPHIL_PRESENT_PRE) {
        const cphil_pre_frame *q = &c->pre;
        o->pad_present = 1;
        for (int i = 0; i < 8; i++) o->pad.button[i] = (q->buttons_physical & pad_bits[i]) != 0;
        o->pad.main_x = q->joystick_x;
        o->pad.main_y = q->joystick_y;
        o->pad.c_x = q->cstick_x;
        o->pad.c_y = q->cstick_y;
        o->pad.l = q->trigger_l;
        o->pad.r = q->trigger_r;
    }
}

cphil_status cphil_bot_frame_from_frame(const cphil_frame *f, cphil_bot_frame *out) {
    if (f->n_items > CPHIL_BOT_MAX_ITEMS)
        return cphil_err(CPHIL_E_ARG, "frame %d has %u items; a cphil_bot_frame holds at most %d", f->frame, f->n_items,
                         CPHIL_BOT_MAX_ITEMS);
    memset(out, 0, sizeof *out);
    out->frame = f->frame;
    for (int p = 0; p < CPHIL_SLP_PORTS; p++) {
        player_from(&f->ports[p][0], &out->player[p]);
        player_from(&f->ports[p][1], &out->follower[p]);
    }
    out->n_items = (int)f->n_items;
    for (uint32_t i = 0; i < f->n_items; i++) {
        const cphil_item *it = &f->items[i];
        out->items[i] = (cphil_bot_item){it->type, it->owner, it->x, it->y, it->vx, it->vy};
    }
    return CPHIL_OK;
}

/* A bot player into the parser's character frame: the fields the embedding reads, set so that it
 * computes from them exactly what it computes from the replay's own bytes. */
static void player_to(const cphil_bot_player *o, cphil_char_frame *c) {
    memset(c, 0, sizeof *c);
    if (o->present) {
        cphil_post_frame *p = &c->post;
        c->present |= CPHIL_PRESENT_POST;
        p->character = (uint8_t)o->character;
        p->action_state = (uint16_t)o->action_state;
        p->action_frame = o->action_frame;
        p->x = o->x;
        p->y = o->y;
        p->facing = o->facing;
        p->percent = o->percent;
        p->shield = o->shield;
        p->stocks = (uint8_t)clampi(o->stocks, 0, 255);
        p->airborne = !o->on_ground;
        p->jumps = (uint8_t)clampi(o->jumps_left, 0, 255);
        /* the embedding reads misc only in hitstun; 0 frames left reads as 0 either way */
        p->flags4 = 0x02;
        p->misc_as = o->hitstun_left;
        p->hitlag = o->hitlag_left;
        p->flags2 = (uint8_t)((o->in_hitlag ? 0x20 : 0) | (o->fastfall ? 0x08 : 0));
        p->flags3 = o->shielding ? 0x80 : 0;
        p->flags5 = o->dead ? 0x40 : 0;
        p->hurtbox = o->invulnerable ? 1 : 0;
        p->self_air_x = o->speed_air_x;
        p->self_y = o->speed_y;
        p->attack_x = o->speed_attack_x;
        p->attack_y = o->speed_attack_y;
        p->self_ground_x = o->speed_ground_x;
    }
    if (o->pad_present) {
        cphil_pre_frame *q = &c->pre;
        c->present |= CPHIL_PRESENT_PRE;
        for (int i = 0; i < 8; i++)
            if (o->pad.button[i]) q->buttons_physical |= pad_bits[i];
        q->joystick_x = o->pad.main_x;
        q->joystick_y = o->pad.main_y;
        q->cstick_x = o->pad.c_x;
        q->cstick_y = o->pad.c_y;
        q->trigger_l = o->pad.l;
        q->trigger_r = o->pad.r;
    }
}

cphil_status cphil_agent_step_bot(cphil_agent *a, const cphil_bot_frame *s, cphil_controller_state *out) {
    if (!a || !s || !out) return cphil_err(CPHIL_E_ARG, "cphil_agent_step_bot: NULL argument");
    if (s->n_items < 0 || s->n_items > CPHIL_BOT_MAX_ITEMS)
        return cphil_err(CPHIL_E_ARG, "cphil_agent_step_bot: n_items %d is not 0..%d", s->n_items, CPHIL_BOT_MAX_ITEMS);
    cphil_frame f;
    memset(&f, 0, sizeof f);
    f.frame = s->frame;
    for (int p = 0; p < CPHIL_SLP_PORTS; p++) {
        player_to(&s->player[p], &f.ports[p][0]);
        player_to(&s->follower[p], &f.ports[p][1]);
    }
    cphil_item items[CPHIL_BOT_MAX_ITEMS];
    for (int i = 0; i < s->n_items; i++) {
        const cphil_bot_item *it = &s->items[i];
        memset(&items[i], 0, sizeof items[i]);
        items[i].type = (uint16_t)it->type;
        items[i].owner = (int8_t)clampi(it->owner, -1, 127);
        items[i].x = it->x;
        items[i].y = it->y;
        items[i].vx = it->vx;
        items[i].vy = it->vy;
    }
    f.items = items;
    f.n_items = (uint32_t)s->n_items;
    return cphil_agent_step(a, &f, out);
}
