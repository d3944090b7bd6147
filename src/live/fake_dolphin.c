/* fake_dolphin.c — Slippi Dolphin's spectator server and pipe input device, driven by a replay
 * instead of an emulator (fake_dolphin.h). Follows reference/live_play.md 5.2 and the Dolphin
 * sources it cites:
 *  - ENet host for 4 peers and 2 channels; every packet reliable on channel 0; a peer gets
 *    nothing before its connect_request; the reply and the cursor rules of SlippiSpectate.cpp
 *    (resume inside the current game's buffer, else from its start_game; at menus, from the end;
 *    a cursor past the buffer restarts at 0 when the next game begins);
 *  - messages as nlohmann's dump() writes them: compact, keys in alphabetical order;
 *  - events batched per game_event exactly as popEvents does: a message ends after 0x36, 0x3C,
 *    0x39 or 0x10; online replays carry their rollback re-sends in order, so rollbacks replay;
 *  - the pipe read as Dolphin's PipeDevice does: the FIFO opened O_RDONLY|O_NONBLOCK before any
 *    client, 32-byte reads until EAGAIN, complete lines applied in order (live_proto.c grammar),
 *    the pad snapshotted at every FLUSH;
 *  - BlockingPipes (lockstep): Game Start (0x35), every bookend (re-sends too) and every menu
 *    frame make the next batch wait for a FLUSH; real time: one frame per 1/59.94 s.
 * Deliberately not: several games per run, the Nintendont TCP server.
 */
#include "live/fake_dolphin.h"
#include "core/json.h"
#include "live/live_proto.h"
#include "live/menus.h"

#include <enet/enet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

cphil_status cphil_live_enet_acquire(void);
void cphil_live_enet_release(void);

const char *const cphil_live_fake_fault_names =
    "pause, restart, kick, zero-length, unknown-type, bad-json, bad-base64, unknown-event, truncated, menu-in-game, close";
static const char *const k_fault[] = {"pause",      "restart",       "kick",      "zero-length",  "unknown-type", "bad-json",
                                      "bad-base64", "unknown-event", "truncated", "menu-in-game", "close"};

bool cphil_live_fake_parse_faults(const char *list, unsigned *bits, const char **bad, size_t *bad_len) {
    *bits = 0;
    const char *p = list;
    while (*p) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        int k = -1;
        for (int i = 0; i < (int)CPHIL_ARRAY_LEN(k_fault); i++)
            if (strlen(k_fault[i]) == n && !memcmp(k_fault[i], p, n)) k = i;
        if (k < 0) {
            *bad = p;
            *bad_len = n;
            return false;
        }
        *bits |= 1u << k;
        p += n + (e ? 1 : 0);
    }
    return true;
}

void cphil_live_fake_default_params(live_fake_params *p) {
    memset(p, 0, sizeof *p);
    p->bind_host = "127.0.0.1";
    p->port = 51441;
    p->fps = CPHIL_FPS;
    p->pipe_port = 1;
    p->fault_frame = 60;
    p->pause_ms = 3000;
    p->wait_client_ms = 30000;
    p->stall_ms = 10000;
    p->linger_ms = 500;
}

/* ---- the replay as Dolphin would send it ---------------------------------------------- */

enum { I_START, I_EVENT, I_END };

typedef struct item {
    int kind;
    uint8_t *bytes; /* I_EVENT payload */
    uint32_t len;
    int need;       /* FLUSHes Dolphin waits for after it (lockstep) */
    bool bookend, resend, menu_in_game, game_init;
    int32_t frame;  /* bookend frame */
} item;

typedef struct fake {
    const live_fake_params *p;
    live_fake_stats *st;
    item *items;
    size_t n_items, cap_items;
    uint8_t *batch;
    uint32_t batch_len, batch_cap;
    /* server */
    ENetHost *host;
    struct {
        ENetPeer *peer;
        bool shaken;
        size_t cursor;
        uint64_t menu_seen;
    } peers[4];
    char **buf;    /* this game's messages (JSON) */
    uint32_t *buf_len;
    size_t buf_n, buf_cap;
    int64_t offset;
    bool in_game;
    char menu_msg[256];
    uint64_t menu_counter;
    /* the simulated select screens (params.menus) */
    live_menu_frame mf;
    int sim_port, sim_pipe;      /* the port the pad drives (0..3) and its pipe index (-1: none) */
    uint16_t sim_prev_buttons;
    /* pipe */
    int fds[8];
    char pipe_names[8][64];
    int n_fds;
    bool eof[8];     /* the last read saw no writer: leave it out of poll() (it would spin) */
    char line[8][512];
    size_t line_len[8];
    live_pad_model model[8];
    cphil_atomic_file rec;
    bool rec_open;
    /* what the FLUSHes answer (lockstep: need-input k) */
    struct need {
        char kind;    /* 's' game start, 'f' frame, 'm' menu */
        int32_t frame;
        bool resend;
    } *needs;
    size_t n_needs, cap_needs;
    char log_line[512];
} fake;

static void logf_(fake *f, const char *fmt, ...) CPHIL_PRINTF(2, 3);
static void logf_(fake *f, const char *fmt, ...) {
    if (!f->p->log) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f->log_line, sizeof f->log_line, fmt, ap);
    va_end(ap);
    f->p->log(f->p->log_user, f->log_line);
}

static cphil_status add_item(fake *f, item it) {
    if (f->n_items == f->cap_items) {
        size_t nc = f->cap_items ? f->cap_items * 2 : 4096;
        item *n = cphil_realloc(f->items, f->cap_items * sizeof *n, nc * sizeof *n);
        if (!n) return cphil_err(CPHIL_E_NOMEM, "fake Dolphin: out of memory");
        f->items = n;
        f->cap_items = nc;
    }
    f->items[f->n_items++] = it;
    return CPHIL_OK;
}

