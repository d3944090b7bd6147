/* slp_table.c — the frame table of a replay: structure-of-arrays columns (one per Pre-Frame and
 * Post-Frame field, per port, leader and follower apart), frame-level columns, items and stage
 * events; growth, row clearing, gathering a row into a cphil_frame, freeing.
 * Columns of one character live in one 64-byte-aligned block, each column 64-byte aligned.
 * Deliberately not here: parsing (slp_stream.c). Reference: docs/slp.md. */
#include "slp/slp_internal.h"

#define A64(x) (((x) + (size_t)63) & ~(size_t)63)

static size_t char_block_bytes(uint32_t cap) {
    size_t off = A64((size_t)cap);
#define X(t, n, o) off += A64((size_t)cap * sizeof(t));
    CPHIL_PRE_FIELDS(X)
    CPHIL_POST_FIELDS(X)
#undef X
    return off;
}

static void char_block_bind(cphil_char_columns *c, uint8_t *b, uint32_t cap) {
    size_t off = 0;
    c->present = b;
    off += A64((size_t)cap);
#define X(t, n, o) c->pre.n = (t *)(void *)(b + off); off += A64((size_t)cap * sizeof(t));
    CPHIL_PRE_FIELDS(X)
#undef X
#define X(t, n, o) c->post.n = (t *)(void *)(b + off); off += A64((size_t)cap * sizeof(t));
    CPHIL_POST_FIELDS(X)
#undef X
}

static void char_block_copy(cphil_char_columns *d, const cphil_char_columns *s, uint32_t rows) {
    memcpy(d->present, s->present, rows);
#define X(t, n, o) memcpy(d->pre.n, s->pre.n, (size_t)rows * sizeof(t));
    CPHIL_PRE_FIELDS(X)
#undef X
#define X(t, n, o) memcpy(d->post.n, s->post.n, (size_t)rows * sizeof(t));
    CPHIL_POST_FIELDS(X)
#undef X
}

/* frame-level columns: copies u8, seed u32, scene_frame u32, latest_finalized i32,
 * item_first u32, item_count u16, stage_first u32, stage_count u16 */
static size_t frame_block_bytes(uint32_t cap) {
    return A64((size_t)cap) + 5 * A64((size_t)cap * 4) + 2 * A64((size_t)cap * 2);
}
static void frame_block_bind(cphil_replay *r, uint8_t *b, uint32_t cap) {
    size_t off = 0;
    r->copies = b; off += A64((size_t)cap);
    r->seed = (uint32_t *)(void *)(b + off); off += A64((size_t)cap * 4);
    r->scene_frame = (uint32_t *)(void *)(b + off); off += A64((size_t)cap * 4);
    r->latest_finalized = (int32_t *)(void *)(b + off); off += A64((size_t)cap * 4);
    r->item_first = (uint32_t *)(void *)(b + off); off += A64((size_t)cap * 4);
    r->stage_first = (uint32_t *)(void *)(b + off); off += A64((size_t)cap * 4);
    r->item_count = (uint16_t *)(void *)(b + off); off += A64((size_t)cap * 2);
    r->stage_count = (uint16_t *)(void *)(b + off);
}

cphil_replay *cphil_slp_replay_new(void) {
    cphil_replay *r = cphil_calloc(1, sizeof *r);
    slp_store *st = cphil_calloc(1, sizeof *st);
    if (!r || !st) {
        cphil_free(r);
        cphil_free(st);
        return NULL;
    }
    r->priv_ = st;
    r->first_frame = CPHIL_SLP_FIRST_FRAME;
    r->last_frame = CPHIL_SLP_FIRST_FRAME - 1;
    return r;
}

void cphil_replay_free(cphil_replay *r) {
    if (!r) return;
    slp_store *st = r->priv_;
    if (st) {
        cphil_free(st->frame_block);
        for (int p = 0; p < CPHIL_SLP_PORTS; p++)
            for (int k = 0; k < 2; k++) cphil_free(st->char_block[p][k]);
        cphil_free(st);
    }
    cphil_free(r->items);
    cphil_free(r->stage_events);
    cphil_free(r->gecko_list);
    cphil_free(r);
}

/* Blocks are not zeroed when allocated (that would touch every page twice): a new row's
 * frame-level columns are set by cphil_slp_row_init, `present` is kept zero for unused rows, and the
 * fields of absent characters are zeroed when the row is finalized (cphil_slp_zero_absent). */
