/* slp_stream.c — the replay parser: an incremental state machine over the bytes of a .slp file
 * (UBJSON container, event stream, metadata) or of a bare event stream (what Slippi Dolphin
 * sends live). Bytes may come in pieces of any size; an event that straddles two pieces is
 * assembled in a small buffer, every other event is parsed in place. Events go straight into
 * the frame table (slp_table.c); a frame is reported (on_frame) once, when final.
 *
 * Follows reference/slp_format.md: payload sizes only from Event Payloads (0x35); declared but
 * unknown codes skipped by size; an undeclared code is the end of the usable data in a
 * raw-length-0 (still recording) file, an error before Game Start or in a bare stream field presence decided
 * (and, after Game Start in a sized raw element, the start of damage: the frames before it are
 * kept with a warning, as slippi-js keeps them; see damage()); field presence decided
 * by payload size, never by version alone (3.17.0 files carry 3.18.0 stage events); the last
 * copy of a rolled-back frame is final; the Gecko list is reassembled from Message Splitter
 * pieces using their own size fields (the 0x3D declared size wraps at 65 536).
 * Deliberately not here: statistics (stocks, conversions), the legacy headerless 0.x stream
 * with assumed payload sizes (slippi-js accepts a first byte 0x36; we require 0x35 or '{'). */
#include "slp/slp_internal.h"
#include "slp/sjis.h"

#include <stdarg.h>

/* S_SKIP: after damage in a sized raw element, the rest of it is passed over to reach the
 * metadata. */
enum { S_HEADER, S_EVENTS, S_SKIP, S_TAIL, S_DONE };

#define SLP_TAIL_MAX (16u << 20)  /* metadata larger than this is refused */
#define SLP_SPLIT_MAX (16u << 20) /* a reassembled message larger than this is refused */

struct cphil_slp_stream {
    cphil_replay *r;
    cphil_slp_callbacks cb;
    char name[256];
    cphil_status failed; /* sticky failure */
    char fail_msg[1024];
    int state;
    uint64_t off;           /* file offset of the next byte */
    uint8_t hdr[15];
    uint32_t hdr_len;
    bool file_mode;         /* '{' container (else a bare event stream) */
    bool bounded;           /* raw length known */
    uint64_t raw_left;
    uint8_t *pend;          /* an event split across feeds */
    uint32_t pend_len, pend_need, pend_cap;
    uint64_t pend_off;
    uint8_t *tail;          /* bytes after the raw element (metadata) */
    size_t tail_len, tail_cap;
    uint64_t tail_off;
    bool have_payloads, have_start, bookend_mode, stopped;
    bool frame_open, have_frames;
    int32_t open_frame;
    int64_t newest;         /* newest frame number seen (int64: first - 1 may be below INT32_MIN) */
    uint32_t open_row;
    uint32_t n_final;
    uint64_t late_resends;
    bool in_resend;         /* the current copy re-sends a frame */
    bool copy_reported;     /* on_copy already ran for the open copy */
    cphil_slp_copy_fn on_copy;
    uint8_t *split;
    uint32_t split_len, split_cap;
    bool finished, taken;
    cphil_status finish_status;
    char finish_msg[1024];
    cphil_frame frame;      /* scratch for on_frame */
};

/* Does the event e[0..len) carry the field at offset o of width w? */
#define HAVE(o, w) ((uint32_t)(o) + (uint32_t)(w) <= len)

static const uint8_t k_sig[11] = {'{', 'U', 3, 'r', 'a', 'w', '[', '$', 'U', '#', 'l'};

static cphil_status fail(cphil_slp_stream *s, cphil_status st, uint64_t off, const char *fmt, ...) CPHIL_PRINTF(4, 5);
static cphil_status fail(cphil_slp_stream *s, cphil_status st, uint64_t off, const char *fmt, ...) {
    char msg[700];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(s->fail_msg, sizeof s->fail_msg, "%.256s: byte %llu: %s", s->name, (unsigned long long)off, msg);
    s->failed = st;
    return cphil_err(st, "%s", s->fail_msg);
}

/* ---- frames ---------------------------------------------------------------------------- */

static void finalize_through(cphil_slp_stream *s, int64_t last_row) {
    cphil_replay *r = s->r;
    if (last_row >= (int64_t)r->n_frames) last_row = (int64_t)r->n_frames - 1;
    while ((int64_t)s->n_final <= last_row) {
        cphil_slp_zero_absent(r, s->n_final);
        if (s->cb.on_frame) {
            cphil_replay_get_frame(r, s->n_final, &s->frame);
            s->cb.on_frame(s->cb.user, r, &s->frame);
        }
        s->n_final++;
    }
}

/* on_copy for the open copy, once. */
static void report_copy(cphil_slp_stream *s) {
    if (!s->on_copy || !s->frame_open || s->copy_reported) return;
    s->copy_reported = true;
    cphil_replay *r = s->r;
    /* absent characters' fields may still hold a superseded copy's values until the row is
     * final: gather, then blank what is absent */
    cphil_replay_get_frame(r, s->open_row, &s->frame);
    for (int p = 0; p < CPHIL_SLP_PORTS; p++)
        for (int k = 0; k < 2; k++) {
            cphil_char_frame *c = &s->frame.ports[p][k];
            if (!(c->present & CPHIL_PRESENT_PRE)) memset(&c->pre, 0, sizeof c->pre);
            if (!(c->present & CPHIL_PRESENT_POST)) memset(&c->post, 0, sizeof c->post);
        }
    s->on_copy(s->cb.user, r, &s->frame);
}

