/* ubjson.c — the metadata element of a .slp file: a UBJSON (Draft 12) object
 * (reference/slp_format.md §1 and §9). Decodes every Draft-12 type (Z N T F i U I l L d D C S H
 * [ {, with the $ type and # count optimizations), keeps the keys cphil uses (startAt,
 * lastFrame, playedOn, consoleNick, players.N.names.{netplay,code}, players.N.characters) and
 * skips the rest. Deliberately not a general UBJSON library: no tree is built. Every length is
 * bounds-checked; nesting is limited to 64 levels. */
#include "slp/slp_internal.h"

#include <string.h>

typedef struct ub {
    const uint8_t *p;
    size_t n, pos;
    uint64_t base; /* file offset of p[0], for messages */
    const char *name;
    cphil_metadata *m;
} ub;

enum { CTX_SKIP, CTX_TOP, CTX_PLAYERS, CTX_PLAYER, CTX_CHARS, CTX_NAMES };

static cphil_status ub_fail(ub *u, const char *what) {
    return cphil_err(CPHIL_E_FORMAT, "%s: metadata at byte %llu: %s", u->name,
                     (unsigned long long)(u->base + u->pos), what);
}
static cphil_status ub_short(ub *u) {
    return cphil_err(CPHIL_E_TRUNCATED, "%s: metadata cut at byte %llu: expected more UBJSON bytes",
                     u->name, (unsigned long long)(u->base + u->n));
}

static cphil_status ub_byte(ub *u, uint8_t *b) {
    if (u->pos >= u->n) return ub_short(u);
    *b = u->p[u->pos++];
    return CPHIL_OK;
}

static cphil_status ub_int_of(ub *u, uint8_t t, int64_t *out) {
    size_t w;
    switch (t) {
    case 'i': case 'U': w = 1; break;
    case 'I': w = 2; break;
    case 'l': w = 4; break;
    case 'L': w = 8; break;
    default: return ub_fail(u, "expected an integer type marker (i U I l L)");
    }
    if (u->n - u->pos < w) return ub_short(u);
    const uint8_t *q = u->p + u->pos;
    u->pos += w;
    switch (t) {
    case 'i': *out = (int8_t)q[0]; break;
    case 'U': *out = q[0]; break;
    case 'I': *out = (int16_t)rd_u16(q); break;
    case 'l': *out = rd_i32(q); break;
    default: {
        uint64_t v = ((uint64_t)rd_u32(q) << 32) | rd_u32(q + 4);
        int64_t sv;
        memcpy(&sv, &v, sizeof sv);
        *out = sv;
    }
    }
    return CPHIL_OK;
}

/* A length: an integer with its marker, >= 0 and no larger than the bytes left when `bytes`. */
static cphil_status ub_len(ub *u, size_t *len, int bytes) {
    uint8_t t = 0;
    int64_t v;
    cphil_status s = ub_byte(u, &t);
    if (!s) s = ub_int_of(u, t, &v);
    if (s) return s;
    if (v < 0) return ub_fail(u, "negative length");
    if (bytes && (uint64_t)v > u->n - u->pos) return ub_short(u);
    if ((uint64_t)v > (uint64_t)1 << 40) return ub_fail(u, "absurd length");
    *len = (size_t)v;
    return CPHIL_OK;
}

static void copy_str(char *dst, size_t cap, const uint8_t *src, size_t n) {
    size_t k = n < cap - 1 ? n : cap - 1;
    /* never cut inside a UTF-8 sequence */
    if (k < n)
        while (k > 0 && (src[k] & 0xC0) == 0x80) k--;
    memcpy(dst, src, k);
    dst[k] = '\0';
}

static cphil_status ub_value(ub *u, uint8_t t, int depth, int ctx, int player, const uint8_t *key, size_t klen);

/* A container after its '[' or '{' marker. */
static cphil_status ub_container(ub *u, int is_obj, int depth, int ctx, int player) {
    if (depth > 64) return ub_fail(u, "nesting deeper than 64 levels");
    uint8_t type = 0;
    int64_t count = -1;
    cphil_status s;
    if (u->pos < u->n && u->p[u->pos] == '$') {
        u->pos++;
        if ((s = ub_byte(u, &type))) return s;
        if (u->pos >= u->n) return ub_short(u);
        if (u->p[u->pos] != '#') return ub_fail(u, "a '$' typed container needs a '#' count");
    }
    if (u->pos < u->n && u->p[u->pos] == '#') {
        u->pos++;
        size_t c;
        if ((s = ub_len(u, &c, 0))) return s;
        if (c > u->n - u->pos && !(type == 'Z' || type == 'N' || type == 'T' || type == 'F'))
            return ub_short(u);
        count = (int64_t)c;
    }
    for (int64_t i = 0; count < 0 || i < count; i++) {
        if (count < 0) {
            if (u->pos >= u->n) return ub_short(u);
            if (u->p[u->pos] == (is_obj ? '}' : ']')) {
                u->pos++;
                return CPHIL_OK;
            }
        }
        const uint8_t *key = NULL;
        size_t klen = 0;
        if (is_obj) {
            if ((s = ub_len(u, &klen, 1))) return s;
            key = u->p + u->pos;
            u->pos += klen;
        }
        uint8_t t = type;
        if (!t && (s = ub_byte(u, &t))) return s;
        if ((s = ub_value(u, t, depth + 1, is_obj ? ctx : CTX_SKIP, player, key, klen))) return s;
    }
    return CPHIL_OK;
}

