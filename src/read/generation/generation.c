/*
 * generation/generation.c: reading one generation (see generation.h),
 * after Go's internal/trace reader (generation.go, batch.go) so that the
 * same input fails in the same place with the same words.  Calls wire/
 * (uvarints, event table, times) and base/ (maps, growth, errors).
 */
#include "generation/generation.h"
#include "base/error.h"
#include "base/grow.h"
#include "base/map.h"
#include "wire/spec.h"
#include "wire/ticks.h"
#include "wire/varint.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NOMEM(src, genno, off) gtr_seterr((src)->err, GTR_ENOMEM, genno, off, "out of memory")

/* ------------------------------------------------------------ generation */

static void gen_reset(struct gen *g)
{
	memset(&g->pub, 0, sizeof g->pub);
	g->have_freq = false;
	g->freq = 0;
	g->nb = g->ns = g->nk = g->nf = 0;
	gtr_map_clear(&g->smap);
	gtr_map_clear(&g->kmap);
	gtr_map_clear(&g->pcmap);
	gtr_map_clear(&g->mmap);
	g->nevents = g->nsamples = 0;
	g->min_time = UINT64_MAX;
	g->max_time = 0;
	g->nmg = 0;
}

void gen_free(struct gen *g)
{
	free(g->b);
	free(g->s);
	free(g->k);
	free(g->f);
	gtr_map_free(&g->smap);
	gtr_map_free(&g->kmap);
	gtr_map_free(&g->pcmap);
	gtr_map_free(&g->mmap);
	free(g->smp);
	free(g->mg);
	free(g->mb);
	memset(g, 0, sizeof *g);
}

static bool gen_string(const struct gen *g, uint64_t id, const struct strent **out)
{
	if (id == 0) {
		*out = NULL;
		return true;
	}
	const uint32_t *i = gtr_map_get(&g->smap, id);
	if (!i)
		return false;
	*out = &g->s[*i];
	return true;
}

static bool gen_stack(const struct gen *g, uint64_t id, const struct stkent **out)
{
	if (id == 0) {
		*out = NULL;
		return true;
	}
	const uint32_t *i = gtr_map_get(&g->kmap, id);
	if (!i)
		return false;
	*out = &g->k[*i];
	return true;
}

void gen_note_time(struct gen *g, uint64_t t)
{
	if (t < g->min_time)
		g->min_time = t;
	if (t > g->max_time)
		g->max_time = t;
}


/* ---------------------------------------------------------------- batches */

enum { RB_OK = 0, RB_EOF = 1, RB_ERR = -1 };