/* A new copy of frame f begins (Frame Start, or a frame event for another frame number). */
static cphil_status begin_copy(cphil_slp_stream *s, int32_t f, uint64_t off) {
    cphil_replay *r = s->r;
    if (!s->bookend_mode) report_copy(s); /* without Bookends a copy ends when the next begins */
    if (!s->have_frames) {
        s->have_frames = true;
        r->first_frame = f;
        s->newest = (int64_t)f - 1;
    }
    if (f < r->first_frame)
        return fail(s, CPHIL_E_FORMAT, off, "frame number %d is before the first frame %d", (int)f, (int)r->first_frame);
    if ((int64_t)f > s->newest + 1)
        return fail(s, CPHIL_E_FORMAT, off, "frame number %d skips frames: expected at most %d (the next frame)",
                    (int)f, (int)(s->newest + 1));
    uint32_t row = (uint32_t)((int64_t)f - r->first_frame);
    if (!s->bookend_mode && row > 0) finalize_through(s, (int64_t)row - 1);
    if (row >= r->n_frames) {
        cphil_status st = cphil_slp_reserve(r, row + 1);
        if (st) return fail(s, st, off, "%s", cphil_last_error());
        r->n_frames = row + 1;
        r->last_frame = f;
        cphil_slp_row_init(r, row);
        if (s->in_resend) r->rollback_runs++;
        s->in_resend = false;
    } else {
        s->in_resend = true;
        r->rollback_resends++;
        if (row < s->n_final) s->late_resends++;
        cphil_slp_clear_row(r, row);
    }
    if (r->copies[row] < 255) r->copies[row]++;
    r->frame_copies++;
    s->frame_open = true;
    s->copy_reported = false;
    s->open_frame = f;
    s->open_row = row;
    if (f > s->newest) s->newest = f;
    return CPHIL_OK;
}

static inline cphil_status frame_for(cphil_slp_stream *s, int32_t f, uint64_t off) {
    if (s->frame_open && s->open_frame == f) return CPHIL_OK;
    return begin_copy(s, f, off);
}

/* ---- events ---------------------------------------------------------------------------- */

static cphil_status ev_payloads(cphil_slp_stream *s, const uint8_t *e, uint32_t len, uint64_t off) {
    cphil_replay *r = s->r;
    uint32_t n = e[1];
    if (n == 0 || (n - 1) % 3 != 0)
        return fail(s, CPHIL_E_FORMAT, off, "Event Payloads size %u: expected 3*k+1", n);
    (void)len;
    for (uint32_t i = 0; i < (n - 1) / 3; i++) {
        uint8_t c = e[2 + 3 * i];
        uint16_t sz = rd_u16(e + 3 + 3 * i);
        uint32_t min = 0;
        switch (c) {
        case SLP_EV_PAYLOADS: return fail(s, CPHIL_E_FORMAT, off + 2 + 3 * i, "Event Payloads declares itself (0x35)");
        case SLP_EV_GAME_START: min = 4; break;
        case SLP_EV_PRE: case SLP_EV_POST: min = 6; break;
        case SLP_EV_GAME_END: min = 1; break;
        case SLP_EV_FRAME_START: case SLP_EV_ITEM: case SLP_EV_BOOKEND: min = 4; break;
        case SLP_EV_FOD: case SLP_EV_WHISPY: case SLP_EV_STADIUM: min = 4; break;
        case SLP_EV_SPLIT: min = 516; break;
        default: break;
        }
        if (sz < min)
            return fail(s, CPHIL_E_FORMAT, off + 3 + 3 * i, "Event Payloads gives event 0x%02x %u bytes: expected at least %u",
                        c, sz, min);
        r->declared[c] = true;
        r->payload_size[c] = sz;
    }
    if (!r->declared[SLP_EV_GAME_START])
        return fail(s, CPHIL_E_FORMAT, off, "Event Payloads does not declare Game Start (0x36)");
    s->bookend_mode = r->declared[SLP_EV_BOOKEND];
    s->have_payloads = true;
    return CPHIL_OK;
}

static void sjis_field(char *dst, size_t cap, const uint8_t *e, uint32_t len, uint32_t o, uint32_t w) {
    if (o + w <= len) cphil_sjis_to_utf8(e + o, w, dst, cap, 1);
    else dst[0] = '\0';
}
static void ascii_field(char *dst, size_t cap, const uint8_t *e, uint32_t len, uint32_t o, uint32_t w) {
    size_t k = 0;
    if (o + w <= len)
        for (; k < w && k + 1 < cap && e[o + k]; k++) dst[k] = (char)e[o + k];
    dst[k] = '\0';
}

