/* live_proto.c — base64, Dolphin's pipe grammar and axis mapping, the class <-> pipe value map
 * (live_proto.h). The grammar follows Ishiiruka/mainline Pipes.cpp as summarised in
 * reference/live_play.md 3.3: lines split on single spaces, 2..4 tokens except FLUSH, case
 * sensitive, numbers parsed with the classic locale; invalid lines are dropped. The mapping
 * follows GCPadEmu: stick byte (u8)(0x80 + (2x - 1) 0x7F), trigger byte (u8)(v 0xFF).
 */
#include "live/live_proto.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char k_b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t cphil_live_b64_encoded_len(size_t n) { return (n + 2) / 3 * 4; }

void cphil_live_b64_encode(const uint8_t *in, size_t n, char *out) {
    size_t i = 0, o = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = k_b64[v >> 18];
        out[o++] = k_b64[(v >> 12) & 63];
        out[o++] = k_b64[(v >> 6) & 63];
        out[o++] = k_b64[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        out[o++] = k_b64[v >> 18];
        out[o++] = k_b64[(v >> 12) & 63];
        out[o++] = '=';
        out[o++] = '=';
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        out[o++] = k_b64[v >> 18];
        out[o++] = k_b64[(v >> 12) & 63];
        out[o++] = k_b64[(v >> 6) & 63];
        out[o++] = '=';
    }
    out[o] = '\0';
}

/* byte -> 6-bit value, 0x80 for anything outside the standard alphabet ('=' included: the
 * padding is handled apart, in the last group only) */
static const uint8_t k_b64_val[256] = {
    0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
    0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
    0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x3e, 0x80, 0x80, 0x80, 0x3f,
    0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x3b, 0x3c, 0x3d, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
    0x80, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e,
    0x0f, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x80, 0x80, 0x80, 0x80, 0x80,
    0x80, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f, 0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28,
    0x29, 0x2a, 0x2b, 0x2c, 0x2d, 0x2e, 0x2f, 0x30, 0x31, 0x32, 0x33, 0x80, 0x80, 0x80, 0x80, 0x80,
    0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
    0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
    0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
    0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
    0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
    0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
    0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
    0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
};

/* The last group, which alone may carry padding. */
static bool b64_last(const char *in, size_t i, uint8_t *out, size_t *o, size_t *bad) {
    int v[4];
    int pad = 0;
    for (int k = 0; k < 4; k++) {
        char c = in[i + k];
        if (c == '=' && k >= 2) {
            /* '=' only in the last two places, and "x=y" is not allowed */
            if (k == 2 && in[i + 3] != '=') {
                *bad = i + k;
                return false;
            }
            v[k] = 0;
            pad++;
            continue;
        }
        v[k] = k_b64_val[(unsigned char)c];
        if (v[k] & 0x80) {
            *bad = i + k;
            return false;
        }
    }
    uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
    if ((pad == 1 && (w & 0xFF)) || (pad == 2 && (w & 0xFFFF))) { /* non-canonical trailing bits */
        *bad = i + 3 - (size_t)pad;
        return false;
    }
    out[(*o)++] = (uint8_t)(w >> 16);
    if (pad < 2) out[(*o)++] = (uint8_t)(w >> 8);
    if (pad < 1) out[(*o)++] = (uint8_t)w;
    return true;
}

/* A table lookup per character (this runs on every game_event, between a bookend's arrival and
 * the decision); the error path finds the offending offset. */
bool cphil_live_b64_decode(const char *in, size_t len, uint8_t *out, size_t *out_len, size_t *bad) {
    *out_len = 0;
    if (len % 4) {
        *bad = len;
        return false;
    }
    if (len == 0) return true;
    const unsigned char *u = (const unsigned char *)in;
    size_t o = 0, i = 0, body = len - 4;
    for (; i < body; i += 4) {
        uint32_t a = k_b64_val[u[i]], b = k_b64_val[u[i + 1]], c = k_b64_val[u[i + 2]], d = k_b64_val[u[i + 3]];
        if ((a | b | c | d) & 0x80) {
            for (int k = 0; k < 4; k++)
                if (k_b64_val[u[i + (size_t)k]] & 0x80) {
                    *bad = i + (size_t)k;
                    return false;
                }
        }
        uint32_t w = a << 18 | b << 12 | c << 6 | d;
        out[o] = (uint8_t)(w >> 16);
        out[o + 1] = (uint8_t)(w >> 8);
        out[o + 2] = (uint8_t)w;
        o += 3;
    }
    if (!b64_last(in, i, out, &o, bad)) return false;
    *out_len = o;
    return true;
}

