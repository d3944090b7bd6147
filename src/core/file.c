/* file.c — whole-file reads with a size guard, atomic writes (temporary file, fsync, rename,
 * fsync of the directory), directory helpers. Output files are never left half-written: a crash
 * leaves either the old file or the new one, plus a stray PATH.tmp.PID, which the next atomic
 * write of the same PATH removes once process PID is gone. */
#include "core/core.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* Split path into its directory (dir, "." when none) and its last component (returned). */
static const char *split_dir(const char *path, char *dir, size_t n) {
    const char *slash = strrchr(path, '/');
    if (!slash) {
        snprintf(dir, n, ".");
        return path;
    }
    size_t dl = (size_t)(slash - path);
    if (dl == 0) dl = 1; /* "/name" */
    if (dl >= n) dl = n - 1;
    memcpy(dir, path, dl);
    dir[dl] = '\0';
    return slash + 1;
}

/* Remove PATH.tmp.PID files left by killed writers of the same PATH: only regular files whose
 * PID is a number, not ours, and names no live process (kill(pid, 0) fails with ESRCH; EPERM
 * means alive under another user, so it stays). A writer in another PID namespace sharing the
 * folder would look dead; cphil does not share output folders that way. Best effort: nothing
 * here fails the write. */
static void remove_stale_temps(const char *path) {
    char dir[4096];
    const char *base = split_dir(path, dir, sizeof dir);
    size_t bl = strlen(base);
    if (bl == 0) return;
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        const char *nm = e->d_name;
        if (strncmp(nm, base, bl) != 0 || strncmp(nm + bl, ".tmp.", 5) != 0) continue;
        const char *num = nm + bl + 5;
        size_t nd = strspn(num, "0123456789");
        if (nd == 0 || nd > 9 || num[nd] != '\0') continue;
        long pid = strtol(num, NULL, 10);
        if (pid <= 0 || pid == (long)getpid()) continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue;
        char full[4096 + 256];
        snprintf(full, sizeof full, "%s/%s", dir, nm);
        struct stat st;
        if (lstat(full, &st) == 0 && S_ISREG(st.st_mode)) unlink(full);
    }
    closedir(d);
}

/* fsync the folder that holds path, so the rename itself survives a power loss. Filesystems
 * that cannot fsync a directory (EINVAL) are not an error. */
static cphil_status fsync_dir_of(const char *path) {
    char dir[4096];
    split_dir(path, dir, sizeof dir);
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0) return cphil_err(CPHIL_E_IO, "%s: cannot open its folder to sync it: %s", path, strerror(errno));
    cphil_status s = CPHIL_OK;
    if (fsync(fd) != 0 && errno != EINVAL && errno != ENOTSUP)
        s = cphil_err(CPHIL_E_IO, "%s: syncing its folder failed: %s", path, strerror(errno));
    close(fd);
    return s;
}

/* O_NONBLOCK: opening a FIFO for reading would wait for a writer forever; with it the open
 * returns at once and fstat refuses it. The flag is cleared again for the reads. */
cphil_status cphil_file_open_regular(const char *path, int *fd_out, size_t *size) {
    *fd_out = -1;
    *size = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0) return cphil_err(CPHIL_E_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        cphil_status s = cphil_err(CPHIL_E_IO, "%s: cannot stat: %s", path, strerror(errno));
        close(fd);
        return s;
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        if (S_ISDIR(st.st_mode)) return cphil_err(CPHIL_E_IO, "%s: is a directory, expected a file", path);
        return cphil_err(CPHIL_E_IO, "%s: not a regular file (a FIFO, device or socket is refused)", path);
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0) (void)fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    *fd_out = fd;
    *size = (size_t)st.st_size;
    return CPHIL_OK;
}

/* cphil_file_open_regular, refusing a file larger than max_size (closed then). */
static cphil_status open_limited(const char *path, size_t max_size, int *fd, size_t *n) {
    cphil_status s = cphil_file_open_regular(path, fd, n);
    if (s) return s;
    if (*n > max_size) {
        close(*fd);
        return cphil_err(CPHIL_E_FORMAT, "%s: file is %zu bytes, larger than the %zu-byte limit", path, *n, max_size);
    }
    return CPHIL_OK;
}

cphil_status cphil_file_read(const char *path, size_t max_size, uint8_t **data, size_t *size) {
    *data = NULL;
    *size = 0;
    int fd;
    size_t n;
    cphil_status s = open_limited(path, max_size, &fd, &n);
    if (s) return s;
    uint8_t *buf = cphil_alloc(n ? n : 1);
    if (!buf) {
        close(fd);
        return cphil_err(CPHIL_E_NOMEM, "%s: out of memory reading %zu bytes", path, n);
    }
    size_t got = 0;
    while (got < n) {
        ssize_t k = read(fd, buf + got, n - got > ((size_t)1 << 30) ? (size_t)1 << 30 : n - got);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) break;
        got += (size_t)k;
    }
    close(fd);
    if (got != n) {
        cphil_free(buf);
        return cphil_err(CPHIL_E_IO, "%s: read failed after %zu of %zu bytes", path, got, n);
    }
    *data = buf;
    *size = n;
    return CPHIL_OK;
}

