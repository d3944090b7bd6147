/* live_client.c — the live connection of cphil_live.h: a client of Slippi Dolphin's spectator
 * server (ENet 1.3 over UDP, one JSON object per packet, binary events in base64), after
 * reference/live_play.md 1.2-1.6 and 2.2.
 *
 * Two threads share the ENet host (not thread-safe: a mutex, host_mu, says who services it).
 * While the caller waits in cphil_live_next it services ENet itself, so a bookend's packet is
 * parsed and handed back on the thread that decides, with no wake-up of another thread in between
 * (that hand-over was the largest cost between a bookend's arrival and the controller write);
 * while the caller is busy deciding, the network thread services it every millisecond, so a
 * slow bot never times the connection out. Whichever services it connects, sends
 * connect_request with the cursor to resume at, parses and checks every message, decodes
 * payloads, drops duplicates (cursor below the one expected), and queues the result. When
 * the connection drops it reconnects with back-off (0.1 s doubling to 2 s) and resumes at the last
 * next_cursor. The caller's thread (cphil_live_next) walks each game_event's events with the
 * Event Payloads size table, feeds them to the replay parser (cphil_slp_stream, one per game)
 * and turns bookends, game start, menus and the end into events, one per call.
 * Deliberately not here: menu navigation (the caller's), the Wii/Nintendont TCP protocol.
 */
#include "cphil_live.h"
#include "core/core.h"
#include "core/json.h"
#include "live/live_proto.h"

#include <enet/enet.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

enum { M_CONNECTED, M_DISCONNECTED, M_WARNING, M_LOST, M_START, M_EVENT, M_END, M_MENU };

typedef struct msg {
    struct msg *next;
    int kind;
    int64_t cursor;
    bool closed;
    uint64_t arrival_ns;
    uint32_t len, pos;
    char *text;       /* M_CONNECTED / M_DISCONNECTED / M_WARNING / M_LOST */
    uint8_t data[];   /* M_EVENT / M_MENU payload; text is stored here too */
} msg;

#define WARN_EACH 3 /* warnings of one kind shown before only counting */
#define WARM_EVERY_NS 100000u /* warm_us: how often the warm call repeats while the frame is awaited
                                * (once per frame left the decision 1.3-1.6x slower: docs/live.md) */

struct cphil_live {
    cphil_live_params p;
    char host_name[64];
    ENetAddress addr;
    ENetHost *host;
    pthread_t th;
    bool th_started;
    atomic_bool stop;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    msg *head, *tail;
    atomic_uint queued_events;
    atomic_uint queued;       /* every message kind: what the caller's spin watches */
    /* ENet is not thread-safe: whoever services it holds host_mu. The caller services it itself
     * while it waits in cphil_live_next (caller_in), so a packet is parsed and turned into an
     * event on the thread that acts on it, with no hand-over between threads; the network
     * thread services it the rest of the time (while the bot decides). */
    pthread_mutex_t host_mu;
    atomic_bool caller_in;
    cphil_live_stats stats; /* under mu */
    /* the connection: whoever holds host_mu */
    ENetPeer *peer;
    bool handshaken, ever_connected, finished;
    uint64_t last_bookend_ns; /* arrival of the last Frame Bookend handed out (warm_us) */
    uint64_t warmed_at_ns;    /* the last warm call (warm_us: repeated every WARM_EVERY_NS) */
    int64_t expect;           /* cursor of the next message wanted; -1 before the first reply */
    double next_try, waiting_since, attempt_started, backoff;
    unsigned warned[8];
    /* caller's thread */
    msg *cur, *done;
    cphil_slp_stream *st, *st_done;
    bool in_game, broken, over;
    int game;
    int32_t max_frame;
    bool have_table;
    bool declared[256];
    uint16_t size[256];
    bool got_copy, got_start;
    cphil_frame fr;
    cphil_live_event final_ev;
    char text[768], pending_warn[768], final_text[768];
};

cphil_live_params cphil_live_default_params(void) {
    cphil_live_params p;
    memset(&p, 0, sizeof p);
    p.host = "127.0.0.1";
    p.port = 51441;
    p.connect_timeout_ms = 60000;
    p.reconnect_timeout_ms = 30000;
    p.net_timeout_ms = 0;
    return p;
}

/* ---- queue (network thread -> caller) ---------------------------------------------------- */

static void push(cphil_live *l, msg *m) {
    pthread_mutex_lock(&l->mu);
    m->next = NULL;
    if (l->tail) l->tail->next = m;
    else l->head = m;
    l->tail = m;
    if (m->kind == M_EVENT) atomic_fetch_add(&l->queued_events, 1);
    atomic_fetch_add(&l->queued, 1);
    pthread_cond_signal(&l->cv);
    pthread_mutex_unlock(&l->mu);
}

