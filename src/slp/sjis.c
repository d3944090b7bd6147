/* sjis.c — Shift-JIS to UTF-8 (reference/slp_format.md §10). Single bytes: ASCII and half-width
 * katakana (0xA1-0xDF -> U+FF61-U+FF9F); double bytes through the generated JIS X 0208 table
 * (sjis_table.c). Does not handle the user-defined area 0xF0-0xFC (decoded as U+FFFD). */
#include "slp/sjis.h"

static int lead_index(unsigned b) {
    if (b >= 0x81 && b <= 0x9F) return (int)(b - 0x81);
    if (b >= 0xE0 && b <= 0xEF) return (int)(b - 0xE0 + 31);
    return -1;
}
static int trail_index(unsigned b) {
    if (b >= 0x40 && b <= 0x7E) return (int)(b - 0x40);
    if (b >= 0x80 && b <= 0xFC) return (int)(b - 0x80 + 63);
    return -1;
}

static size_t put_utf8(char *dst, size_t len, size_t cap, uint32_t cp) {
    char buf[4];
    size_t k;
    if (cp < 0x80) { buf[0] = (char)cp; k = 1; }
    else if (cp < 0x800) { buf[0] = (char)(0xC0 | (cp >> 6)); buf[1] = (char)(0x80 | (cp & 0x3F)); k = 2; }
    else { buf[0] = (char)(0xE0 | (cp >> 12)); buf[1] = (char)(0x80 | ((cp >> 6) & 0x3F)); buf[2] = (char)(0x80 | (cp & 0x3F)); k = 3; }
    if (len + k + 1 > cap) return 0;
    for (size_t i = 0; i < k; i++) dst[len + i] = buf[i];
    return k;
}

size_t cphil_sjis_to_utf8(const uint8_t *src, size_t n, char *dst, size_t cap, int normalize) {
    size_t len = 0;
    if (cap == 0) return 0;
    for (size_t i = 0; i < n && src[i]; i++) {
        unsigned b = src[i];
        uint32_t cp;
        if (b < 0x80) cp = b;
        else if (b >= 0xA1 && b <= 0xDF) cp = 0xFF61 + (b - 0xA1);
        else {
            int li = lead_index(b);
            int ti = (i + 1 < n) ? trail_index(src[i + 1]) : -1;
            if (li >= 0 && ti >= 0) {
                cp = cphil_sjis_table[li * 188 + ti];
                if (!cp) cp = 0xFFFD;
                i++;
            } else cp = 0xFFFD;
        }
        if (normalize) {
            if (cp >= 0xFF01 && cp <= 0xFF5E) cp -= 0xFEE0;
            else if (cp == 0x3000) cp = ' ';
            else if (cp == 0x2019) cp = '\'';
            else if (cp == 0x201D) cp = '"';
        }
        size_t k = put_utf8(dst, len, cap, cp);
        if (!k) break;
        len += k;
    }
    dst[len] = '\0';
    return len;
}