/* Go's readBatch.  gen_known, genv: whether the gen field was read, and it. */
static int read_batch(struct gtr_batch_src *r, struct gtr_batch *b, struct gtr_error *e,
		      bool *gen_known, uint64_t *genv)
{
	const uint8_t *p = r->buf + r->pos, *end = r->buf + r->len;
	uint64_t start = r->pos;
	*gen_known = false;
	if (p == end)
		return RB_EOF;
	uint8_t typ = *p++;
	memset(b, 0, sizeof *b);
	b->offset = start;
	if (typ != EV_BATCH && typ != EV_EXPBATCH) {
		const char *nm = typ < GTR_NSPECS ? (gtr_specs[typ].name ? gtr_specs[typ].name : "")
						  : NULL;
		if (nm)
			gtr_seterr(e, GTR_EFRAMING, 0, start, "expected batch event, got %s", nm);
		else
			gtr_seterr(e, GTR_EFRAMING, 0, start, "expected batch event, got Invalid(%u)",
				   typ);
		r->pos = (size_t)(p - r->buf);
		return RB_ERR;
	}
	if (typ == EV_EXPBATCH) {
		if (p == end) {
			/* Go returns the bare io.EOF here: its reader takes it for
			 * the end of the trace. */
			gtr_seterr(e, GTR_EFRAMING, 0, start,
				   "error reading experimental batch header: EOF");
			e->go_sees_eof = true;
			r->pos = (size_t)(p - r->buf);
			return RB_ERR;
		}
		b->exp = *p++;
		b->kind = GTR_BATCH_EXPERIMENTAL;
	}
	static const char *const what[4] = { "gen", "M ID", "timestamp", "size" };
	uint64_t v[4];
	for (int i = 0; i < 4; i++) {
		const uint8_t *q = p;
		int rc = gtr_read_uvarint(&p, end, &v[i]);
		if (rc != UV_OK) {
			gtr_seterr(e, GTR_EFRAMING, *gen_known ? v[0] : 0, (uint64_t)(q - r->buf),
				   "error reading batch %s: %s", what[i], gtr_uv_errstr(rc));
			r->pos = (size_t)(p - r->buf);
			return RB_ERR;
		}
		if (i == 0) {
			*gen_known = true;
			*genv = v[0];
		}
	}
	b->gen = v[0];
	b->m = v[1];
	b->time = v[2];
	if (v[3] > GTR_MAX_BATCH_SIZE) {
		gtr_seterr(e, GTR_EFRAMING, v[0], start, "invalid batch size %" PRIu64 ", maximum is %u",
			   v[3], GTR_MAX_BATCH_SIZE);
		r->pos = (size_t)(p - r->buf);
		return RB_ERR;
	}
	size_t avail = (size_t)(end - p);
	if (avail < v[3]) {
		gtr_seterr(e, GTR_EFRAMING, v[0], (uint64_t)(p - r->buf),
			   "failed to read full batch: read %zu but wanted %" PRIu64, avail, v[3]);
		r->pos = r->len;
		return RB_ERR;
	}
	b->data_offset = (uint64_t)(p - r->buf);
	b->size = (uint32_t)v[3];
	r->pos = (size_t)(p - r->buf) + b->size;
	if (typ == EV_BATCH) {
		if (b->size == 0)
			b->kind = GTR_BATCH_EVENTS;
		else
			switch (p[0]) {
			case EV_STRINGS:
				b->kind = GTR_BATCH_STRINGS;
				break;
			case EV_STACKS:
				b->kind = GTR_BATCH_STACKS;
				break;
			case EV_CPUSAMPLES:
				b->kind = GTR_BATCH_CPUSAMPLES;
				break;
			case EV_FREQUENCY:
				b->kind = GTR_BATCH_FREQUENCY;
				break;
			default:
				b->kind = GTR_BATCH_EVENTS;
			}
	}
	return RB_OK;
}

/* ------------------------------------------------------------ table batches */

/* A ReadUvarint error inside a table batch: Go returns it unwrapped, and a
 * bare io.EOF makes its reader stop as if the trace had ended. */
static int table_uv_err(struct gtr_batch_src *r, uint64_t gen, uint64_t off, int rc)
{
	gtr_seterr(r->err, GTR_ETABLE, gen, off, "%s", gtr_uv_errstr(rc));
	if (rc == UV_EOF)
		r->err->go_sees_eof = true;
	return -1;
}

/* The head of a String or Stack event in a table batch (Go's addStrings,
 * addStacks): its type, ID and size (string bytes, frames), at most max.
 * 0, or -1 with *r->err. */
static int table_entry_head(struct gtr_batch_src *r, uint64_t genno, const uint8_t **pp, const uint8_t *end,
			    uint8_t want, const char *what, unsigned max, uint64_t *id, uint64_t *size)
{
	uint64_t evoff = (uint64_t)(*pp - r->buf);
	uint8_t t = *(*pp)++;
	if (t != want) {
		gtr_seterr(r->err, GTR_ETABLE, genno, evoff, "expected %s event, got %u", what, t);
		return -1;
	}
	int rc = gtr_read_uvarint(pp, end, id);
	if (rc)
		return table_uv_err(r, genno, evoff, rc);
	rc = gtr_read_uvarint(pp, end, size);
	if (rc)
		return table_uv_err(r, genno, evoff, rc);
	if (*size > max) {
		gtr_seterr(r->err, GTR_ETABLE, genno, evoff, "invalid %s size %" PRIu64 ", maximum is %u", what,
			   *size, max);
		return -1;
	}
	return 0;
}

