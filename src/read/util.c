/*
 * util.c: header parsing, errors, a small hash map, growth, time conversion.
 */
#include "internal.h"
#include "utf8.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ----------------------------------------------------------------- header */

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

/* ----------------------------------------------------------------- errors */

void gtr_seterr(struct gtr_error *e, enum gtr_errkind kind, uint64_t gen, uint64_t off,
		const char *fmt, ...)
{
	if (!e)
		return;
	memset(e, 0, offsetof(struct gtr_error, msg));
	e->kind = kind;
	e->gen = gen;
	e->offset = off;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof e->msg, fmt, ap);
	va_end(ap);
}

/* -------------------------------------------------------------- hash map */

/* IDs come from the input: seed the hash per process (from an ASLR'd
 * address and the clock) so that a crafted trace cannot aim at
 * collisions.  Only speed depends on it, never results. */
static uint64_t hash_seed;

static uint64_t seed_now(void)
{
	uint64_t s = __atomic_load_n(&hash_seed, __ATOMIC_RELAXED);
	if (!s) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		uint64_t n = ((uint64_t)(uintptr_t)&hash_seed ^ (uint64_t)ts.tv_nsec * 0x9E3779B97F4A7C15ULL ^
			      (uint64_t)ts.tv_sec) | 1;
		uint64_t zero = 0;
		if (!__atomic_compare_exchange_n(&hash_seed, &zero, n, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
			n = zero;
		s = n;
	}
	return s;
}

static size_t map_hash(uint64_t k)
{
	k ^= __atomic_load_n(&hash_seed, __ATOMIC_RELAXED);
	k ^= k >> 33;
	k *= 0xff51afd7ed558ccdULL;
	k ^= k >> 33;
	k *= 0xc4ceb9fe1a85ec53ULL;
	k ^= k >> 33;
	return (size_t)k;
}

void gtr_map_clear(struct gtr_map *m)
{
	if (m->n && m->used)
		memset(m->used, 0, m->cap);
	m->n = 0;
}

void gtr_map_free(struct gtr_map *m)
{
	free(m->keys);
	free(m->vals);
	free(m->used);
	memset(m, 0, sizeof *m);
}

static bool map_resize(struct gtr_map *m, size_t ncap)
{
	seed_now();
	uint64_t *keys = malloc(ncap * sizeof *keys);
	uint32_t *vals = malloc(ncap * sizeof *vals);
	uint8_t *used = calloc(ncap, 1);
	if (!keys || !vals || !used) {
		free(keys);
		free(vals);
		free(used);
		return false;
	}
	for (size_t i = 0; i < m->cap; i++) {
		if (!m->used[i])
			continue;
		size_t j = map_hash(m->keys[i]) & (ncap - 1);
		while (used[j])
			j = (j + 1) & (ncap - 1);
		used[j] = 1;
		keys[j] = m->keys[i];
		vals[j] = m->vals[i];
	}
	free(m->keys);
	free(m->vals);
	free(m->used);
	m->keys = keys;
	m->vals = vals;
	m->used = used;
	m->cap = ncap;
	return true;
}

uint32_t *gtr_map_put(struct gtr_map *m, uint64_t key, bool *added)
{
	if ((m->n + 1) * 4 > m->cap * 3) {
		if (!map_resize(m, m->cap ? m->cap * 2 : 64))
			return NULL;
	}
	size_t j = map_hash(key) & (m->cap - 1);
	while (m->used[j]) {
		if (m->keys[j] == key) {
			*added = false;
			return &m->vals[j];
		}
		j = (j + 1) & (m->cap - 1);
	}
	m->used[j] = 1;
	m->keys[j] = key;
	m->vals[j] = 0;
	m->n++;
	*added = true;
	return &m->vals[j];
}

const uint32_t *gtr_map_get(const struct gtr_map *m, uint64_t key)
{
	if (!m->n)
		return NULL;
	size_t j = map_hash(key) & (m->cap - 1);
	while (m->used[j]) {
		if (m->keys[j] == key)
			return &m->vals[j];
		j = (j + 1) & (m->cap - 1);
	}
	return NULL;
}

/* ------------------------------------------------------------ growth */

bool gtr_grow(void **arr, size_t *cap, size_t len, size_t n, size_t sz)
{
	if (len + n <= *cap)
		return true;
	size_t ncap = *cap ? *cap : 16;
	while (ncap < len + n) {
		if (ncap > SIZE_MAX / 2 / sz)
			return false;
		ncap *= 2;
	}
	void *p = realloc(*arr, ncap * sz);
	if (!p)
		return false;
	*arr = p;
	*cap = ncap;
	return true;
}

/* ------------------------------------------------------------ time */

int64_t gtr_ticks_to_ns(uint64_t t, double ns_per_tick)
{
	double x = (double)t * ns_per_tick;
	if (!(x >= -9223372036854775808.0 && x < 9223372036854775808.0))
		return INT64_MIN;
	return (int64_t)x;
}
