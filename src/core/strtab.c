/*
 * strtab.c: per-generation string table.
 * May call: batch.c (strings-batch room), arena.c, liburcu's lfht.
 *
 * Ids: interned names get odd ids from the generation's counter (so the
 * first names of a generation have 1-byte ids), log messages get even ids
 * from per-thread blocks (no shared write per message).  Id 0 is the empty
 * string, defined by the format itself.
 */
#include "core.h"
#include "arena.h"

#include <string.h>
#include <urcu/rculfhash.h>

/* Nodes live in a generation arena (arena.h): allocated without the
 * allocator by the interning thread, all of a parity retired at once by
 * gt_strtab_reset. */
static struct gt_garena str_arena = GT_GARENA_INIT(GT_GARENA_STR);

/*
 * Table size.  The tables do not resize themselves: liburcu's automatic
 * resize (CDS_LFHT_AUTO_RESIZE, and the ACCOUNTING it relies on) has the
 * inserting thread malloc a work item and a worker thread allocate bucket
 * tables at any moment, a fork hazard (arena.h).  Instead the advancer
 * sizes each parity's table between generations: once a generation of that
 * parity held more than two nodes per bucket, the empty table is replaced
 * by one sized for that generation (gt_strtab_reset).  Within a generation
 * the chains grow with the names; lookups stay correct, only longer.
 * st_buckets[p]: written by start (gt_strtab_init) and the advancer, read
 * by the advancer only.
 */
#define ST_MIN_BUCKETS 1024ul
#define ST_MAX_BUCKETS (1ul << 20)
static unsigned long st_buckets[2];
/* Tables replaced by larger ones: destroyed at gotrace_stop
 * (gt_strtab_destroy), not at the replacement, where a read-side walker of
 * the last generation may still stand on their bucket nodes.  Advancer
 * only; at most one per doubling. */
#define ST_OLD_MAX 16
static struct cds_lfht *st_old[2][ST_OLD_MAX];
static int st_old_n[2];

static unsigned parity_of(const struct gt_strtab *t)
{
	return t == &gt_session.strtab[1] ? 1u : 0u;
}

struct gt_str_node {
	struct cds_lfht_node node;
	/* Set (release) once the fields below are written, before the node is
	 * published in the lfht; read (acquire) by matchers.  liburcu's own
	 * publication already orders this on every CPU we support; the flag
	 * makes the order visible to ThreadSanitizer too, at no cost on x86. */
	int ready;
	uint64_t id;
	uint32_t len;
	char text[];
};

struct gt_str_key {
	const char *s;
	size_t len;
};

static uint64_t str_hash(const char *s, size_t len)
{
	/* FNV-1a over 8-byte words, then a final mix: fast for short names. */
	uint64_t h = 0xcbf29ce484222325ull ^ len;
	size_t i = 0;
	for (; i + 8 <= len; i += 8) {
		uint64_t w;
		memcpy(&w, s + i, 8);
		h = (h ^ w) * 0x100000001b3ull;
		h ^= h >> 29;
	}
	for (; i < len; i++)
		h = (h ^ (uint8_t)s[i]) * 0x100000001b3ull;
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	return h;
}

static int str_match(struct cds_lfht_node *n, const void *key)
{
	const struct gt_str_node *sn = caa_container_of(n, struct gt_str_node, node);
	const struct gt_str_key *k = key;
	if (!__atomic_load_n(&sn->ready, __ATOMIC_ACQUIRE))
		return 0;
	return sn->len == k->len && memcmp(sn->text, k->s, k->len) == 0;
}

int gt_strtab_init(struct gt_strtab *t)
{
	t->ht = cds_lfht_new(ST_MIN_BUCKETS, ST_MIN_BUCKETS, 0, 0, NULL);
	st_buckets[parity_of(t)] = ST_MIN_BUCKETS;
	t->next_id = 0;
	return t->ht ? 0 : -GOTRACE_ENOMEM;
}

/*
 * Empty the table: the advancer (flusher thread, or gotrace_stop once the
 * flusher is joined), after every thread left the table's generation.
 *
 * Safety.  Our own threads cannot hold a node any more (the seqlock wait is
 * their grace period).  No liburcu thread walks the table (it does not
 * resize itself), but a read-side walker of the generation (the unit tests
 * keep one) may still stand on a node: nodes are unlinked (cds_lfht_del,
 * under rcu_read_lock as the lfht API requires) and their memory, the
 * parity's arena slabs, is unmapped only after a grace period that begins
 * after the last unlink (gt_garena_retire: call_rcu, which never waits, so
 * that a thread that died inside a read-side section, a fatal signal in
 * gt_intern, cannot block the flusher on its way to the crash flush's park
 * point).  The callback only unmaps: liburcu's call_rcu thread never frees
 * through the allocator on our behalf (a fork landing in free() would hang
 * the child under allocators that are not fork-safe).
 *
 * Then the table is replaced for the next generation of this parity if the
 * last one outgrew it (see st_buckets): no thread can reach it until that
 * generation starts, so the swap (allocation by the advancer, never an
 * application thread) needs no synchronisation beyond the generation's
 * publication; the old table is kept until stop (st_old).
 */