static int add_strings(struct gtr_batch_src *r, struct gen *g, uint64_t genno, const struct gtr_batch *b)
{
	const uint8_t *p = r->buf + b->data_offset + 1, *end = r->buf + b->data_offset + b->size;
	while (p < end) {
		uint64_t evoff = (uint64_t)(p - r->buf), id, len;
		if (table_entry_head(r, genno, &p, end, EV_STRING, "string", GTR_MAX_STRING_SIZE, &id, &len) < 0)
			return -1;
		size_t avail = (size_t)(end - p);
		if (avail < len) {
			gtr_seterr(r->err, GTR_ETABLE, genno, evoff,
				   "failed to read full string: read %zu but wanted %" PRIu64, avail, len);
			return -1;
		}
		const struct strent *old;
		if (gen_string(g, id, &old)) {
			const char *os = old ? (const char *)r->buf + old->off : "";
			int ol = old ? (int)old->len : 0;
			char b1[GTR_ERRSTR_CAP], b2[GTR_ERRSTR_CAP];
			gtr_seterr(r->err, GTR_ETABLE, genno, evoff,
				   "multiple strings with the same ID: id=%" PRIu64 ", new=%s, existing=%s", id,
				   gtr_errstr(b1, sizeof b1, p, (size_t)len), gtr_errstr(b2, sizeof b2, os, (size_t)ol));
			return -1;
		}
		if (g->ns >= UINT32_MAX || !gtr_grow((void **)&g->s, &g->caps, g->ns, 1, sizeof *g->s))
			return NOMEM(r, genno, evoff), -1;
		bool added;
		uint32_t *slot = gtr_map_put(&g->smap, id, &added);
		if (!slot)
			return NOMEM(r, genno, evoff), -1;
		*slot = (uint32_t)g->ns;
		g->s[g->ns++] = (struct strent){ id, (uint64_t)(p - r->buf), (uint32_t)len };
		p += len;
	}
	return 0;
}

/* Go's %v of a stack table entry: "\t0x<pc>\n" per frame. */
static size_t fmt_stack(char *out, size_t cap, const struct gen *g, const struct stkent *k)
{
	size_t n = 0;
	if (cap)
		out[0] = 0;
	if (!k)
		return 0;
	for (uint32_t i = 0; i < k->n && n + 24 < cap; i++)
		n += (size_t)snprintf(out + n, cap - n, "\t0x%" PRIx64 "\n", g->f[k->first + i].pc);
	return n;
}

static int add_stacks(struct gtr_batch_src *r, struct gen *g, uint64_t genno, const struct gtr_batch *b)
{
	static const char *const field[4] = { "PC", "funcID", "fileID", "line" };
	const uint8_t *p = r->buf + b->data_offset + 1, *end = r->buf + b->data_offset + b->size;
	while (p < end) {
		uint64_t evoff = (uint64_t)(p - r->buf), id, nframes;
		int rc;
		if (table_entry_head(r, genno, &p, end, EV_STACK, "stack", GTR_MAX_FRAMES, &id, &nframes) < 0)
			return -1;
		if (!gtr_grow((void **)&g->f, &g->capf, g->nf, (size_t)nframes, sizeof *g->f))
			return NOMEM(r, genno, evoff), -1;
		size_t first = g->nf;
		for (uint64_t i = 0; i < nframes; i++) {
			uint64_t v[4];
			for (int j = 0; j < 4; j++) {
				rc = gtr_read_uvarint(&p, end, &v[j]);
				if (rc) {
					g->nf = first;
					gtr_seterr(r->err, GTR_ETABLE, genno, evoff,
						   "reading frame %" PRIu64 "'s %s for stack %" PRIu64 ": %s",
						   i + 1, field[j], id, gtr_uv_errstr(rc));
					return -1;
				}
			}
			/* Frames are keyed by PC for the whole generation: the
			 * first description of a PC wins. */
			bool added;
			uint32_t *slot = gtr_map_put(&g->pcmap, v[0], &added);
			if (!slot)
				return NOMEM(r, genno, evoff), -1;
			if (added) {
				*slot = (uint32_t)g->nf;
				g->f[g->nf] = (struct gtr_frame){ v[0], v[1], v[2], v[3] };
			} else {
				g->f[g->nf] = g->f[*slot];
			}
			g->nf++;
		}
		const struct stkent *old;
		if (gen_stack(g, id, &old)) {
			struct stkent nw = { id, first, (uint32_t)nframes };
			char a[2600], o[2600];
			fmt_stack(a, sizeof a, g, &nw);
			fmt_stack(o, sizeof o, g, old);
			g->nf = first;
			gtr_seterr(r->err, GTR_ETABLE, genno, evoff,
				   "multiple trace.stacks with the same ID: id=%" PRIu64 ", new=%s, existing=%s",
				   id, a, o);
			return -1;
		}
		if (g->nk >= UINT32_MAX || !gtr_grow((void **)&g->k, &g->capk, g->nk, 1, sizeof *g->k))
			return NOMEM(r, genno, evoff), -1;
		bool added;
		uint32_t *slot = gtr_map_put(&g->kmap, id, &added);
		if (!slot)
			return NOMEM(r, genno, evoff), -1;
		*slot = (uint32_t)g->nk;
		g->k[g->nk++] = (struct stkent){ id, first, (uint32_t)nframes };
	}
	return 0;
}