static cphil_status ev_game_start(cphil_slp_stream *s, const uint8_t *e, uint32_t len, uint64_t off) {
    cphil_replay *r = s->r;
    cphil_game_info *g = &r->game;
    if (s->have_start) return fail(s, CPHIL_E_FORMAT, off, "a second Game Start (0x36)");
    memset(g, 0, sizeof *g);
    memcpy(g->version, e + 1, 4);
    g->payload_size = (uint16_t)(len - 1);
    if (HAVE(0x05, 4)) memcpy(g->game_bitfield, e + 0x05, 4);
    if (HAVE(0x0B, 1)) g->bomb_rain = e[0x0B];
    if (HAVE(0x0D, 1)) g->teams = e[0x0D] != 0;
    if (HAVE(0x10, 1)) g->item_spawn = (int8_t)e[0x10];
    if (HAVE(0x11, 1)) g->self_destruct_score = (int8_t)e[0x11];
    if (HAVE(0x13, 2)) g->stage = rd_u16(e + 0x13);
    if (HAVE(0x15, 4)) g->timer_seconds = rd_u32(e + 0x15);
    if (HAVE(0x28, 5)) memcpy(g->item_bitfield, e + 0x28, 5);
    if (HAVE(0x35, 4)) g->damage_ratio = rd_f32(e + 0x35);
    if (HAVE(0x13D, 4)) g->random_seed = rd_u32(e + 0x13D);
    for (uint32_t i = 0; i < CPHIL_SLP_PORTS; i++) {
        cphil_player_info *p = &g->players[i];
        uint32_t b = 0x65 + 36 * i;
        p->port = (uint8_t)(i + 1);
        p->type = 3;
        if (HAVE(b, 36)) {
            p->character = p->character_stored = e[b];
            p->type = e[b + 0x01];
            p->stocks = e[b + 0x02];
            p->costume = e[b + 0x03];
            p->team_shade = e[b + 0x07];
            p->handicap = e[b + 0x08];
            p->team_id = e[b + 0x09];
            p->player_bitfield = e[b + 0x0C];
            p->cpu_level = e[b + 0x0F];
            p->start_damage = rd_u16(e + b + 0x10);
            p->spawn_damage = rd_u16(e + b + 0x12);
            p->offense_ratio = rd_f32(e + b + 0x18);
            p->defense_ratio = rd_f32(e + b + 0x1C);
            p->model_scale = rd_f32(e + b + 0x20);
        }
        if (HAVE(0x141 + 8 * i, 4)) p->dashback_fix = rd_u32(e + 0x141 + 8 * i);
        if (HAVE(0x145 + 8 * i, 4)) p->shielddrop_fix = rd_u32(e + 0x145 + 8 * i);
        sjis_field(p->nametag, sizeof p->nametag, e, len, 0x161 + 16 * i, 16);
        sjis_field(p->display_name, sizeof p->display_name, e, len, 0x1A5 + 31 * i, 31);
        sjis_field(p->connect_code, sizeof p->connect_code, e, len, 0x221 + 10 * i, 10);
        ascii_field(p->user_id, sizeof p->user_id, e, len, 0x249 + 29 * i, 29);
    }
    if (HAVE(0x1A1, 1)) g->is_pal = e[0x1A1] != 0;
    if (HAVE(0x1A2, 1)) g->frozen_ps = e[0x1A2] != 0;
    if (HAVE(0x1A3, 2)) {
        g->has_scene = true;
        g->minor_scene = e[0x1A3];
        g->major_scene = e[0x1A4];
    }
    if (HAVE(0x2BD, 1)) {
        g->has_language = true;
        g->language = e[0x2BD];
    }
    if (HAVE(0x2BE, 51 + 8)) {
        g->has_match_info = true;
        ascii_field(g->match_id, sizeof g->match_id, e, len, 0x2BE, 51);
        g->game_number = rd_u32(e + 0x2F1);
        g->tiebreaker_number = rd_u32(e + 0x2F5);
    }
    s->have_start = true;
    r->has_game_start = true;
    /* Size the table from the raw length when nobody reserved rows: a frame takes at least one
     * Pre and one Post per player plus Frame Start and Bookend, so this over-estimates (items,
     * re-sends); capped at 65 536 rows (18 min) so a corrupt raw length costs little. */
    slp_store *st = r->priv_;
    if (s->bounded && st->cap == 0) {
        uint64_t per = 0;
        for (int i = 0; i < CPHIL_SLP_PORTS; i++)
            if (g->players[i].type != 3) per += 2u + r->payload_size[SLP_EV_PRE] + r->payload_size[SLP_EV_POST];
        if (r->declared[SLP_EV_FRAME_START]) per += 1u + r->payload_size[SLP_EV_FRAME_START];
        if (r->declared[SLP_EV_BOOKEND]) per += 1u + r->payload_size[SLP_EV_BOOKEND];
        if (per) {
            uint64_t rows = s->raw_left / per + 16;
            cphil_status rs = cphil_slp_reserve(r, (uint32_t)(rows < 65536 ? rows : 65536));
            if (rs) return fail(s, rs, off, "%s", cphil_last_error());
        }
    }
    if (s->cb.on_game_start) s->cb.on_game_start(s->cb.user, r);
    return CPHIL_OK;
}

static inline cphil_status char_cols(cphil_slp_stream *s, unsigned idx, unsigned fol, cphil_char_columns **c, uint64_t off) {
    cphil_port_columns *pc = &s->r->ports[idx];
    cphil_char_columns *cc = fol ? &pc->follower : &pc->leader;
    if (CPHIL_LIKELY(cc->allocated)) {
        *c = cc;
        return CPHIL_OK;
    }
    cphil_status st = cphil_slp_char_columns(s->r, idx, fol, c);
    if (st) return fail(s, st, off, "%s", cphil_last_error());
    return CPHIL_OK;
}

#define PRE_FULL_LEN 0x43  /* code byte + the 66-byte payload of 3.18.0 */
#define POST_FULL_LEN 0x55 /* code byte + the 84-byte payload of 3.16.0 */

static cphil_status ev_pre(cphil_slp_stream *s, const uint8_t *e, uint32_t len, uint64_t off) {
    int32_t f = rd_i32(e + 1);
    unsigned idx = e[5], fol = e[6] != 0;
    if (idx >= CPHIL_SLP_PORTS)
        return fail(s, CPHIL_E_FORMAT, off + 5, "Pre-Frame player index %u: expected 0-3", idx);
    cphil_status st = frame_for(s, f, off);
    cphil_char_columns *c;
    if (st || (st = char_cols(s, idx, fol, &c, off))) return st;
    uint32_t i = s->open_row;
    c->present[i] |= CPHIL_PRESENT_PRE;
    /* a local copy of the column pointers: stores through them cannot alias it, so the
     * compiler keeps the pointers instead of reloading them after every store */
    const cphil_pre_columns pc = c->pre;
    if (CPHIL_LIKELY(len >= PRE_FULL_LEN)) {
#define X(t, n, o) pc.n[i] = SLP_RD_##t(e + (o));
        CPHIL_PRE_FIELDS(X)
#undef X
    } else {
#define X(t, n, o) pc.n[i] = (o) + sizeof(t) <= len ? SLP_RD_##t(e + (o)) : (t)0;
        CPHIL_PRE_FIELDS(X)
#undef X
    }
    if (fol) s->r->follower_mask |= (uint8_t)(1u << idx);
    return CPHIL_OK;
}

