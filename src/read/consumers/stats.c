/*
 * consumers/stats.c: counts over a whole trace (gotrace-read stats).  Only
 * complete generations count: what a generation delivered before an error
 * is kept apart and dropped.
 *
 * Calls the public reader API (include/gtread.h) and base/ only.
 */
#include "base/error.h"
#include "base/grow.h"
#include "base/map.h"
#include "gtread.h"

#include <stdlib.h>
#include <string.h>

static int cmp_thread(const void *a, const void *b)
{
	uint64_t x = ((const struct gtr_thread_stats *)a)->m, y = ((const struct gtr_thread_stats *)b)->m;
	return x < y ? -1 : x > y;
}

/* Counts of the generation being read, folded in at its Sync. */
struct pending {
	uint64_t count[GTR_NTYPES], bytes[GTR_NTYPES];
	uint64_t events, event_bytes, samples, samples_no_stack;
	int64_t first_ns, last_ns;
	struct gtr_thread_stats *th; /* events/bytes/batches of this generation */
	size_t nth, capth;
	struct gtr_map tmap;         /* thread -> index in th */
};

static struct gtr_thread_stats *pthread_of(struct pending *p, uint64_t m)
{
	bool added;
	uint32_t *slot = gtr_map_put(&p->tmap, m, &added);
	if (!slot)
		return NULL;
	if (added) {
		if (!gtr_grow((void **)&p->th, &p->capth, p->nth, 1, sizeof *p->th))
			return NULL;
		*slot = (uint32_t)p->nth;
		memset(&p->th[p->nth], 0, sizeof p->th[0]);
		p->th[p->nth++].m = m;
	}
	return &p->th[*slot];
}

static void pending_reset(struct pending *p)
{
	memset(p->count, 0, sizeof p->count);
	memset(p->bytes, 0, sizeof p->bytes);
	p->events = p->event_bytes = p->samples = p->samples_no_stack = 0;
	p->first_ns = INT64_MAX;
	p->last_ns = INT64_MIN;
	p->nth = 0;
	gtr_map_clear(&p->tmap);
}

static bool fold(struct gtr_stats *st, struct pending *p, struct gtr_map *tmap, size_t *cap)
{
	for (int t = 0; t < GTR_NTYPES; t++) {
		st->count[t] += p->count[t];
		st->bytes[t] += p->bytes[t];
	}
	st->events += p->events;
	st->event_bytes += p->event_bytes;
	st->samples += p->samples;
	st->samples_no_stack += p->samples_no_stack;
	if (p->first_ns < st->first_ns)
		st->first_ns = p->first_ns;
	if (p->last_ns > st->last_ns)
		st->last_ns = p->last_ns;
	for (size_t i = 0; i < p->nth; i++) {
		bool added;
		uint32_t *slot = gtr_map_put(tmap, p->th[i].m, &added);
		if (!slot)
			return false;
		if (added) {
			if (!gtr_grow((void **)&st->threads, cap, st->nthreads, 1, sizeof *st->threads))
				return false;
			*slot = (uint32_t)st->nthreads;
			memset(&st->threads[st->nthreads], 0, sizeof st->threads[0]);
			st->threads[st->nthreads++].m = p->th[i].m;
		}
		st->threads[*slot].events += p->th[i].events;
		st->threads[*slot].bytes += p->th[i].bytes;
		st->threads[*slot].batches += p->th[i].batches;
	}
	pending_reset(p);
	return true;
}

int gtr_stats_compute(const void *data, size_t len, struct gtr_stats *st)
{
	memset(st, 0, sizeof *st);
	st->file_bytes = len;
	st->first_ns = INT64_MAX;
	st->last_ns = INT64_MIN;
	struct gtr_reader *r = gtr_open(data, len, NULL, &st->error);
	if (!r) {
		st->ended_with_error = true;
		return GTR_ERR;
	}
	st->version = gtr_version(r);
	struct pending *p = calloc(1, sizeof *p);
	struct gtr_map tmap = { 0 };
	size_t cap = 0;
	int rc;
	struct gtr_event ev;
	const struct gtr_generation *g;
	if (!p)
		goto nomem;
	pending_reset(p);
	while ((rc = gtr_next_event(r, &ev, &g)) == GTR_OK) {
		if (ev.type == GTR_EV_SYNC) {
			if (!st->gens)
				st->first_gen = g->gen;
			st->last_gen = g->gen;
			st->gens++;
			st->strings += g->nstrings;
			st->string_bytes += g->string_bytes;
			st->stacks += g->nstacks;
			st->frames += g->nframes;
			for (size_t i = 0; i < g->nbatches; i++) {
				const struct gtr_batch *b = &g->batches[i];
				st->batches++;
				st->header_bytes += b->data_offset - b->offset;
				if (b->kind == GTR_BATCH_EVENTS) {
					st->event_batches++;
					struct gtr_thread_stats *t = pthread_of(p, b->m);
					if (!t)
						goto nomem;
					t->batches++;
				} else if (b->kind != GTR_BATCH_CPUSAMPLES && b->kind != GTR_BATCH_EXPERIMENTAL) {
					st->table_bytes += b->size;
				}
			}
			if (!fold(st, p, &tmap, &cap))
				goto nomem;
			continue;
		}
		p->count[ev.type]++;
		p->bytes[ev.type] += ev.size;
		if (ev.time_ns < p->first_ns)
			p->first_ns = ev.time_ns;
		if (ev.time_ns > p->last_ns)
			p->last_ns = ev.time_ns;
		if (ev.type == GTR_EV_CPUSAMPLE) {
			p->samples++;
			if (ev.args[3] == 0)
				p->samples_no_stack++;
			continue;
		}
		p->events++;
		p->event_bytes += ev.size;
		struct gtr_thread_stats *t = pthread_of(p, ev.thread);
		if (!t)
			goto nomem;
		t->events++;
		t->bytes += ev.size;
	}
	if (rc == GTR_ERR) {
		st->ended_with_error = true;
		st->error = *gtr_reader_error(r);
	}
	gtr_map_free(&p->tmap);
	free(p->th);
	free(p);
	gtr_map_free(&tmap);
	gtr_close(r);
	if (st->nthreads)
		qsort(st->threads, st->nthreads, sizeof *st->threads, cmp_thread);
	if (st->first_ns > st->last_ns)
		st->first_ns = st->last_ns = 0;
	return rc;
nomem:
	if (p) {
		gtr_map_free(&p->tmap);
		free(p->th);
		free(p);
	}
	gtr_map_free(&tmap);
	gtr_close(r);
	st->ended_with_error = true;
	gtr_seterr(&st->error, GTR_ENOMEM, 0, 0, "out of memory");
	return GTR_ERR;
}

void gtr_stats_free(struct gtr_stats *st)
{
	free(st->threads);
	st->threads = NULL;
	st->nthreads = 0;
}