static bool lit(const char **p, const char *end, const char *w, size_t wl) {
    if ((size_t)(end - *p) < wl || memcmp(*p, w, wl)) return false;
    *p += wl;
    return true;
}

/* an integer as nlohmann writes one: optional '-', 1..18 digits, no leading zero */
static bool int_tok(const char **p, const char *end, int64_t *out) {
    const char *q = *p;
    bool neg = q < end && *q == '-';
    q += neg;
    const char *d0 = q;
    int64_t v = 0;
    while (q < end && *q >= '0' && *q <= '9' && q - d0 < 18) v = v * 10 + (*q++ - '0');
    if (q == d0 || (q < end && *q >= '0' && *q <= '9') || (*d0 == '0' && q - d0 > 1)) return false;
    *out = neg ? -v : v;
    *p = q;
    return true;
}

bool cphil_live_match_game_event(const char *s, size_t n, int64_t *cursor, int64_t *next, const char **b64, size_t *b64_len) {
    const char *p = s, *end = s + n;
#define LIT(w) lit(&p, end, w, sizeof(w) - 1)
    if (!LIT("{\"cursor\":") || !int_tok(&p, end, cursor) || !LIT(",\"next_cursor\":") || !int_tok(&p, end, next) ||
        !LIT(",\"payload\":\""))
        return false;
    const char *b = p;
    const char *q = memchr(p, '"', (size_t)(end - p));
    if (!q || memchr(b, '\\', (size_t)(q - b))) return false; /* an escape: the general parser's business */
    p = q + 1;
    if (!LIT(",\"type\":\"game_event\"}") || p != end) return false;
#undef LIT
    *b64 = b;
    *b64_len = (size_t)(q - b);
    return true;
}

const char *const cphil_live_pipe_button_names[LIVE_PIPE_BUTTONS] = {"A",  "B",    "X",      "Y",      "Z",      "START",
                                                               "L",  "R",    "D_UP",   "D_DOWN", "D_LEFT", "D_RIGHT"};
const uint16_t cphil_live_pipe_button_bits[LIVE_PIPE_BUTTONS] = {0x0100, 0x0200, 0x0400, 0x0800, 0x0010, 0x1000,
                                                           0x0040, 0x0020, 0x0008, 0x0004, 0x0001, 0x0002};

void cphil_live_pad_model_init(live_pad_model *m) {
    memset(m, 0, sizeof *m);
    m->main_x = m->main_y = m->c_x = m->c_y = 0.5;
}

static double clamp01(double v) { return v < 0 ? 0 : v > 1 ? 1 : v; }

/* A number token as istringstream >> double with the classic locale reads it: a whole-token
 * strtod (our process never changes LC_NUMERIC). */
static bool parse_num(const char *t, size_t n, double *out) {
    char buf[64];
    if (n == 0 || n >= sizeof buf) return false;
    memcpy(buf, t, n);
    buf[n] = '\0';
    char *end = NULL;
    double v = strtod(buf, &end);
    if (end != buf + n || !isfinite(v)) return false;
    *out = v;
    return true;
}

static bool tok_is(const char *t, size_t n, const char *w) { return strlen(w) == n && !memcmp(t, w, n); }

