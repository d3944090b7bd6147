/* batcher.c — batches over a dataset cache: windows (W rows, stride S, never crossing entries,
 * seeded shuffle) and TBPTT streams (each batch slot walks one entry in consecutive chunks).
 *
 * A sample at window position w pairs the state of row t = start + w with the targets of row
 * t + 1 + D of the same entry; windows are placed so that every target row exists. In stream mode
 * a chunk may run past its entry's last pair: those positions get weight 0, and the slot starts
 * its next entry at the next chunk with reset = 1. Building a batch allocates nothing: every
 * buffer is made by cphil_batcher_open / cphil_batch_alloc. Deliberately not: oversampling or
 * class balancing (per-frame weights are the hook for that).
 */
#include "data/dataset.h"
#include "kernels/cpu/kernels.h"

#include <string.h>

typedef struct win {
    uint32_t entry;
    uint32_t start; /* row offset inside the entry */
} win;

struct cphil_batcher {
    const cphil_dataset *ds;
    cphil_batcher_opts o;
    uint32_t *entries;  /* entries of the split */
    uint32_t n_entries;
    win *wins;          /* window mode: every window of the split */
    uint64_t n_wins;
    uint64_t pos;       /* next window / next entry in the queue */
    /* stream state per slot */
    int32_t *slot_entry;
    uint32_t *slot_row;
    uint8_t *slot_new;
    uint32_t *queue;    /* stream mode: shuffled entry order */
};

void cphil_batcher_default_opts(cphil_batcher_opts *o) {
    memset(o, 0, sizeof *o);
    o->mode = CPHIL_BATCH_WINDOWS;
    o->split = CPHIL_SPLIT_TRAIN;
    o->B = 32;
    o->W = 60;
    o->stride = 0;
    o->shuffle = true;
    o->drop_last = false;
    o->neutral_weight = 1.0f;
}

/* Pairs available in an entry: rows t with t + 1 + D < n_rows. */
static uint32_t pairs_of(const cphil_ds_entry *e, int D) {
    uint64_t need = (uint64_t)D + 1;
    return e->n_rows > need ? (uint32_t)(e->n_rows - need) : 0;
}

