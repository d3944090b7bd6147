/* cphil_live.h — live play in Slippi Dolphin: the spectator stream in, the pipe controller out
 * (src/live/, docs/live.md; protocol facts in reference/live_play.md).
 *
 *   cphil_live *l;  cphil_live_params lp = cphil_live_default_params();  (127.0.0.1:51441)
 *   cphil_live_open(&lp, &l);                       starts the network thread, connects
 *   cphil_pad *pad; cphil_pad_open("<user dir>/Pipes/slippibot1", 10000, &pad);
 *   for (;;) { cphil_live_event ev; cphil_live_next(l, 1000, &ev);
 *     GAME_START: cphil_agent_game_start(agent, ev.game); cphil_pad_neutral(pad);
 *     FRAME:      if (ev.decide) cphil_agent_step(agent, ev.frame, &ctrl); cphil_pad_write(pad, &ctrl);
 *     MENU:       cphil_pad_write(pad, &neutral);   (lockstep Dolphin waits for one FLUSH per menu frame)
 *     CLOSED / LOST: stop }
 *
 * While the caller waits in cphil_live_next, that call services the ENet connection itself (a
 * bookend is parsed and returned on the caller's thread, with no hand-over between threads);
 * while the caller is busy, a network thread services it (a busy bot never times it out); it tracks
 * the message cursors and, when the connection drops, reconnects with back-off and asks to resume
 * at the last next_cursor, dropping anything the server sends twice. Every message is checked:
 * malformed JSON, bad base64, unknown message types, zero-length packets, undeclared or
 * truncated events each give a WARNING event and are skipped, never a crash.
 *
 * Frames: the stream's events go through the replay parser (cphil_slp_stream); a FRAME event is
 * produced at every Frame Bookend (0x3C). `decide` is true on the FIRST simulation of a frame
 * number (libmelee's choice: online games re-send frames after a rollback, and waiting for the
 * final copy costs up to 7 frames); re-simulations come with decide = false and the frame of
 * that copy. In BlockingPipes (lockstep) mode Dolphin waits for one FLUSH after every bookend,
 * re-simulations included, after Game Start and after every menu frame: answer every FRAME,
 * GAME_START and MENU event with exactly one cphil_pad_write / cphil_pad_neutral.
 */
#ifndef CPHIL_LIVE_H
#define CPHIL_LIVE_H

#include "cphil.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cphil_live_params {
    const char *host;          /* IPv4 address of Dolphin's spectator server, default "127.0.0.1" */
    int port;                  /* default 51441 */
    int connect_timeout_ms;    /* give up when no connection is made in this time (default 60000) */
    int reconnect_timeout_ms;  /* after a drop, give up after this long without a connection (default 30000) */
    int net_timeout_ms;        /* ENet's silence limit before a peer counts as gone (0: ENet's 5-30 s) */
    int spin_us;               /* cphil_live_next polls the connection without sleeping this long before it
                                * sleeps in the socket wait (0, default): spends a core to save a wake-up */
    int warm_us;               /* > 0 with warm set: from this long before the next frame is due (the
                                * last bookend's arrival + CPHIL_FRAME_NS), cphil_live_next polls without
                                * sleeping until a message comes and calls warm(warm_ctx) every 100 us
                                * meanwhile (0, default: off) */
    void (*warm)(void *warm_ctx);
    void *warm_ctx;
} cphil_live_params;

cphil_live_params cphil_live_default_params(void);

typedef enum cphil_live_event_type {
    CPHIL_LIVE_TIMEOUT = 0,    /* nothing arrived within the wait */
    CPHIL_LIVE_CONNECTED,      /* handshake done (first time or after a reconnect): text = nick/version */
    CPHIL_LIVE_DISCONNECTED,   /* the connection dropped; the thread is reconnecting */
    CPHIL_LIVE_GAME_START,     /* Game Start parsed: game holds the settings */
    CPHIL_LIVE_FRAME,          /* a Frame Bookend: see decide */
    CPHIL_LIVE_MENU,           /* a menu frame (0x3E; in_game: the Dolphin bug of one inside a game) */
    CPHIL_LIVE_GAME_END,       /* end_game (or a new game started before it: interrupted) */
    CPHIL_LIVE_CLOSED,         /* Dolphin said it is closing (dolphin_closed); the stream is over */
    CPHIL_LIVE_LOST,           /* no connection within the timeouts; the stream is over */
    CPHIL_LIVE_WARNING         /* something was wrong and skipped: text says what */
} cphil_live_event_type;