static cphil_status batch_add(fake *f, const uint8_t *e, uint32_t n) {
    if (f->batch_len + n > f->batch_cap) {
        uint32_t nc = (f->batch_len + n) * 2 + 4096;
        uint8_t *b = cphil_realloc(f->batch, f->batch_cap, nc);
        if (!b) return cphil_err(CPHIL_E_NOMEM, "fake Dolphin: out of memory");
        f->batch = b;
        f->batch_cap = nc;
    }
    memcpy(f->batch + f->batch_len, e, n);
    f->batch_len += n;
    return CPHIL_OK;
}

static cphil_status batch_emit(fake *f, item it) {
    it.kind = I_EVENT;
    it.bytes = cphil_alloc(f->batch_len ? f->batch_len : 1);
    if (!it.bytes) return cphil_err(CPHIL_E_NOMEM, "fake Dolphin: out of memory");
    memcpy(it.bytes, f->batch, f->batch_len);
    it.len = f->batch_len;
    f->batch_len = 0;
    return add_item(f, it);
}

static uint32_t be32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }

/* Split the replay's raw events into the messages Dolphin sends. */
static cphil_status build_items(fake *f) {
    const live_fake_params *p = f->p;
    const uint8_t *d = p->replay, *raw;
    size_t n = p->replay_len, raw_n;
    static const uint8_t sig[11] = {'{', 'U', 3, 'r', 'a', 'w', '[', '$', 'U', '#', 'l'};
    if (n >= 15 && !memcmp(d, sig, 11)) {
        uint32_t len = be32(d + 11);
        raw = d + 15;
        raw_n = n - 15;
        if (len && len < raw_n) raw_n = len;
        if (!len) { /* still being written: up to the metadata key if present */
            static const uint8_t meta[10] = {'U', 8, 'm', 'e', 't', 'a', 'd', 'a', 't', 'a'};
            for (size_t i = 0; i + 10 <= raw_n; i++)
                if (!memcmp(raw + i, meta, 10)) {
                    raw_n = i;
                    break;
                }
        }
    } else if (n && d[0] == 0x35) {
        raw = d;
        raw_n = n;
    } else {
        return cphil_err(CPHIL_E_FORMAT, "%s: not a Slippi replay (expected '{' or 0x35 at byte 0)", p->replay_name);
    }
    uint16_t size[256];
    bool decl[256] = {false};
    bool have = false, ended = false;
    int32_t newest = INT32_MIN;
    size_t i = 0;
    cphil_status s = add_item(f, (item){.kind = I_START});
    if (s) return s;
    item pending = {0};
    while (i < raw_n && !s) {
        uint8_t c = raw[i];
        uint32_t need;
        if (!have) {
            if (c != 0x35 || i + 1 >= raw_n)
                return cphil_err(CPHIL_E_FORMAT, "%s: raw byte %zu: expected Event Payloads (0x35)", p->replay_name, i);
            need = 1u + raw[i + 1];
        } else if (decl[c]) {
            need = 1u + size[c];
        } else {
            break; /* an undeclared code ends the usable data, as Dolphin stops parsing a DMA */
        }
        if (i + need > raw_n) break; /* a cut-off file */
        const uint8_t *e = raw + i;
        i += need;
        if (c == 0x35) {
            for (uint32_t k = 2; k + 3 <= need; k += 3) {
                decl[e[k]] = true;
                size[e[k]] = (uint16_t)((e[k + 1] << 8) | e[k + 2]);
            }
            have = true;
            if (p->faults & FAKE_FAULT_UNKNOWN_EVENT) {
                uint8_t ext[256 + 3];
                memcpy(ext, e, need);
                ext[need] = 0x60;
                ext[need + 1] = 0;
                ext[need + 2] = 8;
                ext[1] = (uint8_t)(e[1] + 3);
                decl[0x60] = true;
                size[0x60] = 8;
                if (need + 3 > 256) return cphil_err(CPHIL_E_FORMAT, "%s: Event Payloads too long to extend", p->replay_name);
                s = batch_add(f, ext, need + 3);
            } else {
                s = batch_add(f, e, need);
            }
            pending.need = 1; /* DMAWrite sets the wait-for-input flag on 0x35 */
            continue;
        }
        if (c == 0x36) {
            if (need < 4 || e[1] < 3)
                return cphil_err(CPHIL_E_FORMAT, "%s: Slippi version %u.%u.%u is older than 3.0.0 (no Frame Bookends): not served",
                                 p->replay_name, need > 1 ? e[1] : 0, need > 2 ? e[2] : 0, need > 3 ? e[3] : 0);
        }
        if (c == 0x3C && (p->faults & FAKE_FAULT_UNKNOWN_EVENT)) {
            static const uint8_t unk[9] = {0x60, 1, 2, 3, 4, 5, 6, 7, 8};
            if ((s = batch_add(f, unk, 9))) break;
        }
        if (c == 0x39 && (p->faults & FAKE_FAULT_TRUNCATED)) s = batch_add(f, e, need / 2);
        else s = batch_add(f, e, need);
        if (s) break;
        if (c == 0x3C && need >= 5) {
            int32_t fr = (int32_t)be32(e + 1);
            pending.bookend = true;
            pending.frame = fr;
            pending.resend = newest != INT32_MIN && fr <= newest;
            if (!pending.resend) newest = fr;
            pending.need += 1;
            if ((p->faults & FAKE_FAULT_MENU_IN_GAME) && fr == p->fault_frame && !pending.resend) {
                /* the 0x3E DMA arrives before the bookend; it is a separate wait in Dolphin */
                uint8_t menu[96] = {0x3E, 0x02, 0x02};
                uint32_t bl = f->batch_len;
                if ((s = batch_add(f, menu, 96))) break;
                /* move it before this bookend */
                memmove(f->batch + bl - need + 96, f->batch + bl - need, need);
                memset(f->batch + bl - need, 0, 96);
                memcpy(f->batch + bl - need, menu, 3);
                pending.menu_in_game = true;
                pending.need += 1;
            }
        }
        if (c == 0x36) pending.game_init = true;
        if (c == 0x36 || c == 0x3C || c == 0x39 || c == 0x10) {
            s = batch_emit(f, pending);
            memset(&pending, 0, sizeof pending);
        }
        if (c == 0x39) {
            ended = true;
            break;
        }
    }
    if (s) return s;
    if (!have) return cphil_err(CPHIL_E_FORMAT, "%s: no Event Payloads (0x35): not a replay", p->replay_name);
    if (f->batch_len && (s = batch_emit(f, pending))) return s;
    (void)ended; /* a replay without Game End still ends with end_game, as Dolphin's does when the game stops */
    return add_item(f, (item){.kind = I_END});
}