static msg *new_msg(int kind, uint32_t len) {
    msg *m = cphil_alloc(sizeof(msg) + len + 1);
    if (!m) return NULL;
    memset(m, 0, sizeof *m);
    m->kind = kind;
    m->len = len;
    m->arrival_ns = cphil_now_ns();
    return m;
}

static void push_text(cphil_live *l, int kind, const char *fmt, ...) CPHIL_PRINTF(3, 4);
static void push_text(cphil_live *l, int kind, const char *fmt, ...) {
    char buf[700];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    size_t n = strlen(buf);
    msg *m = new_msg(kind, (uint32_t)n);
    if (!m) return; /* out of memory: the warning is lost, the counters still say it */
    memcpy(m->data, buf, n + 1);
    m->text = (char *)m->data;
    push(l, m);
}

/* A warning of class k: shown the first WARN_EACH times, then only counted. */
static bool warn_ok(cphil_live *l, int k) { return l->warned[k]++ < WARN_EACH; }

/* ---- network thread ---------------------------------------------------------------------- */

static void stat_add(cphil_live *l, uint64_t *field, uint64_t v) {
    pthread_mutex_lock(&l->mu);
    *field += v;
    pthread_mutex_unlock(&l->mu);
}

static void send_request(cphil_live *l) {
    char buf[96];
    int64_t c = l->expect >= 0 ? l->expect : 0;
    int n = snprintf(buf, sizeof buf, "{\"type\":\"connect_request\",\"cursor\":%lld}", (long long)c);
    ENetPacket *pk = enet_packet_create(buf, (size_t)n, ENET_PACKET_FLAG_RELIABLE);
    if (pk && enet_peer_send(l->peer, 0, pk) < 0) enet_packet_destroy(pk);
}

static bool get_int(const cphil_json_value *root, const char *key, int64_t *out) {
    return cphil_json_as_int64(cphil_json_get(root, key), out);
}

/* A start_game, game_event or end_game with its cursors: dropped when sent twice, a gap reported,
 * else queued. */
static void accept_msg(cphil_live *l, msg *m, int64_t cursor, int64_t next, bool is_start, bool closed) {
    m->cursor = cursor;
    if (!is_start && !closed && l->expect >= 0 && cursor < l->expect) { /* sent twice (resume overlap) */
        cphil_free(m);
        stat_add(l, &l->stats.duplicates, 1);
        return;
    }
    if (!is_start && l->expect >= 0 && cursor > l->expect) {
        stat_add(l, &l->stats.cursor_gaps, 1);
        push_text(l, M_WARNING, "cursor jumped from %lld to %lld: %lld messages were never received", (long long)l->expect,
                  (long long)cursor, (long long)(cursor - l->expect));
    }
    if (next > l->expect) l->expect = next;
    if (is_start) l->expect = next;
    pthread_mutex_lock(&l->mu);
    l->stats.messages++;
    l->stats.next_cursor = l->expect;
    pthread_mutex_unlock(&l->mu);
    push(l, m);
    if (closed) l->finished = true; /* Dolphin is going away: do not reconnect */
}

