/* live_log.c — one JSON line per decision (live_log.h). Classes are the controller's values
 * rounded to the heads' grids (stick k/16, shoulder k/4), exactly what the pipe writer sends. */
#include "live/live_log.h"

#include <math.h>

static int cls(float v, int n) {
    if (!(v == v)) return n / 2;
    int k = (int)lroundf(v * (float)(n - 1));
    return k < 0 ? 0 : k > n - 1 ? n - 1 : k;
}

size_t cphil_live_log_format(char *buf, size_t cap, int game, int32_t frame, const cphil_controller_state *c,
                       double latency_us) {
    int n = snprintf(buf, cap,
                     "{\"game\":%d,\"frame\":%d,\"buttons\":[%d,%d,%d,%d,%d,%d,%d,%d],\"main_x\":%.4f,\"main_y\":%.4f,"
                     "\"c_x\":%.4f,\"c_y\":%.4f,\"shoulder\":%.4f,\"cls\":[%d,%d,%d,%d,%d]",
                     game, (int)frame, c->button[0] != 0, c->button[1] != 0, c->button[2] != 0, c->button[3] != 0,
                     c->button[4] != 0, c->button[5] != 0, c->button[6] != 0, c->button[7] != 0, (double)c->main_x,
                     (double)c->main_y, (double)c->c_x, (double)c->c_y, (double)c->shoulder, cls(c->main_x, 17),
                     cls(c->main_y, 17), cls(c->c_x, 17), cls(c->c_y, 17), cls(c->shoulder, 5));
    if (n < 0 || (size_t)n >= cap) return 0;
    int m = latency_us >= 0 ? snprintf(buf + n, cap - (size_t)n, ",\"latency_us\":%.2f}\n", latency_us)
                            : snprintf(buf + n, cap - (size_t)n, "}\n");
    if (m < 0 || (size_t)(n + m) >= cap) return 0;
    return (size_t)(n + m);
}
