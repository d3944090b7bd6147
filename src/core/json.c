/* json.c — strict JSON reader building a DOM in a chunked arena (see json.h for the contract).
 *
 * Recursive descent with an explicit depth limit. Children of an array/object are collected on
 * a scratch stack and copied into the arena when the container closes, so every container is
 * one contiguous array and the arena never moves (pointers into it stay valid).
 * Reference: RFC 8259 (grammar), RFC 3629 (UTF-8 validity: no overlongs, no surrogates).
 */
#include "core/json.h"

#include <stdlib.h>
#include <string.h>

/* ---- arena -------------------------------------------------------------------------------- */
typedef struct arena_chunk {
    struct arena_chunk *next;
    size_t cap, used;
} arena_chunk;

struct cphil_json_doc {
    arena_chunk *chunks;
    cphil_json_value root;
};

#define CHUNK_HDR ((sizeof(arena_chunk) + 15) & ~(size_t)15)

static void *arena_alloc(cphil_json_doc *d, size_t n) {
    n = (n + 15) & ~(size_t)15;
    if (n == 0) n = 16;
    arena_chunk *c = d->chunks;
    if (!c || c->cap - c->used < n) {
        size_t cap = n > 65536 ? n : 65536;
        size_t total;
        if (!cphil_size_add(cap, CHUNK_HDR, &total)) return NULL;
        arena_chunk *nc = cphil_alloc(total);
        if (!nc) return NULL;
        nc->cap = cap;
        nc->used = 0;
        /* Keep the current chunk first when the new one is a one-off big block with room left. */
        if (c && n > 65536) {
            nc->next = c->next;
            c->next = nc;
            nc->used = n;
            return (char *)nc + CHUNK_HDR;
        }
        nc->next = c;
        d->chunks = nc;
        c = nc;
    }
    void *p = (char *)c + CHUNK_HDR + c->used;
    c->used += n;
    return p;
}

void cphil_json_free(cphil_json_doc *doc) {
    if (!doc) return;
    arena_chunk *c = doc->chunks;
    while (c) {
        arena_chunk *n = c->next;
        cphil_free(c);
        c = n;
    }
    cphil_free(doc);
}

const cphil_json_value *cphil_json_root(const cphil_json_doc *doc) { return doc ? &doc->root : NULL; }

/* ---- parser state ------------------------------------------------------------------------- */
typedef struct parser {
    const unsigned char *t;
    size_t len, pos;
    cphil_json_doc *doc;
    cphil_json_value *vstack;   /* scratch for array items */
    size_t vn, vcap;
    cphil_json_member *mstack;  /* scratch for object members */
    size_t mn, mcap;
} parser;

static cphil_status perr(parser *p, size_t off, const char *what) {
    (void)p;
    return cphil_err(CPHIL_E_FORMAT, "JSON offset %zu: %s", off, what);
}

static cphil_status nomem(void) { return cphil_err(CPHIL_E_NOMEM, "JSON: out of memory"); }

static void skip_ws(parser *p) {
    while (p->pos < p->len) {
        unsigned char c = p->t[p->pos];
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r') p->pos++;
        else break;
    }
}

static cphil_status parse_value(parser *p, cphil_json_value *out, int depth);

/* Length of a valid UTF-8 sequence starting at s[0] (n bytes available), 0 if invalid. */
static size_t utf8_seq(const unsigned char *s, size_t n) {
    unsigned char c = s[0];
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) return (n >= 2 && (s[1] & 0xC0) == 0x80) ? 2 : 0;
    if (c >= 0xE0 && c <= 0xEF) {
        if (n < 3 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80) return 0;
        if (c == 0xE0 && s[1] < 0xA0) return 0;          /* overlong */
        if (c == 0xED && s[1] >= 0xA0) return 0;         /* surrogates */
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (n < 4 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80 || (s[3] & 0xC0) != 0x80) return 0;
        if (c == 0xF0 && s[1] < 0x90) return 0;          /* overlong */
        if (c == 0xF4 && s[1] >= 0x90) return 0;         /* > U+10FFFF */
        return 4;
    }
    return 0;
}

