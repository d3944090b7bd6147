/* synth.c — the synthetic two-player game behind `cphil synth`.
 *
 * Implements a small, deterministic, Melee-like simulation (flat stage with edges and blast
 * zones, dash, jump, jab, shield, hitstun and knockback, deaths and respawns, stocks, Game End)
 * whose two players choose their controller every frame with cphil_synth_rule(), and writes it
 * through the .slp writer (src/slp/slp_writer.c) with consistent Pre and Post frames.
 * Deliberately not: real Melee physics, items, platforms, Nana, rollback. Reference: the rule
 * and the states are documented in docs/data.md; field meanings in reference/slp_format.md 4-7.
 */
#include "game/synth.h"

#include "game/actions.h"
#include "slp/slp_writer.h"

#include <math.h>
#include <string.h>

/* ---- tables ------------------------------------------------------------------------------ */
typedef struct synth_char {
    int ext, internal;
    const char *name;
    float reach, dash, air_speed, jump_v, gravity, fall_speed, weight, jab_damage;
    int jumpsquat;
} synth_char;

static const synth_char chars[] = {
    /* ext int  name       reach dash  air   jump  grav  fall  wt   jab  squat */
    {2, 1, "Fox", 14.0f, 2.2f, 0.83f, 3.7f, 0.23f, 2.8f, 75.f, 4.0f, 3},
    {20, 22, "Falco", 14.0f, 1.9f, 0.83f, 4.1f, 0.17f, 3.1f, 80.f, 4.0f, 5},
    {9, 18, "Marth", 22.0f, 1.8f, 0.90f, 2.6f, 0.085f, 2.2f, 87.f, 3.0f, 4},
    {19, 7, "Sheik", 16.0f, 2.0f, 0.80f, 2.8f, 0.12f, 2.1f, 90.f, 3.5f, 3},
    {0, 2, "Captain Falcon", 15.0f, 2.3f, 1.12f, 3.1f, 0.13f, 2.9f, 104.f, 3.0f, 4},
    {12, 9, "Peach", 13.0f, 1.3f, 1.1f, 2.6f, 0.08f, 1.5f, 90.f, 4.0f, 5},
};

typedef struct synth_stage {
    int ext;
    float edge;
} synth_stage;

/* Stage edges (|x| of the ledge, in game units). */
static const synth_stage stages[] = {
    {32, 85.5657f}, {31, 68.4f}, {28, 77.2713f}, {8, 56.0f}, {3, 87.75f}, {2, 63.3475f},
};

float cphil_stage_edge(int stage_external) {
    for (size_t i = 0; i < CPHIL_ARRAY_LEN(stages); i++)
        if (stages[i].ext == stage_external) return stages[i].edge;
    return 0.0f;
}

static const synth_char *char_by_internal(int internal) {
    for (size_t i = 0; i < CPHIL_ARRAY_LEN(chars); i++)
        if (chars[i].internal == internal) return &chars[i];
    return NULL;
}

float cphil_synth_reach(int character_internal) {
    const synth_char *c = char_by_internal(character_internal);
    return c ? c->reach : 0.0f;
}

/* ---- the rule ----------------------------------------------------------------------------- */
static bool is_shield_state(int a) { return a == CPHIL_ACT_GUARD_ON || a == CPHIL_ACT_GUARD; }
static bool is_ground_actionable(int a) {
    return a == CPHIL_ACT_WAIT || a == CPHIL_ACT_DASH || a == CPHIL_ACT_TURN || is_shield_state(a);
}
static bool is_air_actionable(int a) {
    return a == CPHIL_ACT_JUMP_F || a == CPHIL_ACT_JUMP_AERIAL_F || a == CPHIL_ACT_FALL;
}

