/* dolphin_setup.c — prepares a Slippi Dolphin user directory for a bot (dolphin_setup.h): the
 * controller FIFO, the pipe device's GCPadNew.ini section (libmelee's mapping, with the trigger
 * axes "Axis L +" / "Axis R +" that leave an unpressed trigger at 0; libmelee#75, dolphin PR #22)
 * and the Dolphin.ini settings of reference/live_play.md 3.2. Ishiiruka keys go under [Core],
 * mainline's under [Slippi]; each Dolphin ignores the other's. A file is only rewritten when a
 * value changes, after a copy of the original is kept beside it, and atomically.
 * Deliberately not: the menu gecko code (GameSettings/GALE01r2.ini is overwritten by Dolphin
 * updates), graphics and audio settings.
 */
#include "live/dolphin_setup.h"

#include <errno.h>
#include <dirent.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

typedef struct ini {
    char **line;
    size_t n, cap;
} ini;

typedef struct ctx {
    live_setup_note note;
    void *user;
    char buf[1400];
} ctx;

static void say(ctx *c, const char *fmt, ...) CPHIL_PRINTF(2, 3);
static void say(ctx *c, const char *fmt, ...) {
    if (!c->note) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->buf, sizeof c->buf, fmt, ap);
    va_end(ap);
    c->note(c->user, c->buf);
}

static void ini_free(ini *f) {
    for (size_t i = 0; i < f->n; i++) cphil_free(f->line[i]);
    cphil_free(f->line);
    memset(f, 0, sizeof *f);
}

static cphil_status ini_insert(ini *f, size_t at, const char *s, size_t len) {
    if (f->n == f->cap) {
        size_t nc = f->cap ? f->cap * 2 : 64;
        char **l = cphil_realloc(f->line, f->cap * sizeof *l, nc * sizeof *l);
        if (!l) return cphil_err(CPHIL_E_NOMEM, "out of memory editing an INI file");
        f->line = l;
        f->cap = nc;
    }
    char *d = cphil_alloc(len + 1);
    if (!d) return cphil_err(CPHIL_E_NOMEM, "out of memory editing an INI file");
    memcpy(d, s, len);
    d[len] = '\0';
    memmove(f->line + at + 1, f->line + at, (f->n - at) * sizeof *f->line);
    f->line[at] = d;
    f->n++;
    return CPHIL_OK;
}

static cphil_status ini_parse(ini *f, const uint8_t *data, size_t size) {
    size_t i = 0;
    while (i < size) {
        size_t j = i;
        while (j < size && data[j] != '\n') j++;
        size_t len = j - i;
        if (len && data[i + len - 1] == '\r') len--;
        cphil_status s = ini_insert(f, f->n, (const char *)data + i, len);
        if (s) return s;
        i = j + 1;
    }
    return CPHIL_OK;
}

static const char *skip_ws(const char *s) {
    while (*s == ' ' || *s == '\t') s++;
    return s;
}

/* Line i is "[name]"? */
static bool is_section(const char *l, const char *name) {
    l = skip_ws(l);
    size_t n = strlen(name);
    return l[0] == '[' && !strncmp(l + 1, name, n) && l[1 + n] == ']';
}
static bool is_any_section(const char *l) { return *skip_ws(l) == '['; }

/* Line is "key = value" for key? Sets *val to the value's start. */
static bool is_key(const char *l, const char *key, const char **val) {
    l = skip_ws(l);
    size_t n = strlen(key);
    if (strncmp(l, key, n)) return false;
    const char *p = skip_ws(l + n);
    if (*p != '=') return false;
    *val = skip_ws(p + 1);
    return true;
}

/* The line range of a section: [start (its header), end); start = n when absent. */
static void section_range(const ini *f, const char *sec, size_t *start, size_t *end) {
    *start = f->n;
    for (size_t i = 0; i < f->n; i++)
        if (is_section(f->line[i], sec)) {
            *start = i;
            break;
        }
    *end = f->n;
    for (size_t i = *start + 1; i < f->n; i++)
        if (is_any_section(f->line[i])) {
            *end = i;
            break;
        }
}