static int hex4(const unsigned char *s) {
    int v = 0;
    for (int i = 0; i < 4; i++) {
        int c = s[i], d;
        if (c >= '0' && c <= '9') d = c - '0';
        else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
        else return -1;
        v = v * 16 + d;
    }
    return v;
}

static size_t put_utf8(char *o, unsigned cp) {
    if (cp < 0x80) { o[0] = (char)cp; return 1; }
    if (cp < 0x800) { o[0] = (char)(0xC0 | (cp >> 6)); o[1] = (char)(0x80 | (cp & 0x3F)); return 2; }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12)); o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F)); return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18)); o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* At '"'. Decodes into the arena; *s NUL-terminated, *len bytes. */
static cphil_status parse_string(parser *p, const char **s, size_t *len) {
    size_t start = p->pos;
    p->pos++; /* opening quote */
    /* First pass: find the closing quote to size the output (decoded <= raw). */
    size_t q = p->pos;
    while (q < p->len && p->t[q] != '"') q += (p->t[q] == '\\') ? 2 : 1;
    if (q >= p->len) return perr(p, start, "unterminated string (no closing '\"')");
    char *o = arena_alloc(p->doc, q - p->pos + 1);
    if (!o) return nomem();
    size_t n = 0;
    while (p->pos < q) {
        unsigned char c = p->t[p->pos];
        if (c < 0x20) return perr(p, p->pos, "control character in string (escape it as \\uXXXX)");
        if (c == '\\') {
            unsigned char e = p->t[p->pos + 1];
            size_t at = p->pos;
            p->pos += 2;
            switch (e) {
            case '"': o[n++] = '"'; break;
            case '\\': o[n++] = '\\'; break;
            case '/': o[n++] = '/'; break;
            case 'b': o[n++] = '\b'; break;
            case 'f': o[n++] = '\f'; break;
            case 'n': o[n++] = '\n'; break;
            case 'r': o[n++] = '\r'; break;
            case 't': o[n++] = '\t'; break;
            case 'u': {
                if (q - p->pos < 4) return perr(p, at, "\\u needs 4 hex digits");
                int cp = hex4(p->t + p->pos);
                if (cp < 0) return perr(p, at, "\\u needs 4 hex digits");
                p->pos += 4;
                unsigned u = (unsigned)cp;
                if (u >= 0xD800 && u <= 0xDBFF) {
                    if (q - p->pos < 6 || p->t[p->pos] != '\\' || p->t[p->pos + 1] != 'u')
                        return perr(p, at, "high surrogate \\uD8xx-\\uDBxx without a low surrogate");
                    int lo = hex4(p->t + p->pos + 2);
                    if (lo < 0xDC00 || lo > 0xDFFF)
                        return perr(p, at, "high surrogate not followed by a low surrogate \\uDC00-\\uDFFF");
                    p->pos += 6;
                    u = 0x10000 + ((u - 0xD800) << 10) + ((unsigned)lo - 0xDC00);
                } else if (u >= 0xDC00 && u <= 0xDFFF) {
                    return perr(p, at, "lone low surrogate in \\u escape");
                }
                n += put_utf8(o + n, u);
                break;
            }
            default: return perr(p, at, "unknown escape (valid: \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX)");
            }
        } else if (c < 0x80) {
            o[n++] = (char)c;
            p->pos++;
        } else {
            size_t k = utf8_seq(p->t + p->pos, q - p->pos);
            if (!k) return perr(p, p->pos, "invalid UTF-8 in string");
            memcpy(o + n, p->t + p->pos, k);
            n += k;
            p->pos += k;
        }
    }
    p->pos = q + 1;
    o[n] = '\0';
    *s = o;
    *len = n;
    return CPHIL_OK;
}

static bool is_digit(unsigned char c) { return c >= '0' && c <= '9'; }