/* ---- server ---------------------------------------------------------------------------- */

static void send_to(ENetPeer *peer, const char *s, size_t n) {
    ENetPacket *pk = enet_packet_create(s, n, ENET_PACKET_FLAG_RELIABLE);
    if (pk && enet_peer_send(peer, 0, pk) < 0) enet_packet_destroy(pk);
}

static cphil_status buf_push(fake *f, char *s, uint32_t n) {
    if (f->buf_n == f->buf_cap) {
        size_t nc = f->buf_cap ? f->buf_cap * 2 : 4096;
        char **b = cphil_realloc(f->buf, f->buf_cap * sizeof *b, nc * sizeof *b);
        uint32_t *bl = b ? cphil_realloc(f->buf_len, f->buf_cap * sizeof *bl, nc * sizeof *bl) : NULL;
        if (!b || !bl) {
            if (b) f->buf = b;
            cphil_free(s);
            return cphil_err(CPHIL_E_NOMEM, "fake Dolphin: out of memory");
        }
        f->buf = b;
        f->buf_len = bl;
        f->buf_cap = nc;
    }
    f->buf[f->buf_n] = s;
    f->buf_len[f->buf_n] = n;
    f->buf_n++;
    f->st->messages++;
    return CPHIL_OK;
}

static void buf_clear(fake *f) {
    for (size_t i = 0; i < f->buf_n; i++) cphil_free(f->buf[i]);
    f->buf_n = 0;
}

static char *make_json(size_t cap) { return cphil_alloc(cap); }

/* The message of an item at cursor c, keys sorted as nlohmann writes them. */
static cphil_status push_item(fake *f, const item *it, bool closed) {
    int64_t c = (int64_t)f->buf_n + f->offset;
    char *s;
    int n;
    switch (it->kind) {
    case I_START:
        buf_clear(f);
        c = f->offset;
        s = make_json(96);
        if (!s) return cphil_err(CPHIL_E_NOMEM, "fake Dolphin: out of memory");
        n = snprintf(s, 96, "{\"cursor\":%lld,\"next_cursor\":%lld,\"type\":\"start_game\"}", (long long)c, (long long)c + 1);
        f->in_game = true;
        return buf_push(f, s, (uint32_t)n);
    case I_EVENT: {
        size_t bl = cphil_live_b64_encoded_len(it->len), cap = bl + 128;
        s = make_json(cap);
        if (!s) return cphil_err(CPHIL_E_NOMEM, "fake Dolphin: out of memory");
        n = snprintf(s, cap, "{\"cursor\":%lld,\"next_cursor\":%lld,\"payload\":\"", (long long)c, (long long)c + 1);
        cphil_live_b64_encode(it->bytes, it->len, s + n);
        n += (int)bl;
        n += snprintf(s + n, cap - (size_t)n, "\",\"type\":\"game_event\"}");
        f->st->game_events++;
        return buf_push(f, s, (uint32_t)n);
    }
    default: {
        s = make_json(128);
        if (!s) return cphil_err(CPHIL_E_NOMEM, "fake Dolphin: out of memory");
        if (!f->in_game) c = f->offset; /* the closing message after a finished game: the next cursor */
        n = snprintf(s, 128, "{\"cursor\":%lld,\"dolphin_closed\":%s,\"next_cursor\":%lld,\"type\":\"end_game\"}",
                     (long long)c, closed ? "true" : "false", (long long)c + 1);
        cphil_status st = buf_push(f, s, (uint32_t)n);
        if (f->in_game) f->offset += (int64_t)f->buf_n;
        else f->offset += 1;
        f->in_game = false;
        return st;
    }
    }
}

static void write_events_(fake *f);
/* Queue what each client has not had yet, and put it on the wire now (ENet would otherwise
 * send it at the next service call, up to a poll() later). */
static void write_events(fake *f) {
    write_events_(f);
    if (f->host) enet_host_flush(f->host);
}

static void write_events_(fake *f) {
    for (int i = 0; i < 4; i++) {
        if (!f->peers[i].peer || !f->peers[i].shaken) continue;
        if (f->peers[i].cursor > f->buf_n) f->peers[i].cursor = 0;
        while (f->peers[i].cursor < f->buf_n) {
            size_t k = f->peers[i].cursor++;
            send_to(f->peers[i].peer, f->buf[k], f->buf_len[k]);
        }
        if (!f->in_game && f->menu_counter > f->peers[i].menu_seen) {
            send_to(f->peers[i].peer, f->menu_msg, strlen(f->menu_msg));
            f->peers[i].menu_seen = f->menu_counter;
        }
    }
}