static void on_packet(cphil_live *l, const uint8_t *data, size_t len, uint64_t t_recv) {
    stat_add(l, &l->stats.bytes, len);
    {
        /* the common case, a game_event exactly as Dolphin writes it: matched and decoded without
         * the general JSON parser (cphil_live_match_game_event); anything else takes the general path */
        int64_t cursor, next;
        const char *b64;
        size_t b64_len, out_len, bad;
        msg *m;
        if (len && cphil_live_match_game_event((const char *)data, len, &cursor, &next, &b64, &b64_len) &&
            (m = new_msg(M_EVENT, (uint32_t)(b64_len / 4 * 3)))) {
            if (cphil_live_b64_decode(b64, b64_len, m->data, &out_len, &bad)) {
                m->len = (uint32_t)out_len;
                m->arrival_ns = t_recv;
                accept_msg(l, m, cursor, next, false, false);
                return;
            }
            cphil_free(m);
        }
    }
    if (len == 0) { /* libmelee skips these too ("at the end of a game for some reason") */
        stat_add(l, &l->stats.zero_length, 1);
        if (warn_ok(l, 0)) push_text(l, M_WARNING, "a zero-length packet from Dolphin: skipped");
        return;
    }
    cphil_json_doc *doc = NULL;
    if (cphil_json_parse((const char *)data, len, &doc)) {
        stat_add(l, &l->stats.malformed, 1);
        if (warn_ok(l, 1))
            push_text(l, M_WARNING, "malformed JSON message from Dolphin (%zu bytes, %s): skipped", len, cphil_last_error());
        return;
    }
    const cphil_json_value *root = cphil_json_root(doc);
    const char *type = cphil_json_as_string(cphil_json_get(root, "type"));
    int64_t cursor = 0, next = 0;
    bool has_cur = get_int(root, "cursor", &cursor) && get_int(root, "next_cursor", &next);
    if (!type) {
        stat_add(l, &l->stats.malformed, 1);
        if (warn_ok(l, 1)) push_text(l, M_WARNING, "a message from Dolphin without a \"type\" string: skipped");
        goto done;
    }
    if (!strcmp(type, "connect_reply")) {
        int64_t c = 0;
        if (!get_int(root, "cursor", &c)) {
            stat_add(l, &l->stats.malformed, 1);
            push_text(l, M_WARNING, "connect_reply without an integer cursor: skipped");
            goto done;
        }
        const char *nick = cphil_json_as_string(cphil_json_get(root, "nick"));
        const char *ver = cphil_json_as_string(cphil_json_get(root, "version"));
        bool resumed = l->expect >= 0 && c == l->expect;
        bool again = l->ever_connected;
        if (again) stat_add(l, &l->stats.reconnects, 1);
        l->handshaken = true;
        l->ever_connected = true;
        l->backoff = 0.1;
        /* Where the server will start: our cursor when it could resume, else the start of its
         * current game (a start_game, always accepted). */
        l->expect = c;
        push_text(l, M_CONNECTED, "%s %s:%d (%s, version %s), %s cursor %lld", again ? "reconnected to" : "connected to",
                  l->host_name, l->p.port, nick ? nick : "?", ver ? ver : "?",
                  again ? (resumed ? "resumed at" : "could not resume; restarting at") : "starting at", (long long)c);
        goto done;
    }
    bool is_start = !strcmp(type, "start_game"), is_event = !strcmp(type, "game_event"), is_end = !strcmp(type, "end_game");
    if (is_start || is_event || is_end) {
        if (!has_cur) {
            stat_add(l, &l->stats.malformed, 1);
            if (warn_ok(l, 1)) push_text(l, M_WARNING, "a %s message without integer cursor/next_cursor: skipped", type);
            goto done;
        }
        bool closed = false;
        if (is_end) cphil_json_as_bool(cphil_json_get(root, "dolphin_closed"), &closed);
        msg *m = NULL;
        if (is_event) {
            const cphil_json_value *pv = cphil_json_get(root, "payload");
            const char *b64 = cphil_json_as_string(pv);
            if (!b64) { /* old Dolphins ended games this way; slippi-js treats it as a disconnect */
                stat_add(l, &l->stats.malformed, 1);
                if (warn_ok(l, 2)) push_text(l, M_WARNING, "game_event at cursor %lld without a payload: skipped", (long long)cursor);
                goto done;
            }
            m = new_msg(M_EVENT, (uint32_t)(pv->len / 4 * 3));
            size_t out_len = 0, bad = 0;
            if (!m) goto nomem;
            if (!cphil_live_b64_decode(b64, pv->len, m->data, &out_len, &bad)) {
                cphil_free(m);
                stat_add(l, &l->stats.malformed, 1);
                if (warn_ok(l, 2))
                    push_text(l, M_WARNING, "game_event at cursor %lld: payload is not base64 (offset %zu of %zu): skipped",
                              (long long)cursor, bad, pv->len);
                goto done;
            }
            m->len = (uint32_t)out_len;
            m->arrival_ns = t_recv; /* arrival = the packet leaving ENet, before JSON and base64 */
        } else {
            m = new_msg(is_start ? M_START : M_END, 0);
            if (!m) goto nomem;
            m->closed = closed;
        }
        accept_msg(l, m, cursor, next, is_start, closed);
        goto done;
    }
    if (!strcmp(type, "menu_event")) {
        const cphil_json_value *pv = cphil_json_get(root, "payload");
        const char *b64 = cphil_json_as_string(pv);
        msg *m = b64 ? new_msg(M_MENU, (uint32_t)(pv->len / 4 * 3)) : NULL;
        size_t out_len = 0, bad = 0;
        if (b64 && !m) goto nomem;
        if (!b64 || !cphil_live_b64_decode(b64, pv->len, m->data, &out_len, &bad) || out_len == 0) {
            cphil_free(m);
            stat_add(l, &l->stats.malformed, 1);
            if (warn_ok(l, 2)) push_text(l, M_WARNING, "menu_event without a valid base64 payload: skipped");
            goto done;
        }
        m->len = (uint32_t)out_len;
        push(l, m);
        goto done;
    }
    stat_add(l, &l->stats.unknown_types, 1);
    if (warn_ok(l, 3)) push_text(l, M_WARNING, "unknown message type \"%.40s\" from Dolphin: skipped", type);
    goto done;
nomem:
    push_text(l, M_WARNING, "out of memory for a message from Dolphin: skipped");
done:
    cphil_json_free(doc);
}

