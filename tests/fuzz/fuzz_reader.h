/* fuzz_reader.h — what the file readers' libFuzzer targets share: readers that take a path get
 * the input through a per-process file (rewritten for every input), and each target writes its
 * own small valid seeds into $CPHIL_FUZZ_SEEDS from LLVMFuzzerInitialize, before libFuzzer reads
 * that folder as its corpus (tests/t_fuzz_readers.sh passes it). */
#ifndef CPHIL_FUZZ_READER_H
#define CPHIL_FUZZ_READER_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* The input as a file; its path (static storage). Aborts if /tmp cannot be written. */
static const char *fuzz_as_file(const uint8_t *data, size_t size, const char *ext) {
    static char path[256];
    const char *dir = getenv("TMPDIR");
    snprintf(path, sizeof path, "%s/cphil_fuzz_%ld%s", dir && dir[0] ? dir : "/tmp", (long)getpid(), ext);
    FILE *f = fopen(path, "wb");
    if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f)) abort();
    return path;
}

/* The seed folder's path for NAME, or NULL when no seeds are asked for. */
static const char *fuzz_seed_path(const char *name) {
    static char path[1024];
    const char *dir = getenv("CPHIL_FUZZ_SEEDS");
    if (!dir || !dir[0]) return NULL;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return path;
}

#endif
