/* fake_dolphin.h — a stand-in for Slippi Dolphin's spectator server and pipe input, serving a
 * replay exactly as Dolphin streams a game (src/live/fake_dolphin.c, docs/live.md). The test
 * double of live play and a tool for bot authors; `cphil fake-dolphin` runs it. */
#ifndef CPHIL_LIVE_FAKE_DOLPHIN_H
#define CPHIL_LIVE_FAKE_DOLPHIN_H

#include "core/core.h"

#include <signal.h>

/* Fault switches (bits), each applied once at the bookend of fault_frame unless noted. */
enum {
    FAKE_FAULT_PAUSE = 1 << 0,        /* stop servicing ENet and the pipe for pause_ms */
    FAKE_FAULT_RESTART = 1 << 1,      /* destroy the server silently, rebind the same port 1 s later */
    FAKE_FAULT_KICK = 1 << 2,         /* disconnect every client (they must reconnect and resume) */
    FAKE_FAULT_ZERO_LENGTH = 1 << 3,  /* an extra zero-length packet */
    FAKE_FAULT_UNKNOWN_TYPE = 1 << 4, /* an extra message of an unknown type */
    FAKE_FAULT_BAD_JSON = 1 << 5,     /* an extra message that is not JSON */
    FAKE_FAULT_BAD_BASE64 = 1 << 6,   /* an extra game_event whose payload is not base64 (same cursor as the next) */
    FAKE_FAULT_UNKNOWN_EVENT = 1 << 7,/* whole game: code 0x60 declared in Event Payloads, one before every bookend */
    FAKE_FAULT_TRUNCATED = 1 << 8,    /* whole game: the Game End event cut in half */
    FAKE_FAULT_MENU_IN_GAME = 1 << 9, /* a 96-byte 0x3E menu frame inside the game_event (Dolphin bug) */
    FAKE_FAULT_CLOSE = 1 << 10        /* Dolphin closes mid-game: end_game with dolphin_closed true, then exit */
};
/* "pause,kick,..." -> bits; false with the bad name in *bad. */
bool cphil_live_fake_parse_faults(const char *list, unsigned *bits, const char **bad, size_t *bad_len);
extern const char *const cphil_live_fake_fault_names; /* for --help */

typedef struct live_fake_params {
    const uint8_t *replay;       /* the .slp bytes (or a bare event stream) */
    size_t replay_len;
    const char *replay_name;
    const char *bind_host;       /* default "127.0.0.1" */
    int port;                    /* default 51441 */
    bool lockstep;               /* BlockingPipes: after each need-input event, wait for a FLUSH */
    double fps;                  /* real time: frames per second (default 59.94) */
    const char *user_dir;        /* Dolphin user dir: read every FIFO in <dir>/Pipes/ (NULL: none) */
    int pipe_port;               /* the FIFO to create when Pipes/ has none: slippibot<pipe_port> */
    const char *record_path;     /* JSONL: the pad state at every FLUSH (NULL: none) */
    unsigned faults;
    int fault_frame;             /* default 60 */
    int pause_ms;                /* FAKE_FAULT_PAUSE (default 3000) */
    int menu_frames;             /* synthesized menu frames before the game (CSS then stage select);
                                  * with menus: the most menu frames before the game starts anyway */
    bool menus;                  /* simulate the select screens from the pad (docs/live.md "Menus") */
    int start_delay_ms;          /* after the first client: this long at the menus (no menu frames) first */
    int wait_client_ms;          /* wait this long for a first client (default 30000) */
    int stall_ms;                /* lockstep: fail when no FLUSH comes for this long (default 10000) */
    int linger_ms;               /* after dolphin_closed: keep serving this long (default 500) */
    volatile sig_atomic_t *stop; /* set (by a signal handler) to stop early */
    void (*log)(void *user, const char *line);
    void *log_user;
} live_fake_params;

void cphil_live_fake_default_params(live_fake_params *p);

typedef struct live_fake_stats {
    uint64_t messages, game_events, bookends, resends, menu_frames;
    uint64_t need_inputs;        /* FLUSHes Dolphin would have waited for (lockstep) */
    uint64_t flushes, commands, invalid_lines, split_bursts, late, clients, connect_requests;
    int32_t first_frame, last_frame;
    int menu_character;          /* menus: the character select id chosen for the pipe's port, -1 none */
    int menu_stage;              /* menus: the stage byte chosen, -1 none */
    double seconds;
} live_fake_stats;

/* Serve the replay once (one game), then close like Dolphin does. Errors: CPHIL_E_FORMAT (not a
 * replay, or older than 3.0.0), CPHIL_E_IO (port or FIFO), CPHIL_E_INTERRUPTED (stop set),
 * CPHIL_E_ARG (no client came / a lockstep client stopped answering; message says which). */
cphil_status cphil_live_fake_run(const live_fake_params *p, live_fake_stats *st);

#endif