static cphil_status parse_number(parser *p, cphil_json_value *v) {
    size_t start = p->pos, i = p->pos;
    bool neg = false, integral = true;
    if (i < p->len && p->t[i] == '-') { neg = true; i++; }
    if (i >= p->len || !is_digit(p->t[i])) return perr(p, start, "expected a digit in number");
    if (p->t[i] == '0') {
        i++;
        if (i < p->len && is_digit(p->t[i])) return perr(p, start, "leading zero in number");
    } else {
        while (i < p->len && is_digit(p->t[i])) i++;
    }
    if (i < p->len && p->t[i] == '.') {
        integral = false;
        i++;
        if (i >= p->len || !is_digit(p->t[i])) return perr(p, i, "expected a digit after '.'");
        while (i < p->len && is_digit(p->t[i])) i++;
    }
    if (i < p->len && (p->t[i] == 'e' || p->t[i] == 'E')) {
        integral = false;
        i++;
        if (i < p->len && (p->t[i] == '+' || p->t[i] == '-')) i++;
        if (i >= p->len || !is_digit(p->t[i])) return perr(p, i, "expected a digit in exponent");
        while (i < p->len && is_digit(p->t[i])) i++;
    }
    size_t n = i - start;
    if (n > 320) return perr(p, start, "number too long (over 320 characters)");
    char buf[328];
    memcpy(buf, p->t + start, n);
    buf[n] = '\0';
    v->type = CPHIL_JSON_NUMBER;
    v->num = strtod(buf, NULL);
    v->is_int = false;
    if (integral) {
        /* Exact int64: accumulate as a negative number to reach INT64_MIN. */
        int64_t acc = 0;
        bool ok = true;
        for (size_t k = neg ? 1 : 0; k < n; k++) {
            int d = buf[k] - '0';
            if (acc < (INT64_MIN + d) / 10) { ok = false; break; }
            acc = acc * 10 - d;
        }
        if (ok && !neg && acc == INT64_MIN) ok = false;
        if (ok) {
            v->is_int = true;
            v->i = neg ? acc : -acc;
        }
    }
    p->pos = i;
    return CPHIL_OK;
}

static bool lit(parser *p, const char *w) {
    size_t n = strlen(w);
    if (p->len - p->pos < n || memcmp(p->t + p->pos, w, n) != 0) return false;
    p->pos += n;
    return true;
}

static cphil_status push_value(parser *p, const cphil_json_value *v) {
    if (p->vn == p->vcap) {
        size_t nc = p->vcap ? p->vcap * 2 : 64;
        cphil_json_value *ns = cphil_realloc(p->vstack, p->vcap * sizeof *ns, nc * sizeof *ns);
        if (!ns) return nomem();
        p->vstack = ns;
        p->vcap = nc;
    }
    p->vstack[p->vn++] = *v;
    return CPHIL_OK;
}

static cphil_status push_member(parser *p, const cphil_json_member *m) {
    if (p->mn == p->mcap) {
        size_t nc = p->mcap ? p->mcap * 2 : 64;
        cphil_json_member *ns = cphil_realloc(p->mstack, p->mcap * sizeof *ns, nc * sizeof *ns);
        if (!ns) return nomem();
        p->mstack = ns;
        p->mcap = nc;
    }
    p->mstack[p->mn++] = *m;
    return CPHIL_OK;
}

static int member_cmp(const void *a, const void *b) {
    const cphil_json_member *x = *(const cphil_json_member *const *)a;
    const cphil_json_member *y = *(const cphil_json_member *const *)b;
    if (x->key_len != y->key_len) return x->key_len < y->key_len ? -1 : 1;
    return memcmp(x->key, y->key, x->key_len);
}