static void inject_all(fake *f, const char *s, size_t n) {
    for (int i = 0; i < 4; i++)
        if (f->peers[i].peer && f->peers[i].shaken) send_to(f->peers[i].peer, s, n);
}

static void on_request(fake *f, int slot, const uint8_t *d, size_t n) {
    cphil_json_doc *doc = NULL;
    if (!n || cphil_json_parse((const char *)d, n, &doc)) return; /* Dolphin ignores it silently */
    const cphil_json_value *root = cphil_json_root(doc);
    const char *type = cphil_json_as_string(cphil_json_get(root, "type"));
    int64_t r;
    if (type && !strcmp(type, "connect_request") && cphil_json_as_int64(cphil_json_get(root, "cursor"), &r)) {
        f->st->connect_requests++;
        int64_t size = (int64_t)f->buf_n;
        /* when not in a game the buffer still holds the last game, whose cursors begin at
         * offset - size: that is where Dolphin's m_cursor_offset arithmetic points */
        int64_t base = f->in_game ? f->offset : f->offset - size;
        size_t pc = (r >= base && r <= size + base) ? (size_t)(r - base) : 0;
        char reply[160];
        int m = snprintf(reply, sizeof reply, "{\"cursor\":%lld,\"nick\":\"Slippi Online\",\"type\":\"connect_reply\",\"version\":\"3.4.0\"}",
                         (long long)((int64_t)pc + base));
        send_to(f->peers[slot].peer, reply, (size_t)m);
        if (!f->in_game) pc = f->buf_n;
        f->peers[slot].cursor = pc;
        f->peers[slot].shaken = true;
        f->peers[slot].menu_seen = 0;
        logf_(f, "client %d asked for cursor %lld, served from %lld", slot, (long long)r, (long long)((int64_t)pc + base));
    }
    cphil_json_free(doc);
}

/* Wait up to wait_ms for a packet or pipe input (whichever comes first), then service ENet. */
static void service(fake *f, int wait_ms) {
    if (!f->host) return;
    if (wait_ms > 0) {
        struct pollfd pf[9];
        int n = 0;
        pf[n++] = (struct pollfd){(int)f->host->socket, POLLIN, 0};
        /* BlockingPipes Dolphin waits in select() on the pipe; without it Dolphin only reads the
         * pipe when it polls the pads (240 Hz), never sleeping on it, so a bot's write wakes
         * nobody: the fake does the same (a sleeping reader would add its wake-up to every
         * write the bot times) and reads the pipes each turn of its loop (at most 1 ms apart) */
        for (int k = 0; k < f->n_fds && f->p->lockstep; k++)
            if (!f->eof[k]) pf[n++] = (struct pollfd){f->fds[k], POLLIN, 0};
        poll(pf, (nfds_t)n, wait_ms);
    }
    ENetEvent ev;
    int r = enet_host_service(f->host, &ev, 0);
    while (r > 0) {
        int slot = -1;
        for (int i = 0; i < 4; i++)
            if (f->peers[i].peer == ev.peer) slot = i;
        switch (ev.type) {
        case ENET_EVENT_TYPE_CONNECT:
            for (int i = 0; i < 4 && slot < 0; i++)
                if (!f->peers[i].peer) {
                    slot = i;
                    f->peers[i].peer = ev.peer;
                    f->peers[i].shaken = false;
                    f->st->clients++;
                    logf_(f, "client %d connected", i);
                }
            break;
        case ENET_EVENT_TYPE_RECEIVE:
            if (slot >= 0) on_request(f, slot, ev.packet->data, ev.packet->dataLength);
            enet_packet_destroy(ev.packet);
            break;
        case ENET_EVENT_TYPE_DISCONNECT:
            if (slot >= 0) {
                f->peers[slot].peer = NULL;
                f->peers[slot].shaken = false;
                logf_(f, "client %d disconnected", slot);
            }
            break;
        default: break;
        }
        r = enet_host_service(f->host, &ev, 0);
    }
}

static cphil_status host_up(fake *f) {
    ENetAddress a;
    if (enet_address_set_host(&a, f->p->bind_host) != 0)
        return cphil_err(CPHIL_E_ARG, "fake Dolphin: cannot resolve '%s' (IPv4 only)", f->p->bind_host);
    a.port = (enet_uint16)f->p->port;
    /* Dolphin retries the bind 20 times a second apart; 5 tries are enough for a restart */
    for (int t = 0; t < 5; t++) {
        f->host = enet_host_create(&a, 4, 2, 0, 0);
        if (f->host) return CPHIL_OK;
        struct timespec ts = {1, 0};
        nanosleep(&ts, NULL);
    }
    return cphil_err(CPHIL_E_IO, "fake Dolphin: could not create the spectator server on %s:%d (port in use?)",
                     f->p->bind_host, f->p->port);
}

static void host_down(fake *f) {
    if (f->host) enet_host_destroy(f->host);
    f->host = NULL;
    memset(f->peers, 0, sizeof f->peers);
}

/* ---- pipes ----------------------------------------------------------------------------- */

