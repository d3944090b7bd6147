/* live_bot.c — a live bot in about 80 lines: the C API of include/cphil_live.h around
 * cphil_agent_step. Connects to Slippi Dolphin's spectator server, plays one game as port 1
 * through the pipe device, answering every bookend (BlockingPipes-safe), and stops.
 *
 *   build/rel/examples/live_bot POLICY FIFO [HOST [PORT]]
 *   e.g. live_bot policy.safetensors ~/.config/SlippiOnline/Pipes/slippibot1 127.0.0.1 51441
 * (try it without Dolphin: cphil fake-dolphin --replay R --lockstep --user-dir DIR; docs/live.md)
 */
#include "cphil_live.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s POLICY FIFO [HOST [PORT]]\n", argv[0]);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN); /* a closed Dolphin is an error from cphil_pad_write, not a signal */
    cphil_agent_params ap = cphil_agent_default_params();
    ap.port = 0; /* port 1 */
    ap.mode = CPHIL_AGENT_STREAM;
    ap.deterministic = 1;
    cphil_live_params lp = cphil_live_default_params();
    if (argc > 3) lp.host = argv[3];
    if (argc > 4) lp.port = atoi(argv[4]);
    lp.connect_timeout_ms = 20000;
    cphil_agent *agent = NULL;
    cphil_live *live = NULL;
    cphil_pad *pad = NULL;
    int rc = 1;
    if (cphil_agent_open(argv[1], &ap, &agent) || cphil_live_open(&lp, &live) || cphil_pad_open(argv[2], 20000, &pad)) {
        fprintf(stderr, "live_bot: %s\n", cphil_last_error());
        goto out;
    }
    cphil_controller_state ctrl;
    int frames = 0, done = 0;
    while (!done) {
        cphil_live_event ev;
        if (cphil_live_next(live, 1000, &ev)) break;
        cphil_status s = CPHIL_OK;
        switch (ev.type) {
        case CPHIL_LIVE_GAME_START:
            if (cphil_agent_game_start(agent, ev.game_info)) fprintf(stderr, "live_bot: %s\n", cphil_last_error());
            s = cphil_pad_neutral(pad); /* released and neutral for the first frame */
            break;
        case CPHIL_LIVE_FRAME:
            /* decide on the first simulation of a frame; answer re-simulations with the same state */
            if (ev.decide && cphil_agent_step(agent, ev.frame, &ctrl) == CPHIL_OK) frames++;
            s = frames ? cphil_pad_write(pad, &ctrl) : cphil_pad_neutral(pad);
            break;
        case CPHIL_LIVE_MENU: s = cphil_pad_neutral(pad); break; /* lockstep waits on menu frames too */
        case CPHIL_LIVE_WARNING:
        case CPHIL_LIVE_CONNECTED:
        case CPHIL_LIVE_DISCONNECTED: fprintf(stderr, "live_bot: %s\n", ev.text); break;
        case CPHIL_LIVE_GAME_END:
            printf("live_bot: game %d %s after %d decisions\n", ev.game, ev.interrupted ? "interrupted" : "over", frames);
            rc = ev.interrupted;
            done = 1;
            break;
        case CPHIL_LIVE_CLOSED:
        case CPHIL_LIVE_LOST: fprintf(stderr, "live_bot: %s\n", ev.text); done = 1; break;
        case CPHIL_LIVE_TIMEOUT: break;
        }
        if (s) {
            fprintf(stderr, "live_bot: %s\n", cphil_last_error());
            done = 1;
            rc = 1;
        }
    }
out:
    cphil_pad_close(pad);
    cphil_live_close(live);
    cphil_agent_close(agent);
    return rc;
}
