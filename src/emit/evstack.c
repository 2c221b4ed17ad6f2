/*
 * evstack.c: stacks on events (gotrace_options.event_stacks).
 *
 * The calling thread walks its own frame pointers (bounded by its stack's
 * bounds, read once per thread with pthread_getattr_np), drops the frames
 * inside libgotrace, and interns the PCs in the current generation's event
 * stack table.  The flusher symbolises and writes the table with the
 * generation.
 *
 * The table, one per generation parity: an lfht keyed by the PC array.
 * Safety argument as for src/emit/strtab.c: threads touch table[g % 2] only
 * while their seqlock is odd for generation g; the advancer writes and
 * empties it (gt_evstack_write) only after every thread left g, so nodes are
 * freed at once (the seqlock wait is the grace period); lookups run under
 * rcu_read_lock because the lfht's own resizing needs it.  Ids come from the
 * generation's stack id counter shared with stacktab.c (gt_stack_id_new).
 */
#include "internal.h"

#include <link.h>
#include <stdlib.h>
#include <string.h>
#include <urcu/rculfhash.h>

#define ES_MAX 64

struct es_node {
	struct cds_lfht_node node;
	int ready;     /* release-stored before publication (see strtab.c) */
	uint64_t id;
	int n;
	uint64_t pcs[];
};

struct es_key {
	const uint64_t *pcs;
	int n;
};

/* Created once (pthread_once, by the first thread that captures a stack),
 * published with a release store, never destroyed; the flusher loads them
 * with acquire (it never runs es_init). */
static struct cds_lfht *es_ht[2];
static pthread_once_t es_once = PTHREAD_ONCE_INIT;
/* Our own text: [lib_lo, lib_hi), found once (es_once). */
static uintptr_t lib_lo, lib_hi;

static int find_self(struct dl_phdr_info *info, size_t size, void *arg)
{
	(void)size;
	uintptr_t me = (uintptr_t)arg;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X))
			continue;
		uintptr_t lo = info->dlpi_addr + ph->p_vaddr, hi = lo + ph->p_memsz;
		if (me >= lo && me < hi) {
			lib_lo = lo;
			lib_hi = hi;
			return 1;
		}
	}
	return 0;
}

static void es_init(void)
{
	dl_iterate_phdr(find_self, (void *)(uintptr_t)es_init);
	for (int i = 0; i < 2; i++)
		__atomic_store_n(&es_ht[i],
		                 cds_lfht_new(64, 64, 0, CDS_LFHT_AUTO_RESIZE | CDS_LFHT_ACCOUNTING, NULL),
		                 __ATOMIC_RELEASE);
}

/* The calling thread's stack bounds (owner-private, lazily). */
static __thread uintptr_t stk_lo __attribute__((tls_model("initial-exec")));
static __thread uintptr_t stk_hi __attribute__((tls_model("initial-exec")));

static void stack_bounds(void)
{
	pthread_attr_t a;
	void *addr;
	size_t size;
	stk_hi = 1; /* tried */
	if (pthread_getattr_np(pthread_self(), &a) != 0)
		return;
	if (pthread_attr_getstack(&a, &addr, &size) == 0) {
		stk_lo = (uintptr_t)addr;
		stk_hi = (uintptr_t)addr + size;
	}
	pthread_attr_destroy(&a);
}

static uint64_t hash_pcs(const uint64_t *pcs, int n)
{
	uint64_t h = 0x9e3779b97f4a7c15ull ^ (uint64_t)n;
	for (int i = 0; i < n; i++) {
		h ^= pcs[i];
		h *= 0xff51afd7ed558ccdull;
		h ^= h >> 32;
	}
	return h;
}

static int es_match(struct cds_lfht_node *n, const void *key)
{
	const struct es_node *sn = caa_container_of(n, struct es_node, node);
	const struct es_key *k = key;
	if (!__atomic_load_n(&sn->ready, __ATOMIC_ACQUIRE))
		return 0;
	return sn->n == k->n && memcmp(sn->pcs, k->pcs, (size_t)k->n * sizeof *k->pcs) == 0;
}

/* Frame-pointer walk from our caller's frame, leaf first, as return
 * addresses minus one; frames inside libgotrace are left out. */