static cphil_status pipes_open(fake *f) {
    const live_fake_params *p = f->p;
    if (!p->user_dir) return CPHIL_OK;
    char dir[1024], path[1400];
    snprintf(dir, sizeof dir, "%s/Pipes", p->user_dir);
    cphil_status s = cphil_mkdir_p(dir);
    if (s) return s;
    DIR *dd = opendir(dir);
    bool any = false;
    if (dd) {
        struct dirent *de;
        while ((de = readdir(dd))) {
            if (de->d_name[0] == '.') continue;
            snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
            struct stat sb;
            if (stat(path, &sb) == 0 && S_ISFIFO(sb.st_mode)) any = true;
        }
        closedir(dd);
    }
    if (!any) {
        snprintf(path, sizeof path, "%s/slippibot%d", dir, p->pipe_port);
        if (mkfifo(path, 0600) != 0 && errno != EEXIST)
            return cphil_err(CPHIL_E_IO, "fake Dolphin: cannot make the FIFO %s: %s", path, strerror(errno));
    }
    /* PopulateDevices: every non-directory entry of Pipes/, opened read-only, non-blocking */
    dd = opendir(dir);
    if (!dd) return cphil_err(CPHIL_E_IO, "fake Dolphin: cannot read %s: %s", dir, strerror(errno));
    struct dirent *de;
    while ((de = readdir(dd)) && f->n_fds < 8) {
        if (de->d_name[0] == '.') continue;
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        struct stat sb;
        if (stat(path, &sb) != 0 || S_ISDIR(sb.st_mode)) continue;
        int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0) {
            closedir(dd);
            return cphil_err(CPHIL_E_IO, "fake Dolphin: cannot open %s: %s", path, strerror(errno));
        }
        int k = f->n_fds++;
        f->fds[k] = fd;
        snprintf(f->pipe_names[k], sizeof f->pipe_names[k], "%.60s", de->d_name);
        cphil_live_pad_model_init(&f->model[k]);
        logf_(f, "reading controller pipe %s", path);
    }
    closedir(dd);
    return CPHIL_OK;
}

static void record_flush(fake *f, int k) {
    live_pad_bytes b;
    cphil_live_pad_to_bytes(&f->model[k], &b);
    uint64_t idx = f->st->flushes++;
    if (!f->rec_open) return;
    struct need nd = {'-', 0, false};
    if (idx < f->n_needs) nd = f->needs[idx];
    char line[512];
    int n = snprintf(line, sizeof line,
                     "{\"flush\":%llu,\"pipe\":\"%s\",\"after\":\"%s\",\"frame\":%d,\"resend\":%s,\"buttons\":%u,"
                     "\"main_x\":%u,\"main_y\":%u,\"c_x\":%u,\"c_y\":%u,\"l\":%u,\"r\":%u,\"la\":%u,\"ra\":%u,"
                     "\"cls\":[%d,%d,%d,%d,%d]}\n",
                     (unsigned long long)idx, f->pipe_names[k],
                     nd.kind == 's' ? "game_start" : nd.kind == 'f' ? "frame" : nd.kind == 'm' ? "menu" : "none",
                     (int)nd.frame, nd.resend ? "true" : "false", b.buttons, b.main_x, b.main_y, b.c_x, b.c_y, b.l, b.r,
                     b.la, b.ra, cphil_live_stick_byte_class(b.main_x), cphil_live_stick_byte_class(b.main_y),
                     cphil_live_stick_byte_class(b.c_x), cphil_live_stick_byte_class(b.c_y), cphil_live_shoulder_byte_class(b.la));
    cphil_atomic_write(&f->rec, line, (size_t)n);
}

/* UpdateInput: 32-byte reads until EAGAIN, every complete line applied in order. */
static void read_pipes(fake *f) {
    for (int k = 0; k < f->n_fds; k++) {
        bool got = false;
        for (;;) {
            char b[32];
            ssize_t r = read(f->fds[k], b, sizeof b);
            if (r <= 0) { /* EAGAIN, or EOF: no writer (yet, or any more) */
                f->eof[k] = r == 0;
                break;
            }
            f->eof[k] = false;
            got = true;
            for (ssize_t i = 0; i < r; i++) {
                if (b[i] != '\n') {
                    if (f->line_len[k] < sizeof f->line[k] - 1) f->line[k][f->line_len[k]++] = b[i];
                    continue;
                }
                int a = cphil_live_pad_apply_line(&f->model[k], f->line[k], f->line_len[k]);
                if (a == 0) {
                    f->st->invalid_lines++;
                    f->line[k][f->line_len[k]] = '\0';
                    if (f->st->invalid_lines <= 3) logf_(f, "invalid pipe line '%.80s' (Dolphin drops it)", f->line[k]);
                } else if (a == 2) {
                    record_flush(f, k);
                } else {
                    f->st->commands++;
                }
                f->line_len[k] = 0;
            }
        }
        if (got && f->line_len[k]) f->st->split_bursts++; /* a frame's write arrived in pieces */
    }
}

static cphil_status need_add(fake *f, char kind, int32_t frame, bool resend) {
    if (f->n_needs == f->cap_needs) {
        size_t nc = f->cap_needs ? f->cap_needs * 2 : 4096;
        struct need *n = cphil_realloc(f->needs, f->cap_needs * sizeof *n, nc * sizeof *n);
        if (!n) return cphil_err(CPHIL_E_NOMEM, "fake Dolphin: out of memory");
        f->needs = n;
        f->cap_needs = nc;
    }
    f->needs[f->n_needs++] = (struct need){kind, frame, resend};
    f->st->need_inputs++;
    return CPHIL_OK;
}

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void menu_frame(fake *f, int i, int n) {
    uint8_t m[96] = {0};
    m[0] = 0x3E;
    bool css = i < (n + 1) / 2;
    m[1] = css ? 0x00 : 0x01; /* minor scene: CSS 0x0002, stage select 0x0102 */
    m[2] = 0x02;
    m[0x23] = 10;
    uint32_t fr = (uint32_t)(1000 + i);
    m[0x39] = (uint8_t)(fr >> 24);
    m[0x3A] = (uint8_t)(fr >> 16);
    m[0x3B] = (uint8_t)(fr >> 8);
    m[0x3C] = (uint8_t)fr;
    char b64[140];
    cphil_live_b64_encode(m, 96, b64);
    snprintf(f->menu_msg, sizeof f->menu_msg, "{\"payload\":\"%s\",\"type\":\"menu_event\"}", b64);
    f->menu_counter++;
    f->st->menu_frames++;
}

