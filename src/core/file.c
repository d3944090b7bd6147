/* file.c — whole-file reads with a size guard, atomic writes (temporary file, fsync, rename),
 * directory helpers. Output files are never left half-written: a crash leaves either the old
 * file or the new one, plus at worst a stray PATH.tmp.PID. */
#include "core/core.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

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

cphil_status cphil_file_read(const char *path, size_t max_size, uint8_t **data, size_t *size) {
    *data = NULL;
    *size = 0;
    int fd;
    size_t n;
    cphil_status s = cphil_file_open_regular(path, &fd, &n);
    if (s) return s;
    if (n > max_size) {
        close(fd);
        return cphil_err(CPHIL_E_FORMAT, "%s: file is %zu bytes, larger than the %zu-byte limit", path, n, max_size);
    }
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
    cphil_status s = cphil_file_open_regular(path, &fd, &n);
    if (s) return s;
    if (n > max_size) {
        close(fd);
        return cphil_err(CPHIL_E_FORMAT, "%s: file is %zu bytes, larger than the %zu-byte limit", path, n, max_size);
    }
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