void cphil_synth_rule(const cphil_synth_obs *s, const cphil_synth_obs *o, int stage,
                      cphil_controller *out) {
    memset(out, 0, sizeof *out);
    float dx = o->x - s->x, dist = fabsf(dx);
    float dir = dx >= 0.0f ? 1.0f : -1.0f;
    bool facing_toward = dx * s->facing > 0.0f;
    float reach_s = cphil_synth_reach(s->character), reach_o = cphil_synth_reach(o->character);
    if (is_ground_actionable(s->action) && !s->airborne) {
        bool threat = o->action == CPHIL_ACT_ATTACK_11 && o->action_frame <= 5.0f &&
                      dist < reach_o + 6.0f;
        if (threat) { /* R. shield: R digital and full analog R */
            out->buttons = CPHIL_BTN_R;
            out->r_trigger = 1.0f;
        } else if (is_shield_state(s->action)) {
            /* release the shield: neutral */
        } else if (dist < reach_s && facing_toward) {
            out->buttons = CPHIL_BTN_A;
        } else if (dist < reach_s) {
            out->main_x = 0.5f * dir; /* close but facing away: tilt to turn in place */
        } else if (o->airborne && dist < 2.0f * reach_s && o->y < 30.0f) {
            out->buttons = CPHIL_BTN_X;
        } else {
            out->main_x = dir;
        }
    } else if (is_air_actionable(s->action)) {
        float edge = cphil_stage_edge(stage);
        if (edge > 0.0f && fabsf(s->x) > edge) {
            out->main_x = s->x > 0.0f ? -1.0f : 1.0f;
            if (s->jumps > 0 && s->self_y_speed < 0.0f) out->buttons = CPHIL_BTN_X;
        } else {
            out->main_x = dir;
        }
    }
    /* every other state: neutral */
}

