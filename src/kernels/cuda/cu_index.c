/* cu_index.c — the host side of the input layer's deterministic backward (cu_train.h): the
 * batch's (id, frame) pairs sorted by id with a counting sort (stable: frames stay increasing
 * within an id), cut into chunks of at most CPHIL_CU_ID_CHUNK frames, packed into one int32 array
 * that travels to the GPU with the batch. O(M * n_ids + E) per batch on the loader's side, the
 * counting and the scatter spread over cphil_parallel's threads. */
#include "kernels/cuda/cu_train.h"

#include "core/core.h"
#include "kernels/cpu/kernels.h"

#include <string.h>

/* Packed layout: [n_chunks, n_rows | chunk_begin cap+1 | row_id R | row_chunk R+1 | frames P] */
size_t cphil_cu_id_index_ints(int M, int n_ids, int E, int n_cont) {
    size_t cap = (size_t)cphil_cu_id_index_max_chunks(M, n_ids, E, n_cont), R = (size_t)(E - n_cont);
    return 2 + (cap + 1) + R + (R + 1) + (size_t)M * (size_t)n_ids;
}

void cphil_cu_id_index_view(int M, int n_ids, int E, int n_cont, const int32_t *dev, cphil_cu_id_index *ix) {
    size_t cap = (size_t)cphil_cu_id_index_max_chunks(M, n_ids, E, n_cont), R = (size_t)(E - n_cont);
    ix->n_chunks = dev;
    ix->n_rows = dev + 1;
    ix->chunk_begin = dev + 2;
    ix->row_id = ix->chunk_begin + cap + 1;
    ix->row_chunk = ix->row_id + R;
    ix->frames = ix->row_chunk + R + 1;
}

size_t cphil_cu_id_index_scratch_ints(int E) { return (size_t)CPHIL_CU_ID_PARTS * ((size_t)E + 1); }

/* The counting sort in CPHIL_CU_ID_PARTS fixed ranges of pairs (the part count, not the thread
 * count, fixes the ranges, so the result is the same on any number of threads): each part counts
 * its ids (count row t), then scatters its pairs to start[id] + (the pairs of id in parts < t),
 * which keeps the frames of an id increasing: the serial stable sort, in parallel. */
typedef struct index_job {
    int n_ids, E, n_cont;
    size_t P;
    const int32_t *ids;
    int32_t *count, *frames;
    size_t bad[CPHIL_CU_ID_PARTS]; /* per part: the first pair with an id out of range, or P */
} index_job;

static void part_range(const index_job *j, int t, size_t *a, size_t *z) {
    *a = j->P * (size_t)t / CPHIL_CU_ID_PARTS;
    *z = j->P * (size_t)(t + 1) / CPHIL_CU_ID_PARTS;
}

static void index_count(void *ctx, int t, int parts) {
    (void)parts;
    index_job *j = ctx;
    int32_t *cnt = j->count + (size_t)t * ((size_t)j->E + 1);
    memset(cnt, 0, ((size_t)j->E + 1) * sizeof *cnt);
    size_t a, z;
    part_range(j, t, &a, &z);
    j->bad[t] = j->P;
    for (size_t q = a; q < z; q++) {
        int32_t id = j->ids[q];
        if (id < j->n_cont || id >= j->E) {
            j->bad[t] = q;
            return;
        }
        cnt[id]++;
    }
}

static void index_scatter(void *ctx, int t, int parts) {
    (void)parts;
    index_job *j = ctx;
    int32_t *next = j->count + (size_t)t * ((size_t)j->E + 1); /* this part's write position per id */
    size_t a, z;
    part_range(j, t, &a, &z);
    for (size_t q = a; q < z; q++) j->frames[next[j->ids[q]]++] = (int32_t)(q / (size_t)j->n_ids);
}

cphil_status cphil_cu_id_index_build(int M, int n_ids, int E, int n_cont, const int32_t *ids, int32_t *packed,
                                     int32_t *count) {
    const size_t cap = (size_t)cphil_cu_id_index_max_chunks(M, n_ids, E, n_cont), R = (size_t)(E - n_cont),
                 P = (size_t)M * (size_t)n_ids;
    int32_t *chunk_begin = packed + 2, *row_id = chunk_begin + cap + 1, *row_chunk = row_id + R,
            *frames = row_chunk + R + 1;
    index_job j = {.n_ids = n_ids, .E = E, .n_cont = n_cont, .P = P, .ids = ids, .count = count, .frames = frames};
    cphil_parallel(CPHIL_CU_ID_PARTS, index_count, &j);
    for (int t = 0; t < CPHIL_CU_ID_PARTS; t++)
        if (j.bad[t] < P)
            return cphil_err(CPHIL_E_FORMAT, "batch id %d at pair %zu is outside [%d, %d)", (int)ids[j.bad[t]],
                             j.bad[t], n_cont, E);
    /* count[t][e] becomes part t's first position for id e (ids in order, parts in order within an
     * id), and each id present gets its row and its chunks */
    const size_t ld = (size_t)E + 1;
    int32_t pos = 0, n_rows = 0, n_chunks = 0;
    for (int e = n_cont; e < E; e++) {
        const int32_t start = pos;
        for (int t = 0; t < CPHIL_CU_ID_PARTS; t++) {
            int32_t c = count[(size_t)t * ld + (size_t)e];
            count[(size_t)t * ld + (size_t)e] = pos;
            pos += c;
        }
        if (pos > start) {
            row_id[n_rows] = e;
            row_chunk[n_rows] = n_chunks;
            for (int32_t a = start; a < pos; a += CPHIL_CU_ID_CHUNK) chunk_begin[n_chunks++] = a;
            n_rows++;
        }
    }
    CPHIL_ASSERT((size_t)pos == P && (size_t)n_chunks <= cap && (size_t)n_rows <= R);
    cphil_parallel(CPHIL_CU_ID_PARTS, index_scatter, &j);
    chunk_begin[n_chunks] = (int32_t)P;
    row_chunk[n_rows] = n_chunks;
    packed[0] = n_chunks;
    packed[1] = n_rows;
    return CPHIL_OK;
}
