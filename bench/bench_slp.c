/* bench_slp.c — replay parsing speed: every .slp under the replays folder is read into memory,
 * then parsed whole (cphil_slp_read_mem, the frame table built) on one core, best and median of
 * several passes; also the incremental parser fed 4 KiB pieces. In the same run, if Node.js and
 * tests/js/node_modules are present, the same files are parsed with slippi-js 9.1.2
 * (tests/js/bench_slippijs.js) and the ratio is printed. Noisy on a shared machine.
 *   build/rel/bench/bench_slp [--reps N] [--no-js] [--cpu] [DIR]   (DIR default ../shared/replays)
 * --cpu times with the thread CPU clock instead of the wall clock (for a loaded machine).
 */
#include "core/core.h"

#include <ftw.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>

typedef struct file_buf {
    char *path;
    uint8_t *data;
    size_t size;
} file_buf;

static file_buf *g_files;
static size_t g_n, g_cap;

static int collect(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st;
    (void)ftw;
    size_t l = strlen(path);
    if (flag != FTW_F || l < 4 || strcmp(path + l - 4, ".slp")) return 0;
    if (g_n == g_cap) {
        size_t nc = g_cap ? g_cap * 2 : 64;
        file_buf *nf = cphil_realloc(g_files, g_cap * sizeof *nf, nc * sizeof *nf);
        if (!nf) return 1;
        g_files = nf;
        g_cap = nc;
    }
    file_buf *f = &g_files[g_n];
    if (cphil_file_read(path, (size_t)1 << 31, &f->data, &f->size)) {
        fprintf(stderr, "bench_slp: %s\n", cphil_last_error());
        return 0;
    }
    f->path = cphil_strdup(path);
    g_n++;
    return 0;
}

