/* sjis.h — Shift-JIS (JIS X 0208) to UTF-8 for the strings of Game Start (name tags, display
 * names, connect codes), with slippi-js's normalization (full-width ASCII -> ASCII). */
#ifndef CPHIL_SLP_SJIS_H
#define CPHIL_SLP_SJIS_H

#include <stddef.h>
#include <stdint.h>

extern const uint16_t cphil_sjis_table[47 * 188];

/* Decode src[0..n) up to the first NUL into dst (NUL-terminated, at most cap bytes, never cut
 * inside a character). Unmapped or malformed bytes become U+FFFD. If normalize, full-width
 * forms U+FF01..U+FF5E become ASCII, U+3000 a space, U+2019 ' and U+201D ". Returns the length. */
size_t cphil_sjis_to_utf8(const uint8_t *src, size_t n, char *dst, size_t cap, int normalize);

#endif