static cphil_status set_key(ctx *c, const char *file, ini *f, const char *sec, const char *key, const char *value,
                            int *changes) {
    size_t a, b;
    section_range(f, sec, &a, &b);
    char line[512];
    snprintf(line, sizeof line, "%s = %s", key, value);
    cphil_status s;
    if (a == f->n) { /* a new section at the end */
        char hdr[128];
        snprintf(hdr, sizeof hdr, "[%s]", sec);
        if (f->n && *skip_ws(f->line[f->n - 1]) && (s = ini_insert(f, f->n, "", 0))) return s;
        if ((s = ini_insert(f, f->n, hdr, strlen(hdr)))) return s;
        if ((s = ini_insert(f, f->n, line, strlen(line)))) return s;
        say(c, "%s [%s] %s = %s (new)", file, sec, key, value);
        (*changes)++;
        return CPHIL_OK;
    }
    for (size_t i = a + 1; i < b; i++) {
        const char *v;
        if (is_key(f->line[i], key, &v)) {
            size_t vl = strlen(v);
            while (vl && (v[vl - 1] == ' ' || v[vl - 1] == '\t')) vl--;
            if (vl == strlen(value) && !strncmp(v, value, vl)) return CPHIL_OK;
            say(c, "%s [%s] %s = %s (was %.*s)", file, sec, key, value, (int)vl, v);
            char *d = cphil_strdup(line);
            if (!d) return cphil_err(CPHIL_E_NOMEM, "out of memory editing an INI file");
            cphil_free(f->line[i]);
            f->line[i] = d;
            (*changes)++;
            return CPHIL_OK;
        }
    }
    size_t at = b; /* after the section's last non-blank line */
    while (at > a + 1 && !*skip_ws(f->line[at - 1])) at--;
    if ((s = ini_insert(f, at, line, strlen(line)))) return s;
    say(c, "%s [%s] %s = %s (new)", file, sec, key, value);
    (*changes)++;
    return CPHIL_OK;
}

/* Keep a copy of path (when it exists) as path.cphil-backup-<time>[-k], never overwriting one. */
static cphil_status backup(ctx *c, const char *path, const uint8_t *data, size_t size) {
    char stamp[32], bpath[1400];
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &tm);
    for (int k = 1; k < 1000; k++) {
        if (k == 1) snprintf(bpath, sizeof bpath, "%s.cphil-backup-%s", path, stamp);
        else snprintf(bpath, sizeof bpath, "%s.cphil-backup-%s-%d", path, stamp, k);
        struct stat sb;
        if (lstat(bpath, &sb) != 0) {
            cphil_status s = cphil_file_write_atomic(bpath, data, size);
            if (s) return s;
            say(c, "kept a copy of %s as %s", path, bpath);
            return CPHIL_OK;
        }
    }
    return cphil_err(CPHIL_E_IO, "%s: too many backups already; remove some", path);
}

/* Apply the edits of one INI file: load (or start empty), edit, back up, write atomically. */
typedef cphil_status (*edit_fn)(ctx *c, const char *name, ini *f, const live_setup_params *p, int *changes);

static cphil_status edit_file(ctx *c, const char *path, const char *name, edit_fn fn, const live_setup_params *p) {
    uint8_t *data = NULL;
    size_t size = 0;
    ini f = {0};
    struct stat sb;
    bool exists = stat(path, &sb) == 0;
    cphil_status s = CPHIL_OK;
    if (exists && (s = cphil_file_read(path, 16u << 20, &data, &size))) return s;
    if ((s = ini_parse(&f, data, size))) goto out;
    int changes = 0;
    if ((s = fn(c, name, &f, p, &changes))) goto out;
    if (!changes) {
        say(c, "%s: unchanged", path);
        goto out;
    }
    if (exists && (s = backup(c, path, data, size))) goto out;
    size_t total = 0;
    for (size_t i = 0; i < f.n; i++) total += strlen(f.line[i]) + 1;
    char *out = cphil_alloc(total + 1);
    if (!out) {
        s = cphil_err(CPHIL_E_NOMEM, "out of memory writing %s", path);
        goto out;
    }
    size_t o = 0;
    for (size_t i = 0; i < f.n; i++) {
        size_t l = strlen(f.line[i]);
        memcpy(out + o, f.line[i], l);
        o += l;
        out[o++] = '\n';
    }
    s = cphil_file_write_atomic(path, out, o);
    cphil_free(out);
    if (!s) say(c, "%s: %d setting%s written%s", path, changes, changes == 1 ? "" : "s", exists ? "" : " (new file)");
out:
    cphil_free(data);
    ini_free(&f);
    return s;
}

