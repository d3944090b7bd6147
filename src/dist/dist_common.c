/* dist_common.c — what both builds of dist.h share: reading the launcher's environment. */
#include "dist/dist.h"

#include <stdlib.h>

int cphil_dist_env_world(void) {
    /* Open MPI's mpirun sets OMPI_COMM_WORLD_SIZE; MPICH/Slurm launchers set PMI_SIZE. */
    static const char *vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        const char *v = getenv(vars[i]);
        if (!v || !*v) continue;
        char *end;
        long n = strtol(v, &end, 10);
        if (*end == '\0' && n >= 1 && n <= 1 << 20) return (int)n;
    }
    return 0;
}

static int env_int(const char *const *vars, size_t n_vars, long lo) {
    for (size_t i = 0; i < n_vars; i++) {
        const char *v = getenv(vars[i]);
        if (!v || !*v) continue;
        char *end;
        long n = strtol(v, &end, 10);
        if (*end == '\0' && n >= lo && n < 1 << 20) return (int)n;
    }
    return 0;
}

int cphil_dist_env_local_rank(void) {
    static const char *const vars[] = {"OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "SLURM_LOCALID"};
    return env_int(vars, sizeof vars / sizeof vars[0], 0);
}

int cphil_dist_env_local_size(void) {
    static const char *const vars[] = {"OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS", "SLURM_NTASKS_PER_NODE"};
    return env_int(vars, sizeof vars / sizeof vars[0], 1);
}

cphil_status cphil_dist_env_bucket_bytes(size_t def, size_t *bytes) {
    const char *v = getenv("CPHIL_DIST_BUCKET_KB");
    *bytes = def;
    if (!v || !*v) return CPHIL_OK;
    char *end;
    long long k = strtoll(v, &end, 10);
    if (*end != '\0' || k < 0 || k > 4194304)
        return cphil_err(CPHIL_E_ARG, "CPHIL_DIST_BUCKET_KB='%s': give the gradient bucket size in KiB, a whole number "
                                      "from 0 (one sum after the backward) to 4194304",
                         v);
    *bytes = (size_t)k * 1024;
    return CPHIL_OK;
}
