/* fuzz_slp.c — libFuzzer target for the replay reader (built and run by `make fuzz`, not part
 * of `make test`). Each input is parsed whole (cphil_slp_read_mem) and through the incremental
 * parser in pieces whose sizes come from the input's own bytes; both must agree on the status
 * and on the frame counts, and every reported frame must be gathered without a fault. ASan and
 * UBSan catch memory and undefined-behaviour errors; a mismatch aborts. */
#include "cphil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static unsigned long reported;
static void on_frame(void *u, const cphil_replay *r, const cphil_frame *f) {
    (void)u;
    (void)r;
    reported += (unsigned long)f->n_items + 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    cphil_replay *whole = NULL;
    cphil_status a = cphil_slp_read_mem(data, size, "fuzz", &whole);

    cphil_slp_callbacks cb = {NULL, on_frame, NULL, NULL};
    cphil_slp_stream *s = NULL;
    if (cphil_slp_stream_open(&s, &cb, "fuzz") != CPHIL_OK) abort();
    cphil_slp_stream_on_copy(s, on_frame);
    size_t pos = 0, k = 0;
    cphil_status b = CPHIL_OK;
    while (pos < size && b == CPHIL_OK) {
        size_t piece = 1 + (size_t)(data[k++ % size] % 97);
        if (piece > size - pos) piece = size - pos;
        b = cphil_slp_stream_feed(s, data + pos, piece);
        pos += piece;
    }
    if (b == CPHIL_OK) b = cphil_slp_stream_finish(s);
    const cphil_replay *inc = cphil_slp_stream_replay(s);
    if (a != b) {
        fprintf(stderr, "whole %d vs pieces %d\n", (int)a, (int)b);
        abort();
    }
    if (whole) {
        if (whole->n_frames != inc->n_frames || whole->frame_copies != inc->frame_copies ||
            whole->n_items != inc->n_items || whole->item_events != inc->item_events)
            abort();
        cphil_frame f;
        for (uint32_t i = 0; i < whole->n_frames; i++) cphil_replay_get_frame(whole, i, &f);
        (void)cphil_replay_gecko_codes(whole, NULL);
    }
    cphil_slp_stream_close(s);
    cphil_replay_free(whole);
    return 0;
}