void gt_strtab_reset(struct gt_strtab *t)
{
	struct cds_lfht_iter it;
	struct gt_str_node *sn;
	unsigned long n = 0;
	unsigned p = parity_of(t);
	rcu_read_lock();
	cds_lfht_for_each_entry(t->ht, &it, sn, node) {
		cds_lfht_del(t->ht, &sn->node);
		n++;
	}
	rcu_read_unlock();
	gt_garena_retire(&str_arena, p);
	__atomic_store_n(&t->next_id, 0, __ATOMIC_RELAXED);
	if (n > 2 * st_buckets[p] && st_buckets[p] < ST_MAX_BUCKETS) {
		unsigned long b = st_buckets[p];
		while (b < n && b < ST_MAX_BUCKETS)
			b *= 2;
		struct cds_lfht *nt = st_old_n[p] < ST_OLD_MAX ? cds_lfht_new(b, ST_MIN_BUCKETS, 0, 0, NULL)
		                                               : NULL;
		if (nt) {
			st_old[p][st_old_n[p]++] = t->ht;
			__atomic_store_n(&t->ht, nt, __ATOMIC_RELEASE);
			st_buckets[p] = b;
		}
	}
}

void gt_strtab_destroy(struct gt_strtab *t)
{
	if (!t->ht)
		return;
	gt_strtab_reset(t);
	cds_lfht_destroy(t->ht, NULL);
	t->ht = NULL;
	unsigned p = parity_of(t);
	while (st_old_n[p] > 0)
		cds_lfht_destroy(st_old[p][--st_old_n[p]], NULL);
}

/* Write "String id len bytes" into the thread's strings batch. */
static bool write_def(struct gt_emit *e, uint64_t id, const char *s, size_t len, bool must)
{
	uint8_t *p = gt_str_reserve(e, (uint32_t)(1 + GT_UVARINT_MAX + 2 + len), must);
	if (!p)
		return false;
	*p++ = GT_EV_STRING;
	p = gt_put_uvarint(p, id);
	p = gt_put_uvarint(p, len);
	memcpy(p, s, len);
	e->tb->str->len = (uint32_t)(p + len - e->tb->str->data);
	return true;
}

uint64_t gt_intern(struct gt_emit *e, const char *s, size_t len, bool must)
{
	if (len == 0)
		return 0;
	struct gt_strtab *tab = &gt_session.strtab[e->gen & 1];
	struct gt_str_key key = { s, len };
	uint64_t h = str_hash(s, len);
	struct cds_lfht_iter it;
	uint64_t id = 0;

	struct cds_lfht *ht = __atomic_load_n(&tab->ht, __ATOMIC_ACQUIRE);
	rcu_read_lock();
	cds_lfht_lookup(ht, h, str_match, &key, &it);
	struct cds_lfht_node *n = cds_lfht_iter_get_node(&it);
	if (n) {
		id = caa_container_of(n, struct gt_str_node, node)->id; /* matched: ready seen */
		goto out;
	}
	struct gt_str_node *sn = gt_garena_alloc(&str_arena, (unsigned)(e->gen & 1), sizeof *sn + len);
	if (!sn)
		goto out;
	sn->id = 2 * __atomic_add_fetch(&tab->next_id, 1, __ATOMIC_RELAXED) - 1;
	sn->len = (uint32_t)len;
	memcpy(sn->text, s, len);
	cds_lfht_node_init(&sn->node);
	__atomic_store_n(&sn->ready, 1, __ATOMIC_RELEASE);
	/* Define before publishing: an id another thread can see is always
	 * defined in this generation.  If we lose the race our definition is
	 * an unused (still unique) id: harmless. */
	if (!write_def(e, sn->id, s, len, must))
		goto out; /* the node's bytes are retired with the others */
	n = cds_lfht_add_unique(ht, h, str_match, &key, &sn->node);
	id = caa_container_of(n, struct gt_str_node, node)->id;
out:
	rcu_read_unlock();
	return id;
}

uint64_t gt_string_fresh(struct gt_emit *e, const char *s, size_t len, bool must)
{
	if (len == 0)
		return 0;
	struct gt_tbuf *tb = e->tb;
	if (tb->str_next == tb->str_end) {
		/* Even ids: a block of 32 from the message counter, which
		 * shares the generation's counter word space via next_id's
		 * upper half.  Kept separate to leave odd ids small. */
		uint64_t base = __atomic_fetch_add(&gt_session.msg_next[e->gen & 1], 32, __ATOMIC_RELAXED);
		tb->str_next = base;
		tb->str_end = base + 32;
	}
	uint64_t id = 2 * (tb->str_next + 1);
	if (!write_def(e, id, s, len, must))
		return 0;
	tb->str_next++;
	return id;
}
