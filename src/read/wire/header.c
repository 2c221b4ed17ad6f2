/*
 * wire/header.c: the trace header ("go 1.N trace\0\0\0"), scanned as Go's
 * fmt.Fscanf does.  Calls wire/utf8.h and base/error.
 */
#include "wire/header.h"
#include "base/error.h"
#include "wire/utf8.h"

#include <stdbool.h>

/* fmt's isSpace (Go 1.23 fmt/scan.go): Unicode spaces below U+10000. */
static bool fmt_is_space(uint32_t r)
{
	static const uint16_t space[][2] = {
		{ 0x0009, 0x000d }, { 0x0020, 0x0020 }, { 0x0085, 0x0085 }, { 0x00a0, 0x00a0 },
		{ 0x1680, 0x1680 }, { 0x2000, 0x200a }, { 0x2028, 0x2029 }, { 0x202f, 0x202f },
		{ 0x205f, 0x205f }, { 0x3000, 0x3000 },
	};
	if (r >= 1u << 16)
		return false;
	for (size_t i = 0; i < sizeof space / sizeof space[0]; i++) {
		if (r < space[i][0])
			return false;
		if (r <= space[i][1])
			return true;
	}
	return false;
}

#define HDR_EOF 0xFFFFFFFFu

struct scan {
	const uint8_t *p, *end;
	size_t lastw; /* width of the last rune read (for unread) */
};

static uint32_t scan_get(struct scan *s)
{
	if (s->p >= s->end) {
		s->lastw = 0;
		return HDR_EOF;
	}
	uint32_t r;
	size_t w = gtr_utf8_decode(s->p, (size_t)(s->end - s->p), &r);
	s->p += w;
	s->lastw = w;
	return r;
}

static void scan_unget(struct scan *s)
{
	s->p -= s->lastw;
	s->lastw = 0;
}

/* A space in the format, not after a newline: one or more spaces (no
 * newline) or end of input. */
static bool scan_space(struct scan *s)
{
	uint32_t c = scan_get(s);
	if (c != HDR_EOF && !fmt_is_space(c))
		return false;
	if (c == '\n')
		return false;
	while (c != HDR_EOF && fmt_is_space(c) && c != '\n')
		c = scan_get(s);
	if (c != HDR_EOF)
		scan_unget(s);
	return true;
}

static bool scan_lit(struct scan *s, const char *lit, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint32_t c = scan_get(s);
		if (c != (uint8_t)lit[i])
			return false;
	}
	return true;
}

int gtr_parse_header(const uint8_t *buf, size_t len, unsigned *version, size_t *hdrlen)
{
	struct scan s = { buf, buf + len, 0 };
	if (!scan_lit(&s, "go", 2) || !scan_space(&s) || !scan_lit(&s, "1.", 2))
		return -1;
	/* %d into a uint32: SkipSpace, then decimal digits. */
	for (;;) {
		uint32_t c = scan_get(&s);
		if (c == HDR_EOF)
			return -1;
		if (c == '\r' && s.p < s.end && *s.p == '\n')
			continue;
		if (c == '\n')
			return -1;
		if (!fmt_is_space(c)) {
			scan_unget(&s);
			break;
		}
	}
	uint64_t v = 0;
	bool digits = false, big = false;
	while (s.p < s.end && *s.p >= '0' && *s.p <= '9') {
		unsigned d = (unsigned)(*s.p - '0');
		if (v > (UINT64_MAX - d) / 10)
			big = true;
		else
			v = v * 10 + d;
		digits = true;
		s.p++;
	}
	if (!digits || big || v > UINT32_MAX)
		return -1;
	if (!scan_space(&s) || !scan_lit(&s, "trace", 5) || !scan_lit(&s, "\0\0\0", 3))
		return -1;
	*version = (unsigned)v;
	*hdrlen = (size_t)(s.p - buf);
	return gtr_version_known(*version) ? 0 : -2;
}

bool gtr_version_known(unsigned v)
{
	return v == 11 || v == 19 || v == 21 || v == 22 || v == 23;
}

int gtr_check_header(const uint8_t *buf, size_t len, unsigned *version, size_t *hdrlen,
		     struct gtr_error *err)
{
	int rc = gtr_parse_header(buf, len, version, hdrlen);
	if (rc == -1)
		gtr_seterr(err, GTR_ENOTTRACE, 0, 0, "bad file format: not a Go execution trace?");
	else if (rc == -2)
		gtr_seterr(err, GTR_EVERSION, 0, 0, "unknown or unsupported trace version go 1.%u", *version);
	return rc < 0 ? -1 : 0;
}