static cphil_status ev_post(cphil_slp_stream *s, const uint8_t *e, uint32_t len, uint64_t off) {
    cphil_replay *r = s->r;
    int32_t f = rd_i32(e + 1);
    unsigned idx = e[5], fol = e[6] != 0;
    if (idx >= CPHIL_SLP_PORTS)
        return fail(s, CPHIL_E_FORMAT, off + 5, "Post-Frame player index %u: expected 0-3", idx);
    cphil_status st = frame_for(s, f, off);
    cphil_char_columns *c;
    if (st || (st = char_cols(s, idx, fol, &c, off))) return st;
    uint32_t i = s->open_row;
    c->present[i] |= CPHIL_PRESENT_POST;
    const cphil_post_columns pc = c->post;
    if (CPHIL_LIKELY(len >= POST_FULL_LEN)) {
#define X(t, n, o) pc.n[i] = SLP_RD_##t(e + (o));
        CPHIL_POST_FIELDS(X)
#undef X
    } else {
#define X(t, n, o) pc.n[i] = (o) + sizeof(t) <= len ? SLP_RD_##t(e + (o)) : (t)0;
        CPHIL_POST_FIELDS(X)
#undef X
    }
    if (fol) r->follower_mask |= (uint8_t)(1u << idx);
    /* Before 1.6.0 a player who started as Sheik is stored as Zelda in Game Start; the frame
     * -123 Post-Frame tells (slippi-js's fix, reference §3.4). Its character byte is byte 7: an
     * event declared with the 6-byte minimum payload does not have it. */
    if (!fol && f == CPHIL_SLP_FIRST_FRAME && len > 7 && cphil_replay_version(r) < cphil_slp_version(1, 6, 0)) {
        if (e[7] == 7) r->game.players[idx].character = 0x13;
        else if (e[7] == 0x13) r->game.players[idx].character = 0x12;
    }
    return CPHIL_OK;
}

static cphil_status ev_item(cphil_slp_stream *s, const uint8_t *e, uint32_t len, uint64_t off) {
    cphil_replay *r = s->r;
    int32_t f = rd_i32(e + 1);
    cphil_status st = frame_for(s, f, off);
    if (st) return st;
    uint32_t row = s->open_row;
    if (r->item_count[row] == UINT16_MAX) return fail(s, CPHIL_E_FORMAT, off, "more than 65535 items in frame %d", (int)f);
    cphil_item *it;
    if ((st = cphil_slp_push_item(r, &it))) return fail(s, st, off, "%s", cphil_last_error());
    memset(it, 0, sizeof *it);
    if (r->item_count[row] == 0) r->item_first[row] = r->n_items - 1;
    r->item_count[row]++;
    r->item_events++;
    if (HAVE(0x05, 2)) it->type = rd_u16(e + 0x05);
    if (HAVE(0x07, 1)) it->state = e[0x07];
    if (HAVE(0x08, 4)) it->facing = rd_f32(e + 0x08);
    if (HAVE(0x0C, 4)) it->vx = rd_f32(e + 0x0C);
    if (HAVE(0x10, 4)) it->vy = rd_f32(e + 0x10);
    if (HAVE(0x14, 4)) it->x = rd_f32(e + 0x14);
    if (HAVE(0x18, 4)) it->y = rd_f32(e + 0x18);
    if (HAVE(0x1C, 2)) it->damage = rd_u16(e + 0x1C);
    if (HAVE(0x1E, 4)) it->expire = rd_f32(e + 0x1E);
    if (HAVE(0x22, 4)) it->spawn_id = rd_u32(e + 0x22);
    if (HAVE(0x26, 4)) memcpy(it->misc, e + 0x26, 4);
    it->owner = HAVE(0x2A, 1) ? (int8_t)e[0x2A] : -1;
    if (HAVE(0x2B, 2)) it->owner_instance = rd_u16(e + 0x2B);
    return CPHIL_OK;
}

static cphil_status ev_stage(cphil_slp_stream *s, const uint8_t *e, uint32_t len, uint64_t off) {
    cphil_replay *r = s->r;
    int32_t f = rd_i32(e + 1);
    cphil_status st = frame_for(s, f, off);
    if (st) return st;
    uint32_t row = s->open_row;
    if (r->stage_count[row] == UINT16_MAX) return fail(s, CPHIL_E_FORMAT, off, "more than 65535 stage events in frame %d", (int)f);
    cphil_stage_event *se;
    if ((st = cphil_slp_push_stage(r, &se))) return fail(s, st, off, "%s", cphil_last_error());
    memset(se, 0, sizeof *se);
    if (r->stage_count[row] == 0) r->stage_first[row] = r->n_stage_events - 1;
    r->stage_count[row]++;
    r->stage_event_count++;
    se->code = e[0];
    if (e[0] == SLP_EV_FOD) {
        if (HAVE(0x05, 1)) se->platform = e[0x05];
        if (HAVE(0x06, 4)) se->height = rd_f32(e + 0x06);
    } else if (e[0] == SLP_EV_WHISPY) {
        if (HAVE(0x05, 1)) se->direction = e[0x05];
    } else {
        if (HAVE(0x05, 2)) se->stadium_event = rd_u16(e + 0x05);
        if (HAVE(0x07, 2)) se->transformation = rd_u16(e + 0x07);
    }
    return CPHIL_OK;
}

