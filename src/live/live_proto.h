/* live_proto.h — the wire-level pieces of live play shared by the client (live_client.c), the
 * controller writer (pad.c) and the fake Dolphin (fake_dolphin.c): base64 (RFC 4648, what Slippi
 * Dolphin puts in `payload`), Dolphin's pipe-input grammar and its axis mapping, and the pipe
 * values cphil writes for the policy's classes. Reference: ../shared/reference/live_play.md
 * sections 1.3 (encoding), 3.3 (grammar), 3.4 (atomic frames). Internal to src/live/.
 */
#ifndef CPHIL_LIVE_PROTO_H
#define CPHIL_LIVE_PROTO_H

#include "core/core.h"

/* ---- base64 (standard alphabet, '=' padding, no line breaks) ---- */
size_t cphil_live_b64_encoded_len(size_t n);            /* without a terminating NUL */
void cphil_live_b64_encode(const uint8_t *in, size_t n, char *out); /* out: encoded_len + 1 bytes, NUL-terminated */
/* Strict decode: only the alphabet, length a multiple of 4, padding only at the end, unused
 * bits zero. out needs len / 4 * 3 bytes. Returns false (with *bad = offending offset) on error. */
bool cphil_live_b64_decode(const char *in, size_t len, uint8_t *out, size_t *out_len, size_t *bad);

/* ---- the game_event message as Dolphin writes it ----
 * nlohmann's dump() of a std::map: exactly {"cursor":C,"next_cursor":N,"payload":"...","type":
 * "game_event"} (compact, keys sorted). Matching that shape byte for byte costs a fraction of a
 * general JSON parse; anything else (another shape, escapes, odd numbers) returns false and goes
 * to the general parser, which accepts or reports it as before. The payload is returned
 * undecoded (in points into s). */
bool cphil_live_match_game_event(const char *s, size_t n, int64_t *cursor, int64_t *next, const char **b64, size_t *b64_len);

/* ---- pipe controller grammar (Dolphin InputCommon/ControllerInterface/Pipes) ---- */
/* Button names in the pipe, and their GameCube bits (0x37 physical buttons, @0x31). */
#define LIVE_PIPE_BUTTONS 12
extern const char *const cphil_live_pipe_button_names[LIVE_PIPE_BUTTONS]; /* A B X Y Z START L R D_UP D_DOWN D_LEFT D_RIGHT */
extern const uint16_t cphil_live_pipe_button_bits[LIVE_PIPE_BUTTONS];

/* Dolphin's view of one pipe device: the state the last lines left (state persists). */
typedef struct live_pad_model {
    uint16_t buttons;         /* GameCube bits of pressed buttons */
    double main_x, main_y;    /* last SET MAIN / SET C values, clamped to [0, 1] */
    double c_x, c_y;
    double l, r;              /* last SET L / SET R values, clamped to [0, 1] */
} live_pad_model;

/* What the game reads from that state (GCPadEmu with the GCPadNew.ini cphil writes: radius 100,
 * "Axis L +", MixedTriggers): stick bytes 1..255 (128 neutral), analog triggers 0..255 (a
 * pressed digital L or R reads as full analog), the digital bits. la/ra: analog before the
 * digital override (what SET L/R asked for). */
typedef struct live_pad_bytes {
    uint16_t buttons;
    uint8_t main_x, main_y, c_x, c_y;
    uint8_t l, r, la, ra;
} live_pad_bytes;

void cphil_live_pad_model_init(live_pad_model *m);      /* released, sticks 0.5, triggers 0 */
/* Apply one line (without its '\n'). Returns 1 for a command applied, 2 for FLUSH, 0 for a line
 * Dolphin would drop (wrong token count, unknown word, bad number, a '\r'). */
int cphil_live_pad_apply_line(live_pad_model *m, const char *line, size_t len);
void cphil_live_pad_to_bytes(const live_pad_model *m, live_pad_bytes *b);

/* ---- the pipe values cphil writes for a class, and the classes a byte decodes to ----
 * Stick class k (0..16, centre k/8 - 1 of the processed axis) is raw value 10 (k - 8) on the
 * game's -80..80 raw scale (processed = raw / 80), i.e. GameCube byte 128 + 10 (k - 8). The pipe
 * value is the centre of that byte's interval under byte = 128 + floor((x - 0.5) 254), so a
 * rounding error of less than half a raw step either way still lands on it. Shoulder class k
 * (0..4, k/4 of the physical analog, 0..140 raw) is trigger byte 35 k; the pipe value is the
 * centre of that byte's interval under byte = floor(v 255). */
double cphil_live_stick_pipe_value(int k);
double cphil_live_shoulder_pipe_value(int k);
int cphil_live_stick_byte_class(uint8_t byte);          /* nearest class of a stick byte (clamped) */
int cphil_live_shoulder_byte_class(uint8_t byte);

/* Format x in [0, 1] as "0.dddddd" (C locale regardless of LC_NUMERIC); returns chars written. */
int cphil_live_fmt_unit(char *out, double x);

#endif
