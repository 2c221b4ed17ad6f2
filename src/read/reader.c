/*
 * reader.c: generations, batches, tables and the broken-tail policy.
 *
 * The structure follows Go's internal/trace reader (reader.go,
 * generation.go, batch.go) closely, so that the same input fails in the same
 * place with the same words: readGeneration reads batches until the first
 * batch of the next generation (the "spill") or the end; a read error after
 * the generation's first batch is kept back (the "spill error") and returned
 * only after the generation has been delivered.  Events are then delivered
 * as Go's Reader.ReadEvent does (a min-heap of per-thread cursors by time,
 * the ordering rules of order.c, CPU samples merged by time, references
 * checked and times clamped on delivery); or, with wire_order, batch by
 * batch after checking every event and reference up front.
 */
#include "internal.h"
#include "order.h"
#include "validate.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct strent {
	uint64_t id;
	uint64_t off; /* of the bytes in the input */
	uint32_t len;
};

struct stkent {
	uint64_t id;
	size_t first; /* index in gen.frames */
	uint32_t n;
};

struct gen {
	struct gtr_generation pub;
	const uint8_t *buf; /* the input */
	bool have_freq;
	uint64_t freq;
	struct gtr_batch *b;
	size_t nb, capb;
	struct strent *s;
	size_t ns, caps;
	struct gtr_map smap; /* id -> index in s */
	struct stkent *k;
	size_t nk, capk;
	struct gtr_map kmap;   /* id -> index in k */
	struct gtr_frame *f;   /* frames of all stacks, resolved by PC */
	size_t nf, capf;
	struct gtr_map pcmap;  /* pc -> index in f of its first-seen frame */
	struct gtr_map mmap;   /* thread of event batches -> index in mg */
	size_t nevents, nsamples;
	uint64_t min_time, max_time;
	struct smp {
		int64_t time;
		uint64_t ts, m, p, g, stack, off;
		uint32_t size;
	} *smp; /* CPU samples (ordered mode: sorted by time) */
	size_t capsmp;
	struct mgrp {
		uint64_t m;
		size_t first, n; /* in mb */
	} *mg; /* event batches by thread, threads in order of appearance */
	size_t nmg, capmg;
	size_t *mb, capmb;
};

/* A thread's position in its event batches (Go's batchCursor). */
struct cursor {
	uint64_t m;
	size_t grp, idx;
	uint64_t off;
	int64_t last;
	uint64_t raw;
	struct ord_ev ev;
};

enum { ST_START, ST_IN_GEN, ST_SYNC, ST_AFTER_GEN, ST_DONE, ST_FAILED };

struct gtr_reader {
	const uint8_t *buf;
	size_t len;
	unsigned version;
	size_t hdrlen;
	struct gtr_options opt;
	size_t pos; /* next batch */
	bool have_spill;
	struct gtr_batch spill;
	bool have_spill_err;
	struct gtr_error spill_err;
	struct gen g;
	int state;
	struct gtr_error err;
	bool have_gen;
	/* wire order: cursor in the current generation */
	size_t cb;
	bool in_batch;
	uint64_t coff;
	int64_t last_ns;
	uint64_t cur_ts;
	int64_t max_ns;
	/* Go's order */
	struct gtr_ord *ord;
	struct gtr_val *val;
	struct cursor *cur;
	size_t capcur;
	size_t *heap, nheap, capheap;
	size_t *heaptmp, capheaptmp;
	size_t nextsmp;
	bool emitted_sync;
	int64_t last_ts; /* Go's Reader.lastTs */
};

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

static void gen_free(struct gen *g)
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

static void note_time(struct gen *g, uint64_t t)
{
	if (t < g->min_time)
		g->min_time = t;
	if (t > g->max_time)
		g->max_time = t;
}

#define NOMEM(r, genno, off) gtr_seterr(&(r)->err, GTR_ENOMEM, genno, off, "out of memory")

/* ---------------------------------------------------------------- batches */

enum { RB_OK = 0, RB_EOF = 1, RB_ERR = -1 };