static cphil_status ev_frame_start(cphil_slp_stream *s, const uint8_t *e, uint32_t len, uint64_t off) {
    int32_t f = rd_i32(e + 1);
    cphil_status st = begin_copy(s, f, off);
    if (st) return st;
    if (HAVE(0x05, 4)) s->r->seed[s->open_row] = rd_u32(e + 0x05);
    if (HAVE(0x09, 4)) s->r->scene_frame[s->open_row] = rd_u32(e + 0x09);
    return CPHIL_OK;
}

static cphil_status ev_bookend(cphil_slp_stream *s, const uint8_t *e, uint32_t len, uint64_t off) {
    cphil_replay *r = s->r;
    int32_t f = rd_i32(e + 1);
    cphil_status st = frame_for(s, f, off);
    if (st) return st;
    int32_t latest = f;
    if (HAVE(0x05, 4)) {
        latest = rd_i32(e + 0x05);
        r->latest_finalized[s->open_row] = latest;
        if (latest > f) latest = f;
    }
    report_copy(s);
    s->frame_open = false;
    finalize_through(s, (int64_t)latest - r->first_frame);
    return CPHIL_OK;
}

static cphil_status ev_game_end(cphil_slp_stream *s, const uint8_t *e, uint32_t len, uint64_t off) {
    (void)off;
    cphil_replay *r = s->r;
    cphil_game_end *g = &r->end;
    g->present = true;
    g->count++;
    g->method = e[1];
    g->has_lras = HAVE(0x02, 1);
    g->lras_initiator = g->has_lras ? (int8_t)e[2] : -1;
    g->has_placements = HAVE(0x03, 4);
    for (int i = 0; i < CPHIL_SLP_PORTS; i++) g->placements[i] = g->has_placements ? (int8_t)e[3 + i] : -1;
    report_copy(s);
    s->frame_open = false;
    finalize_through(s, (int64_t)r->n_frames - 1);
    if (s->cb.on_game_end) s->cb.on_game_end(s->cb.user, r);
    return CPHIL_OK;
}

static cphil_status ev_split(cphil_slp_stream *s, const uint8_t *e, uint32_t len, uint64_t off) {
    (void)len;
    cphil_replay *r = s->r;
    uint32_t actual = rd_u16(e + 0x201);
    uint8_t code = e[0x203];
    bool last = e[0x204] != 0;
    if (actual > 512)
        return fail(s, CPHIL_E_FORMAT, off + 0x201, "Message Splitter piece of %u bytes: expected at most 512", actual);
    if (s->split_len + actual > SLP_SPLIT_MAX)
        return fail(s, CPHIL_E_FORMAT, off, "a split message larger than %u bytes", SLP_SPLIT_MAX);
    if (s->split_len + actual > s->split_cap) {
        uint32_t nc = s->split_cap ? s->split_cap : 65536;
        while (nc < s->split_len + actual) nc *= 2;
        uint8_t *nb = cphil_realloc(s->split, s->split_cap, nc);
        if (!nb) return fail(s, CPHIL_E_NOMEM, off, "out of memory reassembling a split message");
        s->split = nb;
        s->split_cap = nc;
    }
    if (actual) memcpy(s->split + s->split_len, e + 1, actual);
    s->split_len += actual;
    if (last) {
        if (code == SLP_EV_GECKO) {
            cphil_free(r->gecko_list);
            r->gecko_list = s->split;
            r->gecko_list_size = s->split_len;
            s->split = NULL;
            s->split_cap = 0;
        }
        s->split_len = 0;
    }
    return CPHIL_OK;
}

static cphil_status ev_gecko_direct(cphil_slp_stream *s, const uint8_t *e, uint32_t len, uint64_t off) {
    cphil_replay *r = s->r;
    uint8_t *g = cphil_alloc(len > 1 ? len - 1 : 1);
    if (!g) return fail(s, CPHIL_E_NOMEM, off, "out of memory for the Gecko list");
    memcpy(g, e + 1, len - 1);
    cphil_free(r->gecko_list);
    r->gecko_list = g;
    r->gecko_list_size = len - 1;
    return CPHIL_OK;
}
/* One complete event e[0..len), len = 1 + payload size, at file offset off. */
static cphil_status handle_event(cphil_slp_stream *s, const uint8_t *e, uint32_t len, uint64_t off) {
    uint8_t code = e[0];
    if (code == SLP_EV_PAYLOADS) return ev_payloads(s, e, len, off);
    if (code == SLP_EV_GAME_START) return ev_game_start(s, e, len, off);
    switch (code) {
    case SLP_EV_PRE: case SLP_EV_POST: case SLP_EV_GAME_END: case SLP_EV_FRAME_START:
    case SLP_EV_ITEM: case SLP_EV_BOOKEND: case SLP_EV_FOD: case SLP_EV_WHISPY: case SLP_EV_STADIUM:
        if (!s->have_start)
            return fail(s, CPHIL_E_FORMAT, off, "event 0x%02x before Game Start (0x36)", code);
        break;
    default: break;
    }
    switch (code) {
    case SLP_EV_PRE: return ev_pre(s, e, len, off);
    case SLP_EV_POST: return ev_post(s, e, len, off);
    case SLP_EV_FRAME_START: return ev_frame_start(s, e, len, off);
    case SLP_EV_BOOKEND: return ev_bookend(s, e, len, off);
    case SLP_EV_ITEM: return ev_item(s, e, len, off);
    case SLP_EV_FOD: case SLP_EV_WHISPY: case SLP_EV_STADIUM: return ev_stage(s, e, len, off);
    case SLP_EV_GAME_END: return ev_game_end(s, e, len, off);
    case SLP_EV_SPLIT: return ev_split(s, e, len, off);
    case SLP_EV_GECKO: return ev_gecko_direct(s, e, len, off);
    default: s->r->unknown_events++; return CPHIL_OK;
    }
}

