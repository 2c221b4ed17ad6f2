/*
 * stats.c: counts over a whole trace (gotrace-read stats).
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

static int cmp_thread(const void *a, const void *b)
{
	uint64_t x = ((const struct gtr_thread_stats *)a)->m, y = ((const struct gtr_thread_stats *)b)->m;
	return x < y ? -1 : x > y;
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
	struct gtr_map tmap = { 0 };
	size_t cap = 0;
	int rc;
	struct gtr_event ev;
	const struct gtr_generation *g;
	while ((rc = gtr_next_event(r, &ev, &g)) == GTR_OK) {
		if (ev.type == GTR_EV_SYNC) {
			if (!st->gens)
				st->first_gen = g->gen;
			st->last_gen = g->gen;
			st->gens++;
			st->strings += g->nstrings;
			st->stacks += g->nstacks;
			st->string_bytes += g->string_bytes;
			st->frames += g->nframes;
			for (size_t i = 0; i < g->nbatches; i++) {
				const struct gtr_batch *b = &g->batches[i];
				st->batches++;
				st->header_bytes += b->data_offset - b->offset;
				if (b->kind == GTR_BATCH_EVENTS) {
					st->event_batches++;
				} else if (b->kind != GTR_BATCH_CPUSAMPLES && b->kind != GTR_BATCH_EXPERIMENTAL) {
					st->table_bytes += b->size;
				}
				if (b->kind == GTR_BATCH_EVENTS) {
					bool added;
					uint32_t *slot = gtr_map_put(&tmap, b->m, &added);
					if (!slot)
						goto nomem;
					if (added) {
						if (!gtr_grow((void **)&st->threads, &cap, st->nthreads, 1,
							      sizeof *st->threads))
							goto nomem;
						*slot = (uint32_t)st->nthreads;
						memset(&st->threads[st->nthreads], 0, sizeof st->threads[0]);
						st->threads[st->nthreads++].m = b->m;
					}
					st->threads[*slot].batches++;
				}
			}
			continue;
		}
		st->count[ev.type]++;
		st->bytes[ev.type] += ev.size;
		if (ev.time_ns < st->first_ns)
			st->first_ns = ev.time_ns;
		if (ev.time_ns > st->last_ns)
			st->last_ns = ev.time_ns;
		if (ev.type == GTR_EV_CPUSAMPLE) {
			st->samples++;
			if (ev.args[3] == 0)
				st->samples_no_stack++;
			continue;
		}
		st->events++;
		st->event_bytes += ev.size;
		bool added;
		uint32_t *slot = gtr_map_put(&tmap, ev.m, &added);
		if (!slot)
			goto nomem;
		if (added) {
			if (!gtr_grow((void **)&st->threads, &cap, st->nthreads, 1, sizeof *st->threads))
				goto nomem;
			*slot = (uint32_t)st->nthreads;
			memset(&st->threads[st->nthreads], 0, sizeof st->threads[0]);
			st->threads[st->nthreads++].m = ev.m;
		}
		st->threads[*slot].events++;
		st->threads[*slot].bytes += ev.size;
	}
	if (rc == GTR_ERR) {
		st->ended_with_error = true;
		st->error = *gtr_reader_error(r);
	}
	gtr_map_free(&tmap);
	gtr_close(r);
	if (st->nthreads)
		qsort(st->threads, st->nthreads, sizeof *st->threads, cmp_thread);
	if (st->first_ns > st->last_ns)
		st->first_ns = st->last_ns = 0;
	return rc;
nomem:
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