static const uint8_t empty_map[1];

cphil_status cphil_file_map(const char *path, size_t max_size, const uint8_t **data, size_t *size) {
    *data = NULL;
    *size = 0;
    int fd;
    size_t n;
    cphil_status s = open_limited(path, max_size, &fd, &n);
    if (s) return s;
    if (n == 0) {
        close(fd);
        *data = empty_map;
        return CPHIL_OK;
    }
    void *m = mmap(NULL, n, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (m == MAP_FAILED) return cphil_err(CPHIL_E_IO, "%s: mmap failed: %s", path, strerror(errno));
    *data = m;
    *size = n;
    return CPHIL_OK;
}

void cphil_file_unmap(const uint8_t *data, size_t size) {
    if (data && size && data != empty_map) munmap((void *)data, size);
}

cphil_status cphil_atomic_open(cphil_atomic_file *af, const char *path) {
    memset(af, 0, sizeof *af);
    size_t n = strlen(path) + 32;
    af->final_path = cphil_strdup(path);
    af->tmp_path = cphil_alloc(n);
    if (!af->final_path || !af->tmp_path) {
        cphil_atomic_abort(af);
        return cphil_err(CPHIL_E_NOMEM, "%s: out of memory", path);
    }
    snprintf(af->tmp_path, n, "%s.tmp.%ld", path, (long)getpid());
    remove_stale_temps(path);
    af->f = fopen(af->tmp_path, "wb");
    if (!af->f) {
        cphil_status s = cphil_err(CPHIL_E_IO, "%s: cannot create: %s (is the folder there and writable?)",
                                   af->tmp_path, strerror(errno));
        cphil_atomic_abort(af);
        return s;
    }
    return CPHIL_OK;
}

cphil_status cphil_atomic_write(cphil_atomic_file *af, const void *data, size_t size) {
    if (!af->f) return cphil_err(CPHIL_E_INTERNAL, "atomic write on a closed file");
    if (size && fwrite(data, 1, size, af->f) != size)
        return cphil_err(CPHIL_E_IO, "%s: write failed: %s (disk full?)", af->tmp_path, strerror(errno));
    return CPHIL_OK;
}

cphil_status cphil_atomic_commit(cphil_atomic_file *af) {
    cphil_status s = CPHIL_OK;
    if (!af->f) return cphil_err(CPHIL_E_INTERNAL, "atomic commit on a closed file");
    if (fflush(af->f) != 0 || fsync(fileno(af->f)) != 0)
        s = cphil_err(CPHIL_E_IO, "%s: flush failed: %s", af->tmp_path, strerror(errno));
    if (fclose(af->f) != 0 && s == CPHIL_OK)
        s = cphil_err(CPHIL_E_IO, "%s: close failed: %s", af->tmp_path, strerror(errno));
    af->f = NULL;
    if (s == CPHIL_OK && rename(af->tmp_path, af->final_path) != 0)
        s = cphil_err(CPHIL_E_IO, "%s: cannot rename into place: %s", af->final_path, strerror(errno));
    if (s != CPHIL_OK) remove(af->tmp_path);
    else s = fsync_dir_of(af->final_path); /* the new file is in place; this makes the rename durable */
    cphil_free(af->tmp_path);
    cphil_free(af->final_path);
    af->tmp_path = af->final_path = NULL;
    return s;
}

void cphil_atomic_abort(cphil_atomic_file *af) {
    if (af->f) {
        fclose(af->f);
        af->f = NULL;
    }
    if (af->tmp_path) remove(af->tmp_path);
    cphil_free(af->tmp_path);
    cphil_free(af->final_path);
    af->tmp_path = af->final_path = NULL;
}

cphil_status cphil_file_write_atomic(const char *path, const void *data, size_t size) {
    cphil_atomic_file af;
    cphil_status s = cphil_atomic_open(&af, path);
    if (s) return s;
    s = cphil_atomic_write(&af, data, size);
    if (s) {
        cphil_atomic_abort(&af);
        return s;
    }
    return cphil_atomic_commit(&af);
}

bool cphil_path_is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

cphil_status cphil_mkdir_p(const char *path) {
    char buf[4096];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof buf) return cphil_err(CPHIL_E_ARG, "bad directory path '%s'", path);
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] == '/' || buf[i] == '\0') {
            char c = buf[i];
            buf[i] = '\0';
            if (mkdir(buf, 0777) != 0 && errno != EEXIST)
                return cphil_err(CPHIL_E_IO, "%s: cannot create directory: %s", buf, strerror(errno));
            buf[i] = c;
        }
    }
    if (!cphil_path_is_dir(path)) return cphil_err(CPHIL_E_IO, "%s: exists and is not a directory", path);
    return CPHIL_OK;
}
