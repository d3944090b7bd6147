/* json_out.c — a small streaming JSON writer (commas, nesting, escaping of UTF-8 strings).
 * Used by every `--json` output; one object per line is the caller's choice. */
#include "core/core.h"

#include <math.h>

void cphil_json_write_string(FILE *f, const char *s) {
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        unsigned c = *p;
        switch (c) {
        case '"': fputs("\\\"", f); break;
        case '\\': fputs("\\\\", f); break;
        case '\n': fputs("\\n", f); break;
        case '\r': fputs("\\r", f); break;
        case '\t': fputs("\\t", f); break;
        case '\b': fputs("\\b", f); break;
        case '\f': fputs("\\f", f); break;
        default:
            if (c < 0x20) fprintf(f, "\\u%04x", c);
            else fputc((int)c, f);
        }
    }
    fputc('"', f);
}

void cphil_json_begin(cphil_json_out *j, FILE *f) {
    j->f = f;
    j->depth = 0;
    j->need_comma[0] = false;
    j->after_key = false;
}

static void pre_value(cphil_json_out *j) {
    if (j->after_key) {
        j->after_key = false;
        return;
    }
    if (j->need_comma[j->depth]) fputc(',', j->f);
    j->need_comma[j->depth] = true;
}

static void open_(cphil_json_out *j, char c) {
    pre_value(j);
    fputc(c, j->f);
    CPHIL_ASSERT(j->depth + 1 < (int)CPHIL_ARRAY_LEN(j->need_comma));
    j->depth++;
    j->need_comma[j->depth] = false;
}

static void close_(cphil_json_out *j, char c) {
    CPHIL_ASSERT(j->depth > 0);
    j->depth--;
    fputc(c, j->f);
}

void cphil_json_obj_open(cphil_json_out *j) { open_(j, '{'); }
void cphil_json_obj_close(cphil_json_out *j) { close_(j, '}'); }
void cphil_json_arr_open(cphil_json_out *j) { open_(j, '['); }
void cphil_json_arr_close(cphil_json_out *j) { close_(j, ']'); }

void cphil_json_key(cphil_json_out *j, const char *key) {
    pre_value(j);
    cphil_json_write_string(j->f, key);
    fputc(':', j->f);
    j->after_key = true;
}

void cphil_json_str(cphil_json_out *j, const char *s) {
    pre_value(j);
    if (s) cphil_json_write_string(j->f, s);
    else fputs("null", j->f);
}
void cphil_json_int(cphil_json_out *j, long long v) { pre_value(j); fprintf(j->f, "%lld", v); }
void cphil_json_uint(cphil_json_out *j, unsigned long long v) { pre_value(j); fprintf(j->f, "%llu", v); }
void cphil_json_num(cphil_json_out *j, double v) {
    pre_value(j);
    if (isfinite(v)) fprintf(j->f, "%.9g", v);
    else fputs("null", j->f);
}
void cphil_json_bool(cphil_json_out *j, bool v) { pre_value(j); fputs(v ? "true" : "false", j->f); }
void cphil_json_null(cphil_json_out *j) { pre_value(j); fputs("null", j->f); }