/* Decodes one CPU sample at *p (after the CPUSamples byte); Go's
 * addCPUSamples.  Returns 0, or -1 with r->err-> */
int gen_read_sample(struct gtr_batch_src *r, uint64_t genno, const uint8_t **pp, const uint8_t *end,
		       uint64_t v[5])
{
	uint64_t evoff = (uint64_t)(*pp - r->buf);
	uint8_t t = *(*pp)++;
	if (t != EV_CPUSAMPLE) {
		gtr_seterr(r->err, GTR_ETABLE, genno, evoff, "expected CPU sample event, got %u", t);
		return -1;
	}
	for (int j = 0; j < 5; j++) {
		int rc = gtr_read_uvarint(pp, end, &v[j]);
		if (rc)
			return table_uv_err(r, genno, evoff, rc);
	}
	return 0;
}

static int add_samples(struct gtr_batch_src *r, struct gen *g, uint64_t genno, const struct gtr_batch *b)
{
	const uint8_t *p = r->buf + b->data_offset + 1, *end = r->buf + b->data_offset + b->size;
	while (p < end) {
		uint64_t v[5];
		const uint8_t *q = p;
		if (gen_read_sample(r, genno, &p, end, v) < 0)
			return -1;
		if (!gtr_grow((void **)&g->smp, &g->capsmp, g->nsamples, 1, sizeof *g->smp))
			return NOMEM(r, genno, (uint64_t)(q - r->buf)), -1;
		g->smp[g->nsamples++] = (struct smp){ 0, v[0], v[1], v[2], v[3], v[4], (uint64_t)(q - r->buf),
						      (uint32_t)(p - q) };
		gen_note_time(g, v[0]);
	}
	return 0;
}

static int parse_freq(struct gtr_batch_src *r, struct gen *g, uint64_t genno, const struct gtr_batch *b)
{
	const uint8_t *p = r->buf + b->data_offset + 1, *end = r->buf + b->data_offset + b->size;
	uint64_t f;
	int rc = gtr_read_uvarint(&p, end, &f);
	if (rc)
		return table_uv_err(r, genno, b->data_offset, rc);
	if (g->have_freq) {
		gtr_seterr(r->err, GTR_ETABLE, genno, b->offset, "found multiple frequency events");
		return -1;
	}
	/* Go 1.23 ignores what follows the first event; newer readers take
	 * only Frequency events there (and only one). */
	if (p < end) {
		if (*p == EV_FREQUENCY)
			gtr_seterr(r->err, GTR_ETABLE, genno, (uint64_t)(p - r->buf),
				   "found multiple frequency events");
		else
			gtr_seterr(r->err, GTR_ETABLE, genno, (uint64_t)(p - r->buf),
				   "expected frequency or clock snapshot event, got %u", *p);
		r->err->go123_accepts = true;
		return -1;
	}
	g->have_freq = true;
	g->freq = f;
	return 0;
}

