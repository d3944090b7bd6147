/* pad.c — the controller writer of cphil_live.h: Dolphin's pipe input device on a FIFO.
 * One write() per frame holding the whole state and ending in FLUSH (atomic under PIPE_BUF, so
 * Dolphin's 32-byte reads never apply half a frame), in the grammar of reference/live_play.md
 * 3.3. The whole state every frame, not changes: a line Dolphin dropped or a write it missed
 * heals on the next frame. Does not: Windows named pipes (fixed names, no blocking support).
 */
#include "cphil_live.h"
#include "core/core.h"
#include "live/live_proto.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PAD_BUF 1024 /* a frame is about 200 bytes; PIPE_BUF is 4096 */

struct cphil_pad {
    int fd;
    char path[512];
    char last[PAD_BUF];
    size_t last_len;
};

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

cphil_status cphil_pad_open(const char *fifo_path, int timeout_ms, cphil_pad **out) {
    if (!out || !fifo_path) return cphil_err(CPHIL_E_ARG, "cphil_pad_open: NULL argument");
    *out = NULL;
    double t_end = cphil_now_sec() + (timeout_ms > 0 ? timeout_ms / 1000.0 : 0);
    int fd;
    /* O_NONBLOCK: a plain O_WRONLY open would block until Dolphin opens the read end, with no
     * way to time out; ENXIO means "no reader yet" */
    for (;;) {
        fd = open(fifo_path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
        if (fd >= 0) break;
        /* ENOENT: retried too, so a bot may start before the FIFO is made (tests, scripts) */
        if ((errno != ENXIO && errno != ENOENT) || cphil_now_sec() >= t_end) {
            if (errno == ENXIO)
                return cphil_err(CPHIL_E_IO,
                                 "%s: no reader within %d ms: is Dolphin running with this user directory, and did "
                                 "it start after the FIFO was made (it scans Pipes/ at startup)?",
                                 fifo_path, timeout_ms);
            if (errno == ENOENT)
                return cphil_err(CPHIL_E_IO, "%s: no such FIFO after %d ms (make it with cphil dolphin-setup, then restart Dolphin)",
                                 fifo_path, timeout_ms);
            return cphil_err(CPHIL_E_IO, "%s: cannot open for writing: %s", fifo_path, strerror(errno));
        }
        sleep_ms(20);
    }
    cphil_pad *p = cphil_calloc(1, sizeof *p);
    if (!p) {
        close(fd);
        return cphil_err(CPHIL_E_NOMEM, "out of memory for the controller pipe");
    }
    p->fd = fd;
    snprintf(p->path, sizeof p->path, "%s", fifo_path);
    *out = p;
    return CPHIL_OK;
}

static size_t put(char *buf, size_t at, size_t cap, const char *s) {
    size_t n = strlen(s);
    if (at + n < cap) memcpy(buf + at, s, n);
    return at + n;
}

static int class_of(float v, int n) {
    if (!(v == v)) return n / 2;
    int k = (int)lroundf(v * (float)(n - 1));
    return k < 0 ? 0 : k > n - 1 ? n - 1 : k;
}

/* Head button i (A B X Y Z L R D-up) -> pipe name */
static const char *const k_head_btn[8] = {"A", "B", "X", "Y", "Z", "L", "R", "D_UP"};

size_t cphil_pad_format(const cphil_controller_state *c, char *buf, size_t cap) {
    size_t n = 0;
    char num[16];
    for (int i = 0; i < 8; i++) {
        n = put(buf, n, cap, c->button[i] ? "PRESS " : "RELEASE ");
        n = put(buf, n, cap, k_head_btn[i]);
        n = put(buf, n, cap, "\n");
    }
    n = put(buf, n, cap, "SET MAIN ");
    cphil_live_fmt_unit(num, cphil_live_stick_pipe_value(class_of(c->main_x, 17)));
    n = put(buf, n, cap, num);
    n = put(buf, n, cap, " ");
    cphil_live_fmt_unit(num, cphil_live_stick_pipe_value(class_of(c->main_y, 17)));
    n = put(buf, n, cap, num);
    n = put(buf, n, cap, "\nSET C ");
    cphil_live_fmt_unit(num, cphil_live_stick_pipe_value(class_of(c->c_x, 17)));
    n = put(buf, n, cap, num);
    n = put(buf, n, cap, " ");
    cphil_live_fmt_unit(num, cphil_live_stick_pipe_value(class_of(c->c_y, 17)));
    n = put(buf, n, cap, num);
    /* the shoulder head is one analog value; the replay's max(L, R) -> put it on L, R at 0 */
    n = put(buf, n, cap, "\nSET L ");
    cphil_live_fmt_unit(num, cphil_live_shoulder_pipe_value(class_of(c->shoulder, 5)));
    n = put(buf, n, cap, num);
    n = put(buf, n, cap, "\nSET R 0.000000\nFLUSH\n");
    if (n >= cap) n = cap - 1;
    buf[n] = '\0';
    return n;
}

static cphil_status send_all(cphil_pad *p, const char *buf, size_t n) {
    /* one write(): n < PIPE_BUF so it is all or nothing; EAGAIN = Dolphin is not reading and the
     * pipe (64 KiB) is full: wait briefly, then report */
    double t_end = 0;
    for (;;) {
        ssize_t w = write(p->fd, buf, n);
        if (w == (ssize_t)n) return CPHIL_OK;
        if (w >= 0) return cphil_err(CPHIL_E_IO, "%s: short write (%zd of %zu bytes)", p->path, w, n);
        if (errno == EINTR) continue;
        if (errno == EPIPE)
            return cphil_err(CPHIL_E_IO, "%s: Dolphin closed the controller pipe (EPIPE): has Dolphin exited?", p->path);
        if (errno != EAGAIN) return cphil_err(CPHIL_E_IO, "%s: write failed: %s", p->path, strerror(errno));
        if (t_end == 0) t_end = cphil_now_sec() + 1.0;
        if (cphil_now_sec() >= t_end)
            return cphil_err(CPHIL_E_IO, "%s: the pipe stayed full for 1 s: Dolphin is not reading its controller input",
                             p->path);
        struct pollfd pf = {p->fd, POLLOUT, 0};
        poll(&pf, 1, 10);
    }
}

cphil_status cphil_pad_write(cphil_pad *p, const cphil_controller_state *c) {
    if (!p || !c) return cphil_err(CPHIL_E_ARG, "cphil_pad_write: NULL argument");
    p->last_len = cphil_pad_format(c, p->last, sizeof p->last);
    return send_all(p, p->last, p->last_len);
}

cphil_status cphil_pad_neutral(cphil_pad *p) {
    if (!p) return cphil_err(CPHIL_E_ARG, "cphil_pad_neutral: NULL argument");
    size_t n = 0;
    for (int b = 0; b < LIVE_PIPE_BUTTONS; b++) {
        n = put(p->last, n, sizeof p->last, "RELEASE ");
        n = put(p->last, n, sizeof p->last, cphil_live_pipe_button_names[b]);
        n = put(p->last, n, sizeof p->last, "\n");
    }
    n = put(p->last, n, sizeof p->last, "SET MAIN 0.500000 0.500000\nSET C 0.500000 0.500000\nSET L 0.000000\nSET R 0.000000\nFLUSH\n");
    p->last[n] = '\0';
    p->last_len = n;
    return send_all(p, p->last, n);
}

cphil_status cphil_pad_write_raw(cphil_pad *p, const cphil_pad_raw *r) {
    if (!p || !r) return cphil_err(CPHIL_E_ARG, "cphil_pad_write_raw: NULL argument");
    size_t n = 0;
    char num[16];
    for (int b = 0; b < LIVE_PIPE_BUTTONS; b++) {
        n = put(p->last, n, sizeof p->last, (r->buttons & cphil_live_pipe_button_bits[b]) ? "PRESS " : "RELEASE ");
        n = put(p->last, n, sizeof p->last, cphil_live_pipe_button_names[b]);
        n = put(p->last, n, sizeof p->last, "\n");
    }
    const float v[6] = {r->main_x, r->main_y, r->c_x, r->c_y, r->l, r->r};
    static const char *const lead[6] = {"SET MAIN ", " ", "\nSET C ", " ", "\nSET L ", "\nSET R "};
    for (int i = 0; i < 6; i++) {
        n = put(p->last, n, sizeof p->last, lead[i]);
        cphil_live_fmt_unit(num, v[i]);
        n = put(p->last, n, sizeof p->last, num);
    }
    n = put(p->last, n, sizeof p->last, "\nFLUSH\n");
    if (n >= sizeof p->last) n = sizeof p->last - 1;
    p->last[n] = '\0';
    p->last_len = n;
    return send_all(p, p->last, n);
}

const char *cphil_pad_last_text(const cphil_pad *p) { return p ? p->last : ""; }

void cphil_pad_close(cphil_pad *p) {
    if (!p) return;
    close(p->fd);
    cphil_free(p);
}