static void drop_peer(cphil_live *l, double now, const char *why) {
    bool was = l->handshaken;
    if (l->peer) enet_peer_reset(l->peer);
    l->peer = NULL;
    l->handshaken = false;
    if (was) {
        l->waiting_since = now;
        l->backoff = 0.1;
        push_text(l, M_DISCONNECTED, "connection to %s:%d lost (%s); reconnecting, will resume at cursor %lld",
                  l->host_name, l->p.port, why, (long long)l->expect);
    } else {
        l->backoff = l->backoff < 2.0 ? l->backoff * 2 : 2.0;
    }
    l->next_try = now + l->backoff;
}

/* One turn of the connection: (re)connect when due, then service ENet, waiting up to wait_ms
 * for the first event and then taking what has already arrived. With until_msg it returns as soon
 * as a message is queued for the caller, after draining only the events ENet has already received
 * (no more I/O), so what waits behind a bookend is counted. Called with host_mu held. */
static void net_step(cphil_live *l, int wait_ms, bool until_msg) {
    double now = cphil_now_sec();
    if (!l->peer && !l->finished) {
        double limit = (l->ever_connected ? l->p.reconnect_timeout_ms : l->p.connect_timeout_ms) / 1000.0;
        if (now - l->waiting_since > limit) {
            l->finished = true;
            push_text(l, M_LOST,
                      l->ever_connected ? "no connection to Dolphin at %s:%d for %.0f s after it dropped: giving up"
                                        : "could not connect to Dolphin's spectator server at %s:%d within %.0f s: "
                                          "is Dolphin running with the spectator server on (cphil dolphin-setup)?",
                      l->host_name, l->p.port, limit);
        } else if (now >= l->next_try) {
            l->peer = enet_host_connect(l->host, &l->addr, 1, 0);
            l->attempt_started = now;
            if (l->peer && l->p.net_timeout_ms > 0)
                enet_peer_timeout(l->peer, 0, (enet_uint32)l->p.net_timeout_ms, (enet_uint32)l->p.net_timeout_ms);
            if (!l->peer) l->next_try = now + 0.5;
        }
    }
    /* a connect that got no answer: try again rather than wait out ENet's own 5 s */
    if (l->peer && !l->handshaken && now - l->attempt_started > 1.0) drop_peer(l, now, "no answer");
    unsigned q0 = atomic_load(&l->queued);
    ENetEvent ev;
    int r = enet_host_service(l->host, &ev, (enet_uint32)(wait_ms > 0 ? wait_ms : 0));
    while (r > 0) {
        now = cphil_now_sec();
        switch (ev.type) {
        case ENET_EVENT_TYPE_CONNECT:
            if (ev.peer == l->peer) send_request(l);
            break;
        case ENET_EVENT_TYPE_RECEIVE:
            if (ev.peer == l->peer) on_packet(l, ev.packet->data, ev.packet->dataLength, cphil_now_ns());
            enet_packet_destroy(ev.packet);
            break;
        case ENET_EVENT_TYPE_DISCONNECT:
            if (ev.peer == l->peer) {
                l->peer = NULL; /* ENet has reset it already */
                bool was = l->handshaken;
                l->handshaken = false;
                if (was) {
                    l->waiting_since = now;
                    l->backoff = 0.1;
                    l->next_try = now + l->backoff;
                    if (!l->finished)
                        push_text(l, M_DISCONNECTED,
                                  "connection to %s:%d lost (Dolphin stopped answering or disconnected); "
                                  "reconnecting, will resume at cursor %lld",
                                  l->host_name, l->p.port, (long long)l->expect);
                } else {
                    l->backoff = l->backoff < 2.0 ? l->backoff * 2 : 2.0;
                    l->next_try = now + l->backoff;
                }
            }
            break;
        default: break;
        }
        r = until_msg && atomic_load(&l->queued) != q0 ? enet_host_check_events(l->host, &ev)
                                                       : enet_host_service(l->host, &ev, 0);
    }
    if (l->finished && l->peer && l->handshaken) {
        enet_peer_disconnect_later(l->peer, 0);
        l->handshaken = false;
    }
}

