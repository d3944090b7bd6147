/* cu_index.c — the host side of the input layer's deterministic backward (cu_train.h): the
 * batch's (id, frame) pairs sorted by id with a counting sort (stable: frames stay increasing
 * within an id), cut into chunks of at most CPHIL_CU_ID_CHUNK frames, packed into one int32 array
 * that travels to the GPU with the batch. O(M * n_ids + E) per batch on the loader's side. */
#include "kernels/cuda/cu_train.h"

#include "core/core.h"

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

cphil_status cphil_cu_id_index_build(int M, int n_ids, int E, int n_cont, const int32_t *ids, int32_t *packed,
                                     int32_t *count) {
    const size_t cap = (size_t)cphil_cu_id_index_max_chunks(M, n_ids, E, n_cont), R = (size_t)(E - n_cont),
                 P = (size_t)M * (size_t)n_ids;
    int32_t *chunk_begin = packed + 2, *row_id = chunk_begin + cap + 1, *row_chunk = row_id + R,
            *frames = row_chunk + R + 1;
    memset(count, 0, ((size_t)E + 1) * sizeof *count);
    for (size_t q = 0; q < P; q++) {
        int32_t id = ids[q];
        if (id < n_cont || id >= E)
            return cphil_err(CPHIL_E_FORMAT, "batch id %d at pair %zu is outside [%d, %d)", (int)id, q, n_cont, E);
        count[id + 1]++;
    }
    for (int e = 0; e < E; e++) count[e + 1] += count[e]; /* count[e] = start of id e */
    for (size_t q = 0; q < P; q++) frames[count[ids[q]]++] = (int32_t)(q / (size_t)n_ids);
    /* count[e] is now the end of id e (= start of e + 1); walk the ids present */
    int32_t n_rows = 0, n_chunks = 0, start = 0; /* no pair has an id below n_cont */
    for (int e = n_cont; e < E; e++) {
        int32_t end = count[e];
        if (end > start) {
            row_id[n_rows] = e;
            row_chunk[n_rows] = n_chunks;
            for (int32_t a = start; a < end; a += CPHIL_CU_ID_CHUNK) chunk_begin[n_chunks++] = a;
            n_rows++;
        }
        start = end;
    }
    CPHIL_ASSERT((size_t)n_chunks <= cap && (size_t)n_rows <= R);
    chunk_begin[n_chunks] = (int32_t)P;
    row_chunk[n_rows] = n_chunks;
    packed[0] = n_chunks;
    packed[1] = n_rows;
    return CPHIL_OK;
}
