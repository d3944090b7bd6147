/* fuzz_dataset.c — libFuzzer target for the dataset cache reader (cphil_dataset_open, without
 * the checksum so mutated bodies reach every check behind it). A cache that opens has every row,
 * id, target and entry name read back, as eval and the batcher do; ASan/UBSan catch any read
 * outside the file. Seeds: caches built by tests/t_fuzz_readers.sh (cphil synth + dataset). */
#include "data/dataset.h"

#include "fuzz_reader.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    cphil_dataset ds;
    if (cphil_dataset_open(&ds, fuzz_as_file(data, size, ".ds"), false) != CPHIL_OK) return 0;
    const cphil_ds_header *h = ds.h;
    float *cont = malloc(sizeof(float) * (h->n_cont ? h->n_cont : 1));
    int32_t *ids = malloc(sizeof(int32_t) * (h->n_ids ? h->n_ids : 1));
    if (!cont || !ids) abort();
    double sum = 0;
    for (uint64_t r = 0; r < h->n_rows; r++) {
        cphil_target t;
        cphil_dataset_row(&ds, r, cont, ids, &t);
        for (uint32_t k = 0; k < h->n_cont; k++) sum += cont[k];
        for (uint32_t k = 0; k < h->n_ids; k++)
            if (ids[k] < (int32_t)h->n_cont || ids[k] >= (int32_t)h->E) abort();
    }
    if (sum != sum) abort(); /* NaN features are refused at open */
    for (uint32_t i = 0; i < h->n_entries; i++) (void)strlen(cphil_dataset_entry_name(&ds, i));
    free(cont);
    free(ids);
    cphil_dataset_close(&ds);
    return 0;
}
