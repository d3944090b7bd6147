/* fuzz_npy.c — libFuzzer target for the .npy and .npz readers: cphil_npy_decode and
 * cphil_npz_decode from memory, and cphil_npy_read from a file (the mapped path whose data stays
 * in the map). A decoded array's bytes are all read. Seeds: .npy of several dtypes and shapes
 * and a .npz, written by cphil's own writers. */
#include "export/npy.h"

#include "fuzz_reader.h"

static void touch(const cphil_npy_array *a) {
    const uint8_t *p = a->data;
    unsigned x = 0;
    for (size_t i = 0; i < a->nbytes; i++) x += p[i];
    if (x == 0xFFFFFFFFu) abort(); /* keeps the loop */
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    if (!fuzz_seed_path("x")) return 0;
    float f[24];
    for (int i = 0; i < 24; i++) f[i] = (float)i * 0.5f - 3.f;
    int64_t s3[3] = {2, 3, 4}, s1[1] = {5}, s0[1] = {0};
    if (cphil_npy_write(fuzz_seed_path("f32.npy"), CPHIL_DT_F32, 3, s3, f)) abort();
    if (cphil_npy_write(fuzz_seed_path("f64.npy"), CPHIL_DT_F64, 1, s1, (double[]){1, 2, 3, 4, 5})) abort();
    if (cphil_npy_write(fuzz_seed_path("i8.npy"), CPHIL_DT_I8, 1, s1, (int8_t[]){1, -2, 3, -4, 5})) abort();
    if (cphil_npy_write(fuzz_seed_path("empty.npy"), CPHIL_DT_F32, 1, s0, f)) abort();
    cphil_npz_writer *w;
    if (cphil_npz_writer_open(fuzz_seed_path("a.npz"), &w) || cphil_npz_writer_add(w, "x", CPHIL_DT_F32, 3, s3, f) ||
        cphil_npz_writer_add_string(w, "note", "cphil") || cphil_npz_writer_close(w))
        abort();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    cphil_npy_array a;
    if (cphil_npy_decode(data, size, "fuzz", &a) == CPHIL_OK) {
        touch(&a);
        cphil_npy_array_free(&a);
    }
    cphil_npy_array *arr = NULL;
    size_t n = 0;
    if (cphil_npz_decode(data, size, "fuzz", &arr, &n) == CPHIL_OK) {
        for (size_t i = 0; i < n; i++) touch(&arr[i]);
        cphil_npz_free(arr, n);
    }
    if (cphil_npy_read(fuzz_as_file(data, size, ".npy"), &a) == CPHIL_OK) {
        touch(&a);
        cphil_npy_array_free(&a);
    }
    return 0;
}
