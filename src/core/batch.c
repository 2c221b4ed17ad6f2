/*
 * batch.c: a thread's open batches -- its event batch and its strings
 * batch of a generation -- and their hand-off to the flusher's queue under
 * the memory bound (max_buffered): room for an event or a string
 * definition, a new chunk when the open one is full, the drop count when
 * neither is possible.  Runs on the owning thread inside its critical
 * section (struct gt_tbuf, core.h).
 * May call: chunk.c (chunks, the queue), state.c (wake the flusher).
 */
#include "core.h"

void gt_count_drop(struct gt_emit *e)
{
	e->tb->dropped++;
	e->t->drop_note++;
	__atomic_add_fetch(&e->t->dropped_total, 1, __ATOMIC_RELAXED);
	__atomic_add_fetch(&gt_session.dropped_total, 1, __ATOMIC_RELAXED);
}

/* Hand the full chunk c to the flusher if the memory bound allows it. */
static bool try_handoff(struct gt_thread *t, struct gt_chunk *c)
{
	if (t->unbounded) {
		gt_queue_push(c);
		return true;
	}
	uint64_t b = __atomic_load_n(&gt_session.buffered, __ATOMIC_RELAXED);
	uint32_t len = c->len; /* c belongs to the flusher once pushed */
	if (b + len > gt_session.opt.max_buffered) {
		gt_wake_flusher();
		return false;
	}
	/* Wake the flusher when the queue crosses wake_bytes: once per
	 * crossing, not per chunk (a system call each).  The flusher does not
	 * sleep while more than wake_bytes is queued (session.c), so a
	 * crossing it was too busy to see is not lost. */
	uint64_t now = gt_queue_push(c);
	uint64_t w = gt_session.wake_bytes;
	if (now > w && now - len <= w)
		gt_wake_flusher();
	return true;
}

/* Get an open chunk for *slot (event or strings batch).  m: batch owner. */
static struct gt_chunk *slot_chunk(struct gt_emit *e, struct gt_chunk **slot, uint32_t cap,
                                   uint64_t m, uint32_t need, bool must)
{
	struct gt_chunk *c = *slot;
	if (c && c->len != 0 && c->gen != e->gen) {
		/* A batch of a generation that is over, never collected (only
		 * possible after a failed advance): its events can no longer be
		 * written in order, and generations never mix in one batch.
		 * Its buffer is reused for e->gen below (dropping it from the
		 * slot without freeing it would leak it). */
		c->len = 0;
	}
	if (c && c->len != 0 && c->len + need > c->limit) {
		if (try_handoff(e->t, c)) {
			c = *slot = NULL;
		} else if (must && c->len + need <= c->cap) {
			return c;
		} else {
			return NULL;
		}
	}
	if (!c) {
		c = gt_chunk_new(cap, GT_RESERVE);
		if (!c)
			return NULL;
		*slot = c;
	}
	if (c->len == 0) {
		gt_chunk_open(c, e->gen, m, e->now);
		if (m == GT_NO_ID)
			c->data[c->len++] = GT_EV_STRINGS;
	}
	if (c->len + need > (must ? c->cap : c->limit))
		return NULL;
	return c;
}

uint8_t *gt_ev_reserve_slow(struct gt_emit *e, uint32_t need, bool must)
{
	struct gt_chunk *c = slot_chunk(e, &e->tb->ev, gt_session.chunk_cap, e->t->tid, need, must);
	return c ? c->data + c->len : NULL;
}

uint8_t *gt_str_reserve(struct gt_emit *e, uint32_t need, bool must)
{
	struct gt_chunk *c = e->tb->str;
	if (likely(c && c->len != 0 && c->gen == e->gen && c->len + need <= c->limit))
		return c->data + c->len;
	c = slot_chunk(e, &e->tb->str, gt_session.chunk_cap, GT_NO_ID, need, must);
	return c ? c->data + c->len : NULL;
}
