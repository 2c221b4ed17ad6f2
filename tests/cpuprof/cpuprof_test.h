/*
 * Helpers shared by the CPU profiling tests (header-only, static).
 *
 *  - frames(): split a summary `stack=` value (func@file:line;... leaf
 *    first) into frames;
 *  - raw_load(): read a trace file directly (not through Go's reader) to get
 *    each CPU sample's raw timestamp and the raw time span of every
 *    generation's ordinary events: Go's readers clamp times to make the
 *    event stream increasing, which would hide a sample placed in the wrong
 *    generation;
 *  - run_capture(): run a command, return its stdout.
 */
#ifndef GT_CPUPROF_TEST_H
#define GT_CPUPROF_TEST_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FR_MAX 64
struct frame {
	char func[160];
	char file[256];
	long line;
};

static inline int frames(const char *stack, struct frame *fr, int max)
{
	int n = 0;
	const char *p = stack ? stack : "";
	while (*p && n < max) {
		const char *end = strchr(p, ';');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		char buf[512];
		if (len >= sizeof buf)
			len = sizeof buf - 1;
		memcpy(buf, p, len);
		buf[len] = 0;
		char *at = strchr(buf, '@');
		char *colon = strrchr(buf, ':');
		fr[n].line = 0;
		fr[n].file[0] = 0;
		if (at) {
			*at = 0;
			if (colon && colon > at) {
				*colon = 0;
				fr[n].line = strtol(colon + 1, NULL, 10);
			}
			snprintf(fr[n].file, sizeof fr[n].file, "%.255s", at + 1);
		}
		snprintf(fr[n].func, sizeof fr[n].func, "%.159s", buf);
		n++;
		if (!end)
			break;
		p = end + 1;
	}
	return n;
}

static inline int ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);
	return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* ------------------------------------------------------------ raw reader */

struct raw_sample {
	uint64_t gen, time, m, p, g, stack;
};
struct raw_gen {
	uint64_t lo, hi; /* raw ticks of the generation's timed events */
	uint64_t lo_m, hi_m; /* the M (batch) of the events at lo and hi */
	uint64_t nev, nsamples;
};
struct raw {
	struct raw_sample *s;
	size_t ns, cap;
	struct raw_gen *gens; /* indexed by generation number */
	uint64_t maxgen;
	/* The first generation number in the file: numbers go on from the
	 * last session of the process (Go's readers count from 1). */
	uint64_t mingen;
};

static inline int rv(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
	uint64_t x = 0;
	for (int i = 0, sh = 0; i < 10; i++, sh += 7) {
		if (*p >= end)
			return -1;
		uint8_t b = *(*p)++;
		x |= (uint64_t)(b & 0x7f) << sh;
		if (!(b & 0x80)) {
			*v = x;
			return 0;
		}
	}
	return -1;
}

/* Arguments after the type byte (dt included) of timed events, Go 1.23. */
static inline int ev_nargs(int type)
{
	static const signed char n[49] = {
		[9] = 3, [10] = 3, [11] = 1, [12] = 4, [13] = 3, [14] = 4, [15] = 2, [16] = 3,
		[17] = 1, [18] = 1, [19] = 3, [20] = 3, [21] = 4, [22] = 3, [23] = 1, [24] = 1,
		[25] = 4, [26] = 3, [27] = 1, [28] = 2, [29] = 3, [30] = 2, [31] = 2, [32] = 2,
		[33] = 3, [34] = 2, [35] = 2, [36] = 1, [37] = 2, [38] = 2, [39] = 2, [40] = 5,
		[41] = 3, [42] = 4, [43] = 4, [44] = 5, [45] = 3, [46] = 3, [47] = 4, [48] = 5,
	};
	return type >= 9 && type <= 48 ? n[type] : -1;
}

static inline void raw_gen_note(struct raw *r, uint64_t gen, uint64_t t, uint64_t m, int sample)
{
	if (gen > r->maxgen) {
		r->gens = realloc(r->gens, (size_t)(gen + 1) * sizeof *r->gens);
		for (uint64_t i = r->maxgen + 1; i <= gen; i++)
			r->gens[i] = (struct raw_gen){ .lo = UINT64_MAX };
		if (r->maxgen == 0)
			r->gens[0] = (struct raw_gen){ .lo = UINT64_MAX };
		r->maxgen = gen;
	}
	if (r->mingen == 0 || gen < r->mingen)
		r->mingen = gen;
	struct raw_gen *g = &r->gens[gen];
	if (sample) {
		g->nsamples++;
		return;
	}
	g->nev++;
	if (t < g->lo) {
		g->lo = t;
		g->lo_m = m;
	}
	if (t > g->hi) {
		g->hi = t;
		g->hi_m = m;
	}
}