static void *net_main(void *arg) {
    cphil_live *l = arg;
    while (!atomic_load(&l->stop)) {
        if (atomic_load(&l->caller_in)) { /* the caller is servicing: look again in a millisecond */
            struct timespec ts = {0, 1000000L};
            nanosleep(&ts, NULL);
            continue;
        }
        pthread_mutex_lock(&l->host_mu);
        net_step(l, 0, false);
        int fd = (int)l->host->socket;
        pthread_mutex_unlock(&l->host_mu);
        /* wait for a packet (or 1 ms: ENet's timers) without holding the host */
        struct pollfd pf = {fd, POLLIN, 0};
        poll(&pf, 1, 1);
    }
    pthread_mutex_lock(&l->host_mu);
    if (l->peer) {
        enet_peer_disconnect(l->peer, 0);
        ENetEvent ev;
        double t_end = cphil_now_sec() + 0.2;
        while (cphil_now_sec() < t_end && enet_host_service(l->host, &ev, 10) >= 0) {
            if (ev.type == ENET_EVENT_TYPE_RECEIVE) enet_packet_destroy(ev.packet);
            if (ev.type == ENET_EVENT_TYPE_DISCONNECT) break;
        }
        enet_peer_reset(l->peer);
        l->peer = NULL;
    }
    pthread_mutex_unlock(&l->host_mu);
    return NULL;
}

/* ---- open / close ------------------------------------------------------------------------ */

static pthread_mutex_t g_enet_mu = PTHREAD_MUTEX_INITIALIZER;
static int g_enet_users;

cphil_status cphil_live_enet_acquire(void);
void cphil_live_enet_release(void);
/* enet_initialize / enet_deinitialize counted across the process (client and fake share it). */
cphil_status cphil_live_enet_acquire(void) {
    pthread_mutex_lock(&g_enet_mu);
    int bad = g_enet_users == 0 && enet_initialize() != 0;
    if (!bad) g_enet_users++;
    pthread_mutex_unlock(&g_enet_mu);
    return bad ? cphil_err(CPHIL_E_IO, "ENet could not be initialised") : CPHIL_OK;
}
void cphil_live_enet_release(void) {
    pthread_mutex_lock(&g_enet_mu);
    if (g_enet_users > 0 && --g_enet_users == 0) enet_deinitialize();
    pthread_mutex_unlock(&g_enet_mu);
}

cphil_status cphil_live_open(const cphil_live_params *params, cphil_live **out) {
    if (!out) return cphil_err(CPHIL_E_ARG, "cphil_live_open: out is NULL");
    *out = NULL;
    cphil_live_params p = params ? *params : cphil_live_default_params();
    if (!p.host || !*p.host) p.host = "127.0.0.1";
    if (p.port < 1 || p.port > 65535) return cphil_err(CPHIL_E_ARG, "live: port %d is not 1..65535", p.port);
    if (p.connect_timeout_ms <= 0) p.connect_timeout_ms = 60000;
    if (p.reconnect_timeout_ms <= 0) p.reconnect_timeout_ms = 30000;
    if (p.net_timeout_ms < 0) p.net_timeout_ms = 0;
    if (strlen(p.host) >= 64) return cphil_err(CPHIL_E_ARG, "live: host name too long");
    cphil_status s = cphil_live_enet_acquire();
    if (s) return s;
    cphil_live *l = cphil_calloc(1, sizeof *l);
    if (!l) {
        cphil_live_enet_release();
        return cphil_err(CPHIL_E_NOMEM, "out of memory for a live connection");
    }
    l->p = p;
    snprintf(l->host_name, sizeof l->host_name, "%s", p.host);
    l->p.host = l->host_name;
    l->expect = -1;
    l->max_frame = INT32_MIN;
    pthread_mutex_init(&l->mu, NULL);
    pthread_mutex_init(&l->host_mu, NULL);
    pthread_cond_init(&l->cv, NULL);
    if (enet_address_set_host(&l->addr, p.host) != 0) {
        s = cphil_err(CPHIL_E_ARG, "live: cannot resolve '%s' to an IPv4 address (ENet 1.3 is IPv4 only: use 127.0.0.1)",
                      p.host);
        goto fail;
    }
    l->addr.port = (enet_uint16)p.port;
    l->host = enet_host_create(NULL, 1, 1, 0, 0);
    if (!l->host) {
        s = cphil_err(CPHIL_E_IO, "live: ENet could not create a client host (out of sockets?)");
        goto fail;
    }
    l->stats.next_cursor = -1;
    /* set before the thread starts: the caller may service the connection first */
    l->waiting_since = cphil_now_sec();
    l->backoff = 0.05;
    if (pthread_create(&l->th, NULL, net_main, l) != 0) {
        s = cphil_err(CPHIL_E_IO, "live: cannot start the network thread");
        goto fail;
    }
    l->th_started = true;
    *out = l;
    return CPHIL_OK;
fail:
    cphil_live_close(l);
    return s;
}

