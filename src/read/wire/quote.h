/*
 * wire/quote.h: Go's strconv.Quote of byte strings.  gtr_go_quote itself
 * is public (include/gtread.h).  Calls wire/utf8.h.
 */
#ifndef GTREAD_WIRE_QUOTE_H
#define GTREAD_WIRE_QUOTE_H

#include "gtread.h"

#include <stddef.h>
#include <stdint.h>

/* Writes Go's quoting of the rune at s[i] (i < len), or of the byte there
 * if it does not start a valid UTF-8 sequence, to o (at most 10 bytes);
 * returns the bytes written and sets *width to the input bytes taken. */
size_t gtr_quote_rune_at(const uint8_t *s, size_t len, size_t i, char *o, size_t *width);

#endif
