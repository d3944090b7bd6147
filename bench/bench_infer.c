/* bench_infer.c — the engine's architecture table without the CLI (the same timing loop as
 * `cphil bench`, src/infer/infer_bench.c), for machines where only the library builds.
 * usage: bench_infer [SECONDS_PER_ROW] [BACKBONES] [PRECISIONS] [MODES]   (lists comma-separated)
 * Pins itself to the CPU it starts on; prints one JSON object per row.
 */
#include "infer/infer_bench.h"

#include <sched.h>
#include <stdio.h>
#include <stdlib.h>

static void row(void *user, const cphil_bench_row *w) {
    (void)user;
    printf("{\"backbone\":\"%s\",\"precision\":\"%s\",\"mode\":\"%s\",\"params\":%lld,\"p50_us\":%.2f,\"p99_us\":%.2f,"
           "\"mean_us\":%.2f,\"iters\":%ld}\n",
           w->backbone, w->precision, w->mode, (long long)w->params, w->r.p50_us, w->r.p99_us, w->r.mean_us, w->r.iters);
    fflush(stdout);
}

int main(int argc, char **argv) {
    double sec = argc > 1 ? atof(argv[1]) : 0.5;
    cpu_set_t set;
    CPU_ZERO(&set);
    int c = sched_getcpu();
    CPU_SET(c < 0 ? 0 : c, &set);
    sched_setaffinity(0, sizeof set, &set);
    fprintf(stderr, "# bench_infer: cpu %d, isa %s\n", sched_getcpu(), cphil_infer_isa_name(cphil_infer_isa_get()));
    if (cphil_bench_table(argc > 2 ? argv[2] : NULL, argc > 3 ? argv[3] : NULL, argc > 4 ? argv[4] : NULL, sec, row, NULL)) {
        fprintf(stderr, "bench_infer: %s\n", cphil_last_error());
        return 1;
    }
    return 0;
}