static int cmp_path(const void *a, const void *b) {
    return strcmp(((const file_buf *)a)->path, ((const file_buf *)b)->path);
}
static int cmp_dbl(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int cpu_mode; /* --cpu: time with the thread's CPU clock (less sensitive to a loaded machine) */
static double thread_cpu_sec(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* One pass over every file; returns seconds. piece = 0: whole reads; piece = 1: whole reads
 * reusing one replay's storage (cphil_slp_read_mem_reuse); else the stream fed such pieces. */
static double pass(size_t piece, uint64_t *frames, uint64_t *copies) {
    *frames = *copies = 0;
    cphil_replay *keep = NULL;
    double t0 = cpu_mode ? thread_cpu_sec() : cphil_now_sec();
    for (size_t i = 0; i < g_n; i++) {
        cphil_replay *r = NULL;
        cphil_status st;
        if (piece == 1) {
            st = cphil_slp_read_mem_reuse(g_files[i].data, g_files[i].size, g_files[i].path, &keep);
            if (st && st != CPHIL_E_TRUNCATED) fprintf(stderr, "bench_slp: %s\n", cphil_last_error());
            if (keep) {
                *frames += keep->n_frames;
                *copies += keep->frame_copies;
            }
            continue;
        }
        if (!piece) {
            st = cphil_slp_read_mem(g_files[i].data, g_files[i].size, g_files[i].path, &r);
        } else {
            cphil_slp_stream *s;
            st = cphil_slp_stream_open(&s, NULL, g_files[i].path);
            for (size_t p = 0; !st && p < g_files[i].size; p += piece)
                st = cphil_slp_stream_feed(s, g_files[i].data + p, CPHIL_MIN(piece, g_files[i].size - p));
            if (!st) st = cphil_slp_stream_finish(s);
            r = cphil_slp_stream_take(s);
            cphil_slp_stream_close(s);
        }
        if (st && st != CPHIL_E_TRUNCATED) fprintf(stderr, "bench_slp: %s\n", cphil_last_error());
        if (r) {
            *frames += r->n_frames;
            *copies += r->frame_copies;
        }
        cphil_replay_free(r);
    }
    double t = (cpu_mode ? thread_cpu_sec() : cphil_now_sec()) - t0;
    cphil_replay_free(keep);
    return t;
}

int main(int argc, char **argv) {
    const char *dir = getenv("CPHIL_REPLAYS");
    if (!dir || !*dir) dir = "../shared/replays";
    int reps = 9, js = 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--no-js")) js = 0;
        else if (!strcmp(argv[i], "--cpu")) cpu_mode = 1;
        else dir = argv[i];
    }
    if (reps < 1) reps = 1;
    if (nftw(dir, collect, 16, FTW_PHYS) != 0 || g_n == 0) {
        fprintf(stderr, "bench_slp: no .slp files under %s\n", dir);
        return 1;
    }
    qsort(g_files, g_n, sizeof *g_files, cmp_path);
    uint64_t bytes = 0;
    for (size_t i = 0; i < g_n; i++) bytes += g_files[i].size;
    printf("replays: %zu files, %.1f MB, from memory, one thread\n", g_n, bytes / 1e6);

    uint64_t frames, copies;
    double *t = cphil_alloc(sizeof(double) * (size_t)reps);
    static const struct { size_t piece; const char *what; } modes[] = {
        {1, "whole, reused table"}, {0, "whole, fresh table"}, {4096, "stream, 4 KiB pieces"}};
    double headline = 0;
    for (size_t m = 0; m < CPHIL_ARRAY_LEN(modes); m++) {
        pass(modes[m].piece, &frames, &copies); /* warm-up */
        for (int r = 0; r < reps; r++) t[r] = pass(modes[m].piece, &frames, &copies);
        qsort(t, (size_t)reps, sizeof *t, cmp_dbl);
        double best = t[0], med = t[reps / 2];
        if (m == 0) headline = bytes / med / 1e6;
        printf("cphil %-22s median %6.1f ms  %5.0f MB/s  %5.2f M frames/s   (best %5.0f MB/s)\n", modes[m].what,
               med * 1e3, bytes / med / 1e6, frames / med / 1e6, bytes / best / 1e6);
    }
    printf("(%llu frames, %llu frame copies, %d passes each)\n", (unsigned long long)frames, (unsigned long long)copies, reps);
    cphil_free(t);

    if (js) {
        size_t cap = 256;
        for (size_t i = 0; i < g_n; i++) cap += strlen(g_files[i].path) + 3;
        char *cmd = cphil_alloc(cap);
        snprintf(cmd, cap, "node tests/js/bench_slippijs.js --reps 3%s", cpu_mode ? " --cpu" : "");
        for (size_t i = 0; i < g_n; i++) {
            strcat(cmd, " '");
            strcat(cmd, g_files[i].path);
            strcat(cmd, "'");
        }
        FILE *p = NULL;
        if (system("node --version >/dev/null 2>&1") == 0 &&
            system("test -d tests/js/node_modules/@slippi/slippi-js") == 0)
            p = popen(cmd, "r");
        char line[1024] = "";
        double js_mbs = 0, js_fps = 0;
        if (p) {
            while (fgets(line, sizeof line, p)) {
                char *m = strstr(line, "\"mb_s\":"), *f = strstr(line, "\"frames_s\":");
                if (m && f) {
                    js_mbs = atof(m + 7);
                    js_fps = atof(f + 11);
                    break;
                }
            }
            pclose(p);
        }
        if (js_mbs > 0) {
            printf("slippi-js 9.1.2                median            %5.1f MB/s  %5.3f M frames/s   (node, %s clock, "
                   "median of 3 after a warm-up)\n", js_mbs, js_fps / 1e6, cpu_mode ? "process CPU" : "wall");
            printf("ratio (cphil whole, reused table / slippi-js): %.0fx\n", headline / js_mbs);
        } else {
            printf("slippi-js: not run (needs node and tests/js/node_modules: scripts/setup.sh --test)\n");
        }
        cphil_free(cmd);
    }
    for (size_t i = 0; i < g_n; i++) {
        cphil_free(g_files[i].data);
        cphil_free(g_files[i].path);
    }
    cphil_free(g_files);
    return 0;
}