static cphil_status check_duplicates(const cphil_json_member *m, size_t n) {
    if (n < 2) return CPHIL_OK;
    if (n <= 16) {
        for (size_t i = 0; i < n; i++)
            for (size_t j = i + 1; j < n; j++)
                if (m[i].key_len == m[j].key_len && !memcmp(m[i].key, m[j].key, m[i].key_len))
                    return cphil_err(CPHIL_E_FORMAT, "JSON offset %zu: duplicate key \"%s\" in object",
                                     m[j].value.offset, m[j].key);
        return CPHIL_OK;
    }
    const cphil_json_member **idx = cphil_calloc(n, sizeof *idx);
    if (!idx) return nomem();
    for (size_t i = 0; i < n; i++) idx[i] = &m[i];
    qsort(idx, n, sizeof *idx, member_cmp);
    cphil_status s = CPHIL_OK;
    for (size_t i = 1; i < n; i++)
        if (member_cmp(&idx[i - 1], &idx[i]) == 0) {
            const cphil_json_member *later = idx[i] > idx[i - 1] ? idx[i] : idx[i - 1];
            s = cphil_err(CPHIL_E_FORMAT, "JSON offset %zu: duplicate key \"%s\" in object",
                          later->value.offset, later->key);
            break;
        }
    cphil_free((void *)idx);
    return s;
}

static cphil_status parse_array(parser *p, cphil_json_value *v, int depth) {
    size_t start = p->pos, base = p->vn;
    p->pos++;
    skip_ws(p);
    cphil_status s;
    if (p->pos < p->len && p->t[p->pos] == ']') {
        p->pos++;
    } else {
        for (;;) {
            cphil_json_value item;
            if ((s = parse_value(p, &item, depth + 1))) return s;
            if ((s = push_value(p, &item))) return s;
            skip_ws(p);
            if (p->pos >= p->len) return perr(p, start, "unterminated array (no closing ']')");
            unsigned char c = p->t[p->pos];
            if (c == ',') { p->pos++; continue; }
            if (c == ']') { p->pos++; break; }
            return perr(p, p->pos, "expected ',' or ']' in array");
        }
    }
    size_t n = p->vn - base;
    cphil_json_value *items = NULL;
    if (n) {
        size_t bytes;
        if (!cphil_size_mul(n, sizeof *items, &bytes) || !(items = arena_alloc(p->doc, bytes))) return nomem();
        memcpy(items, p->vstack + base, bytes);
    }
    p->vn = base;
    v->type = CPHIL_JSON_ARRAY;
    v->items = items;
    v->len = n;
    return CPHIL_OK;
}

static cphil_status parse_object(parser *p, cphil_json_value *v, int depth) {
    size_t start = p->pos, base = p->mn;
    p->pos++;
    skip_ws(p);
    cphil_status s;
    if (p->pos < p->len && p->t[p->pos] == '}') {
        p->pos++;
    } else {
        for (;;) {
            skip_ws(p);
            if (p->pos >= p->len) return perr(p, start, "unterminated object (no closing '}')");
            if (p->t[p->pos] != '"') return perr(p, p->pos, "expected a string key in object");
            cphil_json_member m;
            memset(&m, 0, sizeof m);
            if ((s = parse_string(p, &m.key, &m.key_len))) return s;
            skip_ws(p);
            if (p->pos >= p->len || p->t[p->pos] != ':') return perr(p, p->pos, "expected ':' after key");
            p->pos++;
            if ((s = parse_value(p, &m.value, depth + 1))) return s;
            if ((s = push_member(p, &m))) return s;
            skip_ws(p);
            if (p->pos >= p->len) return perr(p, start, "unterminated object (no closing '}')");
            unsigned char c = p->t[p->pos];
            if (c == ',') { p->pos++; continue; }
            if (c == '}') { p->pos++; break; }
            return perr(p, p->pos, "expected ',' or '}' in object");
        }
    }
    size_t n = p->mn - base;
    if ((s = check_duplicates(p->mstack + base, n))) return s;
    cphil_json_member *mem = NULL;
    if (n) {
        size_t bytes;
        if (!cphil_size_mul(n, sizeof *mem, &bytes) || !(mem = arena_alloc(p->doc, bytes))) return nomem();
        memcpy(mem, p->mstack + base, bytes);
    }
    p->mn = base;
    v->type = CPHIL_JSON_OBJECT;
    v->members = mem;
    v->len = n;
    return CPHIL_OK;
}