/* 0 on success. */
static inline int raw_load(const char *path, struct raw *r)
{
	memset(r, 0, sizeof *r);
	FILE *f = fopen(path, "rb");
	if (!f)
		return -1;
	fseek(f, 0, SEEK_END);
	long len = ftell(f);
	fseek(f, 0, SEEK_SET);
	uint8_t *buf = malloc((size_t)len);
	if (fread(buf, 1, (size_t)len, f) != (size_t)len) {
		fclose(f);
		free(buf);
		return -1;
	}
	fclose(f);
	const uint8_t *p = buf + 16, *end = buf + len;
	int rc = 0;
	while (p < end) {
		uint64_t gen, m, time, size, v;
		if (*p++ != 1 || rv(&p, end, &gen) || rv(&p, end, &m) || rv(&p, end, &time) ||
		    rv(&p, end, &size) || size > (uint64_t)(end - p)) {
			rc = -1;
			break;
		}
		const uint8_t *q = p, *bend = p + size;
		p = bend;
		if (q == bend)
			continue;
		uint8_t kind = *q;
		if (kind == 2 || kind == 4 || kind == 8)
			continue; /* stacks, strings, frequency */
		if (kind == 6) {
			q++;
			while (q < bend) {
				struct raw_sample s;
				if (*q++ != 7 || rv(&q, bend, &s.time) || rv(&q, bend, &s.m) ||
				    rv(&q, bend, &s.p) || rv(&q, bend, &s.g) || rv(&q, bend, &s.stack)) {
					rc = -1;
					break;
				}
				s.gen = gen;
				if (r->ns == r->cap) {
					r->cap = r->cap ? 2 * r->cap : 1024;
					r->s = realloc(r->s, r->cap * sizeof *r->s);
				}
				r->s[r->ns++] = s;
				raw_gen_note(r, gen, s.time, s.m, 1);
			}
			continue;
		}
		/* Every timed event bounds its generation: the threads' own,
		 * and those the advancer writes for them (statuses of silent
		 * threads and goroutines, owed exits, the filler, stolen Ps).
		 * A status the advancer stamped late is as much a part of the
		 * generation as any other event (Go's readers order by it). */
		uint64_t t = time, tlo = UINT64_MAX, thi = 0, nev = 0;
		while (q < bend) {
			int type = *q++;
			int n = ev_nargs(type);
			if (n < 0) {
				rc = -1;
				break;
			}
			for (int i = 0; i < n; i++) {
				if (rv(&q, bend, &v)) {
					rc = -1;
					break;
				}
				if (i == 0)
					t += v;
			}
			tlo = t < tlo ? t : tlo;
			thi = t > thi ? t : thi;
			nev++;
		}
		if (rc)
			break;
		if (nev) {
			raw_gen_note(r, gen, tlo, m, 0);
			raw_gen_note(r, gen, thi, m, 0);
		}
	}
	free(buf);
	return rc;
}

static inline void raw_free(struct raw *r)
{
	free(r->s);
	free(r->gens);
	memset(r, 0, sizeof *r);
}

/* A sample of generation g is misplaced if its raw time is before the last
 * event of g-1 (the drain of g-1 moves such a sample back into g-1), or
 * past both the end of g's events and the start of g+1's (it belongs to a
 * later generation: where two generations' events overlap in time, a sample
 * in the overlap may stay in g).  Returns -1 (early), 1 (late) or 0. */
static inline int raw_misplaced(const struct raw *r, const struct raw_sample *s)
{
	uint64_t g = s->gen;
	const struct raw_gen *cur = &r->gens[g];
	if (g + 1 <= r->maxgen && r->gens[g + 1].nev) {
		uint64_t lim = r->gens[g + 1].lo > cur->hi ? r->gens[g + 1].lo : cur->hi;
		if (cur->nev && s->time > lim)
			return 1;
	}
	if (g >= 2 && r->gens[g - 1].nev && s->time < r->gens[g - 1].hi)
		return -1;
	return 0;
}

/* --------------------------------------------------------------- commands */

static inline char *run_capture(const char *cmd, int *status)
{
	FILE *f = popen(cmd, "r");
	if (!f)
		return NULL;
	size_t cap = 4096, len = 0;
	char *out = malloc(cap);
	size_t n;
	while ((n = fread(out + len, 1, cap - len - 1, f)) > 0) {
		len += n;
		if (cap - len < 1024) {
			cap *= 2;
			out = realloc(out, cap);
		}
	}
	out[len] = 0;
	*status = pclose(f);
	return out;
}

#endif