void cphil_live_close(cphil_live *l) {
    if (!l) return;
    if (l->th_started) {
        atomic_store(&l->stop, true);
        pthread_join(l->th, NULL);
    }
    if (l->host) enet_host_destroy(l->host);
    msg *m = l->head;
    while (m) {
        msg *n = m->next;
        cphil_free(m);
        m = n;
    }
    cphil_free(l->cur);
    cphil_free(l->done);
    cphil_slp_stream_close(l->st);
    cphil_slp_stream_close(l->st_done);
    pthread_cond_destroy(&l->cv);
    pthread_mutex_destroy(&l->host_mu);
    pthread_mutex_destroy(&l->mu);
    cphil_free(l);
    cphil_live_enet_release();
}

void cphil_live_get_stats(cphil_live *l, cphil_live_stats *out) {
    pthread_mutex_lock(&l->mu);
    *out = l->stats;
    pthread_mutex_unlock(&l->mu);
}

/* ---- caller's thread: messages -> events -------------------------------------------------- */

static void on_start_cb(void *user, const cphil_replay *r) {
    (void)r;
    ((cphil_live *)user)->got_start = true;
}

static void on_copy_cb(void *user, const cphil_replay *r, const cphil_frame *f) {
    (void)r;
    cphil_live *l = user;
    l->fr = *f; /* items point into the parser; valid until the next feed (the next call) */
    l->got_copy = true;
}

static void set_text(cphil_live *l, cphil_live_event *ev, const char *fmt, ...) CPHIL_PRINTF(3, 4);
static void set_text(cphil_live *l, cphil_live_event *ev, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(l->text, sizeof l->text, fmt, ap);
    va_end(ap);
    ev->type = CPHIL_LIVE_WARNING;
    ev->text = l->text;
}

static void end_game(cphil_live *l, cphil_live_event *ev, bool interrupted, bool closed) {
    ev->type = CPHIL_LIVE_GAME_END;
    ev->game = l->game;
    ev->interrupted = interrupted;
    ev->dolphin_closed = closed;
    ev->game_info = l->st ? cphil_slp_stream_replay(l->st) : NULL;
    pthread_mutex_lock(&l->mu);
    if (ev->game_info) l->stats.unknown_events += ev->game_info->unknown_events;
    pthread_mutex_unlock(&l->mu);
    /* the replay stays valid until the next call */
    l->st_done = l->st;
    l->st = NULL;
    l->in_game = false;
}

static cphil_status start_stream(cphil_live *l) {
    cphil_slp_stream_close(l->st);
    l->st = NULL;
    char name[64];
    snprintf(name, sizeof name, "Dolphin stream, game %d", l->game + 1);
    cphil_slp_callbacks cb = {on_start_cb, NULL, NULL, l};
    cphil_status s = cphil_slp_stream_open(&l->st, &cb, name);
    if (s) return s;
    cphil_slp_stream_on_copy(l->st, on_copy_cb);
    l->game++;
    l->in_game = true;
    l->broken = false;
    l->have_table = false;
    memset(l->declared, 0, sizeof l->declared);
    l->max_frame = INT32_MIN;
    return CPHIL_OK;
}