/* The size of the event starting at p (avail bytes known): 1 = *need set, 0 = more bytes
 * needed to know, -1 = the code is not declared. */
static int event_size(cphil_slp_stream *s, const uint8_t *p, size_t avail, uint32_t *need) {
    if (!s->have_payloads) {
        if (p[0] != SLP_EV_PAYLOADS) return -2;
        if (avail < 2) return 0;
        *need = 1u + p[1];
        return 1;
    }
    if (!s->r->declared[p[0]]) return -1;
    *need = 1u + s->r->payload_size[p[0]];
    return 1;
}

/* Damage in the middle of a sized raw element (slippi-js stops at an undeclared code and keeps
 * what it read; reference §2.3): keep the frames before the frame the damage cut, drop that
 * frame (its last events may already be zeros that happened to parse, and a re-sent frame was
 * cleared when its copy began, so rows from the open copy on go), then skip to the end of the
 * raw element and read the metadata. A frame closed by its Bookend before the damage is kept.
 * Not detectable: damage that starts inside the frame number of the event just before it. */
static void damage(cphil_slp_stream *s, uint8_t code) {
    cphil_replay *r = s->r;
    uint32_t kept = r->n_frames;
    if (s->frame_open && s->open_row < kept) kept = s->open_row;
    r->n_frames = kept;
    if (s->n_final > kept) s->n_final = kept;
    r->last_frame = r->first_frame + (int32_t)kept - 1;
    s->frame_open = false;
    r->damaged = true;
    r->damaged_at = s->off;
    if (kept)
        snprintf(r->warning, sizeof r->warning,
                 "%.200s: byte %llu: damaged: event code 0x%02x is not declared in Event Payloads (e.g. zero bytes in "
                 "place of events); kept frames %d..%d before it, skipped the rest of the raw element",
                 s->name, (unsigned long long)s->off, code, (int)r->first_frame, (int)r->last_frame);
    else
        snprintf(r->warning, sizeof r->warning,
                 "%.200s: byte %llu: damaged: event code 0x%02x is not declared in Event Payloads (e.g. zero bytes in "
                 "place of events); no frame before it, skipped the rest of the raw element",
                 s->name, (unsigned long long)s->off, code);
    s->state = s->raw_left ? S_SKIP : S_TAIL;
    s->tail_off = s->off + s->raw_left;
}

static cphil_status bad_code(cphil_slp_stream *s, int k, uint8_t code) {
    if (k == -2)
        return fail(s, CPHIL_E_FORMAT, s->off, "expected Event Payloads (0x35) first, found 0x%02x", code);
    if (s->file_mode && !s->bounded) { /* still-recording file: the rest is not events */
        s->stopped = true;
        s->state = S_DONE;
        return CPHIL_OK;
    }
    if (s->file_mode && s->have_start) {
        damage(s, code);
        return CPHIL_OK;
    }
    return fail(s, CPHIL_E_FORMAT, s->off, "event code 0x%02x is not declared in Event Payloads", code);
}

static cphil_status feed_events(cphil_slp_stream *s, const uint8_t **pp, size_t *pn) {
    const uint8_t *p = *pp;
    size_t n = *pn;
    cphil_status st = CPHIL_OK;
    while (n && s->state == S_EVENTS) {
        if (s->bounded && s->raw_left == 0) {
            s->state = S_TAIL;
            s->tail_off = s->off;
            break;
        }
        size_t avail = s->bounded && s->raw_left < n ? (size_t)s->raw_left : n;
        if (s->pend_len == 0) {
            uint32_t need = 0;
            int k = event_size(s, p, avail, &need);
            if (k < 0) {
                st = bad_code(s, k, p[0]);
                break;
            }
            if (k == 1 && s->bounded && need > s->raw_left) {
                st = fail(s, CPHIL_E_FORMAT, s->off, "event 0x%02x needs %u bytes but the raw element has %llu left",
                          p[0], need, (unsigned long long)s->raw_left);
                break;
            }
            if (k == 1 && need <= avail) { /* whole event in place */
                if ((st = handle_event(s, p, need, s->off))) break;
                p += need;
                n -= need;
                s->off += need;
                if (s->bounded) s->raw_left -= need;
                continue;
            }
            s->pend_off = s->off;
            s->pend_need = k == 1 ? need : 0;
        }
        /* assemble a split event in pend */
        if (s->pend_need == 0) {
            s->pend[s->pend_len++] = *p++;
            n--;
            s->off++;
            if (s->bounded) s->raw_left--;
            uint32_t need = 0;
            int k = event_size(s, s->pend, s->pend_len, &need);
            if (k < 0) { /* cannot happen: checked on the first byte */
                st = fail(s, CPHIL_E_INTERNAL, s->pend_off, "event size lost");
                break;
            }
            if (k == 1) {
                if (s->bounded && need > s->pend_len + s->raw_left) {
                    st = fail(s, CPHIL_E_FORMAT, s->pend_off, "event 0x%02x needs %u bytes but the raw element has %llu left",
                              s->pend[0], need, (unsigned long long)(s->pend_len + s->raw_left));
                    break;
                }
                s->pend_need = need;
            }
        } else {
            size_t take = s->pend_need - s->pend_len;
            if (take > n) take = n;
            memcpy(s->pend + s->pend_len, p, take);
            s->pend_len += (uint32_t)take;
            p += take;
            n -= take;
            s->off += take;
            if (s->bounded) s->raw_left -= take;
        }
        if (s->pend_need && s->pend_len == s->pend_need) {
            uint32_t len = s->pend_len;
            s->pend_len = 0;
            s->pend_need = 0;
            if ((st = handle_event(s, s->pend, len, s->pend_off))) break;
        }
    }
    if (s->state == S_EVENTS && s->bounded && s->raw_left == 0 && !st) {
        s->state = S_TAIL;
        s->tail_off = s->off;
    }
    *pp = p;
    *pn = n;
    return st;
}