/* Go's processBatch. */
static int process_batch(struct gtr_batch_src *r, struct gen *g, uint64_t genno, const struct gtr_batch *b)
{
	if (!gtr_grow((void **)&g->b, &g->capb, g->nb, 1, sizeof *g->b))
		return NOMEM(r, genno, b->offset), -1;
	g->b[g->nb++] = *b;
	switch (b->kind) {
	case GTR_BATCH_STRINGS:
		return add_strings(r, g, genno, b);
	case GTR_BATCH_STACKS:
		return add_stacks(r, g, genno, b);
	case GTR_BATCH_CPUSAMPLES:
		return add_samples(r, g, genno, b);
	case GTR_BATCH_FREQUENCY:
		return parse_freq(r, g, genno, b);
	case GTR_BATCH_EXPERIMENTAL:
		return 0;
	default: {
		bool added;
		uint32_t *slot = gtr_map_put(&g->mmap, b->m, &added);
		if (!slot || (added && !gtr_grow((void **)&g->mg, &g->capmg, g->nmg, 1, sizeof *g->mg)))
			return NOMEM(r, genno, b->offset), -1;
		if (added) {
			*slot = (uint32_t)g->nmg;
			g->mg[g->nmg++] = (struct mgrp){ b->m, 0, 0 };
		}
		g->mg[*slot].n++;
		return 0;
	}
	}
}

/* ------------------------------------------------------------ events */

/* Go's Event.validateTableIDs (and the stack of a CPU sample, which Go's
 * consumers would fail to look up). */
int gen_check_refs(const struct gen *g, uint64_t genno, uint8_t typ, const uint64_t *args, uint64_t off,
		   struct gtr_error *err)
{
	const struct gtr_spec *s = &gtr_specs[typ];
	if (typ == EV_CPUSAMPLE) {
		const struct stkent *k;
		if (!gen_stack(g, args[3], &k)) {
			gtr_seterr(err, GTR_EREF, genno, off,
				   "found invalid stack ID %" PRIu64 " for event CPUSample", args[3]);
			err->go_panics = true; /* expected id N in trace.stack table */
			return -1;
		}
		return 0;
	}
	for (int j = 0; j < s->nstack; j++) {
		uint64_t id = args[s->stack[j] - 1];
		const struct stkent *k;
		if (!gen_stack(g, id, &k)) {
			gtr_seterr(err, GTR_EREF, genno, off, "found invalid stack ID %" PRIu64 " for event %s", id,
				   s->name);
			return -1;
		}
	}
	for (int j = 0; j < s->nstring; j++) {
		uint64_t id = args[s->string[j] - 1];
		const struct strent *e;
		if (!gen_string(g, id, &e)) {
			gtr_seterr(err, GTR_EREF, genno, off, "found invalid string ID %" PRIu64 " for event %s", id,
				   s->name);
			return -1;
		}
	}
	return 0;
}

/* Every event of every event batch decodes and refers only to strings and
 * stacks of this generation; every CPU sample refers to a known stack. */
static int check_events(struct gtr_batch_src *r, struct gen *g, uint64_t genno)
{
	char msg[128];
	for (size_t i = 0; i < g->nb; i++) {
		const struct gtr_batch *b = &g->b[i];
		const uint8_t *p = r->buf + b->data_offset, *end = p + b->size;
		if (b->kind == GTR_BATCH_CPUSAMPLES) {
			for (p++; p < end;) {
				uint64_t v[5];
				uint64_t off = (uint64_t)(p - r->buf);
				if (gen_read_sample(r, genno, &p, end, v) < 0)
					return -1;
				if (gen_check_refs(g, genno, EV_CPUSAMPLE, v + 1, off, r->err) < 0)
					return -1;
			}
			continue;
		}
		if (b->kind != GTR_BATCH_EVENTS)
			continue;
		uint64_t ts = b->time;
		if (b->size)
			gen_note_time(g, ts);
		while (p < end) {
			uint8_t t, na;
			uint64_t dt, a[4];
			uint64_t off = (uint64_t)(p - r->buf);
			int n = gtr_decode_timed(p, end, &t, &dt, a, &na, msg, sizeof msg);
			if (n < 0) {
				gtr_seterr(r->err, GTR_EEVENT, genno, off, "%s", msg);
				return -1;
			}
			if (gen_check_refs(g, genno, t, a, off, r->err) < 0)
				return -1;
			ts += dt;
			gen_note_time(g, ts);
			g->nevents++;
			p += n;
		}
	}
	return 0;
}

