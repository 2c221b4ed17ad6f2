/*
 * stacktab.c: the stack table of a generation.
 * May call: symbolize.c, src/core (strings, chunks, the registry walk).
 *
 * Flusher-private: stacks are interned by the flusher (CPU samples, drained
 * after every thread left the generation) and written, symbolised, at the
 * end of the generation, after which the table is emptied.  Threads' entry
 * stacks are not stored here: their ids are fixed (2 * goid) and they are
 * written for every thread stated in the generation.
 */
#include "stacks.h"
#include "../core/registry.h"

#include <stdlib.h>
#include <string.h>

struct stk {
	uint64_t hash;
	uint64_t id;
	int n;
	uint64_t pcs[];
};

/* Per parity, flusher-private (but next_id: atomic, see gt_stack_id_new):
 * open addressing on hash. */
static struct stack_table {
	struct stk **slot;
	size_t cap, n;
	uint64_t next_id;
} tabs[2];

/* next_id is shared with threads interning event stacks (evstack.c): they
 * take ids while inside generation gen; the flusher resets it after every
 * thread left gen. */
uint64_t gt_stack_id_new(uint64_t gen)
{
	return 2 * __atomic_fetch_add(&tabs[gen & 1].next_id, 1, __ATOMIC_RELAXED) + 1;
}


static bool grow(struct stack_table *t)
{
	size_t ncap = t->cap ? 2 * t->cap : 1024;
	struct stk **ns = calloc(ncap, sizeof *ns);
	if (!ns)
		return false;
	for (size_t i = 0; i < t->cap; i++) {
		struct stk *s = t->slot[i];
		if (!s)
			continue;
		size_t j = s->hash & (ncap - 1);
		while (ns[j])
			j = (j + 1) & (ncap - 1);
		ns[j] = s;
	}
	free(t->slot);
	t->slot = ns;
	t->cap = ncap;
	return true;
}

uint64_t gt_stack_intern(uint64_t gen, const uint64_t *pcs, int n)
{
	if (n <= 0)
		return 0;
	if (n > (int)GT_MAX_FRAMES)
		n = GT_MAX_FRAMES;
	struct stack_table *t = &tabs[gen & 1];
	if ((t->n + 1) * 2 > t->cap && !grow(t))
		return 0;
	uint64_t h = gt_hash_pcs(pcs, n);
	size_t j = h & (t->cap - 1);
	for (struct stk *s; (s = t->slot[j]) != NULL; j = (j + 1) & (t->cap - 1))
		if (s->hash == h && s->n == n && memcmp(s->pcs, pcs, (size_t)n * sizeof *pcs) == 0)
			return s->id;
	struct stk *s = malloc(sizeof *s + (size_t)n * sizeof *pcs);
	if (!s)
		return 0;
	s->hash = h;
	s->n = n;
	s->id = gt_stack_id_new(gen);
	memcpy(s->pcs, pcs, (size_t)n * sizeof *pcs);
	t->slot[j] = s;
	t->n++;
	return s->id;
}

/* The Stacks batch being written (flusher-private). */
struct writer {
	struct gt_emit e;
	struct gt_chunk *c;
};

static uint8_t *room(struct writer *w, uint32_t need)
{
	if (!w->c || w->c->len + need > w->c->cap) {
		if (w->c)
			gt_queue_push(w->c);
		w->c = gt_chunk_new(need > 32768 ? need + 64 : 32768, 0);
		if (!w->c)
			return NULL;
		gt_chunk_open(w->c, w->e.gen, GT_NO_ID, w->e.now);
		w->c->data[w->c->len++] = GT_EV_STACKS;
	}
	return w->c->data + w->c->len;
}

static void put_stack(struct writer *w, uint64_t id, const struct gt_frame *fr, int n)
{
	uint64_t sid[GT_MAX_FRAMES][2];
	for (int i = 0; i < n; i++) {
		sid[i][0] = gt_intern(&w->e, fr[i].func, strlen(fr[i].func), true);
		sid[i][1] = gt_intern(&w->e, fr[i].file, strlen(fr[i].file), true);
	}
	uint8_t *p = room(w, (uint32_t)(1 + 2 * GT_UVARINT_MAX + n * 4 * GT_UVARINT_MAX));
	if (!p)
		return;
	*p++ = GT_EV_STACK;
	p = gt_put_uvarint(p, id);
	p = gt_put_uvarint(p, (uint64_t)n);
	for (int i = 0; i < n; i++) {
		p = gt_put_uvarint(p, fr[i].pc);
		p = gt_put_uvarint(p, sid[i][0]);
		p = gt_put_uvarint(p, sid[i][1]);
		p = gt_put_uvarint(p, fr[i].line);
	}
	w->c->len = (uint32_t)(p - w->c->data);
}

void gt_stacktab_prefetch(uint64_t g)
{
	struct gt_frame fr;
	struct gt_thread *t;
	rcu_read_lock();
	gt_reg_for_each(t, &gt_session.threads) {
		if (gt_thread_current(t) && gt_stated_in(t, g))
			gt_entry_frame(t, &fr);
	}
	rcu_read_unlock();
	const struct stack_table *tab = &tabs[g & 1];
	for (size_t i = 0; i < tab->cap; i++) {
		const struct stk *s = tab->slot[i];
		for (int k = 0; s && k < s->n; k++)
			gt_sym_lookup(s->pcs[k], &fr);
	}
}

void gt_stacktab_write(uint64_t g, uint64_t now)
{
	struct writer w = { .e = { .t = &gt_advancer, .gen = g, .tb = &gt_advancer.tb[g & 1], .now = now } };
	if (w.e.tb->gen != g) {
		w.e.tb->gen = g;
		w.e.tb->str_next = w.e.tb->str_end = 0;
	}
	static struct gt_frame fr[GT_MAX_FRAMES]; /* flusher-private */

	struct gt_thread *t;
	rcu_read_lock();
	gt_reg_for_each(t, &gt_session.threads) {
		if (!gt_thread_current(t) || !gt_stated_in(t, g))
			continue;
		gt_entry_frame(t, &fr[0]);
		put_stack(&w, gt_entry_stack_id(t), fr, 1);
	}
	rcu_read_unlock();

	struct stack_table *tab = &tabs[g & 1];
	for (size_t i = 0; i < tab->cap; i++) {
		struct stk *s = tab->slot[i];
		if (!s)
			continue;
		for (int k = 0; k < s->n; k++)
			gt_sym_lookup(s->pcs[k], &fr[k]);
		put_stack(&w, s->id, fr, s->n);
		free(s);
		tab->slot[i] = NULL;
	}
	tab->n = 0;
	__atomic_store_n(&tab->next_id, 0, __ATOMIC_RELAXED);
	if (w.c)
		gt_queue_push(w.c);
}
