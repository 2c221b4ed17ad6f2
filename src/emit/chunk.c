/*
 * chunk.c: batch buffers and their hand-off to the flusher.
 */
#include "internal.h"

#include <stdlib.h>

struct gt_chunk *gt_chunk_new(uint32_t cap, uint32_t reserve)
{
	struct gt_chunk *c = malloc(sizeof *c + cap);
	if (!c)
		return NULL;
	cds_wfcq_node_init(&c->qnode);
	c->cap = cap;
	c->limit = cap > reserve ? cap - reserve : cap;
	c->len = c->hdr_len = 0;
	c->queued = 0;
	c->gen = 0;
	c->last_ts = 0;
	return c;
}

/* Header: EventBatch gen m time size.  The size field is padded to
 * GT_SIZE_FIELD bytes and filled in by gt_chunk_finish. */
void gt_chunk_open(struct gt_chunk *c, uint64_t gen, uint64_t m, uint64_t ts)
{
	uint8_t *p = c->data;
	*p++ = GT_EV_BATCH;
	p = gt_put_uvarint(p, gen);
	p = gt_put_uvarint(p, m);
	p = gt_put_uvarint(p, ts);
	p += GT_SIZE_FIELD;
	c->hdr_len = c->len = (uint32_t)(p - c->data);
	c->gen = gen;
	c->last_ts = ts;
}

void gt_chunk_finish(struct gt_chunk *c)
{
	gt_put_uvarint_padded(c->data + c->hdr_len - GT_SIZE_FIELD, gt_chunk_payload(c), GT_SIZE_FIELD);
}

void gt_queue_push(struct gt_chunk *c)
{
	gt_chunk_finish(c);
	uint64_t b = __atomic_add_fetch(&gt.buffered, c->len, __ATOMIC_RELAXED);
	uint64_t peak = __atomic_load_n(&gt.buffered_peak, __ATOMIC_RELAXED);
	while (b > peak && !__atomic_compare_exchange_n(&gt.buffered_peak, &peak, b, false,
	                                                __ATOMIC_RELAXED, __ATOMIC_RELAXED))
		;
	__atomic_store_n(&c->queued, 1, __ATOMIC_RELEASE);
	cds_wfcq_enqueue(&gt.qhead[c->gen & 1], &gt.qtail[c->gen & 1], &c->qnode);
}