/* ---- public ---------------------------------------------------------------------------- */

cphil_status cphil_slp_stream_open_reuse(cphil_slp_stream **out, const cphil_slp_callbacks *cb, const char *name,
                                   cphil_replay *reuse) {
    *out = NULL;
    cphil_slp_stream *s = cphil_calloc(1, sizeof *s);
    if (!s) return cphil_err(CPHIL_E_NOMEM, "out of memory opening a replay stream");
    if (reuse) cphil_slp_replay_reset(reuse);
    s->r = reuse ? reuse : cphil_slp_replay_new();
    s->pend_cap = 65536 + 2;
    s->pend = cphil_alloc(s->pend_cap);
    if (!s->r || !s->pend) {
        cphil_replay_free(s->r);
        cphil_free(s->pend);
        cphil_free(s);
        return cphil_err(CPHIL_E_NOMEM, "out of memory opening a replay stream");
    }
    if (cb) s->cb = *cb;
    snprintf(s->name, sizeof s->name, "%s", name ? name : "(stream)");
    s->state = S_HEADER;
    *out = s;
    return CPHIL_OK;
}

cphil_status cphil_slp_stream_open(cphil_slp_stream **out, const cphil_slp_callbacks *cb, const char *name) {
    return cphil_slp_stream_open_reuse(out, cb, name, NULL);
}

void cphil_slp_stream_on_copy(cphil_slp_stream *s, cphil_slp_copy_fn fn) { s->on_copy = fn; }

cphil_status cphil_slp_stream_reserve(cphil_slp_stream *s, uint32_t n_frames) {
    if (n_frames > SLP_MAX_ROWS) n_frames = SLP_MAX_ROWS;
    return cphil_slp_reserve(s->r, n_frames);
}

cphil_status cphil_slp_stream_feed(cphil_slp_stream *s, const void *data, size_t n) {
    if (s->failed) return cphil_err(s->failed, "%s", s->fail_msg);
    if (s->finished || s->taken) return cphil_err(CPHIL_E_ARG, "%s: feed after finish", s->name);
    if (!n) return CPHIL_OK;
    const uint8_t *p = data;
    while (n) {
        switch (s->state) {
        case S_HEADER: {
            if (s->hdr_len == 0 && p[0] == SLP_EV_PAYLOADS) {
                s->file_mode = false;
                s->bounded = false;
                s->r->in_progress = true;
                s->state = S_EVENTS;
                break;
            }
            uint8_t b = *p;
            if (s->hdr_len < sizeof k_sig && b != k_sig[s->hdr_len]) {
                if (s->hdr_len == 0)
                    return fail(s, CPHIL_E_FORMAT, s->off,
                                "not a Slippi replay: expected '{' (a .slp file) or 0x35 (an event stream), found 0x%02x", b);
                return fail(s, CPHIL_E_FORMAT, s->off,
                            "not a Slippi replay: expected the UBJSON header {U\\x03raw[$U#l, byte 0x%02x differs", b);
            }
            s->hdr[s->hdr_len++] = b;
            p++;
            n--;
            s->off++;
            if (s->hdr_len == 15) {
                s->file_mode = true;
                uint32_t raw = rd_u32(s->hdr + 11);
                s->r->raw_length = raw;
                s->bounded = raw != 0;
                s->raw_left = raw;
                s->r->in_progress = raw == 0;
                s->state = S_EVENTS;
            }
            break;
        }
        case S_EVENTS: {
            cphil_status st = feed_events(s, &p, &n);
            if (st) return st;
            break;
        }
        case S_SKIP: {
            size_t take = s->raw_left < n ? (size_t)s->raw_left : n;
            p += take;
            n -= take;
            s->off += take;
            s->raw_left -= take;
            if (s->raw_left == 0) s->state = S_TAIL;
            break;
        }
        case S_TAIL:
            if (s->tail_len + n > SLP_TAIL_MAX)
                return fail(s, CPHIL_E_FORMAT, s->off, "more than %u bytes after the raw element: expected a small metadata object",
                            SLP_TAIL_MAX);
            if (s->tail_len + n > s->tail_cap) {
                size_t nc = s->tail_cap ? s->tail_cap : 1024;
                while (nc < s->tail_len + n) nc *= 2;
                uint8_t *nb = cphil_realloc(s->tail, s->tail_cap, nc);
                if (!nb) return fail(s, CPHIL_E_NOMEM, s->off, "out of memory for the metadata");
                s->tail = nb;
                s->tail_cap = nc;
            }
            memcpy(s->tail + s->tail_len, p, n);
            s->tail_len += n;
            s->off += n;
            n = 0;
            break;
        default:
            s->off += n;
            n = 0;
            break;
        }
    }
    s->r->bytes_read = s->off;
    return CPHIL_OK;
}

