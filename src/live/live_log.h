/* live_log.h — the decision log shared by `cphil play --log` and `cphil play-replay --log`: one
 * JSON line per agent step, so a live game and a replay of it compare line by line. */
#ifndef CPHIL_LIVE_LOG_H
#define CPHIL_LIVE_LOG_H

#include "core/core.h"

#include <stdio.h>

/* {"game":G,"frame":N,"buttons":[8 x 0/1],"main_x":..,"main_y":..,"c_x":..,"c_y":..,"shoulder":..,
 *  "cls":[main_x,main_y,c_x,c_y,shoulder],"latency_us":..}; latency_us < 0 is left out. Returns the
 * line's length, at most cap - 1 (the line ends in '\n'). */
size_t cphil_live_log_format(char *buf, size_t cap, int game, int32_t frame, const cphil_controller_state *c,
                       double latency_us);

#endif