/* Go's readBatch.  gen_known, genv: whether the gen field was read, and it. */
static int read_batch(struct gtr_reader *r, struct gtr_batch *b, struct gtr_error *e,
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
static int table_uv_err(struct gtr_reader *r, uint64_t gen, uint64_t off, int rc)
{
	gtr_seterr(&r->err, GTR_ETABLE, gen, off, "%s", gtr_uv_errstr(rc));
	if (rc == UV_EOF)
		r->err.go_sees_eof = true;
	return -1;
}

static int add_strings(struct gtr_reader *r, struct gen *g, uint64_t genno, const struct gtr_batch *b)
{
	const uint8_t *p = r->buf + b->data_offset + 1, *end = r->buf + b->data_offset + b->size;
	while (p < end) {
		uint64_t evoff = (uint64_t)(p - r->buf);
		uint8_t t = *p++;
		if (t != EV_STRING) {
			gtr_seterr(&r->err, GTR_ETABLE, genno, evoff, "expected string event, got %u", t);
			return -1;
		}
		uint64_t id, len;
		int rc = gtr_read_uvarint(&p, end, &id);
		if (rc)
			return table_uv_err(r, genno, evoff, rc);
		rc = gtr_read_uvarint(&p, end, &len);
		if (rc)
			return table_uv_err(r, genno, evoff, rc);
		if (len > GTR_MAX_STRING_SIZE) {
			gtr_seterr(&r->err, GTR_ETABLE, genno, evoff,
				   "invalid string size %" PRIu64 ", maximum is %u", len, GTR_MAX_STRING_SIZE);
			return -1;
		}
		size_t avail = (size_t)(end - p);
		if (avail < len) {
			gtr_seterr(&r->err, GTR_ETABLE, genno, evoff,
				   "failed to read full string: read %zu but wanted %" PRIu64, avail, len);
			return -1;
		}
		const struct strent *old;
		if (gen_string(g, id, &old)) {
			const char *os = old ? (const char *)r->buf + old->off : "";
			int ol = old ? (int)old->len : 0;
			gtr_seterr(&r->err, GTR_ETABLE, genno, evoff,
				   "multiple strings with the same ID: id=%" PRIu64 ", new=%.*s, existing=%.*s",
				   id, (int)len, (const char *)p, ol, os);
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

static int add_stacks(struct gtr_reader *r, struct gen *g, uint64_t genno, const struct gtr_batch *b)
{
	static const char *const field[4] = { "PC", "funcID", "fileID", "line" };
	const uint8_t *p = r->buf + b->data_offset + 1, *end = r->buf + b->data_offset + b->size;
	while (p < end) {
		uint64_t evoff = (uint64_t)(p - r->buf);
		uint8_t t = *p++;
		if (t != EV_STACK) {
			gtr_seterr(&r->err, GTR_ETABLE, genno, evoff, "expected stack event, got %u", t);
			return -1;
		}
		uint64_t id, nframes;
		int rc = gtr_read_uvarint(&p, end, &id);
		if (rc)
			return table_uv_err(r, genno, evoff, rc);
		rc = gtr_read_uvarint(&p, end, &nframes);
		if (rc)
			return table_uv_err(r, genno, evoff, rc);
		if (nframes > GTR_MAX_FRAMES) {
			gtr_seterr(&r->err, GTR_ETABLE, genno, evoff,
				   "invalid stack size %" PRIu64 ", maximum is %u", nframes, GTR_MAX_FRAMES);
			return -1;
		}
		if (!gtr_grow((void **)&g->f, &g->capf, g->nf, (size_t)nframes, sizeof *g->f))
			return NOMEM(r, genno, evoff), -1;
		size_t first = g->nf;
		for (uint64_t i = 0; i < nframes; i++) {
			uint64_t v[4];
			for (int j = 0; j < 4; j++) {
				rc = gtr_read_uvarint(&p, end, &v[j]);
				if (rc) {
					g->nf = first;
					gtr_seterr(&r->err, GTR_ETABLE, genno, evoff,
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
			gtr_seterr(&r->err, GTR_ETABLE, genno, evoff,
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
 * addCPUSamples.  Returns 0, or -1 with r->err. */
static int read_sample(struct gtr_reader *r, uint64_t genno, const uint8_t **pp, const uint8_t *end,
		       uint64_t v[5])
{
	uint64_t evoff = (uint64_t)(*pp - r->buf);
	uint8_t t = *(*pp)++;
	if (t != EV_CPUSAMPLE) {
		gtr_seterr(&r->err, GTR_ETABLE, genno, evoff, "expected CPU sample event, got %u", t);
		return -1;
	}
	for (int j = 0; j < 5; j++) {
		int rc = gtr_read_uvarint(pp, end, &v[j]);
		if (rc)
			return table_uv_err(r, genno, evoff, rc);
	}
	return 0;
}

static int add_samples(struct gtr_reader *r, struct gen *g, uint64_t genno, const struct gtr_batch *b)
{
	const uint8_t *p = r->buf + b->data_offset + 1, *end = r->buf + b->data_offset + b->size;
	while (p < end) {
		uint64_t v[5];
		const uint8_t *q = p;
		if (read_sample(r, genno, &p, end, v) < 0)
			return -1;
		if (!gtr_grow((void **)&g->smp, &g->capsmp, g->nsamples, 1, sizeof *g->smp))
			return NOMEM(r, genno, (uint64_t)(q - r->buf)), -1;
		g->smp[g->nsamples++] = (struct smp){ 0, v[0], v[1], v[2], v[3], v[4], (uint64_t)(q - r->buf),
						      (uint32_t)(p - q) };
		note_time(g, v[0]);
	}
	return 0;
}

static int parse_freq(struct gtr_reader *r, struct gen *g, uint64_t genno, const struct gtr_batch *b)
{
	const uint8_t *p = r->buf + b->data_offset + 1, *end = r->buf + b->data_offset + b->size;
	uint64_t f;
	int rc = gtr_read_uvarint(&p, end, &f);
	if (rc)
		return table_uv_err(r, genno, b->data_offset, rc);
	if (g->have_freq) {
		gtr_seterr(&r->err, GTR_ETABLE, genno, b->offset, "found multiple frequency events");
		return -1;
	}
	/* Go 1.23 ignores what follows the first event; newer readers take
	 * only Frequency events there (and only one). */
	if (p < end) {
		if (*p == EV_FREQUENCY)
			gtr_seterr(&r->err, GTR_ETABLE, genno, (uint64_t)(p - r->buf),
				   "found multiple frequency events");
		else
			gtr_seterr(&r->err, GTR_ETABLE, genno, (uint64_t)(p - r->buf),
				   "expected frequency or clock snapshot event, got %u", *p);
		r->err.go123_accepts = true;
		return -1;
	}
	g->have_freq = true;
	g->freq = f;
	return 0;
}

/* Go's processBatch. */
static int process_batch(struct gtr_reader *r, struct gen *g, uint64_t genno, const struct gtr_batch *b)
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

/* Go's readTimedBaseEvent on [p, end) (p < end).  Returns the encoded size,
 * or -1 with *msg set. */
static int decode_timed(const uint8_t *p, const uint8_t *end, uint8_t *type, uint64_t *dt,
			uint64_t args[4], uint8_t *nargs, char *msg, size_t msgcap)
{
	uint8_t t = p[0];
	if (t >= GTR_NSPECS) {
		snprintf(msg, msgcap, "found invalid event type: %u", t);
		return -1;
	}
	const struct gtr_spec *s = &gtr_specs[t];
	if (s->nargs == 0 || !(s->flags & GTR_SPEC_TIMED)) {
		snprintf(msg, msgcap, "found event without a timestamp: type=%u", t);
		return -1;
	}
	int n = 1;
	int nb = gtr_uvarint_slice(p + n, end, dt);
	if (nb <= 0) {
		snprintf(msg, msgcap, "found invalid uvarint for timestamp");
		return -1;
	}
	n += nb;
	for (int i = 0; i < s->nargs - 1; i++) {
		nb = gtr_uvarint_slice(p + n, end, &args[i]);
		if (nb <= 0) {
			snprintf(msg, msgcap, "found invalid uvarint");
			return -1;
		}
		n += nb;
	}
	*type = t;
	*nargs = (uint8_t)(s->nargs - 1);
	return n;
}

/* Every event of every event batch decodes and refers only to strings and
 * stacks of this generation; every CPU sample refers to a known stack. */
static int check_events(struct gtr_reader *r, struct gen *g, uint64_t genno)
{
	char msg[128];
	for (size_t i = 0; i < g->nb; i++) {
		const struct gtr_batch *b = &g->b[i];
		const uint8_t *p = r->buf + b->data_offset, *end = p + b->size;
		if (b->kind == GTR_BATCH_CPUSAMPLES) {
			for (p++; p < end;) {
				uint64_t v[5];
				uint64_t off = (uint64_t)(p - r->buf);
				if (read_sample(r, genno, &p, end, v) < 0)
					return -1;
				const struct stkent *k;
				if (!gen_stack(g, v[4], &k)) {
					gtr_seterr(&r->err, GTR_EREF, genno, off,
						   "found invalid stack ID %" PRIu64 " for event CPUSample", v[4]);
					r->err.go_panics = true;
					return -1;
				}
			}
			continue;
		}
		if (b->kind != GTR_BATCH_EVENTS)
			continue;
		uint64_t ts = b->time;
		if (b->size)
			note_time(g, ts);
		while (p < end) {
			uint8_t t, na;
			uint64_t dt, a[4];
			uint64_t off = (uint64_t)(p - r->buf);
			int n = decode_timed(p, end, &t, &dt, a, &na, msg, sizeof msg);
			if (n < 0) {
				gtr_seterr(&r->err, GTR_EEVENT, genno, off, "%s", msg);
				return -1;
			}
			const struct gtr_spec *s = &gtr_specs[t];
			for (int j = 0; j < s->nstack; j++) {
				uint64_t id = a[s->stack[j] - 1];
				const struct stkent *k;
				if (!gen_stack(g, id, &k)) {
					gtr_seterr(&r->err, GTR_EREF, genno, off,
						   "found invalid stack ID %" PRIu64 " for event %s", id, s->name);
					return -1;
				}
			}
			for (int j = 0; j < s->nstring; j++) {
				uint64_t id = a[s->string[j] - 1];
				const struct strent *e;
				if (!gen_string(g, id, &e)) {
					gtr_seterr(&r->err, GTR_EREF, genno, off,
						   "found invalid string ID %" PRIu64 " for event %s", id, s->name);
					return -1;
				}
			}
			ts += dt;
			note_time(g, ts);
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
static int check_stack_strings(struct gtr_reader *r, struct gen *g, uint64_t genno)
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
				gtr_seterr(&r->err, GTR_EREF, genno, g->pub.end,
					   "found invalid func string ID %" PRIu64 " for stack %" PRIu64,
					   f->func, sorted[i].id);
				rc = -1;
				break;
			}
			if (!gen_string(g, f->file, &e)) {
				gtr_seterr(&r->err, GTR_EREF, genno, g->pub.end,
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
static int read_generation(struct gtr_reader *r)
{
	struct gen *g = &r->g;
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
			if (cur != 0 && (rc == RB_ERR || r->opt.lenient_gen_order)) {
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
			r->err = e;
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
		gtr_seterr(&r->err, GTR_ETABLE, cur, g->pub.end, "no frequency event found");
		return -1;
	}
	if (check_stack_strings(r, g, cur) < 0)
		return -1;
	struct gtr_generation *pub = &g->pub;
	pub->gen = cur;
	pub->freq = g->freq;
	pub->ns_per_tick = 1.0 / ((double)g->freq / 1e9);
	if (r->opt.wire_order) {
		/* everything Go checks while delivering, up front */
		if (check_events(r, g, cur) < 0)
			return -1;
		if (g->nevents == 0 && g->nsamples == 0) {
			gtr_seterr(&r->err, GTR_EEMPTY, cur, g->pub.begin,
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

/* ------------------------------------------------------------ Go's order */

/* Go's batchCursor.nextEvent: 1 (c->ev read), 0 (no more), -1 (error). */
static int cursor_next(struct gtr_reader *r, struct cursor *c)
{
	struct gen *g = &r->g;
	const struct mgrp *mg = &g->mg[c->grp];
	while (c->idx < mg->n && g->b[g->mb[mg->first + c->idx]].size == c->off) {
		c->idx++;
		c->off = 0;
		c->last = 0;
	}
	if (c->idx == mg->n)
		return 0;
	const struct gtr_batch *b = &g->b[g->mb[mg->first + c->idx]];
	if (c->last == 0)
		c->last = gtr_ticks_to_ns(b->time, g->pub.ns_per_tick);
	if (c->off == 0)
		c->raw = b->time;
	const uint8_t *p = r->buf + b->data_offset + c->off, *end = r->buf + b->data_offset + b->size;
	char msg[96];
	uint64_t dt;
	memset(&c->ev, 0, sizeof c->ev);
	int n = decode_timed(p, end, &c->ev.typ, &dt, c->ev.args, &(uint8_t){ 0 }, msg, sizeof msg);
	if (n < 0) {
		gtr_seterr(&r->err, GTR_EEVENT, g->pub.gen, (uint64_t)(p - r->buf), "%s", msg);
		return -1;
	}
	c->ev.time = (int64_t)((uint64_t)gtr_ticks_to_ns(dt, g->pub.ns_per_tick) + (uint64_t)c->last);
	c->last = c->ev.time;
	c->raw += dt;
	c->ev.ts = c->raw;
	c->ev.off = (uint64_t)(p - r->buf);
	c->ev.size = (uint32_t)n;
	c->off += (uint64_t)n;
	return 1;
}

/* Go's min-heap of cursors by the time of their next event, operation for
 * operation (ties resolve the same way). */
static int64_t htime(const struct gtr_reader *r, size_t i)
{
	return r->cur[r->heap[i]].ev.time;
}

static void hswap(struct gtr_reader *r, size_t a, size_t b)
{
	size_t t = r->heap[a];
	r->heap[a] = r->heap[b];
	r->heap[b] = t;
}

static size_t sift_up(struct gtr_reader *r, size_t i)
{
	while (i > 0 && htime(r, (i - 1) / 2) > htime(r, i)) {
		hswap(r, (i - 1) / 2, i);
		i = (i - 1) / 2;
	}
	return i;
}

static void sift_down(struct gtr_reader *r, size_t i)
{
	for (;;) {
		size_t m = i, l = 2 * i + 1, rr = 2 * i + 2;
		int64_t mt = i < r->nheap ? htime(r, i) : INT64_MAX;
		if (l < r->nheap && htime(r, l) < mt) {
			mt = htime(r, l);
			m = l;
		}
		if (rr < r->nheap && htime(r, rr) < mt)
			m = rr;
		if (m == i)
			break;
		hswap(r, i, m);
		i = m;
	}
}

static void heap_remove(struct gtr_reader *r, size_t i)
{
	while (i > 0) {
		hswap(r, (i - 1) / 2, i);
		i = (i - 1) / 2;
	}
	hswap(r, 0, r->nheap - 1);
	r->nheap--;
	sift_down(r, 0);
}

static bool str_cb(const void *ctx, uint64_t id, const uint8_t **s, size_t *len)
{
	const struct gen *g = ctx;
	const struct strent *e;
	if (!gen_string(g, id, &e))
		return false;
	*s = e ? g->buf + e->off : (const uint8_t *)"";
	*len = e ? e->len : 0;
	return true;
}

static void order_error(struct gtr_reader *r, const char *what)
{
	struct gen *g = &r->g;
	char *m = r->err.msg;
	size_t cap = sizeof r->err.msg, n;
	gtr_seterr(&r->err, GTR_EORDER, g->pub.gen, 0, "broken trace: %s:\n[gen=%" PRIu64 "]\n\n", what,
		   g->pub.gen);
	if (r->nheap)
		r->err.offset = r->cur[r->heap[0]].ev.off;
	n = strlen(m);
	for (size_t i = 0; i < r->nheap && n + 64 < cap; i++) {
		const struct cursor *c = &r->cur[r->heap[i]];
		const struct gtr_spec *s = &gtr_specs[c->ev.typ];
		n += (size_t)snprintf(m + n, cap - n, "M %" PRId64 " [%s time=%" PRId64, (int64_t)c->m,
				      s->name ? s->name : "", c->ev.time);
		for (int j = 1; j < s->nargs && n + 32 < cap; j++)
			n += (size_t)snprintf(m + n, cap - n, " %s=%" PRIu64, s->args[j], c->ev.args[j - 1]);
		n += (size_t)snprintf(m + n, cap - n, "]\n");
	}
	if (n + 2 < cap) {
		m[n++] = '\n';
		m[n] = 0;
		n += ord_dump(r->ord, m + n, cap - n);
	}
}

/* Sorts the frontier by time, stably (Go's slices.SortFunc is an insertion
 * sort, so stable, up to 12 threads), bottom-up merge sort. */
static void sort_frontier(struct gtr_reader *r)
{
	size_t n = r->nheap;
	if (n < 2)
		return;
	size_t *a = r->heap, *b = r->heaptmp;
	for (size_t w = 1; w < n; w *= 2) {
		for (size_t lo = 0; lo < n; lo += 2 * w) {
			size_t mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n;
			size_t i = lo, j = mid, k = lo;
			while (i < mid && j < hi)
				b[k++] = r->cur[a[j]].ev.time < r->cur[a[i]].ev.time ? a[j++] : a[i++];
			while (i < mid)
				b[k++] = a[i++];
			while (j < hi)
				b[k++] = a[j++];
		}
		size_t *t = a;
		a = b;
		b = t;
	}
	if (a != r->heap)
		memcpy(r->heap, a, n * sizeof *a);
}

/* Go's tryAdvance: 1 advanced, 0 not now, -1 error. */
static int try_advance(struct gtr_reader *r, size_t i)
{
	struct cursor *c = &r->cur[r->heap[i]];
	bool nomem;
	char msg[1024];
	int rc = ord_advance(r->ord, &c->ev, str_cb, &r->g, c->m, r->g.pub.gen, msg, sizeof msg, &nomem);
	if (rc < 0) {
		if (nomem)
			NOMEM(r, r->g.pub.gen, c->ev.off);
		else
			gtr_seterr(&r->err, GTR_EORDER, r->g.pub.gen, c->ev.off, "%s", msg);
		return -1;
	}
	if (rc == 0)
		return 0;
	rc = cursor_next(r, c);
	if (rc < 0)
		return -1;
	if (rc == 1) {
		if (sift_up(r, i) == i)
			sift_down(r, i);
	} else {
		heap_remove(r, i);
	}
	return 1;
}

/* Sets up the frontier of a freshly read generation (Go: in ReadEvent). */
static int start_frontier(struct gtr_reader *r)
{
	struct gen *g = &r->g;
	if (!gtr_grow((void **)&r->cur, &r->capcur, 0, g->nmg ? g->nmg : 1, sizeof *r->cur) ||
	    !gtr_grow((void **)&r->heap, &r->capheap, 0, g->nmg ? g->nmg : 1, sizeof *r->heap) ||
	    !gtr_grow((void **)&r->heaptmp, &r->capheaptmp, 0, g->nmg ? g->nmg : 1, sizeof *r->heaptmp))
		return NOMEM(r, g->pub.gen, g->pub.begin), -1;
	r->nheap = 0;
	r->nextsmp = 0;
	for (size_t i = 0; i < g->nmg; i++) {
		struct cursor *c = &r->cur[i];
		memset(c, 0, sizeof *c);
		c->m = g->mg[i].m;
		c->grp = i;
		int rc = cursor_next(r, c);
		if (rc < 0)
			return -1;
		if (rc == 0)
			continue;
		r->heap[r->nheap++] = i;
		sift_up(r, r->nheap - 1);
	}
	return 0;
}

/* Go's Event.validateTableIDs (and the stack of a CPU sample, which Go's
 * consumers would fail to look up). */
static int check_refs(struct gtr_reader *r, uint8_t typ, const uint64_t *args, uint64_t off)
{
	struct gen *g = &r->g;
	const struct gtr_spec *s = &gtr_specs[typ];
	if (typ == EV_CPUSAMPLE) {
		const struct stkent *k;
		if (!gen_stack(g, args[3], &k)) {
			gtr_seterr(&r->err, GTR_EREF, g->pub.gen, off,
				   "found invalid stack ID %" PRIu64 " for event CPUSample", args[3]);
			r->err.go_panics = true; /* expected id N in trace.stack table */
			return -1;
		}
		return 0;
	}
	for (int j = 0; j < s->nstack; j++) {
		uint64_t id = args[s->stack[j] - 1];
		const struct stkent *k;
		if (!gen_stack(g, id, &k)) {
			gtr_seterr(&r->err, GTR_EREF, g->pub.gen, off,
				   "found invalid stack ID %" PRIu64 " for event %s", id, s->name);
			return -1;
		}
	}
	for (int j = 0; j < s->nstring; j++) {
		uint64_t id = args[s->string[j] - 1];
		const struct strent *e;
		if (!gen_string(g, id, &e)) {
			gtr_seterr(&r->err, GTR_EREF, g->pub.gen, off,
				   "found invalid string ID %" PRIu64 " for event %s", id, s->name);
			return -1;
		}
	}
	return 0;
}

/* Go's deferred part of ReadEvent: references, then strictly increasing
 * time; then Go's validator. */
static int deliver(struct gtr_reader *r, struct gtr_event *ev)
{
	if (ev->type != GTR_EV_SYNC && check_refs(r, ev->type, ev->args, ev->offset) < 0)
		return -1;
	if (ev->time_ns <= r->last_ts)
		ev->time_ns = (int64_t)((uint64_t)r->last_ts + 1);
	r->last_ts = ev->time_ns;
	if (r->val) {
		char msg[sizeof r->err.msg];
		bool panics, nomem, go123;
		if (val_event(r->val, r->ord, ev, &r->g.pub, msg, sizeof msg, &panics, &nomem, &go123) < 0) {
			if (nomem) {
				NOMEM(r, r->g.pub.gen, ev->offset);
			} else {
				gtr_seterr(&r->err, GTR_EVALID, r->g.pub.gen, ev->offset, "%s", msg);
				r->err.go_panics = panics;
				r->err.go123_accepts = go123;
			}
			return -1;
		}
	}
	if (ev->type != GTR_EV_SYNC) {
		if (ev->type != GTR_EV_CPUSAMPLE)
			r->g.pub.nevents++;
	}
	return 0;
}

static uint64_t ctxid(int64_t v)
{
	return (uint64_t)v;
}

static int fail(struct gtr_reader *r)
{
	r->state = ST_FAILED;
	return GTR_ERR;
}

/* Go's Reader.ReadEvent. */
static int next_ordered(struct gtr_reader *r, struct gtr_event *ev)
{
	struct gen *g = &r->g;
	struct ord_out out;
	memset(ev, 0, sizeof *ev);
	if (!ord_next(r->ord, &out)) {
		if (r->nheap == 0 && r->nextsmp == g->nsamples) {
			if (!r->emitted_sync) {
				r->emitted_sync = true;
				ev->type = GTR_EV_SYNC;
				ev->gen = g->pub.gen;
				ev->m = ev->p = ev->g = ev->thread = GTR_NONE;
				ev->time_ns = r->last_ts;
				ev->offset = g->pub.end;
				deliver(r, ev);
				return GTR_OK;
			}
			if (r->have_spill_err) {
				r->err = r->spill_err;
				return fail(r);
			}
			if (r->have_gen && !r->have_spill) {
				r->state = ST_DONE;
				return GTR_END;
			}
			if (read_generation(r) < 0)
				return fail(r);
			r->have_gen = true;
			if (start_frontier(r) < 0)
				return fail(r);
			r->emitted_sync = false;
		}
		if (r->nextsmp < g->nsamples &&
		    (r->nheap == 0 || g->smp[r->nextsmp].time < htime(r, 0))) {
			const struct smp *s = &g->smp[r->nextsmp++];
			ev->type = GTR_EV_CPUSAMPLE;
			ev->nargs = 4;
			ev->gen = g->pub.gen;
			ev->m = ev->thread = s->m;
			ev->p = s->p;
			ev->g = s->g ? s->g : GTR_NONE;
			ev->ts = s->ts;
			ev->time_ns = s->time;
			ev->args[0] = s->m;
			ev->args[1] = s->p;
			ev->args[2] = s->g;
			ev->args[3] = s->stack;
			ev->offset = s->off;
			ev->size = s->size;
			if (deliver(r, ev) < 0)
				return fail(r);
			note_time(g, s->ts);
			return GTR_OK;
		}
		if (r->nheap == 0) {
			order_error(r, "frontier is empty");
			r->err.kind = GTR_EEMPTY;
			return fail(r);
		}
		int rc = try_advance(r, 0);
		if (rc < 0)
			return fail(r);
		if (rc == 0) {
			/* sort the heap by time (stably; still a heap) and
			 * try the others in that order */
			sort_frontier(r);
			bool ok = false;
			for (size_t i = 1; i < r->nheap && !ok; i++) {
				rc = try_advance(r, i);
				if (rc < 0)
					return fail(r);
				ok = rc == 1;
			}
			if (!ok) {
				order_error(r, "failed to advance: frontier");
				return fail(r);
			}
		}
		if (!ord_next(r->ord, &out)) {
			gtr_seterr(&r->err, GTR_EORDER, g->pub.gen, 0,
				   "invariant violation: advance successful, but queue is empty");
			return fail(r);
		}
	}
	ev->type = out.ev.typ;
	ev->nargs = (uint8_t)(gtr_specs[out.ev.typ].nargs ? gtr_specs[out.ev.typ].nargs - 1 : 0);
	ev->gen = g->pub.gen;
	ev->m = ctxid(out.m);
	ev->p = ctxid(out.p);
	ev->g = ctxid(out.g);
	ev->thread = out.thread;
	ev->ts = out.ev.ts;
	ev->time_ns = out.ev.time;
	memcpy(ev->args, out.ev.args, sizeof ev->args);
	ev->offset = out.ev.off;
	ev->size = out.ev.size;
	if (deliver(r, ev) < 0)
		return fail(r);
	if (ev->size)
		note_time(g, ev->ts);
	return GTR_OK;
}

/* Wire order: batch by batch, everything checked when the generation was
 * read. */
static int next_wire(struct gtr_reader *r, struct gtr_event *ev)
{
	for (;;) {
		if (r->state == ST_SYNC) {
			memset(ev, 0, sizeof *ev);
			ev->type = GTR_EV_SYNC;
			ev->gen = r->g.pub.gen;
			ev->m = ev->p = ev->g = ev->thread = GTR_NONE;
			ev->time_ns = r->max_ns == INT64_MIN ? 0 : r->max_ns;
			ev->offset = r->g.pub.end;
			r->state = ST_AFTER_GEN;
			return GTR_OK;
		}
		if (r->state != ST_IN_GEN) {
			if (r->state != ST_START) {
				if (r->have_spill_err) {
					r->err = r->spill_err;
					return fail(r);
				}
				if (!r->have_spill) {
					r->state = ST_DONE;
					return GTR_END;
				}
			}
			if (read_generation(r) < 0)
				return fail(r);
			r->state = ST_IN_GEN;
			r->cb = 0;
			r->in_batch = false;
			r->max_ns = INT64_MIN;
			continue;
		}
		struct gen *g = &r->g;
		if (r->cb >= g->nb) {
			r->state = ST_SYNC;
			continue;
		}
		const struct gtr_batch *b = &g->b[r->cb];
		if (b->kind != GTR_BATCH_EVENTS && b->kind != GTR_BATCH_CPUSAMPLES) {
			r->cb++;
			continue;
		}
		if (!r->in_batch) {
			r->in_batch = true;
			r->coff = b->kind == GTR_BATCH_CPUSAMPLES ? 1 : 0;
			r->last_ns = 0;
			r->cur_ts = b->time;
		}
		if (r->coff >= b->size) {
			r->cb++;
			r->in_batch = false;
			continue;
		}
		const uint8_t *p = r->buf + b->data_offset + r->coff, *end = r->buf + b->data_offset + b->size;
		memset(ev, 0, sizeof *ev);
		ev->gen = g->pub.gen;
		ev->offset = b->data_offset + r->coff;
		ev->p = ev->g = GTR_NONE;
		if (b->kind == GTR_BATCH_CPUSAMPLES) {
			uint64_t v[5];
			const uint8_t *q = p;
			if (read_sample(r, g->pub.gen, &q, end, v) < 0) /* checked already */
				return fail(r);
			ev->type = GTR_EV_CPUSAMPLE;
			ev->nargs = 4;
			ev->m = ev->thread = v[1];
			ev->p = v[2];
			ev->g = v[3] ? v[3] : GTR_NONE;
			ev->ts = v[0];
			ev->time_ns = gtr_ticks_to_ns(v[0], g->pub.ns_per_tick);
			memcpy(ev->args, v + 1, 4 * sizeof v[0]);
			ev->size = (uint32_t)(q - p);
			r->coff += ev->size;
		} else {
			char msg[96];
			uint64_t dt;
			int n = decode_timed(p, end, &ev->type, &dt, ev->args, &ev->nargs, msg, sizeof msg);
			if (n < 0) { /* checked already */
				gtr_seterr(&r->err, GTR_EEVENT, g->pub.gen, ev->offset, "%s", msg);
				return fail(r);
			}
			r->cur_ts += dt;
			ev->ts = r->cur_ts;
			ev->m = ev->thread = b->m;
			/* Go's batchCursor: the clock restarts from the batch's
			 * base time whenever it is 0. */
			if (r->last_ns == 0)
				r->last_ns = gtr_ticks_to_ns(b->time, g->pub.ns_per_tick);
			r->last_ns = (int64_t)((uint64_t)gtr_ticks_to_ns(dt, g->pub.ns_per_tick) +
					       (uint64_t)r->last_ns);
			ev->time_ns = r->last_ns;
			ev->size = (uint32_t)n;
			r->coff += (uint64_t)n;
		}
		if (ev->time_ns > r->max_ns)
			r->max_ns = ev->time_ns;
		return GTR_OK;
	}
}

/* ------------------------------------------------------------ public API */

struct gtr_reader *gtr_open(const void *data, size_t len, const struct gtr_options *opt,
			    struct gtr_error *err)
{
	unsigned v = 0;
	size_t hl = 0;
	int rc = gtr_parse_header(data, len, &v, &hl);
	if (rc == -1) {
		gtr_seterr(err, GTR_ENOTTRACE, 0, 0, "bad file format: not a Go execution trace?");
		return NULL;
	}
	if (rc == -2) {
		gtr_seterr(err, GTR_EVERSION, 0, 0, "unknown or unsupported trace version go 1.%u", v);
		return NULL;
	}
	if (v != 22 && v != 23) {
		gtr_seterr(err, GTR_EVERSION, 0, 0,
			   "unsupported trace version go 1.%u: it uses the pre-1.22 format, which this "
			   "reader does not read",
			   v);
		return NULL;
	}
	struct gtr_reader *r = calloc(1, sizeof *r);
	if (!r) {
		gtr_seterr(err, GTR_ENOMEM, 0, 0, "out of memory");
		return NULL;
	}
	r->buf = data;
	r->len = len;
	r->version = v;
	r->hdrlen = hl;
	r->pos = hl;
	if (opt)
		r->opt = *opt;
	r->state = ST_START;
	r->emitted_sync = true; /* no Sync before the first generation */
	if (!r->opt.wire_order &&
	    (!(r->ord = ord_new()) || (!r->opt.skip_validation && !(r->val = val_new(r->ord))))) {
		ord_free(r->ord);
		free(r);
		gtr_seterr(err, GTR_ENOMEM, 0, 0, "out of memory");
		return NULL;
	}
	if (err)
		memset(err, 0, sizeof *err);
	return r;
}

void gtr_close(struct gtr_reader *r)
{
	if (!r)
		return;
	gen_free(&r->g);
	val_free(r->val);
	ord_free(r->ord);
	free(r->cur);
	free(r->heap);
	free(r->heaptmp);
	free(r);
}

unsigned gtr_version(const struct gtr_reader *r)
{
	return r->version;
}

size_t gtr_header_len(const struct gtr_reader *r)
{
	return r->hdrlen;
}

const struct gtr_error *gtr_reader_error(const struct gtr_reader *r)
{
	return &r->err;
}

int gtr_next_event(struct gtr_reader *r, struct gtr_event *ev, const struct gtr_generation **genp)
{
	if (r->state == ST_FAILED)
		return GTR_ERR;
	if (r->state == ST_DONE)
		return GTR_END;
	int rc = r->opt.wire_order ? next_wire(r, ev) : next_ordered(r, ev);
	if (rc == GTR_OK && genp)
		*genp = &r->g.pub;
	return rc;
}

int gtr_next_generation(struct gtr_reader *r, const struct gtr_generation **out)
{
	struct gtr_event ev;
	int rc;
	while ((rc = gtr_next_event(r, &ev, NULL)) == GTR_OK) {
		if (ev.type == GTR_EV_SYNC) {
			if (out)
				*out = &r->g.pub;
			return GTR_OK;
		}
	}
	return rc;
}

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
