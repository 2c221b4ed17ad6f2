/*
 * reader.c: generations, batches, tables and the broken-tail policy.
 *
 * The structure follows Go's internal/trace reader (reader.go,
 * generation.go, batch.go) closely, so that the same input fails in the same
 * place with the same words: readGeneration reads batches until the first
 * batch of the next generation (the "spill") or the end; a read error after
 * the generation's first batch is kept back (the "spill error") and returned
 * only after the generation has been delivered.  Unlike Go, every event of
 * a generation is decoded and its table references checked before any of
 * them is delivered, so an error inside a generation comes before its
 * events, and a delivered generation is always followed by its Sync.
 */
#include "internal.h"

#include <inttypes.h>
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
	struct gtr_map mmap;   /* threads of event batches */
	size_t nevents, nsamples;
	uint64_t min_time, max_time;
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
	/* event cursor in the current generation */
	size_t cb;
	bool in_batch;
	uint64_t coff;
	int64_t last_ns;
	uint64_t cur_ts;
	int64_t max_ns;
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

/* Go's readBatch.  *gen_known/*genv: whether the gen field was read. */
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
		if (read_sample(r, genno, &p, end, v) < 0)
			return -1;
		g->nsamples++;
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
		if (!gtr_map_put(&g->mmap, b->m, &added))
			return NOMEM(r, genno, b->offset), -1;
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
	if (check_stack_strings(r, g, cur) < 0 || check_events(r, g, cur) < 0)
		return -1;
	if (g->nevents == 0 && g->nsamples == 0) {
		gtr_seterr(&r->err, GTR_EEMPTY, cur, g->pub.begin,
			   "broken trace: frontier is empty (generation %" PRIu64
			   " has no event; Go 1.23's reader rejects it)",
			   cur);
		return -1;
	}
	struct gtr_generation *pub = &g->pub;
	pub->gen = cur;
	pub->freq = g->freq;
	pub->ns_per_tick = 1.0 / ((double)g->freq / 1e9);
	pub->nbatches = g->nb;
	pub->batches = g->b;
	pub->nevents = g->nevents;
	pub->nsamples = g->nsamples;
	pub->nstrings = g->ns;
	pub->nstacks = g->nk;
	pub->nframes = g->nf;
	pub->string_bytes = 0;
	for (size_t i = 0; i < g->ns; i++)
		pub->string_bytes += g->s[i].len;
	pub->nthreads = g->mmap.n;
	pub->min_time = g->min_time == UINT64_MAX ? 0 : g->min_time;
	pub->max_time = g->max_time;
	pub->priv = g;
	return 0;
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
	if (err)
		memset(err, 0, sizeof *err);
	return r;
}

void gtr_close(struct gtr_reader *r)
{
	if (!r)
		return;
	gen_free(&r->g);
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

int gtr_next_generation(struct gtr_reader *r, const struct gtr_generation **out)
{
	switch (r->state) {
	case ST_FAILED:
		return GTR_ERR;
	case ST_DONE:
		return GTR_END;
	case ST_START:
		break;
	default: /* a generation was delivered (possibly partly) */
		if (r->have_spill_err) {
			r->err = r->spill_err;
			r->state = ST_FAILED;
			return GTR_ERR;
		}
		if (!r->have_spill) {
			r->state = ST_DONE;
			return GTR_END;
		}
	}
	if (read_generation(r) < 0) {
		r->state = ST_FAILED;
		return GTR_ERR;
	}
	r->state = ST_IN_GEN;
	r->cb = 0;
	r->in_batch = false;
	r->max_ns = INT64_MIN;
	if (out)
		*out = &r->g.pub;
	return GTR_OK;
}

int gtr_next_event(struct gtr_reader *r, struct gtr_event *ev, const struct gtr_generation **genp)
{
	for (;;) {
		if (r->state == ST_SYNC) {
			memset(ev, 0, sizeof *ev);
			ev->type = GTR_EV_SYNC;
			ev->gen = r->g.pub.gen;
			ev->m = GTR_NONE;
			ev->time_ns = r->max_ns == INT64_MIN ? 0 : r->max_ns;
			ev->offset = r->g.pub.end;
			r->state = ST_AFTER_GEN;
			if (genp)
				*genp = &r->g.pub;
			return GTR_OK;
		}
		if (r->state != ST_IN_GEN) {
			int rc = gtr_next_generation(r, NULL);
			if (rc != GTR_OK)
				return rc;
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
		if (b->kind == GTR_BATCH_CPUSAMPLES) {
			uint64_t v[5];
			const uint8_t *q = p;
			if (read_sample(r, g->pub.gen, &q, end, v) < 0) { /* checked already */
				r->state = ST_FAILED;
				return GTR_ERR;
			}
			ev->type = GTR_EV_CPUSAMPLE;
			ev->nargs = 4;
			ev->m = v[1];
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
				r->state = ST_FAILED;
				return GTR_ERR;
			}
			r->cur_ts += dt;
			ev->ts = r->cur_ts;
			ev->m = b->m;
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
		if (genp)
			*genp = &g->pub;
		return GTR_OK;
	}
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

unsigned gtr_go_event_count(unsigned type)
{
	return type == 45 || type == 46 ? 3 : 1;
}