static cphil_status edit_gcpad(ctx *c, const char *name, ini *f, const live_setup_params *p, int *changes) {
    char sec[16], dev[64];
    snprintf(sec, sizeof sec, "GCPad%d", p->port);
    snprintf(dev, sizeof dev, "Pipe/0/slippibot%d", p->port);
    const char *kv[][2] = {
        {"Device", dev},
        {"Buttons/A", "Button A"}, {"Buttons/B", "Button B"}, {"Buttons/X", "Button X"}, {"Buttons/Y", "Button Y"},
        {"Buttons/Z", "Button Z"}, {"Buttons/Start", "Button START"}, {"Buttons/Threshold", "50"},
        {"Main Stick/Up", "Axis MAIN Y +"}, {"Main Stick/Down", "Axis MAIN Y -"}, {"Main Stick/Left", "Axis MAIN X -"},
        {"Main Stick/Right", "Axis MAIN X +"}, {"Main Stick/Radius", "100"},
        {"C-Stick/Up", "Axis C Y +"}, {"C-Stick/Down", "Axis C Y -"}, {"C-Stick/Left", "Axis C X -"},
        {"C-Stick/Right", "Axis C X +"}, {"C-Stick/Radius", "100"},
        {"D-Pad/Up", "Button D_UP"}, {"D-Pad/Down", "Button D_DOWN"}, {"D-Pad/Left", "Button D_LEFT"},
        {"D-Pad/Right", "Button D_RIGHT"},
        {"Triggers/L", "Button L"}, {"Triggers/R", "Button R"},
        {"Triggers/L-Analog", "Axis L +"}, {"Triggers/R-Analog", "Axis R +"}, {"Triggers/Threshold", "90"},
    };
    for (size_t i = 0; i < CPHIL_ARRAY_LEN(kv); i++) {
        cphil_status s = set_key(c, name, f, sec, kv[i][0], kv[i][1], changes);
        if (s) return s;
    }
    return CPHIL_OK;
}

static cphil_status edit_dolphin(ctx *c, const char *name, ini *f, const live_setup_params *p, int *changes) {
    char port[16], sidev[32];
    snprintf(port, sizeof port, "%d", p->spectator_port);
    snprintf(sidev, sizeof sidev, "SIDevice%d", p->port - 1);
    const char *blk = p->blocking ? "True" : "False";
    const char *kv[][3] = {
        {"Core", "SlippiEnableSpectator", "True"}, {"Core", "SlippiSpectatorLocalPort", port},
        {"Core", "BlockingPipes", blk}, {"Core", sidev, "6"},
        {"Input", "BackgroundInput", "True"},
        {"Slippi", "EnableSpectator", "True"}, {"Slippi", "SpectatorLocalPort", port},
        {"Slippi", "BlockingPipes", blk},
    };
    for (size_t i = 0; i < CPHIL_ARRAY_LEN(kv); i++) {
        cphil_status s = set_key(c, name, f, kv[i][0], kv[i][1], kv[i][2], changes);
        if (s) return s;
    }
    return CPHIL_OK;
}

cphil_status cphil_live_dolphin_setup(const live_setup_params *p, live_setup_note note, void *user) {
    if (!p || !p->user_dir || !*p->user_dir) return cphil_err(CPHIL_E_ARG, "dolphin-setup: no user directory");
    if (p->port < 1 || p->port > 4) return cphil_err(CPHIL_E_ARG, "dolphin-setup: port %d is not 1..4", p->port);
    if (p->spectator_port < 1 || p->spectator_port > 65535)
        return cphil_err(CPHIL_E_ARG, "dolphin-setup: spectator port %d is not 1..65535", p->spectator_port);
    ctx c = {note, user, {0}};
    char dir[1100], path[1400];
    cphil_status s;
    snprintf(dir, sizeof dir, "%s/Pipes", p->user_dir);
    if ((s = cphil_mkdir_p(dir))) return s;
    snprintf(path, sizeof path, "%s/slippibot%d", dir, p->port);
    struct stat sb;
    if (lstat(path, &sb) == 0) {
        if (!S_ISFIFO(sb.st_mode))
            return cphil_err(CPHIL_E_IO,
                             "%s exists and is not a FIFO: move it away (Dolphin takes every entry of Pipes/ for a "
                             "controller) and run dolphin-setup again",
                             path);
        say(&c, "%s: FIFO already there", path);
    } else {
        if (mkfifo(path, 0600) != 0) return cphil_err(CPHIL_E_IO, "cannot make the FIFO %s: %s", path, strerror(errno));
        say(&c, "%s: FIFO made (restart Dolphin: it looks for pipes only at startup)", path);
    }
    DIR *dd = opendir(dir);
    if (dd) {
        struct dirent *de;
        char mine[32];
        snprintf(mine, sizeof mine, "slippibot%d", p->port);
        while ((de = readdir(dd)))
            if (de->d_name[0] != '.' && strcmp(de->d_name, mine))
                say(&c, "note: %s/%s is also a controller to Dolphin%s", dir, de->d_name,
                    p->blocking ? "; with BlockingPipes it must FLUSH every frame too, or Dolphin stalls" : "");
        closedir(dd);
    }
    snprintf(dir, sizeof dir, "%s/Config", p->user_dir);
    if ((s = cphil_mkdir_p(dir))) return s;
    snprintf(path, sizeof path, "%s/GCPadNew.ini", dir);
    if ((s = edit_file(&c, path, "GCPadNew.ini", edit_gcpad, p))) return s;
    snprintf(path, sizeof path, "%s/Dolphin.ini", dir);
    if ((s = edit_file(&c, path, "Dolphin.ini", edit_dolphin, p))) return s;
    return CPHIL_OK;
}
