/* device.c — the --device option of train, eval, soft-labels and distill: "cpu", "cuda" or
 * "cuda:N" (every build parses it; whether the GPU can be used is gpu.h's business). */
#include "gpu/gpu.h"

#include "core/core.h"

#include <stdlib.h>
#include <string.h>

cphil_status cphil_device_parse(const char *s, int *gpu_index) {
    *gpu_index = -1;
    if (!s || !strcmp(s, "cpu")) return CPHIL_OK;
    if (!strcmp(s, "cuda")) {
        *gpu_index = 0;
        return CPHIL_OK;
    }
    if (!strncmp(s, "cuda:", 5) && s[5] >= '0' && s[5] <= '9') {
        char *end = NULL;
        long v = strtol(s + 5, &end, 10);
        if (*end == '\0' && v >= 0 && v < 1024) {
            *gpu_index = (int)v;
            return CPHIL_OK;
        }
    }
    return cphil_err(CPHIL_E_ARG, "--device '%s': expected cpu, cuda or cuda:N (N = 0 for the first GPU)", s);
}