/* Walk the events of the current game_event; 1 = produced an event. */
static int walk(cphil_live *l, msg *m, cphil_live_event *ev) {
    while (m->pos < m->len) {
        const uint8_t *p = m->data + m->pos;
        uint32_t left = m->len - m->pos;
        uint8_t code = p[0];
        uint32_t need;
        if (!l->in_game) {
            m->pos = m->len;
            set_text(l, ev, "a game_event (cursor %lld) outside a game (no start_game before it): skipped",
                     (long long)m->cursor);
            return 1;
        }
        if (code == 0x35) {
            need = left >= 2 ? 1u + p[1] : 2u;
        } else if (l->have_table && l->declared[code]) {
            need = 1u + l->size[code];
        } else if (code == 0x3E) {
            /* a menu frame inside game data (Dolphin bug, project-slippi/dolphin#31): Dolphin
             * sends the whole 96-byte DMA for it */
            need = left < 96 ? left : 96;
            m->pos += need;
            pthread_mutex_lock(&l->mu);
            l->stats.menu_in_game++;
            pthread_mutex_unlock(&l->mu);
            ev->type = CPHIL_LIVE_MENU;
            ev->menu = p;
            ev->menu_len = need;
            ev->in_game = true;
            ev->game = l->game;
            ev->arrival_ns = m->arrival_ns;
            return 1;
        } else {
            uint32_t at = m->pos;
            m->pos = m->len;
            set_text(l, ev,
                     "game %d: event code 0x%02x at byte %u of the game_event at cursor %lld is not declared in Event "
                     "Payloads: the rest of that message (%u bytes) is skipped",
                     l->game, code, at, (long long)m->cursor, left);
            return 1;
        }
        if (need > left) {
            uint32_t at = m->pos;
            m->pos = m->len;
            pthread_mutex_lock(&l->mu);
            l->stats.truncated_events++;
            pthread_mutex_unlock(&l->mu);
            set_text(l, ev, "game %d: truncated event 0x%02x at byte %u of the game_event at cursor %lld (needs %u bytes, %u left): skipped",
                     l->game, code, at, (long long)m->cursor, need, left);
            return 1;
        }
        if (code == 0x35) {
            for (uint32_t i = 2; i + 3 <= need; i += 3) {
                l->declared[p[i]] = true;
                l->size[p[i]] = (uint16_t)((p[i + 1] << 8) | p[i + 2]);
            }
            l->have_table = true;
        }
        l->got_copy = l->got_start = false;
        if (!l->broken) {
            cphil_status s = cphil_slp_stream_feed(l->st, p, need);
            if (s) {
                l->broken = true;
                snprintf(l->pending_warn, sizeof l->pending_warn,
                         "game %d: the replay parser stopped (%s); the bot keeps answering with its last input until the next game",
                         l->game, cphil_last_error());
            }
        }
        m->pos += need;
        if (code == 0x36 && l->got_start) {
            ev->type = CPHIL_LIVE_GAME_START;
            ev->game = l->game;
            ev->game_info = cphil_slp_stream_replay(l->st);
            ev->arrival_ns = m->arrival_ns;
            if (cphil_replay_version(ev->game_info) < cphil_slp_version(3, 0, 0) && !l->pending_warn[0])
                snprintf(l->pending_warn, sizeof l->pending_warn,
                         "game %d: Slippi version below 3.0.0 has no Frame Bookends: no frames will be decided", l->game);
            return 1;
        }
        if (code == 0x3C && need >= 5) {
            int32_t f = (int32_t)((uint32_t)p[1] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 8 | p[4]);
            bool resend = l->max_frame != INT32_MIN && f <= l->max_frame;
            if (!resend) l->max_frame = f;
            pthread_mutex_lock(&l->mu);
            l->stats.bookends++;
            l->stats.resends += resend;
            pthread_mutex_unlock(&l->mu);
            ev->type = CPHIL_LIVE_FRAME;
            ev->game = l->game;
            ev->game_info = cphil_slp_stream_replay(l->st);
            ev->frame_number = f;
            ev->resend = resend;
            ev->decide = !resend && !l->broken && l->got_copy && l->fr.frame == f;
            ev->frame = l->got_copy ? &l->fr : NULL;
            ev->arrival_ns = m->arrival_ns;
            ev->pending_bookends = atomic_load(&l->queued_events);
            l->last_bookend_ns = m->arrival_ns;
            return 1;
        }
        if (l->pending_warn[0]) {
            set_text(l, ev, "%s", l->pending_warn);
            l->pending_warn[0] = '\0';
            return 1;
        }
    }
    return 0;
}