cphil_status cphil_slp_reserve(cphil_replay *r, uint32_t rows) {
    slp_store *st = r->priv_;
    if (rows <= st->cap) return CPHIL_OK;
    if (rows > SLP_MAX_ROWS)
        return cphil_err(CPHIL_E_FORMAT, "more than %u frames", SLP_MAX_ROWS);
    uint32_t cap = st->cap ? st->cap : 256;
    while (cap < rows) cap = cap > SLP_MAX_ROWS / 2 ? SLP_MAX_ROWS : cap * 2;
    uint8_t *fb = cphil_alloc(frame_block_bytes(cap));
    if (!fb) return cphil_err(CPHIL_E_NOMEM, "out of memory for %u frames", cap);
    uint8_t *cb[CPHIL_SLP_PORTS][2] = {{0}};
    for (int p = 0; p < CPHIL_SLP_PORTS; p++)
        for (int k = 0; k < 2; k++) {
            cphil_char_columns *c = k ? &r->ports[p].follower : &r->ports[p].leader;
            if (!st->char_block[p][k]) continue;
            if (!c->allocated) { /* left over from a reused replay: drop it */
                cphil_free(st->char_block[p][k]);
                st->char_block[p][k] = NULL;
                continue;
            }
            cb[p][k] = cphil_alloc(char_block_bytes(cap));
            if (!cb[p][k]) {
                cphil_free(fb);
                for (int q = 0; q < CPHIL_SLP_PORTS; q++)
                    for (int j = 0; j < 2; j++) cphil_free(cb[q][j]);
                return cphil_err(CPHIL_E_NOMEM, "out of memory for %u frames", cap);
            }
        }
    uint32_t n = r->n_frames;
    if (st->frame_block) {
        cphil_replay old = *r;
        frame_block_bind(r, fb, cap);
        memcpy(r->copies, old.copies, n);
        memcpy(r->seed, old.seed, (size_t)n * 4);
        memcpy(r->scene_frame, old.scene_frame, (size_t)n * 4);
        memcpy(r->latest_finalized, old.latest_finalized, (size_t)n * 4);
        memcpy(r->item_first, old.item_first, (size_t)n * 4);
        memcpy(r->stage_first, old.stage_first, (size_t)n * 4);
        memcpy(r->item_count, old.item_count, (size_t)n * 2);
        memcpy(r->stage_count, old.stage_count, (size_t)n * 2);
        cphil_free(st->frame_block);
    } else {
        frame_block_bind(r, fb, cap);
    }
    st->frame_block = fb;
    for (int p = 0; p < CPHIL_SLP_PORTS; p++)
        for (int k = 0; k < 2; k++) {
            if (!cb[p][k]) continue;
            cphil_char_columns *c = k ? &r->ports[p].follower : &r->ports[p].leader;
            cphil_char_columns nc = *c;
            char_block_bind(&nc, cb[p][k], cap);
            char_block_copy(&nc, c, n);
            memset(nc.present + n, 0, cap - n);
            cphil_free(st->char_block[p][k]);
            st->char_block[p][k] = cb[p][k];
            *c = nc;
        }
    st->cap = cap;
    return CPHIL_OK;
}

static void char_zero_pre(cphil_char_columns *c, uint32_t i) {
#define X(t, n, o) c->pre.n[i] = 0;
    CPHIL_PRE_FIELDS(X)
#undef X
}
static void char_zero_post(cphil_char_columns *c, uint32_t i) {
#define X(t, n, o) c->post.n[i] = 0;
    CPHIL_POST_FIELDS(X)
#undef X
}

cphil_status cphil_slp_char_columns(cphil_replay *r, unsigned port, unsigned follower, cphil_char_columns **out) {
    slp_store *st = r->priv_;
    cphil_char_columns *c = follower ? &r->ports[port].follower : &r->ports[port].leader;
    if (!c->allocated) {
        if (!st->cap) {
            cphil_status s = cphil_slp_reserve(r, 256);
            if (s) return s;
        }
        uint8_t *b = st->char_block[port][follower]; /* reused from an earlier replay */
        if (!b) {
            b = cphil_alloc(char_block_bytes(st->cap));
            if (!b) return cphil_err(CPHIL_E_NOMEM, "out of memory for %u frames", st->cap);
            st->char_block[port][follower] = b;
        }
        char_block_bind(c, b, st->cap);
        memset(c->present, 0, st->cap);
        /* rows before this character appeared may already be final: zero them now */
        for (uint32_t i = 0; i < r->n_frames; i++) {
            char_zero_pre(c, i);
            char_zero_post(c, i);
        }
        c->allocated = true;
    }
    *out = c;
    return CPHIL_OK;
}