static cphil_status parse_value(parser *p, cphil_json_value *v, int depth) {
    memset(v, 0, sizeof *v);
    if (depth > CPHIL_JSON_MAX_DEPTH)
        return perr(p, p->pos, "nesting deeper than 64 levels");
    skip_ws(p);
    v->offset = p->pos;
    if (p->pos >= p->len) return perr(p, p->pos, "unexpected end of input (expected a value)");
    unsigned char c = p->t[p->pos];
    switch (c) {
    case '{': return parse_object(p, v, depth);
    case '[': return parse_array(p, v, depth);
    case '"': v->type = CPHIL_JSON_STRING; return parse_string(p, &v->s, &v->len);
    case 't': if (lit(p, "true")) { v->type = CPHIL_JSON_BOOL; v->b = true; return CPHIL_OK; } break;
    case 'f': if (lit(p, "false")) { v->type = CPHIL_JSON_BOOL; v->b = false; return CPHIL_OK; } break;
    case 'n': if (lit(p, "null")) { v->type = CPHIL_JSON_NULL; return CPHIL_OK; } break;
    default:
        if (c == '-' || is_digit(c)) return parse_number(p, v);
        break;
    }
    return perr(p, p->pos, "expected a value (object, array, string, number, true, false or null)");
}

cphil_status cphil_json_parse(const char *text, size_t len, cphil_json_doc **out) {
    *out = NULL;
    if (!text && len) return cphil_err(CPHIL_E_ARG, "JSON: NULL text");
    cphil_json_doc *doc = cphil_calloc(1, sizeof *doc);
    if (!doc) return nomem();
    parser p;
    memset(&p, 0, sizeof p);
    p.t = (const unsigned char *)text;
    p.len = len;
    p.doc = doc;
    cphil_status s = parse_value(&p, &doc->root, 0);
    if (!s) {
        skip_ws(&p);
        if (p.pos != p.len) s = perr(&p, p.pos, "unexpected data after the top-level value");
    }
    cphil_free(p.vstack);
    cphil_free(p.mstack);
    if (s) {
        cphil_json_free(doc);
        return s;
    }
    *out = doc;
    return CPHIL_OK;
}

/* ---- accessors ---------------------------------------------------------------------------- */
const cphil_json_value *cphil_json_get(const cphil_json_value *v, const char *key) {
    if (!v || v->type != CPHIL_JSON_OBJECT || !key) return NULL;
    size_t kl = strlen(key);
    for (size_t i = 0; i < v->len; i++)
        if (v->members[i].key_len == kl && !memcmp(v->members[i].key, key, kl)) return &v->members[i].value;
    return NULL;
}

bool cphil_json_as_int64(const cphil_json_value *v, int64_t *out) {
    if (!v || v->type != CPHIL_JSON_NUMBER || !v->is_int) return false;
    *out = v->i;
    return true;
}

bool cphil_json_as_double(const cphil_json_value *v, double *out) {
    if (!v || v->type != CPHIL_JSON_NUMBER) return false;
    *out = v->num;
    return true;
}

bool cphil_json_as_bool(const cphil_json_value *v, bool *out) {
    if (!v || v->type != CPHIL_JSON_BOOL) return false;
    *out = v->b;
    return true;
}

const char *cphil_json_as_string(const cphil_json_value *v) {
    return (v && v->type == CPHIL_JSON_STRING) ? v->s : NULL;
}

const char *cphil_json_type_name(cphil_json_type t) {
    switch (t) {
    case CPHIL_JSON_NULL: return "null";
    case CPHIL_JSON_BOOL: return "boolean";
    case CPHIL_JSON_NUMBER: return "number";
    case CPHIL_JSON_STRING: return "string";
    case CPHIL_JSON_ARRAY: return "array";
    case CPHIL_JSON_OBJECT: return "object";
    }
    return "?";
}
