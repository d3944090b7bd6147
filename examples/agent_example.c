/* agent_example.c — the smallest program that embeds a cphil agent: open a policy, read a
 * replay, and drive the agent through it frame by frame as a bot harness would with live frames
 * (game start, then one step per final frame), printing a few of its controller states.
 * Build: make examples   Run: build/rel/examples/agent_example POLICY REPLAY.slp [PORT]
 */
#include "cphil.h"

#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s POLICY REPLAY.slp [PORT 1..4]\n", argv[0]);
        return 2;
    }
    cphil_agent_params params = cphil_agent_default_params();
    params.port = argc > 3 ? atoi(argv[3]) - 1 : 0;
    params.mode = CPHIL_AGENT_STREAM;
    params.temperature = 0.5f;
    params.seed = 7;
    cphil_agent *agent = NULL;
    if (cphil_agent_open(argv[1], &params, &agent) != CPHIL_OK) {
        fprintf(stderr, "agent: %s\n", cphil_last_error());
        return 1;
    }
    cphil_agent_config cfg;
    cphil_agent_get_config(agent, &cfg);
    printf("policy: %s, window %d, hidden %d, %lld parameters, %s weights, %s mode\n", cfg.backbone, cfg.window,
           cfg.hidden, cfg.params, cfg.precision, cfg.mode);

    cphil_replay *replay = NULL;
    cphil_status s = cphil_slp_read_file(argv[2], &replay);
    if (s != CPHIL_OK && s != CPHIL_E_TRUNCATED) {
        fprintf(stderr, "replay: %s\n", cphil_last_error());
        cphil_agent_close(agent);
        return 1;
    }
    int rc = 0;
    if (cphil_agent_game_start(agent, replay) != CPHIL_OK) {
        fprintf(stderr, "game start: %s\n", cphil_last_error());
        rc = 1;
    }
    long pressed_a = 0, steps = 0;
    for (uint32_t i = 0; rc == 0 && i < replay->n_frames; i++) {
        cphil_frame f;
        cphil_replay_get_frame(replay, i, &f);
        cphil_controller_state c;
        if (cphil_agent_step(agent, &f, &c) != CPHIL_OK) {
            fprintf(stderr, "step: %s\n", cphil_last_error());
            rc = 1;
            break;
        }
        steps++;
        pressed_a += c.button[0];
        if (i % 600 == 0)
            printf("frame %6d: main (%.3f, %.3f) c (%.3f, %.3f) shoulder %.2f A %d B %d\n", f.frame, c.main_x, c.main_y,
                   c.c_x, c.c_y, c.shoulder, c.button[0], c.button[1]);
    }
    printf("%ld frames, A pressed on %ld\n", steps, pressed_a);
    cphil_replay_free(replay);
    cphil_agent_close(agent);
    return rc;
}