void cphil_slp_row_init(cphil_replay *r, uint32_t row) {
    r->copies[row] = 0;
    r->seed[row] = 0;
    r->scene_frame[row] = 0;
    r->latest_finalized[row] = 0;
    r->item_first[row] = 0;
    r->item_count[row] = 0;
    r->stage_first[row] = 0;
    r->stage_count[row] = 0;
}

void cphil_slp_zero_absent(cphil_replay *r, uint32_t row) {
    for (int p = 0; p < CPHIL_SLP_PORTS; p++)
        for (int k = 0; k < 2; k++) {
            cphil_char_columns *c = k ? &r->ports[p].follower : &r->ports[p].leader;
            if (!c->allocated) continue;
            uint8_t pr = c->present[row];
            if (CPHIL_LIKELY(pr == (CPHIL_PRESENT_PRE | CPHIL_PRESENT_POST))) continue;
            if (!(pr & CPHIL_PRESENT_PRE)) char_zero_pre(c, row);
            if (!(pr & CPHIL_PRESENT_POST)) char_zero_post(c, row);
        }
}

void cphil_slp_clear_row(cphil_replay *r, uint32_t row) {
    for (int p = 0; p < CPHIL_SLP_PORTS; p++)
        for (int k = 0; k < 2; k++) {
            cphil_char_columns *c = k ? &r->ports[p].follower : &r->ports[p].leader;
            if (!c->allocated || !c->present[row]) continue;
            c->present[row] = 0;
            char_zero_pre(c, row);
            char_zero_post(c, row);
        }
    r->item_count[row] = 0;
    r->stage_count[row] = 0;
    r->item_first[row] = 0;
    r->stage_first[row] = 0;
}

void cphil_slp_replay_reset(cphil_replay *r) {
    slp_store *st = r->priv_;
    cphil_item *items = r->items;
    cphil_stage_event *stage = r->stage_events;
    cphil_free(r->gecko_list);
    memset(r, 0, sizeof *r);
    r->priv_ = st;
    r->items = items;
    r->stage_events = stage;
    if (st->frame_block) frame_block_bind(r, st->frame_block, st->cap);
    r->first_frame = CPHIL_SLP_FIRST_FRAME;
    r->last_frame = CPHIL_SLP_FIRST_FRAME - 1;
}

cphil_status cphil_slp_push_item(cphil_replay *r, cphil_item **out) {
    slp_store *st = r->priv_;
    if (r->n_items == st->items_cap) {
        if (st->items_cap >= (1u << 28)) return cphil_err(CPHIL_E_FORMAT, "more than 2^28 item events");
        uint32_t nc = st->items_cap ? st->items_cap * 2 : 1024;
        cphil_item *ni = cphil_realloc(r->items, (size_t)st->items_cap * sizeof *ni, (size_t)nc * sizeof *ni);
        if (!ni) return cphil_err(CPHIL_E_NOMEM, "out of memory for %u items", nc);
        r->items = ni;
        st->items_cap = nc;
    }
    *out = &r->items[r->n_items++];
    return CPHIL_OK;
}

cphil_status cphil_slp_push_stage(cphil_replay *r, cphil_stage_event **out) {
    slp_store *st = r->priv_;
    if (r->n_stage_events == st->stage_cap) {
        if (st->stage_cap >= (1u << 28)) return cphil_err(CPHIL_E_FORMAT, "more than 2^28 stage events");
        uint32_t nc = st->stage_cap ? st->stage_cap * 2 : 256;
        cphil_stage_event *ns = cphil_realloc(r->stage_events, (size_t)st->stage_cap * sizeof *ns, (size_t)nc * sizeof *ns);
        if (!ns) return cphil_err(CPHIL_E_NOMEM, "out of memory for %u stage events", nc);
        r->stage_events = ns;
        st->stage_cap = nc;
    }
    *out = &r->stage_events[r->n_stage_events++];
    return CPHIL_OK;
}

/* Rewrite items[] (and stage_events[]) so they hold only the rows' final copies, in row order.
 * Skipped when nothing was superseded (the arrays are then already in that form). */
