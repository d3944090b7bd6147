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

size_t live_b64_encoded_len(size_t n) { return (n + 2) / 3 * 4; }

void live_b64_encode(const uint8_t *in, size_t n, char *out) {
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

static int b64_val(char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

bool live_b64_decode(const char *in, size_t len, uint8_t *out, size_t *out_len, size_t *bad) {
    *out_len = 0;
    if (len % 4) {
        *bad = len;
        return false;
    }
    size_t o = 0;
    for (size_t i = 0; i < len; i += 4) {
        int v[4];
        int pad = 0;
        for (int k = 0; k < 4; k++) {
            char c = in[i + k];
            if (c == '=' && i + 4 == len && k >= 2) {
                /* '=' only in the last two places of the last group, and "x=y" is not allowed */
                if (k == 2 && in[i + 3] != '=') {
                    *bad = i + k;
                    return false;
                }
                v[k] = 0;
                pad++;
                continue;
            }
            v[k] = b64_val(c);
            if (v[k] < 0) {
                *bad = i + k;
                return false;
            }
        }
        uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
        if ((pad == 1 && (w & 0xFF)) || (pad == 2 && (w & 0xFFFF))) { /* non-canonical trailing bits */
            *bad = i + 3 - (size_t)pad;
            return false;
        }
        out[o++] = (uint8_t)(w >> 16);
        if (pad < 2) out[o++] = (uint8_t)(w >> 8);
        if (pad < 1) out[o++] = (uint8_t)w;
    }
    *out_len = o;
    return true;
}

const char *const live_pipe_button_names[LIVE_PIPE_BUTTONS] = {"A",  "B",    "X",      "Y",      "Z",      "START",
                                                               "L",  "R",    "D_UP",   "D_DOWN", "D_LEFT", "D_RIGHT"};
const uint16_t live_pipe_button_bits[LIVE_PIPE_BUTTONS] = {0x0100, 0x0200, 0x0400, 0x0800, 0x0010, 0x1000,
                                                           0x0040, 0x0020, 0x0008, 0x0004, 0x0001, 0x0002};

void live_pad_model_init(live_pad_model *m) {
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

int live_pad_apply_line(live_pad_model *m, const char *line, size_t len) {
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
            if (tok_is(tok[1], tl[1], live_pipe_button_names[b])) {
                if (tok[0][0] == 'P') m->buttons |= live_pipe_button_bits[b];
                else m->buttons &= (uint16_t)~live_pipe_button_bits[b];
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

void live_pad_to_bytes(const live_pad_model *m, live_pad_bytes *b) {
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

double live_stick_pipe_value(int k) {
    if (k < 0) k = 0;
    if (k > 16) k = 16;
    return 0.5 + (10.0 * (k - 8) + 0.5) / 254.0;
}

double live_shoulder_pipe_value(int k) {
    if (k <= 0) return 0.0;
    if (k > 4) k = 4;
    return (35.0 * k + 0.5) / 255.0;
}

int live_stick_byte_class(uint8_t byte) {
    int k = (int)lround(((int)byte - 128) / 10.0) + 8;
    return k < 0 ? 0 : k > 16 ? 16 : k;
}

int live_shoulder_byte_class(uint8_t byte) {
    int k = (int)lround(byte / 35.0);
    return k > 4 ? 4 : k;
}

int live_fmt_unit(char *out, double x) {
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
