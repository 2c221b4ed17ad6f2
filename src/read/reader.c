/*
 * reader.c: the public reader API (include/gtread.h): gtr_open, the
 * broken-tail policy and the delivery of events.  Top of src/read: calls
 * generation/ (reading a generation), order/ (Go's scheduler state
 * machine), validate/ (Go's validator), wire/ and base/; nothing below
 * calls back into it.
 *
 * As Go's internal/trace reader: a generation is read (generation/) up to
 * the first batch of the next (the "spill"); a read error after its first
 * batch is kept back (the "spill error") and returned only after the
 * generation has been delivered.  Events are delivered as Go's
 * Reader.ReadEvent does (a min-heap of per-thread cursors by time, the
 * ordering rules of order/, CPU samples merged by time, references checked
 * and times clamped on delivery, then the validator); or, with wire_order,
 * batch by batch after checking every event and reference up front.
 */
#include "base/error.h"
#include "base/grow.h"
#include "base/names.h"
#include "generation/generation.h"
#include "gtread.h"
#include "order/order.h"
#include "validate/validate.h"
#include "wire/header.h"
#include "wire/spec.h"
#include "wire/ticks.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A thread's position in its event batches (Go's batchCursor). */
struct cursor {
	uint64_t m;
	size_t grp, idx;
	uint64_t off;
	int64_t last;
	uint64_t raw;
	struct ord_ev ev;
};

#define NOMEM(r, genno, off) gtr_seterr(&(r)->err, GTR_ENOMEM, genno, off, "out of memory")

enum { ST_START, ST_IN_GEN, ST_SYNC, ST_AFTER_GEN, ST_DONE, ST_FAILED };

struct gtr_reader {
	const uint8_t *buf; /* the input (the caller's) */
	unsigned version;
	size_t hdrlen;
	struct gtr_options opt;
	struct gtr_batch_src src; /* src.err = &err */
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
	struct gtr_names *names; /* shared by ord and val (base/names.h) */
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
	int n = gtr_decode_timed(p, end, &c->ev.typ, &dt, c->ev.args, &(uint8_t){ 0 }, msg, sizeof msg);
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
	const char *c;
	if (!gtr_string(&((const struct gen *)ctx)->pub, id, &c, len))
		return false;
	*s = (const uint8_t *)c;
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

/* Go's deferred part of ReadEvent: references, then strictly increasing
 * time; then Go's validator. */
static int deliver(struct gtr_reader *r, struct gtr_event *ev)
{
	if (ev->type != GTR_EV_SYNC && gen_check_refs(&r->g, r->g.pub.gen, ev->type, ev->args, ev->offset, &r->err) < 0)
		return -1;
	if (ev->time_ns <= r->last_ts)
		ev->time_ns = (int64_t)((uint64_t)r->last_ts + 1);
	r->last_ts = ev->time_ns;
	if (r->val) {
		char msg[sizeof r->err.msg];
		bool panics, nomem, go123;
		if (val_event(r->val, ev, &r->g.pub, msg, sizeof msg, &panics, &nomem, &go123) < 0) {
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
			if (r->src.have_spill_err) {
				r->err = r->src.spill_err;
				return fail(r);
			}
			if (r->have_gen && !r->src.have_spill) {
				r->state = ST_DONE;
				return GTR_END;
			}
			if (gen_read(&r->g, &r->src) < 0)
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
			gen_note_time(g, s->ts);
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
		gen_note_time(g, ev->ts);
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
				if (r->src.have_spill_err) {
					r->err = r->src.spill_err;
					return fail(r);
				}
				if (!r->src.have_spill) {
					r->state = ST_DONE;
					return GTR_END;
				}
			}
			if (gen_read(&r->g, &r->src) < 0)
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
			if (gen_read_sample(&r->src, g->pub.gen, &q, end, v) < 0) /* checked already */
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
			int n = gtr_decode_timed(p, end, &ev->type, &dt, ev->args, &ev->nargs, msg, sizeof msg);
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
	if (gtr_check_header(data, len, &v, &hl, err) < 0)
		return NULL;
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
	r->version = v;
	r->hdrlen = hl;
	if (opt)
		r->opt = *opt;
	r->src.buf = data;
	r->src.len = len;
	r->src.pos = hl;
	r->src.wire_order = r->opt.wire_order;
	r->src.lenient_gen_order = r->opt.lenient_gen_order;
	r->src.err = &r->err;
	r->state = ST_START;
	r->emitted_sync = true; /* no Sync before the first generation */
	if (!r->opt.wire_order &&
	    (!(r->names = gtr_names_new()) || !(r->ord = ord_new(r->names)) ||
	     (!r->opt.skip_validation && !(r->val = val_new(r->names))))) {
		ord_free(r->ord);
		gtr_names_free(r->names);
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
	gtr_names_free(r->names);
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