static int cmp_stk(const void *a, const void *b)
{
	uint64_t x = ((const struct stkent *)a)->id, y = ((const struct stkent *)b)->id;
	return x < y ? -1 : x > y;
}

/* Go's validateStackStrings (in ascending stack ID order). */
static int check_stack_strings(struct gtr_batch_src *r, struct gen *g, uint64_t genno)
{
	if (!g->nk)
		return 0;
	struct stkent *sorted = malloc(g->nk * sizeof *sorted);
	if (!sorted)
		return NOMEM(r, genno, 0), -1;
	memcpy(sorted, g->k, g->nk * sizeof *sorted);
	qsort(sorted, g->nk, sizeof *sorted, cmp_stk);
	int rc = 0;
	for (size_t i = 0; i < g->nk && !rc; i++) {
		for (uint32_t j = 0; j < sorted[i].n; j++) {
			const struct gtr_frame *f = &g->f[sorted[i].first + j];
			const struct strent *e;
			if (!gen_string(g, f->func, &e)) {
				gtr_seterr(r->err, GTR_EREF, genno, g->pub.end,
					   "found invalid func string ID %" PRIu64 " for stack %" PRIu64,
					   f->func, sorted[i].id);
				rc = -1;
				break;
			}
			if (!gen_string(g, f->file, &e)) {
				gtr_seterr(r->err, GTR_EREF, genno, g->pub.end,
					   "found invalid file string ID %" PRIu64 " for stack %" PRIu64,
					   f->file, sorted[i].id);
				rc = -1;
				break;
			}
		}
	}
	free(sorted);
	return rc;
}

/* Stable merge sort of the CPU samples by time (bottom-up). */
static int sort_samples(struct gen *g)
{
	size_t n = g->nsamples;
	if (n < 2)
		return 0;
	struct smp *tmp = malloc(n * sizeof *tmp), *a = g->smp, *b = tmp;
	if (!tmp)
		return -1;
	for (size_t w = 1; w < n; w *= 2) {
		for (size_t lo = 0; lo < n; lo += 2 * w) {
			size_t mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n;
			size_t i = lo, j = mid, k = lo;
			while (i < mid && j < hi)
				b[k++] = a[j].time < a[i].time ? a[j++] : a[i++];
			while (i < mid)
				b[k++] = a[i++];
			while (j < hi)
				b[k++] = a[j++];
		}
		struct smp *t = a;
		a = b;
		b = t;
	}
	if (a != g->smp)
		memcpy(g->smp, a, n * sizeof *a);
	free(tmp);
	return 0;
}