typedef struct cphil_live_event {
    cphil_live_event_type type;
    int game;                  /* games started so far (1 = the first) */
    const cphil_replay *game_info; /* GAME_START, FRAME, GAME_END: the game's header (valid until its end) */
    const cphil_frame *frame;  /* FRAME: the frame as this copy left it (valid until the next call) */
    int32_t frame_number;      /* FRAME: the bookend's frame number */
    bool decide;               /* FRAME: the first simulation of this frame number, and the game parses */
    bool resend;               /* FRAME: a rollback re-simulation of an earlier frame */
    uint32_t pending_bookends; /* FRAME: bookends already received behind this one (0 = up to date) */
    uint64_t arrival_ns;       /* when the network thread received the packet (cphil_now_ns clock) */
    const uint8_t *menu;       /* MENU: the 0x3E event bytes (96 with padding) */
    uint32_t menu_len;
    bool in_game;              /* MENU: arrived inside a game_event */
    bool interrupted;          /* GAME_END: no end_game arrived (a new game began, or the stream ended) */
    bool dolphin_closed;       /* GAME_END, CLOSED */
    const char *text;          /* CONNECTED, DISCONNECTED, WARNING, LOST: a message (valid until the next call) */
} cphil_live_event;

typedef struct cphil_live cphil_live;

/* Start the network thread and begin connecting (returns at once; CONNECTED comes as an event).
 * Errors: CPHIL_E_ARG (bad host or port), CPHIL_E_IO (ENet could not start), CPHIL_E_NOMEM. */
cphil_status cphil_live_open(const cphil_live_params *p, cphil_live **out);
/* Wait up to timeout_ms (0: poll, < 0: forever) for the next event. Frames come in stream order,
 * one event per call. After CLOSED or LOST every call returns that event again. */
cphil_status cphil_live_next(cphil_live *l, int timeout_ms, cphil_live_event *ev);
/* Counters for summaries. */
typedef struct cphil_live_stats {
    uint64_t messages, bytes, duplicates, cursor_gaps, reconnects, zero_length, malformed, unknown_types;
    uint64_t unknown_events, truncated_events, menu_in_game, bookends, resends;
    int64_t next_cursor;       /* the cursor the client would resume at */
} cphil_live_stats;
void cphil_live_get_stats(cphil_live *l, cphil_live_stats *out);
/* Stop the thread (disconnecting politely) and free. NULL is fine. */
void cphil_live_close(cphil_live *l);

/* ---- controller out: Dolphin's pipe input device -------------------------------------------
 * The FIFO <Dolphin user dir>/Pipes/slippibot<port> (cphil dolphin-setup makes it). Each write
 * is one write() of the whole controller state ending in "FLUSH\n" (under PIPE_BUF, so Dolphin
 * never sees half a frame); sticks and shoulder use the values whose GameCube bytes decode to the
 * policy's classes (docs/live.md). SIGPIPE must be ignored by the process (the cphil binary
 * does); a closed Dolphin is CPHIL_E_IO "Dolphin closed the controller pipe". */
typedef struct cphil_pad cphil_pad;
/* Open for writing; waits up to timeout_ms for Dolphin (the reader) to open its end. */
cphil_status cphil_pad_open(const char *fifo_path, int timeout_ms, cphil_pad **out);
/* The controller state, then FLUSH. */
cphil_status cphil_pad_write(cphil_pad *p, const cphil_controller_state *c);
/* Everything released and neutral (all 12 buttons), then FLUSH: at game start. */
cphil_status cphil_pad_neutral(cphil_pad *p);
/* Any pad state (menus: the cursor stick, A, B, START): buttons as GameCube bits (A 0x0100,
 * B 0x0200, X 0x0400, Y 0x0800, START 0x1000, Z 0x0010, R 0x0020, L 0x0040, D-pad 0x0001 left,
 * 0x0002 right, 0x0004 down, 0x0008 up), sticks and triggers as pipe values in [0, 1] (0.5
 * neutral for sticks), all 12 buttons written, then FLUSH. */
typedef struct cphil_pad_raw {
    uint16_t buttons;
    float main_x, main_y, c_x, c_y, l, r;
} cphil_pad_raw;
cphil_status cphil_pad_write_raw(cphil_pad *p, const cphil_pad_raw *r);
/* The text the last write sent (for logs and tests). */
const char *cphil_pad_last_text(const cphil_pad *p);
void cphil_pad_close(cphil_pad *p);
/* The bytes one write of c would send (no FLUSH counted twice); returns the length, at most cap-1. */
size_t cphil_pad_format(const cphil_controller_state *c, char *buf, size_t cap);

#ifdef __cplusplus
}
#endif
#endif /* CPHIL_LIVE_H */