int cphil_live_pad_apply_line(live_pad_model *m, const char *line, size_t len) {
    const char *tok[5];
    size_t tl[5];
    int nt = 0;
    size_t i = 0;
    /* SplitString(cmd, ' '): every single space separates (empty tokens count) */
    while (nt < 5) {
        size_t j = i;
        while (j < len && line[j] != ' ') j++;
        tok[nt] = line + i;
        tl[nt] = j - i;
        nt++;
        if (j >= len) break;
        i = j + 1;
    }
    if (nt == 5) return 0;
    if (nt == 1) return tok_is(tok[0], tl[0], "FLUSH") ? 2 : 0;
    if (tok_is(tok[0], tl[0], "PRESS") || tok_is(tok[0], tl[0], "RELEASE")) {
        if (nt != 2) return 0;
        for (int b = 0; b < LIVE_PIPE_BUTTONS; b++)
            if (tok_is(tok[1], tl[1], cphil_live_pipe_button_names[b])) {
                if (tok[0][0] == 'P') m->buttons |= cphil_live_pipe_button_bits[b];
                else m->buttons &= (uint16_t)~cphil_live_pipe_button_bits[b];
                return 1;
            }
        return 0;
    }
    if (tok_is(tok[0], tl[0], "SET")) {
        double x, y;
        if (nt == 4 && (tok_is(tok[1], tl[1], "MAIN") || tok_is(tok[1], tl[1], "C"))) {
            if (!parse_num(tok[2], tl[2], &x) || !parse_num(tok[3], tl[3], &y)) return 0;
            if (tok[1][0] == 'M') {
                m->main_x = clamp01(x);
                m->main_y = clamp01(y);
            } else {
                m->c_x = clamp01(x);
                m->c_y = clamp01(y);
            }
            return 1;
        }
        if (nt == 3 && (tok_is(tok[1], tl[1], "L") || tok_is(tok[1], tl[1], "R"))) {
            if (!parse_num(tok[2], tl[2], &x)) return 0;
            if (tok[1][0] == 'L') m->l = clamp01(x);
            else m->r = clamp01(x);
            return 1;
        }
        return 0;
    }
    return 0;
}

/* SetAxis splits v into a "+" half hi = max(0, v - .5) 2 and a "-" half lo = (.5 - min(.5, v)) 2;
 * the stick (Right = "Axis X +", Left = "Axis X -", radius 100) is hi - lo = 2v - 1 and the
 * pad byte (u8)(0x80 + s 0x7F). */
static uint8_t stick_byte(double v) {
    double hi = fmax(0.0, v - 0.5) * 2, lo = (0.5 - fmin(0.5, v)) * 2;
    double s = hi - lo;
    return (uint8_t)(0x80 + s * 0x7F);
}

/* SET L v reaches the axis as v/2 + .5; "Axis L +" reads its "+" half, which is v again. */
static uint8_t trigger_byte(double v) {
    double a = v / 2 + 0.5;
    double hi = fmax(0.0, a - 0.5) * 2;
    return (uint8_t)(hi * 0xFF);
}

void cphil_live_pad_to_bytes(const live_pad_model *m, live_pad_bytes *b) {
    b->buttons = m->buttons;
    b->main_x = stick_byte(m->main_x);
    b->main_y = stick_byte(m->main_y);
    b->c_x = stick_byte(m->c_x);
    b->c_y = stick_byte(m->c_y);
    b->la = trigger_byte(m->l);
    b->ra = trigger_byte(m->r);
    b->l = (m->buttons & 0x0040) ? 0xFF : b->la; /* MixedTriggers: a digital press reads as full */
    b->r = (m->buttons & 0x0020) ? 0xFF : b->ra;
}

double cphil_live_stick_pipe_value(int k) {
    if (k < 0) k = 0;
    if (k > 16) k = 16;
    return 0.5 + (10.0 * (k - 8) + 0.5) / 254.0;
}

double cphil_live_shoulder_pipe_value(int k) {
    if (k <= 0) return 0.0;
    if (k > 4) k = 4;
    return (35.0 * k + 0.5) / 255.0;
}

int cphil_live_stick_byte_class(uint8_t byte) {
    int k = (int)lround(((int)byte - 128) / 10.0) + 8;
    return k < 0 ? 0 : k > 16 ? 16 : k;
}

int cphil_live_shoulder_byte_class(uint8_t byte) {
    int k = (int)lround(byte / 35.0);
    return k > 4 ? 4 : k;
}

int cphil_live_fmt_unit(char *out, double x) {
    if (!(x > 0)) x = 0; /* NaN too */
    if (x > 1) x = 1;
    long long u = llround(x * 1e6);
    int whole = (int)(u / 1000000);
    int frac = (int)(u % 1000000);
    out[0] = (char)('0' + whole);
    out[1] = '.';
    for (int i = 7; i >= 2; i--) {
        out[i] = (char)('0' + frac % 10);
        frac /= 10;
    }
    out[8] = '\0';
    return 8;
}