/* ---- the select screens, simulated ----------------------------------------------------------
 * A model, not Melee: the cursor moves by CURSOR_SPEED units per frame at full tilt of the
 * processed stick (raw / 80, dead zone 0.2875), A on a portrait drops the coin on that character
 * (the tables of menus.c, the same the navigator aims with), B picks it up, the ready banner
 * slides in over 10 frames once every active port's coin is down, START with the banner up goes
 * to the stage select, and A on a stage icon starts the game. One opponent (a CPU on the next
 * port, Falco) has chosen already. */
#define CURSOR_SPEED 1.0f

static void sim_init(fake *f) {
    live_menu_frame *m = &f->mf;
    memset(m, 0, sizeof *m);
    m->scene = LIVE_SCENE_CSS;
    f->sim_port = f->p->pipe_port - 1;
    f->sim_pipe = f->n_fds ? 0 : -1;
    char want[32];
    snprintf(want, sizeof want, "slippibot%d", f->p->pipe_port);
    for (int k = 0; k < f->n_fds; k++)
        if (!strcmp(f->pipe_names[k], want)) f->sim_pipe = k;
    int opp = (f->sim_port + 1) % 4;
    for (int i = 0; i < 4; i++) {
        m->cursor_x[i] = -31.0f + 15.4f * (float)i; /* below the portraits, over each port's card */
        m->cursor_y[i] = -2.2f;
        m->port_status[i] = i == f->sim_port ? 0 : i == opp ? 1 : 3;
        m->css_char[i] = i == opp ? 9 : LIVE_CSS_NONE;
        m->coin[i] = i == f->sim_port ? 1 : i == opp ? LIVE_COIN_DOWN : 0;
    }
    m->ready = 10;
    m->frame = 1000;
    f->sim_prev_buttons = 0;
    f->st->menu_character = f->st->menu_stage = -1;
}

static float sim_axis(uint8_t byte) {
    float p = ((float)byte - 128.0f) / 80.0f;
    if (p > 1) p = 1;
    if (p < -1) p = -1;
    return fabsf(p) < 0.2875f ? 0.0f : p;
}

static float clampf_(float v, float lo, float hi) { return v < lo ? lo : v > hi ? hi : v; }

/* One frame of the screens from the pad as it stands; true when a stage was chosen. */
static bool sim_tick(fake *f) {
    live_menu_frame *m = &f->mf;
    live_pad_bytes b = {0, 128, 128, 128, 128, 0, 0, 0, 0};
    if (f->sim_pipe >= 0) cphil_live_pad_to_bytes(&f->model[f->sim_pipe], &b);
    uint16_t edge = (uint16_t)(b.buttons & ~f->sim_prev_buttons);
    f->sim_prev_buttons = b.buttons;
    float vx = sim_axis(b.main_x) * CURSOR_SPEED, vy = sim_axis(b.main_y) * CURSOR_SPEED;
    int p = f->sim_port;
    m->frame++;
    if (m->scene == LIVE_SCENE_CSS) {
        m->cursor_x[p] = clampf_(m->cursor_x[p] + vx, -35.0f, 35.0f);
        m->cursor_y[p] = clampf_(m->cursor_y[p] + vy, -20.0f, 25.0f);
        if ((edge & 0x0100) && m->coin[p] == 1) {
            const live_css_slot *c = cphil_live_css_at(m->cursor_x[p], m->cursor_y[p]);
            if (c) {
                m->css_char[p] = c->css_id;
                m->coin[p] = LIVE_COIN_DOWN;
                logf_(f, "menus: port %d chose %s", p + 1, c->name);
            }
        } else if ((edge & 0x0200) && m->coin[p] == LIVE_COIN_DOWN) {
            m->css_char[p] = LIVE_CSS_NONE;
            m->coin[p] = 1;
        }
        bool all = true;
        for (int i = 0; i < 4; i++)
            if (m->port_status[i] != 3 && m->coin[i] != LIVE_COIN_DOWN) all = false;
        if (!all) m->ready = 10;
        else if (m->ready > 0) m->ready--;
        if ((edge & 0x1000) && all && m->ready == 0) {
            m->scene = LIVE_SCENE_SSS;
            m->sss_x = m->sss_y = 0;
            f->st->menu_character = m->css_char[p];
            logf_(f, "menus: START: to the stage select");
        }
        return false;
    }
    m->sss_x = clampf_(m->sss_x + vx, -25.0f, 25.0f);
    m->sss_y = clampf_(m->sss_y + vy, -20.0f, 25.0f);
    const live_sss_slot *s = cphil_live_sss_at(m->sss_x, m->sss_y);
    m->stage = s ? s->stage_byte : 0;
    if ((edge & 0x0100) && s) {
        f->st->menu_stage = s->stage_byte;
        logf_(f, "menus: stage %s chosen: the game starts", s->name);
        return true;
    }
    return false;
}

static void sim_frame(fake *f) {
    uint8_t m[LIVE_MENU_BYTES];
    cphil_live_menu_encode(&f->mf, m);
    char b64[140];
    cphil_live_b64_encode(m, sizeof m, b64);
    snprintf(f->menu_msg, sizeof f->menu_msg, "{\"payload\":\"%s\",\"type\":\"menu_event\"}", b64);
    f->menu_counter++;
    f->st->menu_frames++;
}