cphil_status cphil_live_next(cphil_live *l, int timeout_ms, cphil_live_event *ev) {
    if (!l || !ev) return cphil_err(CPHIL_E_ARG, "cphil_live_next: NULL argument");
    memset(ev, 0, sizeof *ev);
    cphil_free(l->done);
    l->done = NULL;
    cphil_slp_stream_close(l->st_done);
    l->st_done = NULL;
    if (l->pending_warn[0]) {
        set_text(l, ev, "%s", l->pending_warn);
        l->pending_warn[0] = '\0';
        return CPHIL_OK;
    }
    if (l->over) {
        *ev = l->final_ev;
        ev->text = l->final_text;
        return CPHIL_OK;
    }
    double t_end = cphil_now_sec() + (timeout_ms > 0 ? timeout_ms / 1000.0 : 0);
    for (;;) {
        msg *m = l->cur;
        if (!m && timeout_ms != 0 && !atomic_load(&l->queued)) {
            /* nothing waiting: service ENet here until a message comes (module comment); with
             * spin_us, poll it without sleeping that long first */
            atomic_store(&l->caller_in, true);
            pthread_mutex_lock(&l->host_mu);
            uint64_t t_spin = l->p.spin_us > 0 ? cphil_now_ns() + (uint64_t)l->p.spin_us * 1000u : 0;
            /* warm_us: from warm_us before the next frame is due, warm and poll, warming again every
             * WARM_EVERY_NS: the polling's system calls evict part of what one warm call loaded */
            const uint64_t frame_ns = CPHIL_FRAME_NS;
            uint64_t t_warm = l->p.warm_us > 0 && l->p.warm && l->last_bookend_ns
                                  ? l->last_bookend_ns + frame_ns - (uint64_t)l->p.warm_us * 1000u
                                  : 0;
            while (!atomic_load(&l->queued)) {
                if (timeout_ms > 0 && cphil_now_sec() >= t_end) break;
                int wait = 5; /* ms: ENet's timers and the reconnect logic run at least this often */
                uint64_t now = cphil_now_ns();
                /* from the warm time until the frame comes (at most 4 frames after the last one) */
                bool warm_due = t_warm && now >= t_warm && now < l->last_bookend_ns + 4 * frame_ns;
                if (warm_due && now - l->warmed_at_ns >= WARM_EVERY_NS) {
                    l->p.warm(l->p.warm_ctx);
                    l->warmed_at_ns = cphil_now_ns();
                }
                if (warm_due || (t_spin && now < t_spin)) {
                    wait = 0; /* poll without sleeping */
                } else {
                    if (t_warm && now < t_warm) { /* sleep no later than the warm time */
                        uint64_t ms = (t_warm - now) / 1000000u;
                        if (ms < (uint64_t)wait) wait = (int)ms;
                    }
                    if (timeout_ms > 0) {
                        double left = t_end - cphil_now_sec();
                        if (left < 0.005 && (int)(left * 1000) + 1 < wait) wait = (int)(left * 1000) + 1;
                    }
                }
                net_step(l, wait, true);
            }
            pthread_mutex_unlock(&l->host_mu);
            atomic_store(&l->caller_in, false);
        }
        if (!m) {
            pthread_mutex_lock(&l->mu);
            while (!l->head && timeout_ms != 0) {
                if (timeout_ms < 0) {
                    pthread_cond_wait(&l->cv, &l->mu);
                    continue;
                }
                double left = t_end - cphil_now_sec();
                if (left <= 0) break;
                struct timespec ts;
                clock_gettime(CLOCK_REALTIME, &ts);
                long long ns = ts.tv_nsec + (long long)(left * 1e9);
                ts.tv_sec += (time_t)(ns / 1000000000LL);
                ts.tv_nsec = (long)(ns % 1000000000LL);
                pthread_cond_timedwait(&l->cv, &l->mu, &ts);
            }
            m = l->head;
            if (m) {
                l->head = m->next;
                if (!l->head) l->tail = NULL;
                if (m->kind == M_EVENT) atomic_fetch_sub(&l->queued_events, 1);
                atomic_fetch_sub(&l->queued, 1);
            }
            pthread_mutex_unlock(&l->mu);
            if (!m) {
                ev->type = CPHIL_LIVE_TIMEOUT;
                return CPHIL_OK;
            }
            l->cur = m;
        }
        int done = 1, produced = 0;
        switch (m->kind) {
        case M_CONNECTED:
        case M_DISCONNECTED:
        case M_WARNING:
            ev->type = m->kind == M_CONNECTED ? CPHIL_LIVE_CONNECTED
                       : m->kind == M_DISCONNECTED ? CPHIL_LIVE_DISCONNECTED : CPHIL_LIVE_WARNING;
            snprintf(l->text, sizeof l->text, "%s", m->text);
            ev->text = l->text;
            produced = 1;
            break;
        case M_LOST:
            if (l->in_game) {
                end_game(l, ev, true, false);
                produced = 1;
                done = 0;
                break;
            }
            l->over = true;
            l->final_ev.type = CPHIL_LIVE_LOST;
            snprintf(l->final_text, sizeof l->final_text, "%s", m->text);
            *ev = l->final_ev;
            ev->text = l->final_text;
            produced = 1;
            break;
        case M_START:
            if (l->in_game) { /* the previous game never got its end_game */
                end_game(l, ev, true, false);
                produced = 1;
                done = 0;
                break;
            }
            if (start_stream(l)) {
                set_text(l, ev, "cannot start a game: %s", cphil_last_error());
                produced = 1;
            }
            break;
        case M_EVENT:
            produced = walk(l, m, ev);
            done = m->pos >= m->len;
            break;
        case M_END:
            if (l->in_game) {
                end_game(l, ev, m->closed, m->closed); /* closing mid-game */
                produced = 1;
                done = !m->closed; /* then CLOSED */
                if (m->closed) m->closed = false, m->pos = 1;
                break;
            }
            if (m->closed || m->pos == 1) {
                l->over = true;
                l->final_ev.type = CPHIL_LIVE_CLOSED;
                l->final_ev.dolphin_closed = true;
                snprintf(l->final_text, sizeof l->final_text, "Dolphin closed");
                *ev = l->final_ev;
                ev->text = l->final_text;
                produced = 1;
            }
            break;
        case M_MENU:
            ev->type = CPHIL_LIVE_MENU;
            ev->menu = m->data;
            ev->menu_len = m->len;
            ev->arrival_ns = m->arrival_ns;
            produced = 1;
            break;
        default: break;
        }
        if (done) {
            l->done = m; /* event pointers into it stay valid until the next call */
            l->cur = NULL;
        }
        if (produced) return CPHIL_OK;
        cphil_free(l->done);
        l->done = NULL;
    }
}