/* ---- simulation --------------------------------------------------------------------------- */
typedef struct rng64 {
    uint64_t s;
} rng64;
static uint64_t rng_next(rng64 *r) { /* splitmix64 */
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static float rng_uniform(rng64 *r) { return (float)(rng_next(r) >> 40) / (float)(1u << 24); }

typedef struct sim_player {
    const synth_char *ch;
    int index;
    int action, af;
    float x, y, facing;
    float vx, vy, ax, ay; /* self-induced and attack (knockback) velocities */
    float percent, shield;
    int stocks, jumps, airborne;
    int hitstun, invuln, hit_done;
    int last_hit_by, last_attack;
    uint16_t prev_buttons;
    uint16_t instance, last_hit_instance;
} sim_player;

static void set_action(sim_player *p, int a) {
    if (p->action != a) {
        p->action = a;
        p->af = 0;
        p->instance = (uint16_t)(p->instance + 1 ? p->instance + 1 : 1);
        if (a == CPHIL_ACT_ATTACK_11) p->hit_done = 0;
    }
}

static cphil_synth_obs observe(const sim_player *p) {
    cphil_synth_obs o = {p->action, (float)p->af, p->x, p->y, p->facing, p->airborne, p->jumps,
                         p->vy, p->ch->internal};
    return o;
}

static float sgnf(float v) { return v > 0.0f ? 1.0f : (v < 0.0f ? -1.0f : 0.0f); }
static float decay(float v, float d) {
    if (fabsf(v) <= d) return 0.0f;
    return v - sgnf(v) * d;
}

static bool shield_held(const cphil_controller *c) {
    return (c->buttons & (CPHIL_BTN_R | CPHIL_BTN_L)) || c->l_trigger >= 0.3f || c->r_trigger >= 0.3f;
}

/* Advance one player by one frame with controller c (positions, states; no hits). */
static void step_player(sim_player *p, const cphil_controller *c, int frame, float edge, int *died) {
    uint16_t pressed = (uint16_t)(c->buttons & ~p->prev_buttons);
    p->prev_buttons = c->buttons;
    const synth_char *ch = p->ch;
    int a = p->action;
    /* 1. timed states */
    switch (a) {
    case CPHIL_ACT_ENTRY:
        if (frame >= -39) set_action(p, CPHIL_ACT_WAIT);
        break;
    case CPHIL_ACT_KNEE_BEND:
        if (p->af >= ch->jumpsquat) {
            set_action(p, CPHIL_ACT_JUMP_F);
            p->airborne = 1;
            p->vy = ch->jump_v;
            p->jumps = 1;
        }
        break;
    case CPHIL_ACT_ATTACK_11:
        if (p->af >= 16) set_action(p, CPHIL_ACT_WAIT);
        break;
    case CPHIL_ACT_GUARD_OFF:
        if (p->af >= 8) set_action(p, CPHIL_ACT_WAIT);
        break;
    case CPHIL_ACT_GUARD_SET_OFF:
        if (p->af >= 5) set_action(p, shield_held(c) ? CPHIL_ACT_GUARD : CPHIL_ACT_GUARD_OFF);
        break;
    case CPHIL_ACT_LANDING:
        if (p->af >= 4) set_action(p, CPHIL_ACT_WAIT);
        break;
    case CPHIL_ACT_DAMAGE_N2:
        if (p->hitstun <= 0) set_action(p, p->airborne ? CPHIL_ACT_FALL : CPHIL_ACT_WAIT);
        break;
    case CPHIL_ACT_DAMAGE_FLY_N:
        if (p->hitstun <= 0) set_action(p, p->airborne ? CPHIL_ACT_FALL : CPHIL_ACT_WAIT);
        break;
    case CPHIL_ACT_DEAD_DOWN: case 1: case 2: case 3:
        if (p->af >= 45 && p->stocks > 0) {
            set_action(p, CPHIL_ACT_REBIRTH);
            p->x = p->index == 0 ? -25.0f : 25.0f;
            p->y = 60.0f;
            p->percent = 0.0f;
            p->shield = 60.0f;
            p->vx = p->vy = p->ax = p->ay = 0.0f;
            p->airborne = 1;
            p->jumps = 1;
        }
        break;
    case CPHIL_ACT_REBIRTH:
        p->y -= 0.5f;
        if (p->af >= 20) set_action(p, CPHIL_ACT_REBIRTH_WAIT);
        break;
    case CPHIL_ACT_REBIRTH_WAIT:
        if (p->af >= 30) {
            set_action(p, CPHIL_ACT_FALL);
            p->invuln = 90;
        }
        break;
    case CPHIL_ACT_WAIT:
    case CPHIL_ACT_DASH:
    case CPHIL_ACT_TURN:
        if (shield_held(c) && p->shield > 10.0f) {
            set_action(p, CPHIL_ACT_GUARD_ON);
            p->vx = 0.0f;
        } else if (pressed & CPHIL_BTN_A) {
            set_action(p, CPHIL_ACT_ATTACK_11);
            p->vx = 0.0f;
        } else if (pressed & (CPHIL_BTN_X | CPHIL_BTN_Y)) {
            set_action(p, CPHIL_ACT_KNEE_BEND);
        } else if (fabsf(c->main_x) >= 0.3f && fabsf(c->main_x) < 0.8f) {
            set_action(p, CPHIL_ACT_TURN); /* a tilt turns in place */
            p->facing = sgnf(c->main_x);
            p->vx = 0.0f;
        } else if (fabsf(c->main_x) >= 0.8f) {
            set_action(p, CPHIL_ACT_DASH);
            p->facing = sgnf(c->main_x);
            p->vx = p->facing * ch->dash;
        } else {
            set_action(p, CPHIL_ACT_WAIT);
            p->vx = 0.0f;
        }
        break;
    case CPHIL_ACT_GUARD_ON:
        if (!shield_held(c)) set_action(p, CPHIL_ACT_GUARD_OFF);
        else if (p->af >= 3) set_action(p, CPHIL_ACT_GUARD);
        break;
    case CPHIL_ACT_GUARD:
        if (!shield_held(c) || p->shield <= 0.0f) set_action(p, CPHIL_ACT_GUARD_OFF);
        break;
    case CPHIL_ACT_JUMP_F:
    case CPHIL_ACT_JUMP_AERIAL_F:
    case CPHIL_ACT_FALL:
        if ((pressed & (CPHIL_BTN_X | CPHIL_BTN_Y)) && p->jumps > 0) {
            set_action(p, CPHIL_ACT_JUMP_AERIAL_F);
            p->vy = ch->jump_v * 0.9f;
            p->jumps--;
        } else if (a != CPHIL_ACT_FALL && p->vy < 0.0f) {
            set_action(p, CPHIL_ACT_FALL);
        }
        if (c->main_x != 0.0f) {
            p->vx += c->main_x * 0.08f;
            if (p->vx > ch->air_speed) p->vx = ch->air_speed;
            if (p->vx < -ch->air_speed) p->vx = -ch->air_speed;
        } else {
            p->vx = decay(p->vx, 0.02f);
        }
        break;
    default:
        break;
    }
    a = p->action;
    bool dead = a <= 3;
    bool scripted = dead || a == CPHIL_ACT_REBIRTH || a == CPHIL_ACT_REBIRTH_WAIT || a == CPHIL_ACT_ENTRY;
    /* 2. shield */
    if (is_shield_state(a)) p->shield -= 0.28f;
    else if (p->shield < 60.0f) p->shield = fminf(60.0f, p->shield + 0.07f);
    if (p->shield < 0.0f) p->shield = 0.0f;
    /* 3. motion */
    if (!scripted) {
        if (p->airborne) {
            p->vy -= ch->gravity;
            if (p->vy < -ch->fall_speed) p->vy = -ch->fall_speed;
        }
        p->ax = decay(p->ax, 0.051f);
        p->ay = p->airborne ? decay(p->ay, 0.051f) : 0.0f;
        p->x += p->vx + p->ax;
        if (p->airborne) p->y += p->vy + p->ay;
        if (!p->airborne && fabsf(p->x) > edge) { /* walked or slid off the edge */
            p->airborne = 1;
            p->vy = 0.0f;
            if (is_ground_actionable(a) || a == CPHIL_ACT_ATTACK_11 || a == CPHIL_ACT_LANDING ||
                a == CPHIL_ACT_GUARD_OFF || a == CPHIL_ACT_GUARD_SET_OFF || a == CPHIL_ACT_KNEE_BEND)
                set_action(p, CPHIL_ACT_FALL);
        }
        if (p->airborne && p->y <= 0.0f && p->vy + p->ay <= 0.0f && fabsf(p->x) <= edge &&
            p->y > -10.0f) { /* land */
            p->y = 0.0f;
            p->airborne = 0;
            p->vy = p->ay = 0.0f;
            p->jumps = 2;
            if (is_air_actionable(p->action)) {
                set_action(p, CPHIL_ACT_LANDING);
                p->vx = 0.0f;
            } else if (p->action == CPHIL_ACT_DAMAGE_FLY_N) {
                set_action(p, CPHIL_ACT_DAMAGE_N2);
                p->vx = 0.0f;
            }
        }
        if (!p->airborne) p->y = 0.0f;
        /* blast zones */
        int dead_as = -1;
        if (p->x < -200.0f) dead_as = 1;
        else if (p->x > 200.0f) dead_as = 2;
        else if (p->y < -110.0f) dead_as = 0;
        else if (p->y > 180.0f) dead_as = 3;
        if (dead_as >= 0) {
            set_action(p, dead_as);
            p->stocks--;
            p->vx = p->vy = p->ax = p->ay = 0.0f;
            p->hitstun = 0;
            *died = 1;
        }
    }
}

/* Does attacker a's jab hit defender d this frame? (active frames 3-5 of ATTACK_11) */
static bool can_hit(const sim_player *a, const sim_player *d) {
    if (a->action != CPHIL_ACT_ATTACK_11 || a->hit_done || a->af < 3 || a->af > 5) return false;
    int da = d->action;
    if (da <= 3 || da == CPHIL_ACT_REBIRTH || da == CPHIL_ACT_REBIRTH_WAIT || d->invuln > 0) return false;
    float dx = d->x - a->x;
    return fabsf(dx) <= a->ch->reach && dx * a->facing >= 0.0f && fabsf(d->y - a->y) <= 15.0f;
}

static void apply_hit(sim_player *a, sim_player *d, rng64 *r) {
    int da = d->action;
    a->hit_done = 1;
    float dir = a->facing;
    if (is_shield_state(da) || da == CPHIL_ACT_GUARD_SET_OFF) {
        d->shield -= a->ch->jab_damage * 1.5f;
        if (d->shield < 0.0f) d->shield = 0.0f;
        set_action(d, CPHIL_ACT_GUARD_SET_OFF);
        d->af = 0;
        d->ax = dir * 0.6f;
        return;
    }
    a->last_attack = 2; /* jab */
    d->last_hit_by = a->index;
    d->last_hit_instance = a->instance;
    d->percent += a->ch->jab_damage;
    float kb = (0.4f + d->percent * 0.035f * (100.0f / d->ch->weight)) * (0.85f + 0.3f * rng_uniform(r));
    d->vx = 0.0f;
    if (kb < 1.6f && !d->airborne) {
        set_action(d, CPHIL_ACT_DAMAGE_N2);
        d->af = 0;
        d->hitstun = (int)(kb * 8.0f) + 4;
        d->ax = dir * kb;
    } else {
        set_action(d, CPHIL_ACT_DAMAGE_FLY_N);
        d->af = 0;
        d->airborne = 1;
        d->vy = 0.0f;
        d->hitstun = (int)(kb * 10.0f);
        d->ax = dir * kb * 0.8f;
        d->ay = kb * 0.6f;
    }
    d->facing = -dir;
}

static void fill_post(const sim_player *p, int32_t frame, cphil_slpw_post *e) {
    memset(e, 0, sizeof *e);
    e->frame = frame;
    e->index = (uint8_t)p->index;
    e->character = (uint8_t)p->ch->internal;
    e->action = (uint16_t)p->action;
    e->x = p->x;
    e->y = p->y;
    e->facing = p->facing;
    e->percent = p->percent;
    e->shield = p->shield;
    e->last_attack = (uint8_t)p->last_attack;
    e->last_hit_by = (uint8_t)(p->last_hit_by >= 0 ? p->last_hit_by : 6);
    e->stocks = (uint8_t)(p->stocks > 0 ? p->stocks : 0);
    e->action_frame = (float)p->af;
    if (p->invuln > 0) e->flags[1] |= 0x04;
    if (is_shield_state(p->action) || p->action == CPHIL_ACT_GUARD_SET_OFF) e->flags[2] |= 0x80;
    if (p->hitstun > 0) e->flags[3] |= 0x02;
    if (p->action <= 3) e->flags[4] |= 0x40;
    e->misc = p->hitstun > 0 ? (float)p->hitstun : 0.0f;
    e->airborne = (uint8_t)p->airborne;
    e->ground = p->airborne ? 0 : 1;
    e->jumps = (uint8_t)p->jumps;
    e->hurtbox = p->invuln > 0 || p->action == CPHIL_ACT_REBIRTH || p->action == CPHIL_ACT_REBIRTH_WAIT ? 1 : 0;
    e->self_air_x = p->airborne ? p->vx : 0.0f;
    e->self_y = p->airborne ? p->vy : 0.0f;
    e->attack_x = p->ax;
    e->attack_y = p->ay;
    e->self_ground_x = p->airborne ? 0.0f : p->vx;
    e->last_hit_instance = p->last_hit_instance;
    e->instance = p->action <= 3 ? 0 : p->instance;
}

static void fill_pre(const sim_player *p, const cphil_controller *c, int32_t frame, uint32_t seed,
                     cphil_slpw_pre *e) {
    memset(e, 0, sizeof *e);
    e->frame = frame;
    e->index = (uint8_t)p->index;
    e->seed = seed;
    e->action = (uint16_t)p->action;
    e->x = p->x;
    e->y = p->y;
    e->facing = p->facing;
    e->joy_x = c->main_x;
    e->joy_y = c->main_y;
    e->c_x = c->c_x;
    e->c_y = c->c_y;
    float t = fmaxf(c->l_trigger, c->r_trigger);
    e->trigger = t;
    e->buttons = c->buttons;
    e->buttons_processed = c->buttons | (t > 0.0f ? 0x80000000u : 0u) |
                           (c->main_x <= -0.3f ? 0x00040000u : 0u) | (c->main_x >= 0.3f ? 0x00080000u : 0u);
    e->l = c->l_trigger;
    e->r = c->r_trigger;
    e->raw_x = (int8_t)lrintf(c->main_x * 80.0f);
    e->raw_y = (int8_t)lrintf(c->main_y * 80.0f);
    e->raw_cx = (int8_t)lrintf(c->c_x * 80.0f);
    e->raw_cy = (int8_t)lrintf(c->c_y * 80.0f);
    e->percent = p->percent;
}

cphil_status cphil_synth_game(const cphil_synth_opts *opts, int index, uint8_t **data,
                              size_t *size, cphil_synth_summary *summary) {
    *data = NULL;
    *size = 0;
    rng64 r = {opts->seed * 0x100000001B3ull + (uint64_t)index * 0x9E3779B97F4A7C15ull + 1};
    for (int i = 0; i < 4; i++) rng_next(&r);
    int stocks = opts->stocks > 0 ? opts->stocks : 4;
    int max_seconds = opts->max_seconds > 0 ? opts->max_seconds : 180;

    sim_player pl[2];
    memset(pl, 0, sizeof pl);
    const synth_stage *st = &stages[rng_next(&r) % CPHIL_ARRAY_LEN(stages)];
    for (int i = 0; i < 2; i++) {
        pl[i].ch = &chars[rng_next(&r) % CPHIL_ARRAY_LEN(chars)];
        pl[i].index = i;
        pl[i].action = CPHIL_ACT_ENTRY;
        pl[i].x = (i == 0 ? -1.0f : 1.0f) * (20.0f + 30.0f * rng_uniform(&r));
        pl[i].facing = i == 0 ? 1.0f : -1.0f;
        pl[i].percent = 0.0f;
        pl[i].shield = 60.0f;
        pl[i].stocks = stocks;
        pl[i].jumps = 2;
        pl[i].last_hit_by = -1;
        pl[i].af = 0;
        pl[i].instance = (uint16_t)(1 + i * 1000);
    }

    cphil_slpw_game g;
    memset(&g, 0, sizeof g);
    g.stage = (uint16_t)st->ext;
    g.random_seed = (uint32_t)rng_next(&r);
    for (int i = 0; i < 4; i++) g.players[i].type = 3;
    for (int i = 0; i < 2; i++) {
        g.players[i].type = 0;
        g.players[i].character_ext = (uint8_t)pl[i].ch->ext;
        g.players[i].stocks = (uint8_t)stocks;
        snprintf(g.players[i].netplay, sizeof g.players[i].netplay, "synth%d", i + 1);
        snprintf(g.players[i].code, sizeof g.players[i].code, "SYN#%d", i + 1);
    }
    snprintf(g.start_at, sizeof g.start_at, "2026-01-01T%02d:%02d:%02dZ", (index / 3600) % 24,
             (index / 60) % 60, index % 60);

    cphil_slpw w;
    cphil_status s = cphil_slpw_begin(&w, &g);
    if (s) {
        cphil_slpw_free(&w);
        return s;
    }
    int last = max_seconds * 60;
    int end_frame = last, loser = -1;
    for (int32_t f = -123; f <= last; f++) {
        cphil_controller c[2];
        for (int i = 0; i < 2; i++) {
            cphil_synth_obs so = observe(&pl[i]), oo = observe(&pl[1 - i]);
            if (f < -39) memset(&c[i], 0, sizeof c[i]);
            else cphil_synth_rule(&so, &oo, st->ext, &c[i]);
        }
        uint32_t seed = (uint32_t)rng_next(&r);
        cphil_slpw_pre pre[2];
        cphil_slpw_post post[2];
        for (int i = 0; i < 2; i++) fill_pre(&pl[i], &c[i], f, seed, &pre[i]);
        int died[2] = {0, 0};
        for (int i = 0; i < 2; i++) step_player(&pl[i], &c[i], f, st->edge, &died[i]);
        /* hits use the positions after both moved; both checks see the same states, so
         * simultaneous trades happen */
        bool h01 = can_hit(&pl[0], &pl[1]), h10 = can_hit(&pl[1], &pl[0]);
        if (h01) apply_hit(&pl[0], &pl[1], &r);
        if (h10) apply_hit(&pl[1], &pl[0], &r);
        for (int i = 0; i < 2; i++) {
            if (pl[i].hitstun > 0) pl[i].hitstun--;
            if (pl[i].invuln > 0) pl[i].invuln--;
            pl[i].af++;
            fill_post(&pl[i], f, &post[i]);
        }
        cphil_slpw_frame(&w, f, seed, pre, post, 2);
        for (int i = 0; i < 2; i++)
            if (died[i] && pl[i].stocks <= 0) loser = i;
        if (loser >= 0) {
            end_frame = f;
            break;
        }
    }
    int8_t place[4] = {-1, -1, -1, -1};
    int method, winner;
    if (loser >= 0) {
        method = 2;
        winner = 1 - loser;
    } else {
        method = 1;
        if (pl[0].stocks != pl[1].stocks) winner = pl[0].stocks > pl[1].stocks ? 0 : 1;
        else winner = pl[0].percent <= pl[1].percent ? 0 : 1;
    }
    place[winner] = 0;
    place[1 - winner] = 1;
    cphil_slpw_end(&w, (uint8_t)method, -1, place);
    const uint8_t *bytes;
    size_t n;
    s = cphil_slpw_finish(&w, &bytes, &n);
    if (s) {
        cphil_slpw_free(&w);
        return s;
    }
    *data = w.buf; /* hand the buffer over */
    *size = n;
    w.buf = NULL;
    cphil_slpw_free(&w);
    if (summary) {
        summary->frames = end_frame + 124;
        summary->last_frame = end_frame;
        summary->end_method = method;
        summary->winner_port = winner + 1;
        summary->stage = st->ext;
        for (int i = 0; i < 2; i++) {
            summary->char_ext[i] = pl[i].ch->ext;
            summary->stocks_left[i] = pl[i].stocks > 0 ? pl[i].stocks : 0;
        }
    }
    return CPHIL_OK;
}