static void fault_at(fake *f, const item *it) {
    const live_fake_params *p = f->p;
    unsigned fl = p->faults;
    int64_t c = (int64_t)f->buf_n + f->offset;
    char s[160];
    if (fl & FAKE_FAULT_ZERO_LENGTH) inject_all(f, "", 0);
    if (fl & FAKE_FAULT_UNKNOWN_TYPE) {
        int n = snprintf(s, sizeof s, "{\"cursor\":%lld,\"type\":\"frame_summary\"}", (long long)c);
        inject_all(f, s, (size_t)n);
    }
    if (fl & FAKE_FAULT_BAD_JSON) inject_all(f, "{\"cursor\":12,\"type\":\"game_event\",\"payload\":", 42);
    if (fl & FAKE_FAULT_BAD_BASE64) {
        int n = snprintf(s, sizeof s, "{\"cursor\":%lld,\"next_cursor\":%lld,\"payload\":\"PA==!@#$\",\"type\":\"game_event\"}",
                         (long long)c, (long long)c + 1);
        inject_all(f, s, (size_t)n);
    }
    (void)it;
}

cphil_status cphil_live_fake_run(const live_fake_params *p, live_fake_stats *st) {
    memset(st, 0, sizeof *st);
    if (p->port < 1 || p->port > 65535) return cphil_err(CPHIL_E_ARG, "fake Dolphin: port %d is not 1..65535", p->port);
    fake F;
    memset(&F, 0, sizeof F);
    fake *f = &F;
    f->p = p;
    f->st = st;
    double t0 = cphil_now_sec();
    cphil_status s = build_items(f);
    bool enet = false;
    if (s) goto out;
    if ((s = cphil_live_enet_acquire())) goto out;
    enet = true;
    if ((s = pipes_open(f))) goto out;
    if (p->record_path) {
        if ((s = cphil_atomic_open(&f->rec, p->record_path))) goto out;
        f->rec_open = true;
    }
    if ((s = host_up(f))) goto out;
    logf_(f, "spectator server on %s:%d (%s), %zu messages to serve", p->bind_host, p->port,
          p->lockstep ? "lockstep: BlockingPipes" : "real time", f->n_items);
    /* wait for a first client */
    double t_wait = cphil_now_sec() + p->wait_client_ms / 1000.0;
    for (;;) {
        if (p->stop && *p->stop) {
            s = cphil_err(CPHIL_E_INTERRUPTED, "fake Dolphin: stopped");
            goto out;
        }
        service(f, 1);
        read_pipes(f);
        bool any = false;
        for (int i = 0; i < 4; i++) any |= f->peers[i].shaken;
        if (any) break;
        if (cphil_now_sec() > t_wait) {
            s = cphil_err(CPHIL_E_ARG, "fake Dolphin: no client connected within %d ms", p->wait_client_ms);
            goto out;
        }
    }
    /* at the menus without the menu gecko code: Dolphin sends nothing */
    for (double t_menu = cphil_now_sec() + p->start_delay_ms / 1000.0; cphil_now_sec() < t_menu;) {
        if (p->stop && *p->stop) {
            s = cphil_err(CPHIL_E_INTERRUPTED, "fake Dolphin: stopped");
            goto out;
        }
        service(f, 1);
        read_pipes(f);
    }
    double period = 1.0 / (p->fps > 0 ? p->fps : CPHIL_FPS);
    double next_tick = cphil_now_sec();
    double last_progress = cphil_now_sec();
    uint64_t last_flushes = 0, flushes_at_emit = 0;
    double last_emit = 0;
    size_t next = 0;
    int menus_left = p->menus && p->menu_frames <= 0 ? 3600 : p->menu_frames;
    st->menu_character = st->menu_stage = -1;
    if (p->menus) sim_init(f);
    bool closing = false, closed_early = false;
    bool faulted = false;
    st->first_frame = INT32_MAX;
    st->last_frame = INT32_MIN;
    while (!closing) {
        if (p->stop && *p->stop) {
            s = cphil_err(CPHIL_E_INTERRUPTED, "fake Dolphin: stopped");
            goto out;
        }
        service(f, 1);
        read_pipes(f);
        write_events(f); /* as Dolphin's loop: a client that (re)connected gets what it lacks */
        double now = cphil_now_sec();
        if (st->flushes != last_flushes) {
            last_flushes = st->flushes;
            last_progress = now;
        }
        bool caught_up = st->flushes >= st->need_inputs || f->n_fds == 0;
        bool go = p->lockstep ? caught_up : now >= next_tick;
        if (p->lockstep && !caught_up && now - last_progress > p->stall_ms / 1000.0) {
            s = cphil_err(CPHIL_E_ARG,
                          "fake Dolphin (lockstep): no FLUSH for %d ms after %llu of %llu; Dolphin would be stalled",
                          p->stall_ms, (unsigned long long)st->flushes, (unsigned long long)st->need_inputs);
            goto out;
        }
        if (!go) continue;
        if (!p->lockstep) {
            /* late: nothing answered the previous frame before this one was due (a frame the
             * bot chose to skip, or answered after the next, stays counted once) */
            if (st->need_inputs && st->flushes == flushes_at_emit && now - last_emit >= 0.9 * period) st->late++;
            flushes_at_emit = st->flushes;
            last_emit = now; /* a catch-up burst after this process was descheduled is not the bot's fault */
            next_tick += period;
            if (now - next_tick > 1.0) next_tick = now; /* we were descheduled: do not burst */
        }
        last_progress = now;
        if (p->menus && menus_left >= 0) { /* the select screens, driven by the pad */
            if (menus_left == 0) {
                logf_(f, "menus: no stage chosen in %d menu frames: the game starts as though a person started it",
                      p->menu_frames > 0 ? p->menu_frames : 3600);
                menus_left = -1;
            } else if (sim_tick(f)) {
                menus_left = -1;
            } else {
                menus_left--;
                sim_frame(f);
                if ((s = need_add(f, 'm', 0, false))) goto out;
                write_events(f);
                continue;
            }
        }
        if (!p->menus && menus_left > 0) { /* a menu frame: sent while not in a game, waits for a FLUSH */
            menu_frame(f, p->menu_frames - menus_left, p->menu_frames);
            menus_left--;
            if ((s = need_add(f, 'm', 0, false))) goto out;
            write_events(f);
            continue;
        }
        /* emit up to and including the next item that makes Dolphin wait */
        while (next < f->n_items) {
            const item *it = &f->items[next++];
            bool fault_now = !faulted && it->bookend && !it->resend && it->frame == p->fault_frame;
            if (fault_now && (p->faults & FAKE_FAULT_CLOSE)) {
                faulted = true;
                closed_early = true;
                logf_(f, "fault: Dolphin closes at frame %d", it->frame);
                if ((s = push_item(f, &(item){.kind = I_END}, true))) goto out;
                write_events(f);
                next = f->n_items;
                closing = true;
                break;
            }
            if (fault_now) fault_at(f, it);
            if ((s = push_item(f, it, false))) goto out;
            if (it->kind == I_EVENT && it->need) {
                if (it->game_init || (!it->bookend && !it->menu_in_game)) { /* Game Start (0x35) */
                    if ((s = need_add(f, 's', 0, false))) goto out;
                }
                if (it->menu_in_game && (s = need_add(f, 'm', it->frame, false))) goto out;
                if (it->bookend) {
                    if ((s = need_add(f, 'f', it->frame, it->resend))) goto out;
                    st->bookends++;
                    st->resends += it->resend;
                    if (it->frame < st->first_frame) st->first_frame = it->frame;
                    if (it->frame > st->last_frame) st->last_frame = it->frame;
                }
            }
            write_events(f);
            if (fault_now) {
                faulted = true;
                if (p->faults & FAKE_FAULT_KICK) {
                    logf_(f, "fault: disconnecting every client at frame %d", it->frame);
                    for (int i = 0; i < 4; i++)
                        if (f->peers[i].peer) enet_peer_disconnect(f->peers[i].peer, 0);
                }
                if (p->faults & FAKE_FAULT_PAUSE) {
                    logf_(f, "fault: pausing %d ms at frame %d (no ENet service, no pipe reads)", p->pause_ms, it->frame);
                    enet_host_flush(f->host);
                    sleep_ms(p->pause_ms);
                    next_tick = cphil_now_sec();
                }
                if (p->faults & FAKE_FAULT_RESTART) {
                    logf_(f, "fault: restarting the server on port %d at frame %d", p->port, it->frame);
                    enet_host_flush(f->host);
                    host_down(f);
                    sleep_ms(1000);
                    if ((s = host_up(f))) goto out;
                    next_tick = cphil_now_sec();
                }
                last_progress = cphil_now_sec();
            }
            if (it->kind == I_END) {
                closing = true;
                break;
            }
            if (it->need) break;
        }
    }
    /* the game is over: wait for the last answers, then close like Dolphin (dolphin_closed) */
    double t_end = cphil_now_sec() + (p->lockstep ? p->stall_ms / 1000.0 : 0.5);
    while (!closed_early && f->n_fds && st->flushes < st->need_inputs && cphil_now_sec() < t_end) {
        if (p->stop && *p->stop) break;
        service(f, 1);
        read_pipes(f);
    }
    if (!closed_early && (s = push_item(f, &(item){.kind = I_END}, true))) goto out;
    write_events(f);
    /* a graceful close: every client has had (and acknowledged) everything, at most 10 s for a
     * slow one, then linger_ms more; enet_peer_disconnect would drop what is still queued */
    t_end = cphil_now_sec() + 10.0;
    while (cphil_now_sec() < t_end && !(p->stop && *p->stop)) {
        service(f, 1);
        read_pipes(f);
        write_events(f);
        bool pending = false;
        for (int i = 0; i < 4; i++) {
            ENetPeer *e = f->peers[i].peer;
            if (e && f->peers[i].shaken &&
                (f->peers[i].cursor < f->buf_n || !enet_list_empty(&e->outgoingCommands) ||
                 !enet_list_empty(&e->sentReliableCommands)))
                pending = true;
        }
        if (!pending) break;
    }
    t_end = cphil_now_sec() + p->linger_ms / 1000.0;
    while (cphil_now_sec() < t_end) {
        service(f, 1);
        read_pipes(f);
    }
    for (int i = 0; i < 4; i++)
        if (f->peers[i].peer) enet_peer_disconnect_later(f->peers[i].peer, 0);
    for (int t = 0; t < 100; t++) {
        bool any = false;
        for (int i = 0; i < 4; i++) any |= f->peers[i].peer != NULL;
        if (!any) break;
        service(f, 10);
    }
out:
    st->seconds = cphil_now_sec() - t0;
    host_down(f);
    if (enet) cphil_live_enet_release();
    for (int k = 0; k < f->n_fds; k++) close(f->fds[k]);
    if (f->rec_open) {
        if (s == CPHIL_OK) {
            cphil_status c = cphil_atomic_commit(&f->rec);
            if (c) s = c;
        } else {
            char keep[1024];
            snprintf(keep, sizeof keep, "%s", cphil_last_error());
            cphil_atomic_abort(&f->rec);
            cphil_err(s, "%s", keep);
        }
    }
    for (size_t i = 0; i < f->n_items; i++) cphil_free(f->items[i].bytes);
    cphil_free(f->items);
    cphil_free(f->batch);
    buf_clear(f);
    cphil_free(f->buf);
    cphil_free(f->buf_len);
    cphil_free(f->needs);
    return s;
}
