/* predict_engine.c — `cphil predict --engine`: the logits of the engine the agent runs, so that
 * other runtimes are checked against what plays, not against a twin. The replay goes through
 * cphil_agent_step frame by frame (window mode, the file's precision: an int8 file runs its int8
 * weights, its id gather table and its activation mode and scales); after each decision on a
 * frame in A..B the agent's logits are kept, and the window it decided on (its embedded frames,
 * left-padded with the first frame it saw, as the engine pads) is written densified, so ONNX
 * Runtime can run the exported graph on exactly those inputs.
 */
#include "cli/predict_engine.h"

#include <string.h>

cphil_status cli_predict_engine(const char *policy, const char *replay, int port, int32_t A, int32_t B,
                                cli_engine_out *out) {
    memset(out, 0, sizeof *out);
    if (A < CPHIL_AGENT_FIRST_FRAME)
        return cphil_err(CPHIL_E_ARG, "predict --engine: the agent decides from frame %d on (--frames %d:%d)",
                         CPHIL_AGENT_FIRST_FRAME, (int)A, (int)B);
    cphil_agent_params p = cphil_agent_default_params();
    p.mode = CPHIL_AGENT_WINDOW;
    p.precision = CPHIL_AGENT_PREC_AUTO;
    p.deterministic = 1;
    p.port = port - 1; /* the C API takes a player index */
    cphil_agent *a = NULL;
    cphil_replay *r = NULL;
    float *ring = NULL;
    cphil_status s = cphil_agent_open(policy, &p, &a);
    if (!s) {
        s = cphil_slp_read_file(replay, &r);
        if (s == CPHIL_E_TRUNCATED && r) s = CPHIL_OK; /* the frames before the cut */
    }
    if (!s) s = cphil_agent_game_start(a, r);
    if (s) goto done;
    cphil_agent_get_config(a, &out->cfg);
    const int W = out->cfg.window, E = out->cfg.E, nc = out->cfg.n_cont, ni = out->cfg.n_ids;
    if (r->n_frames == 0 || A > B || B > r->last_frame) {
        s = cphil_err(CPHIL_E_ARG, "%s: frames %d:%d are outside the replay's frames %d:%d", replay, (int)A, (int)B,
                      (int)CPHIL_AGENT_FIRST_FRAME, (int)r->last_frame);
        goto done;
    }
    const int n = (int)(B - A + 1);
    out->X = cphil_calloc((size_t)n * W * E, sizeof(float));
    out->logits = cphil_calloc((size_t)n * CPHIL_N_LOGITS, sizeof(float));
    ring = cphil_calloc((size_t)W * E, sizeof(float)); /* the last W frames the agent saw, densified */
    if (!out->X || !out->logits || !ring) {
        s = cphil_err(CPHIL_E_NOMEM, "predict: out of memory (%d windows of %d x %d)", n, W, E);
        goto done;
    }
    long seen = 0; /* frames in the agent's buffer */
    cphil_frame f;
    for (uint32_t row = 0; row < r->n_frames && out->N < n; row++) {
        cphil_replay_get_frame(r, row, &f);
        cphil_controller_state ctl;
        if ((s = cphil_agent_step(a, &f, &ctl))) goto done;
        const float *lg = cphil_agent_last_logits(a), *cont = NULL;
        const int32_t *ids = NULL;
        if (f.frame < CPHIL_AGENT_FIRST_FRAME || !lg || !cphil_agent_last_inputs(a, &cont, &ids)) continue;
        float *d = ring + (size_t)(seen % W) * E;
        memset(d, 0, sizeof(float) * (size_t)E);
        memcpy(d, cont, sizeof(float) * (size_t)nc);
        for (int k = 0; k < ni; k++)
            if (ids[k] >= nc && ids[k] < E) d[ids[k]] += 1.0f;
        seen++;
        if (f.frame < A) continue;
        /* window position t holds frame seen-W+t, or the first frame while the buffer fills
         * (then seen <= W, so slot 0 of the ring still holds it) */
        float *x = out->X + (size_t)out->N * W * E;
        for (int t = 0; t < W; t++) {
            long k = seen - W + t;
            if (k < 0) k = 0;
            memcpy(x + (size_t)t * E, ring + (size_t)(k % W) * E, sizeof(float) * (size_t)E);
        }
        memcpy(out->logits + (size_t)out->N * CPHIL_N_LOGITS, lg, sizeof(float) * CPHIL_N_LOGITS);
        out->N++;
    }
    out->W = W;
    out->E = E;
    if (out->N != n)
        s = cphil_err(CPHIL_E_ARG, "%s: frames %d:%d: the agent decided on %d of %d frames (missing frames in the replay?)",
                      replay, (int)A, (int)B, out->N, n);
done:
    cphil_free(ring);
    cphil_replay_free(r);
    cphil_agent_close(a);
    if (s) cli_engine_out_free(out);
    return s;
}

void cli_engine_out_free(cli_engine_out *o) {
    cphil_free(o->X);
    cphil_free(o->logits);
    o->X = o->logits = NULL;
    o->N = 0;
}