cphil_status cphil_slp_compact_extras(cphil_replay *r) {
    uint64_t ni = 0, ns = 0;
    for (uint32_t i = 0; i < r->n_frames; i++) {
        ni += r->item_count[i];
        ns += r->stage_count[i];
    }
    if (ni != r->n_items) {
        cphil_item *it = cphil_alloc((size_t)(ni ? ni : 1) * sizeof *it);
        if (!it) return cphil_err(CPHIL_E_NOMEM, "out of memory compacting items");
        uint32_t k = 0;
        for (uint32_t i = 0; i < r->n_frames; i++) {
            memcpy(it + k, r->items + r->item_first[i], (size_t)r->item_count[i] * sizeof *it);
            r->item_first[i] = k;
            k += r->item_count[i];
        }
        cphil_free(r->items);
        r->items = it;
        r->n_items = k;
        ((slp_store *)r->priv_)->items_cap = k ? k : 1;
    }
    if (ns != r->n_stage_events) {
        cphil_stage_event *se = cphil_alloc((size_t)(ns ? ns : 1) * sizeof *se);
        if (!se) return cphil_err(CPHIL_E_NOMEM, "out of memory compacting stage events");
        uint32_t k = 0;
        for (uint32_t i = 0; i < r->n_frames; i++) {
            memcpy(se + k, r->stage_events + r->stage_first[i], (size_t)r->stage_count[i] * sizeof *se);
            r->stage_first[i] = k;
            k += r->stage_count[i];
        }
        cphil_free(r->stage_events);
        r->stage_events = se;
        r->n_stage_events = k;
        ((slp_store *)r->priv_)->stage_cap = k ? k : 1;
    }
    return CPHIL_OK;
}

static void gather_char(const cphil_char_columns *c, uint32_t i, cphil_char_frame *out) {
    if (!c->allocated || !c->present[i]) {
        memset(out, 0, sizeof *out);
        return;
    }
    out->present = c->present[i];
#define X(t, n, o) out->pre.n = c->pre.n[i];
    CPHIL_PRE_FIELDS(X)
#undef X
#define X(t, n, o) out->post.n = c->post.n[i];
    CPHIL_POST_FIELDS(X)
#undef X
}

void cphil_replay_get_frame(const cphil_replay *r, uint32_t index, cphil_frame *f) {
    memset(f, 0, sizeof *f);
    if (index >= r->n_frames) return;
    f->frame = r->first_frame + (int32_t)index;
    f->index = index;
    f->copies = r->copies[index];
    f->seed = r->seed[index];
    f->scene_frame = r->scene_frame[index];
    f->latest_finalized = r->latest_finalized[index];
    for (int p = 0; p < CPHIL_SLP_PORTS; p++) {
        gather_char(&r->ports[p].leader, index, &f->ports[p][0]);
        gather_char(&r->ports[p].follower, index, &f->ports[p][1]);
    }
    f->n_items = r->item_count[index];
    f->items = f->n_items ? r->items + r->item_first[index] : NULL;
    f->n_stage_events = r->stage_count[index];
    f->stage_events = f->n_stage_events ? r->stage_events + r->stage_first[index] : NULL;
}

uint32_t cphil_replay_version(const cphil_replay *r) {
    return cphil_slp_version(r->game.version[0], r->game.version[1], r->game.version[2]);
}

void cphil_replay_version_string(const cphil_replay *r, char *buf, size_t cap) {
    snprintf(buf, cap, "%u.%u.%u", r->game.version[0], r->game.version[1], r->game.version[2]);
}

/* slippi-js's reading of the Gecko list (reference/slp_format.md §2.4). */
uint32_t cphil_replay_gecko_codes(const cphil_replay *r, uint32_t *first_address) {
    uint32_t n = 0;
    if (first_address) *first_address = 0;
    const uint8_t *g = r->gecko_list;
    size_t len = r->gecko_list_size, pos = 0;
    while (g && pos + 4 <= len) {
        uint32_t w = rd_u32(g + pos);
        uint32_t type = (w >> 24) & 0xFE;
        uint32_t addr = (w & 0x01FFFFFF) + 0x80000000u;
        uint64_t clen = 8;
        if (type == 0xC0 || type == 0xC2) {
            if (pos + 8 > len) break;
            clen = 8 + 8 * (uint64_t)rd_u32(g + pos + 4);
        } else if (type == 0x06) {
            if (pos + 8 > len) break;
            clen = 8 + (((uint64_t)rd_u32(g + pos + 4) + 7) & ~(uint64_t)7);
        } else if (type == 0x08) clen = 16;
        if (n == 0 && first_address) *first_address = addr;
        n++;
        pos += clen;
        if (pos > len) break;
    }
    return n;
}
