/*
 * wire/quote.c: Go's strconv.Quote of byte strings (what gotraceraw and
 * Go's %q print).  Calls wire/utf8.h and the generated table of printable
 * runes (wire/isprint_table.h).
 */
#include "wire/quote.h"
#include "gtread.h"
#include "wire/isprint_table.h"
#include "wire/utf8.h"

#include <stdbool.h>
#include <string.h>

static bool go_isprint(uint32_t r)
{
	size_t lo = 0, hi = sizeof gtr_isprint_ranges / sizeof gtr_isprint_ranges[0];
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (r < gtr_isprint_ranges[mid][0])
			hi = mid;
		else if (r > gtr_isprint_ranges[mid][1])
			lo = mid + 1;
		else
			return true;
	}
	return false;
}

static const char lowerhex[] = "0123456789abcdef";

/* strconv.appendEscapedRune for quote '"' (not ASCII-only, not graphic-only);
 * at most 10 bytes. */
static size_t escape_rune(uint32_t r, char *o)
{
	size_t n = 0;
	if (r == '"' || r == '\\') {
		o[n++] = '\\';
		o[n++] = (char)r;
		return n;
	}
	if (go_isprint(r)) {
		/* utf8.AppendRune of a valid, printable rune */
		if (r < 0x80) {
			o[n++] = (char)r;
		} else if (r < 0x800) {
			o[n++] = (char)(0xC0 | r >> 6);
			o[n++] = (char)(0x80 | (r & 0x3F));
		} else if (r < 0x10000) {
			o[n++] = (char)(0xE0 | r >> 12);
			o[n++] = (char)(0x80 | (r >> 6 & 0x3F));
			o[n++] = (char)(0x80 | (r & 0x3F));
		} else {
			o[n++] = (char)(0xF0 | r >> 18);
			o[n++] = (char)(0x80 | (r >> 12 & 0x3F));
			o[n++] = (char)(0x80 | (r >> 6 & 0x3F));
			o[n++] = (char)(0x80 | (r & 0x3F));
		}
		return n;
	}
	switch (r) {
	case '\a':
		return memcpy(o, "\\a", 2), 2;
	case '\b':
		return memcpy(o, "\\b", 2), 2;
	case '\f':
		return memcpy(o, "\\f", 2), 2;
	case '\n':
		return memcpy(o, "\\n", 2), 2;
	case '\r':
		return memcpy(o, "\\r", 2), 2;
	case '\t':
		return memcpy(o, "\\t", 2), 2;
	case '\v':
		return memcpy(o, "\\v", 2), 2;
	}
	if (r < ' ' || r == 0x7f) {
		o[n++] = '\\';
		o[n++] = 'x';
		o[n++] = lowerhex[(r >> 4) & 0xF];
		o[n++] = lowerhex[r & 0xF];
		return n;
	}
	if (r > 0x10FFFF || (r >= 0xD800 && r <= 0xDFFF))
		r = 0xFFFD;
	if (r < 0x10000) {
		o[n++] = '\\';
		o[n++] = 'u';
		for (int s = 12; s >= 0; s -= 4)
			o[n++] = lowerhex[(r >> s) & 0xF];
	} else {
		o[n++] = '\\';
		o[n++] = 'U';
		for (int s = 28; s >= 0; s -= 4)
			o[n++] = lowerhex[(r >> s) & 0xF];
	}
	return n;
}

size_t gtr_quote_rune_at(const uint8_t *s, size_t len, size_t i, char *o, size_t *width)
{
	uint32_t r = s[i];
	size_t w = 1;
	if (r >= 0x80)
		w = gtr_utf8_decode(s + i, len - i, &r);
	*width = w;
	if (w == 1 && r == GTR_RUNE_ERROR) {
		o[0] = '\\';
		o[1] = 'x';
		o[2] = lowerhex[s[i] >> 4];
		o[3] = lowerhex[s[i] & 0xF];
		return 4;
	}
	return escape_rune(r, o);
}

/* Quotes s[0..len) into o; returns the number of bytes (<= 4*len+2). */
size_t gtr_go_quote(const uint8_t *s, size_t len, char *o)
{
	size_t n = 0;
	o[n++] = '"';
	for (size_t i = 0, w; i < len; i += w)
		n += gtr_quote_rune_at(s, len, i, o + n, &w);
	o[n++] = '"';
	return n;
}
