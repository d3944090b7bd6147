/* bot_frame_example.c — drive a cphil agent from a harness's own view of the game, without
 * cphil's replay parser: fill a cphil_bot_game once and a cphil_bot_frame every frame (here a
 * made-up Fox vs Falco on Final Destination, the two walking toward each other; a real harness
 * copies these fields from libmelee's GameState or its own reader), and print the decisions.
 * Build: make examples   Run: build/rel/examples/bot_frame_example POLICY [FRAMES]
 */
#include "cphil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s POLICY [FRAMES]\n", argv[0]);
        return 2;
    }
    int frames = argc > 2 ? atoi(argv[2]) : 120;
    cphil_agent_params params = cphil_agent_default_params();
    params.port = 0; /* the bot plays port 1 (player index 0) */
    params.deterministic = 1;
    cphil_agent *agent = NULL;
    if (cphil_agent_open(argv[1], &params, &agent) != CPHIL_OK) {
        fprintf(stderr, "agent: %s\n", cphil_last_error());
        return 1;
    }
    cphil_bot_game game = cphil_bot_game_default(); /* every field known, as in live play */
    game.stage = 32;                                /* Final Destination (external id) */
    game.playing[0] = game.playing[1] = 1;
    if (cphil_agent_game_start_bot(agent, &game) != CPHIL_OK) {
        fprintf(stderr, "agent: %s\n", cphil_last_error());
        cphil_agent_close(agent);
        return 1;
    }
    static cphil_bot_frame f; /* ~4 KB: static, so the loop below needs no stack for it */
    int rc = 0;
    for (int t = 0; t < frames; t++) {
        memset(&f, 0, sizeof f);
        f.frame = -39 + t; /* players can act from frame -39 */
        for (int p = 0; p < 2; p++) {
            cphil_bot_player *pl = &f.player[p];
            pl->present = 1;
            pl->character = p ? 22 : 1; /* internal ids: Fox 1, Falco 22 */
            pl->action_state = 20;      /* walking */
            pl->x = (p ? 40.0f : -40.0f) + (p ? -0.5f : 0.5f) * (float)t;
            pl->facing = p ? -1.0f : 1.0f;
            pl->stocks = 4;
            pl->shield = 60.0f;
            pl->on_ground = 1;
            pl->jumps_left = 2;
            pl->action_frame = (float)(t % 30);
        }
        cphil_controller_state c;
        if (cphil_agent_step_bot(agent, &f, &c) != CPHIL_OK) {
            fprintf(stderr, "agent: %s\n", cphil_last_error());
            rc = 1;
            break;
        }
        if (t % 30 == 29)
            printf("frame %4d: A %d B %d X %d  main (%.2f, %.2f)  c (%.2f, %.2f)  shoulder %.2f\n", f.frame, c.button[0],
                   c.button[1], c.button[2], c.main_x, c.main_y, c.c_x, c.c_y, c.shoulder);
    }
    cphil_agent_close(agent);
    return rc;
}