static cphil_status finish_tail(cphil_slp_stream *s) {
    cphil_replay *r = s->r;
    const uint8_t *t = s->tail;
    size_t n = s->tail_len;
    uint64_t base = s->tail_off;
    static const uint8_t key[10] = {'U', 8, 'm', 'e', 't', 'a', 'd', 'a', 't', 'a'};
    if (n == 0)
        return cphil_err(CPHIL_E_TRUNCATED, "%s: byte %llu: file ends after the raw element: expected the metadata key or '}'",
                         s->name, (unsigned long long)base);
    if (t[0] == '}') return CPHIL_OK; /* no metadata element */
    if (t[0] != 'U')
        return cphil_err(CPHIL_E_FORMAT, "%s: byte %llu: expected the key 'metadata' or '}' after the raw element, found 0x%02x",
                         s->name, (unsigned long long)base, t[0]);
    for (size_t i = 0; i < sizeof key; i++) {
        if (i >= n)
            return cphil_err(CPHIL_E_TRUNCATED, "%s: byte %llu: file ends inside the key 'metadata'", s->name,
                             (unsigned long long)(base + n));
        if (t[i] != key[i])
            return cphil_err(CPHIL_E_FORMAT, "%s: byte %llu: expected the key 'metadata' after the raw element", s->name,
                             (unsigned long long)(base + i));
    }
    size_t used = 0;
    cphil_status st = cphil_slp_metadata_parse(t + 10, n - 10, base + 10, s->name, &r->meta, &used);
    if (st) return st;
    size_t end = 10 + used;
    if (end >= n)
        return cphil_err(CPHIL_E_TRUNCATED, "%s: byte %llu: file ends before the final '}'", s->name,
                         (unsigned long long)(base + end));
    if (t[end] != '}')
        return cphil_err(CPHIL_E_FORMAT, "%s: byte %llu: expected '}' closing the file, found 0x%02x", s->name,
                         (unsigned long long)(base + end), t[end]);
    return CPHIL_OK; /* bytes after the final '}' are ignored, as every reader does */
}

cphil_status cphil_slp_stream_finish(cphil_slp_stream *s) {
    if (s->taken) return cphil_err(CPHIL_E_ARG, "%s: finish after take", s->name);
    if (s->failed) return cphil_err(s->failed, "%s", s->fail_msg);
    if (s->finished) {
        if (s->finish_status) return cphil_err(s->finish_status, "%s", s->finish_msg);
        return CPHIL_OK;
    }
    cphil_replay *r = s->r;
    cphil_status st = CPHIL_OK;
    switch (s->state) {
    case S_HEADER:
        if (s->off == 0)
            return fail(s, CPHIL_E_FORMAT, 0, "empty file: expected a Slippi replay");
        r->truncated = true;
        st = cphil_err(CPHIL_E_TRUNCATED, "%s: byte %llu: file ends inside the 15-byte header", s->name,
                       (unsigned long long)s->off);
        break;
    case S_EVENTS:
        if (s->bounded || s->pend_len) {
            r->truncated = true;
            if (s->bounded) {
                if (s->pend_len)
                    st = cphil_err(CPHIL_E_TRUNCATED,
                                   "%s: byte %llu: truncated inside event 0x%02x that starts at byte %llu; the raw element "
                                   "declares %u bytes, %llu are missing",
                                   s->name, (unsigned long long)s->off, s->pend[0], (unsigned long long)s->pend_off,
                                   r->raw_length, (unsigned long long)s->raw_left);
                else
                    st = cphil_err(CPHIL_E_TRUNCATED,
                                   "%s: byte %llu: truncated: the raw element declares %u bytes, %llu are missing", s->name,
                                   (unsigned long long)s->off, r->raw_length, (unsigned long long)s->raw_left);
            }
        }
        if (!st && !s->have_start) {
            r->truncated = true;
            st = cphil_err(CPHIL_E_TRUNCATED, "%s: byte %llu: input ends before Game Start (0x36)", s->name,
                           (unsigned long long)s->off);
        }
        break;
    case S_SKIP: /* damaged, then cut before the raw element's end: the damage says it all */
        break;
    case S_TAIL:
        st = finish_tail(s);
        if (st && r->damaged && st != CPHIL_E_NOMEM) {
            /* the damage reaches the metadata: the frames kept stand, the metadata is lost */
            cphil_err_clear();
            memset(&r->meta, 0, sizeof r->meta);
            size_t w = strlen(r->warning);
            snprintf(r->warning + w, sizeof r->warning - w, "; metadata unreadable");
            st = CPHIL_OK;
        }
        if (st == CPHIL_E_TRUNCATED) r->truncated = true;
        else if (st) {
            s->failed = st;
            snprintf(s->fail_msg, sizeof s->fail_msg, "%s", cphil_last_error());
            return st;
        }
        break;
    default: break;
    }
    report_copy(s);
    s->frame_open = false;
    finalize_through(s, (int64_t)r->n_frames - 1);
    if (s->have_frames && r->n_frames) r->last_frame = r->first_frame + (int32_t)r->n_frames - 1;
    cphil_status cs = cphil_slp_compact_extras(r);
    if (cs) {
        s->failed = cs;
        snprintf(s->fail_msg, sizeof s->fail_msg, "%s: %s", s->name, cphil_last_error());
        return cphil_err(cs, "%s", s->fail_msg);
    }
    r->bytes_read = s->off;
    s->finished = true;
    s->finish_status = st;
    if (st) snprintf(s->finish_msg, sizeof s->finish_msg, "%s", cphil_last_error());
    return st;
}

const cphil_replay *cphil_slp_stream_replay(const cphil_slp_stream *s) { return s->r; }
uint32_t cphil_slp_stream_final_frames(const cphil_slp_stream *s) { return s->n_final; }

cphil_replay *cphil_slp_stream_take(cphil_slp_stream *s) {
    cphil_replay *r = s->r;
    s->r = NULL;
    s->taken = true;
    return r;
}

void cphil_slp_stream_close(cphil_slp_stream *s) {
    if (!s) return;
    cphil_replay_free(s->r);
    cphil_free(s->pend);
    cphil_free(s->tail);
    cphil_free(s->split);
    cphil_free(s);
}