static uint64_t rng_next(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* The windows in their canonical order (entries in file order, starts ascending). Every epoch
 * shuffles from this order, so an epoch's order depends only on (seed, epoch), never on the
 * epochs shuffled before it: a run resumed in epoch e sees the same order as one that ran
 * epochs 0..e-1 in the same process. */
static void list_wins(cphil_batcher *b) {
    b->n_wins = 0;
    for (uint32_t k = 0; k < b->n_entries; k++) {
        uint32_t p = pairs_of(&b->ds->entries[b->entries[k]], b->o.frame_delay);
        if (p < (uint32_t)b->o.W) continue;
        for (uint32_t s = 0; s + (uint32_t)b->o.W <= p; s += (uint32_t)b->o.stride)
            b->wins[b->n_wins++] = (win){b->entries[k], s};
    }
}

cphil_status cphil_batcher_open(cphil_batcher **out, const cphil_dataset *ds, const cphil_batcher_opts *o) {
    *out = NULL;
    if (o->B < 1 || o->W < 1 || o->stride < 0 || o->frame_delay < 0 || o->frame_delay > 600 || o->share < 0 ||
        o->share_at < 0 || o->share_at + o->share > o->B)
        return cphil_err(CPHIL_E_ARG, "batcher: bad options (B %d, W %d, stride %d, frame delay %d, share %d at %d)",
                         o->B, o->W, o->stride, o->frame_delay, o->share, o->share_at);
    cphil_batcher *b = cphil_calloc(1, sizeof *b);
    if (!b) return cphil_err(CPHIL_E_NOMEM, "batcher: out of memory");
    b->ds = ds;
    b->o = *o;
    if (b->o.stride == 0) b->o.stride = o->W;
    if (b->o.share == 0) b->o.share_at = 0, b->o.share = o->B;
    uint32_t ne = ds->h->n_entries;
    b->entries = cphil_calloc(ne ? ne : 1, sizeof(uint32_t));
    b->queue = cphil_calloc(ne ? ne : 1, sizeof(uint32_t));
    b->slot_entry = cphil_calloc((size_t)o->B, sizeof(int32_t));
    b->slot_row = cphil_calloc((size_t)o->B, sizeof(uint32_t));
    b->slot_new = cphil_calloc((size_t)o->B, 1);
    if (!b->entries || !b->queue || !b->slot_entry || !b->slot_row || !b->slot_new) goto oom;
    for (uint32_t i = 0; i < ne; i++) {
        const cphil_ds_entry *e = &ds->entries[i];
        bool want = o->split == CPHIL_SPLIT_ALL || (o->split == CPHIL_SPLIT_VAL) == (e->is_val != 0);
        if (want && pairs_of(e, o->frame_delay) > 0) b->entries[b->n_entries++] = i;
    }
    if (o->mode == CPHIL_BATCH_WINDOWS) {
        uint64_t n = 0;
        for (uint32_t k = 0; k < b->n_entries; k++) {
            uint32_t p = pairs_of(&ds->entries[b->entries[k]], o->frame_delay);
            if (p >= (uint32_t)o->W) n += (p - (uint32_t)o->W) / (uint32_t)b->o.stride + 1;
        }
        b->wins = cphil_calloc(n ? n : 1, sizeof(win));
        if (!b->wins) goto oom;
        list_wins(b);
    }
    cphil_batcher_epoch(b, 0);
    *out = b;
    return CPHIL_OK;
oom:
    cphil_batcher_close(b);
    return cphil_err(CPHIL_E_NOMEM, "batcher: out of memory");
}

void cphil_batcher_close(cphil_batcher *b) {
    if (!b) return;
    cphil_free(b->entries);
    cphil_free(b->queue);
    cphil_free(b->wins);
    cphil_free(b->slot_entry);
    cphil_free(b->slot_row);
    cphil_free(b->slot_new);
    cphil_free(b);
}

void cphil_batcher_epoch(cphil_batcher *b, uint64_t e) {
    uint64_t s = b->o.seed * 0x100000001B3ull + e;
    b->pos = 0;
    if (b->o.mode == CPHIL_BATCH_WINDOWS) {
        if (b->o.shuffle) {
            list_wins(b);
            for (uint64_t i = b->n_wins; i > 1; i--) {
                uint64_t j = rng_next(&s) % i;
                win t = b->wins[i - 1];
                b->wins[i - 1] = b->wins[j];
                b->wins[j] = t;
            }
        }
    } else {
        memcpy(b->queue, b->entries, b->n_entries * sizeof(uint32_t));
        if (b->o.shuffle)
            for (uint32_t i = b->n_entries; i > 1; i--) {
                uint32_t j = (uint32_t)(rng_next(&s) % i);
                uint32_t t = b->queue[i - 1];
                b->queue[i - 1] = b->queue[j];
                b->queue[j] = t;
            }
        for (int k = 0; k < b->o.B; k++) b->slot_entry[k] = -1;
    }
}

uint64_t cphil_batcher_units(const cphil_batcher *b) {
    return b->o.mode == CPHIL_BATCH_WINDOWS ? b->n_wins : b->n_entries;
}

uint64_t cphil_batcher_batches(const cphil_batcher *b) {
    uint64_t B = (uint64_t)b->o.B;
    if (b->o.mode == CPHIL_BATCH_WINDOWS) return b->o.drop_last ? b->n_wins / B : (b->n_wins + B - 1) / B;
    return 0; /* streams: depends on the packing; iterate until cphil_batcher_next returns false */
}

cphil_status cphil_batch_alloc(cphil_batch *x, const cphil_batcher *b) {
    memset(x, 0, sizeof *x);
    size_t B = (size_t)b->o.share, W = (size_t)b->o.W, nc = b->ds->h->n_cont, ni = b->ds->h->n_ids;
    x->B = (int)B;
    x->W = (int)W;
    x->n_cont = (int)nc;
    x->n_ids = (int)ni;
    x->cont = cphil_alloc(B * W * nc * sizeof(float));
    x->ids = cphil_alloc(B * W * ni * sizeof(int32_t));
    x->buttons = cphil_alloc(B * W * CPHIL_N_BUTTONS);
    x->cls = cphil_alloc(B * W * CPHIL_N_AXES);
    x->weight = cphil_alloc(B * W * sizeof(float));
    x->reset = cphil_alloc(B);
    x->entry = cphil_alloc(B * sizeof(int32_t));
    x->start = cphil_alloc(B * sizeof(uint32_t));
    if (!x->cont || !x->ids || !x->buttons || !x->cls || !x->weight || !x->reset || !x->entry || !x->start) {
        cphil_batch_free(x);
        return cphil_err(CPHIL_E_NOMEM, "batch: out of memory (B %zu, W %zu)", B, W);
    }
    return CPHIL_OK;
}

void cphil_batch_free(cphil_batch *x) {
    if (!x) return;
    cphil_free(x->cont);
    cphil_free(x->ids);
    cphil_free(x->buttons);
    cphil_free(x->cls);
    cphil_free(x->weight);
    cphil_free(x->reset);
    cphil_free(x->entry);
    cphil_free(x->start);
    memset(x, 0, sizeof *x);
}

/* Fill positions [w0, w0 + n) of slot k from entry e starting at entry row r0 (pairs exist for
 * every position); the rest of the slot's positions are left as they are. */
static void fill(const cphil_batcher *b, cphil_batch *x, int k, uint32_t e, uint32_t r0, int w0, int n) {
    const cphil_dataset *ds = b->ds;
    const cphil_ds_entry *en = &ds->entries[e];
    size_t nc = ds->h->n_cont, ni = ds->h->n_ids, W = (size_t)x->W;
    uint64_t row = en->row_start + r0;
    size_t at = (size_t)k * W + (size_t)w0;
    memcpy(x->cont + at * nc, ds->cont + row * nc, (size_t)n * nc * sizeof(float));
    const int16_t *src = ds->ids + row * ni;
    int32_t *dst = x->ids + at * ni;
    for (size_t i = 0; i < (size_t)n * ni; i++) dst[i] = src[i];
    uint64_t trow = row + 1 + (uint64_t)b->o.frame_delay;
    for (int w = 0; w < n; w++) {
        const cphil_ds_target *t = &ds->targets[trow + (uint64_t)w];
        uint8_t *bt = x->buttons + (at + (size_t)w) * CPHIL_N_BUTTONS;
        for (int i = 0; i < CPHIL_N_BUTTONS; i++) bt[i] = (uint8_t)((t->buttons >> i) & 1);
        memcpy(x->cls + (at + (size_t)w) * CPHIL_N_AXES, t->cls, CPHIL_N_AXES);
        float wt = (t->flags & 1) ? 1.0f : 0.0f;
        if (wt > 0.0f && t->buttons == 0 && t->cls[0] == 8 && t->cls[1] == 8 && t->cls[2] == 8 &&
            t->cls[3] == 8 && t->cls[4] == 0)
            wt = b->o.neutral_weight;
        x->weight[at + (size_t)w] = wt;
    }
}

static void clear(cphil_batch *x, int k, int w0, int n) {
    size_t W = (size_t)x->W, at = (size_t)k * W + (size_t)w0;
    memset(x->cont + at * (size_t)x->n_cont, 0, (size_t)n * (size_t)x->n_cont * sizeof(float));
    /* ids must stay valid columns: repeat the first position's ids or use column n_cont */
    for (size_t i = 0; i < (size_t)n * (size_t)x->n_ids; i++) x->ids[at * (size_t)x->n_ids + i] = x->n_cont;
    memset(x->buttons + at * CPHIL_N_BUTTONS, 0, (size_t)n * CPHIL_N_BUTTONS);
    for (int w = 0; w < n; w++) {
        uint8_t *c = x->cls + (at + (size_t)w) * CPHIL_N_AXES;
        c[0] = c[1] = c[2] = c[3] = CPHIL_STICK_NEUTRAL;
        c[4] = 0;
        x->weight[at + (size_t)w] = 0.0f;
    }
}

/* Windows mode: slots [share k / parts, share (k+1) / parts) of this process's share, the n
 * windows from b->pos on (slots past them cleared). */
typedef struct window_fill {
    const cphil_batcher *b;
    cphil_batch *x;
    int n;
} window_fill;

static void fill_windows(void *ctx, int part, int parts) {
    const window_fill *f = ctx;
    const cphil_batcher *b = f->b;
    cphil_batch *x = f->x;
    const int share = b->o.share, W = b->o.W;
    const int k0 = (int)((int64_t)share * part / parts), k1 = (int)((int64_t)share * (part + 1) / parts);
    for (int k = k0; k < k1; k++) {
        int g = b->o.share_at + k; /* the slot in the global batch */
        x->reset[k] = 1;
        if (g < f->n) {
            const win *w = &b->wins[b->pos + (uint64_t)g];
            fill(b, x, k, w->entry, w->start, 0, W);
            x->entry[k] = (int32_t)w->entry;
            x->start[k] = w->start;
        } else {
            clear(x, k, 0, W);
            x->entry[k] = -1;
            x->start[k] = 0;
        }
    }
}

bool cphil_batcher_next(cphil_batcher *b, cphil_batch *x) {
    int B = b->o.B, W = b->o.W, at = b->o.share_at, share = b->o.share;
    if (b->o.mode == CPHIL_BATCH_WINDOWS) {
        uint64_t left = b->n_wins - b->pos;
        if (left == 0 || (b->o.drop_last && left < (uint64_t)B)) return false;
        int n = left < (uint64_t)B ? (int)left : B;
        window_fill f = {b, x, n};
        /* a part per 8 slots at most: enough to share, few enough that each is worth a wake-up */
        int parts = b->o.parallel_fill ? (share + 7) / 8 : 1;
        cphil_parallel(parts < 1 ? 1 : parts, fill_windows, &f);
        int valid = n - at;
        x->n_valid = valid < 0 ? 0 : (valid > share ? share : valid);
        b->pos += (uint64_t)n;
        return true;
    }
    /* streams: refill idle slots from the queue (every global slot: the packing is the global
     * one); stop when every slot is idle and the queue empty */
    int active = 0;
    for (int k = 0; k < B; k++) {
        if (b->slot_entry[k] < 0 && b->pos < b->n_entries) {
            b->slot_entry[k] = (int32_t)b->queue[b->pos++];
            b->slot_row[k] = 0;
            b->slot_new[k] = 1;
        }
        active += b->slot_entry[k] >= 0;
    }
    if (!active) return false;
    int valid = 0;
    for (int g = 0; g < B; g++) {
        int k = g - at; /* the slot in this process's share, or outside it */
        bool mine = k >= 0 && k < share;
        if (mine) {
            x->reset[k] = 0;
            x->entry[k] = b->slot_entry[g];
            x->start[k] = b->slot_entry[g] < 0 ? 0 : b->slot_row[g];
        }
        if (b->slot_entry[g] < 0) {
            if (mine) clear(x, k, 0, W);
            continue;
        }
        uint32_t e = (uint32_t)b->slot_entry[g];
        uint32_t p = pairs_of(&b->ds->entries[e], b->o.frame_delay);
        uint32_t r0 = b->slot_row[g];
        uint32_t n = p - r0 < (uint32_t)W ? p - r0 : (uint32_t)W;
        if (mine) {
            fill(b, x, k, e, r0, 0, (int)n);
            if ((int)n < W) clear(x, k, (int)n, W - (int)n);
            x->reset[k] = b->slot_new[g];
            valid++;
        }
        b->slot_new[g] = 0;
        b->slot_row[g] = r0 + n;
        if (b->slot_row[g] >= p) b->slot_entry[g] = -1; /* next chunk starts a new entry */
    }
    x->n_valid = valid;
    return true;
}
