/* read_replay.c — the replay API in a few lines: read a .slp whole and walk its frame table
 * (structure of arrays), then read it again through the incremental parser, as live play does.
 *   build/rel/examples/read_replay FILE.slp
 */
#include "cphil.h"

#include <stdio.h>
#include <stdlib.h>

static void on_frame(void *user, const cphil_replay *r, const cphil_frame *f) {
    (void)r;
    long *n = user;
    if (f->frame == 0) /* the frame the timer starts */
        printf("stream: frame 0 final, P1 at (%.2f, %.2f), %u items\n", f->ports[0][0].post.x,
               f->ports[0][0].post.y, f->n_items);
    (*n)++;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: read_replay FILE.slp\n");
        return 2;
    }
    cphil_replay *r = NULL;
    cphil_status st = cphil_slp_read_file(argv[1], &r);
    if (st != CPHIL_OK && st != CPHIL_E_TRUNCATED) {
        fprintf(stderr, "%s\n", cphil_last_error());
        return 1;
    }
    char ver[16];
    cphil_replay_version_string(r, ver, sizeof ver);
    printf("version %s, stage %u, %u frames (%d..%d)\n", ver, r->game.stage, r->n_frames, r->first_frame, r->last_frame);
    for (int p = 0; p < CPHIL_SLP_PORTS; p++) {
        const cphil_char_columns *c = &r->ports[p].leader;
        if (!c->allocated) continue;
        double sum = 0;
        uint32_t n = 0;
        for (uint32_t i = 0; i < r->n_frames; i++) /* one column, contiguous */
            if (c->present[i] & CPHIL_PRESENT_POST) {
                sum += c->post.percent[i];
                n++;
            }
        printf("P%d: external character %u, mean percent %.1f over %u frames%s\n", p + 1, r->game.players[p].character,
               n ? sum / n : 0.0, n, r->ports[p].follower.allocated ? " (+ Nana)" : "");
    }
    cphil_replay_free(r);

    /* the same file through the stream, in 1000-byte pieces */
    FILE *fp = fopen(argv[1], "rb");
    if (!fp) return 1;
    long reported = 0;
    cphil_slp_callbacks cb = {NULL, on_frame, NULL, &reported};
    cphil_slp_stream *s;
    if (cphil_slp_stream_open(&s, &cb, argv[1]) != CPHIL_OK) return 1;
    unsigned char buf[1000];
    size_t got;
    st = CPHIL_OK;
    while (!st && (got = fread(buf, 1, sizeof buf, fp)) > 0) st = cphil_slp_stream_feed(s, buf, got);
    fclose(fp);
    if (!st) st = cphil_slp_stream_finish(s);
    printf("stream: %ld frames reported (%s)\n", reported, st ? cphil_last_error() : "ok");
    cphil_slp_stream_close(s);
    return st && st != CPHIL_E_TRUNCATED;
}
