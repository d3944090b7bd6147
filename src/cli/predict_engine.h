/* predict_engine.h — `cphil predict --engine` (predict_engine.c): the agent's engine on a replay. */
#ifndef CPHIL_CLI_PREDICT_ENGINE_H
#define CPHIL_CLI_PREDICT_ENGINE_H

#include "core/core.h"
#include "model/model.h"

typedef struct cli_engine_out {
    float *X;      /* [N, W, E] the windows the engine decided on, densified */
    float *logits; /* [N, CPHIL_N_LOGITS] the agent's logits after each of frames A..B */
    int N, W, E;
    cphil_agent_config cfg;
} cli_engine_out;

/* Run policy P as the agent runs it (window mode, the file's precision, deterministic) on replay
 * R for port (1..4), keeping frames A..B (A >= CPHIL_AGENT_FIRST_FRAME). Errors: the agent's and
 * the replay reader's, CPHIL_E_ARG for frames outside the replay. */
cphil_status cli_predict_engine(const char *policy, const char *replay, int port, int32_t A, int32_t B,
                                cli_engine_out *out);
void cli_engine_out_free(cli_engine_out *o);

#endif