static __attribute__((noinline)) int fp_walk(uint64_t *pcs, int max)
{
	if (stk_hi == 0)
		stack_bounds();
	uintptr_t lo = stk_lo, hi = stk_hi;
	uintptr_t *fp = __builtin_frame_address(0);
	int n = 0;
	while (n < max && (uintptr_t)fp >= lo && (uintptr_t)fp + 2 * sizeof(uintptr_t) <= hi &&
	       ((uintptr_t)fp & (sizeof(uintptr_t) - 1)) == 0) {
		uintptr_t ret = fp[1];
		uintptr_t *next = (uintptr_t *)fp[0];
		if (ret == 0)
			break;
		if (!(n == 0 && ret >= lib_lo && ret < lib_hi))
			pcs[n++] = ret - 1;
		if (next <= fp)
			break;
		fp = next;
	}
	return n;
}

uint64_t gt_event_stack(struct gt_emit *e, int cls)
{
	if (!(gt.opt.event_stacks & cls))
		return 0;
	pthread_once(&es_once, es_init);
	uint64_t pcs[ES_MAX];
	int n = fp_walk(pcs, ES_MAX);
	if (n == 0)
		return 0;
	struct cds_lfht *ht = __atomic_load_n(&es_ht[e->gen & 1], __ATOMIC_ACQUIRE);
	if (!ht)
		return 0;
	struct es_key key = { pcs, n };
	uint64_t h = hash_pcs(pcs, n), id = 0;
	struct cds_lfht_iter it;
	rcu_read_lock();
	cds_lfht_lookup(ht, h, es_match, &key, &it);
	struct cds_lfht_node *node = cds_lfht_iter_get_node(&it);
	if (node) {
		id = caa_container_of(node, struct es_node, node)->id;
	} else {
		struct es_node *sn = malloc(sizeof *sn + (size_t)n * sizeof *pcs);
		if (sn) {
			sn->id = gt_stack_id_new(e->gen);
			sn->n = n;
			memcpy(sn->pcs, pcs, (size_t)n * sizeof *pcs);
			cds_lfht_node_init(&sn->node);
			__atomic_store_n(&sn->ready, 1, __ATOMIC_RELEASE);
			node = cds_lfht_add_unique(ht, h, es_match, &key, &sn->node);
			id = caa_container_of(node, struct es_node, node)->id;
			if (node != &sn->node)
				free(sn);
		}
	}
	rcu_read_unlock();
	return id;
}

/* Advancer, after every thread left g: write g's event stacks (symbolised)
 * into a Stacks batch of g and empty the table. */
void gt_evstack_write(uint64_t g, uint64_t now)
{
	struct cds_lfht *ht = __atomic_load_n(&es_ht[g & 1], __ATOMIC_ACQUIRE);
	if (!ht)
		return;
	struct gt_emit e = { .t = &gt_adv, .gen = g, .tb = &gt_adv.tb[g & 1], .now = now };
	if (e.tb->gen != g) {
		e.tb->gen = g;
		e.tb->str_next = e.tb->str_end = 0;
	}
	static struct gt_frame fr[ES_MAX]; /* flusher-private */
	struct gt_chunk *c = NULL;
	struct cds_lfht_iter it;
	struct es_node *sn;
	rcu_read_lock();
	cds_lfht_for_each_entry(ht, &it, sn, node) {
		uint64_t sid[ES_MAX][2];
		for (int k = 0; k < sn->n; k++) {
			gt_sym_lookup(sn->pcs[k], &fr[k]);
			sid[k][0] = gt_intern(&e, fr[k].func, strlen(fr[k].func), true);
			sid[k][1] = gt_intern(&e, fr[k].file, strlen(fr[k].file), true);
		}
		uint32_t need = (uint32_t)(1 + 2 * GT_UVARINT_MAX + sn->n * 4 * GT_UVARINT_MAX);
		if (c && c->len + need > c->cap) {
			gt_queue_push(c);
			c = NULL;
		}
		if (!c) {
			c = gt_chunk_new(32768, 0);
			if (c) {
				gt_chunk_open(c, g, GT_NO_ID, now);
				c->data[c->len++] = GT_EV_STACKS;
			}
		}
		if (c) {
			uint8_t *p = c->data + c->len;
			*p++ = GT_EV_STACK;
			p = gt_put_uvarint(p, sn->id);
			p = gt_put_uvarint(p, (uint64_t)sn->n);
			for (int k = 0; k < sn->n; k++) {
				p = gt_put_uvarint(p, fr[k].pc);
				p = gt_put_uvarint(p, sid[k][0]);
				p = gt_put_uvarint(p, sid[k][1]);
				p = gt_put_uvarint(p, fr[k].line);
			}
			c->len = (uint32_t)(p - c->data);
		}
		cds_lfht_del(ht, &sn->node);
		free(sn);
	}
	rcu_read_unlock();
	if (c)
		gt_queue_push(c);
}