/* Go's readGeneration, plus the checks Go makes while delivering events. */
int gen_read(struct gen *g, struct gtr_batch_src *r)
{
	gen_reset(g);
	g->buf = r->buf;
	uint64_t cur = 0;
	g->pub.begin = r->pos;
	if (r->have_spill) {
		r->have_spill = false;
		cur = r->spill.gen;
		g->pub.begin = r->spill.offset;
		if (process_batch(r, g, cur, &r->spill) < 0)
			return -1;
	}
	for (;;) {
		uint64_t off = r->pos;
		struct gtr_batch b;
		struct gtr_error e;
		bool gk;
		uint64_t gv = 0;
		int rc = read_batch(r, &b, &e, &gk, &gv);
		if (rc == RB_EOF) {
			g->pub.end = off;
			break;
		}
		bool lenient = false;
		if (rc == RB_OK && b.gen == 0) {
			gtr_seterr(&e, GTR_EFRAMING, 0, off, "invalid generation number 0");
			lenient = true;
		} else if (rc == RB_OK && cur != 0 && b.gen != cur && b.gen != cur + 1) {
			gtr_seterr(&e, GTR_EFRAMING, b.gen, off, "generations out of order");
			lenient = true;
		}
		if (rc == RB_ERR || lenient) {
			if (cur != 0 && (rc == RB_ERR || r->lenient_gen_order)) {
				/* Possibly the first batch of the next generation:
				 * deliver this one first. */
				e.deferred = true;
				e.cuts_previous = rc == RB_ERR && gk && gv == cur;
				if (!e.gen)
					e.gen = cur;
				r->spill_err = e;
				r->have_spill_err = true;
				g->pub.end = off;
				break;
			}
			if (rc == RB_ERR && e.go_sees_eof) {
				/* Go stops reading here as at a clean end. */
				g->pub.end = off;
				r->pos = off;
				break;
			}
			*r->err = e;
			return -1;
		}
		if (cur == 0)
			cur = b.gen;
		if (b.gen == cur + 1) {
			r->spill = b;
			r->have_spill = true;
			g->pub.end = off;
			break;
		}
		if (process_batch(r, g, cur, &b) < 0)
			return -1;
	}
	if (!g->have_freq) {
		gtr_seterr(r->err, GTR_ETABLE, cur, g->pub.end, "no frequency event found");
		return -1;
	}
	if (check_stack_strings(r, g, cur) < 0)
		return -1;
	struct gtr_generation *pub = &g->pub;
	pub->gen = cur;
	pub->freq = g->freq;
	pub->ns_per_tick = 1.0 / ((double)g->freq / 1e9);
	if (r->wire_order) {
		/* everything Go checks while delivering, up front */
		if (check_events(r, g, cur) < 0)
			return -1;
		if (g->nevents == 0 && g->nsamples == 0) {
			gtr_seterr(r->err, GTR_EEMPTY, cur, g->pub.begin,
				   "broken trace: frontier is empty:\n[gen=%" PRIu64
				   "]\n(a generation without events: Go 1.23's reader rejects it)",
				   cur);
			return -1;
		}
		pub->nevents = g->nevents;
	} else {
		/* Go's order: sample times converted and sorted (stably);
		 * event batches grouped by thread. */
		for (size_t i = 0; i < g->nsamples; i++)
			g->smp[i].time = gtr_ticks_to_ns(g->smp[i].ts, pub->ns_per_tick);
		if (sort_samples(g) < 0)
			return NOMEM(r, cur, g->pub.begin), -1;
		size_t nb = 0;
		for (size_t i = 0; i < g->nmg; i++) {
			g->mg[i].first = nb;
			nb += g->mg[i].n;
			g->mg[i].n = 0;
		}
		if (!gtr_grow((void **)&g->mb, &g->capmb, 0, nb ? nb : 1, sizeof *g->mb))
			return NOMEM(r, cur, g->pub.begin), -1;
		for (size_t i = 0; i < g->nb; i++) {
			if (g->b[i].kind != GTR_BATCH_EVENTS)
				continue;
			struct mgrp *mg = &g->mg[*gtr_map_get(&g->mmap, g->b[i].m)];
			g->mb[mg->first + mg->n++] = i;
		}
		pub->nevents = 0;
	}
	pub->nbatches = g->nb;
	pub->batches = g->b;
	pub->nsamples = g->nsamples;
	pub->nstrings = g->ns;
	pub->nstacks = g->nk;
	pub->nframes = g->nf;
	pub->string_bytes = 0;
	for (size_t i = 0; i < g->ns; i++)
		pub->string_bytes += g->s[i].len;
	pub->nthreads = g->nmg;
	pub->min_time = g->min_time == UINT64_MAX ? 0 : g->min_time;
	pub->max_time = g->max_time;
	pub->priv = g;
	return 0;
}

/* ------------------------------------------------------------ public lookups */

bool gtr_string(const struct gtr_generation *gp, uint64_t id, const char **s, size_t *len)
{
	const struct gen *g = gp->priv;
	const struct strent *e;
	if (!gen_string(g, id, &e))
		return false;
	if (!e) {
		*s = "";
		*len = 0;
		return true;
	}
	*s = (const char *)g->buf + e->off;
	*len = e->len;
	return true;
}

bool gtr_stack(const struct gtr_generation *gp, uint64_t id, const struct gtr_frame **frames,
	       size_t *nframes)
{
	const struct gen *g = gp->priv;
	const struct stkent *k;
	if (!gen_stack(g, id, &k))
		return false;
	if (!k) {
		*frames = NULL;
		*nframes = 0;
		return true;
	}
	*frames = g->f + k->first;
	*nframes = k->n;
	return true;
}