static int key_is(const uint8_t *key, size_t klen, const char *s) {
    size_t n = strlen(s);
    return key && klen == n && !memcmp(key, s, n);
}
static int key_index(const uint8_t *key, size_t klen) {
    if (!key || klen == 0 || klen > 3) return -1;
    int v = 0;
    for (size_t i = 0; i < klen; i++) {
        if (key[i] < '0' || key[i] > '9') return -1;
        v = v * 10 + (key[i] - '0');
    }
    return v;
}

/* The value with marker t, which is the member `key` of an object of kind ctx. */
static cphil_status ub_value(ub *u, uint8_t t, int depth, int ctx, int player, const uint8_t *key, size_t klen) {
    cphil_metadata *m = u->m;
    cphil_status s;
    switch (t) {
    case 'Z': case 'N': case 'T': case 'F': return CPHIL_OK;
    case 'i': case 'U': case 'I': case 'l': case 'L': {
        int64_t v;
        if ((s = ub_int_of(u, t, &v))) return s;
        if (ctx == CTX_TOP && key_is(key, klen, "lastFrame")) {
            m->has_last_frame = true;
            m->last_frame = (int32_t)v;
        } else if (ctx == CTX_CHARS && player >= 0) {
            int id = key_index(key, klen);
            uint32_t k = m->players[player].n_characters;
            if (id >= 0 && id < 256 && k < 4) {
                m->players[player].characters[k].internal_id = (uint8_t)id;
                m->players[player].characters[k].frames = v < 0 ? 0 : (uint32_t)(v > UINT32_MAX ? UINT32_MAX : v);
                m->players[player].n_characters = k + 1;
            }
        }
        return CPHIL_OK;
    }
    case 'd': case 'D': {
        size_t w = t == 'd' ? 4 : 8;
        if (u->n - u->pos < w) return ub_short(u);
        u->pos += w;
        return CPHIL_OK;
    }
    case 'C':
        if (u->pos >= u->n) return ub_short(u);
        u->pos++;
        return CPHIL_OK;
    case 'S': case 'H': {
        size_t len;
        if ((s = ub_len(u, &len, 1))) return s;
        const uint8_t *str = u->p + u->pos;
        u->pos += len;
        if (t != 'S') return CPHIL_OK;
        if (ctx == CTX_TOP) {
            if (key_is(key, klen, "startAt")) copy_str(m->start_at, sizeof m->start_at, str, len);
            else if (key_is(key, klen, "playedOn")) copy_str(m->played_on, sizeof m->played_on, str, len);
            else if (key_is(key, klen, "consoleNick")) copy_str(m->console_nick, sizeof m->console_nick, str, len);
        } else if (ctx == CTX_NAMES && player >= 0) {
            if (key_is(key, klen, "netplay"))
                copy_str(m->players[player].netplay, sizeof m->players[player].netplay, str, len);
            else if (key_is(key, klen, "code"))
                copy_str(m->players[player].code, sizeof m->players[player].code, str, len);
        }
        return CPHIL_OK;
    }
    case '[': return ub_container(u, 0, depth, CTX_SKIP, -1);
    case '{': {
        int child = CTX_SKIP, cp = player;
        if (ctx == CTX_TOP && key_is(key, klen, "players")) child = CTX_PLAYERS;
        else if (ctx == CTX_PLAYERS) {
            int idx = key_index(key, klen);
            if (idx >= 0 && idx < CPHIL_SLP_PORTS) {
                child = CTX_PLAYER;
                cp = idx;
                m->players[idx].present = true;
            }
        } else if (ctx == CTX_PLAYER && key_is(key, klen, "characters")) child = CTX_CHARS;
        else if (ctx == CTX_PLAYER && key_is(key, klen, "names")) child = CTX_NAMES;
        return ub_container(u, 1, depth, child, cp);
    }
    default: {
        char msg[64];
        snprintf(msg, sizeof msg, "unknown UBJSON type marker 0x%02x", t);
        u->pos--;
        return ub_fail(u, msg);
    }
    }
}

cphil_status cphil_slp_metadata_parse(const uint8_t *p, size_t n, uint64_t base, const char *name,
                                cphil_metadata *m, size_t *consumed) {
    ub u = {p, n, 0, base, name, m};
    uint8_t t = 0;
    cphil_status s = ub_byte(&u, &t);
    if (s) return s;
    if (t != '{') {
        u.pos--;
        return ub_fail(&u, "expected '{' opening the metadata object");
    }
    memset(m, 0, sizeof *m);
    s = ub_container(&u, 1, 1, CTX_TOP, -1);
    if (s) {
        memset(m, 0, sizeof *m);
        return s;
    }
    m->present = true;
    *consumed = u.pos;
    return CPHIL_OK;
}
