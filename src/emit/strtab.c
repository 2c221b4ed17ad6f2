/*
 * strtab.c: per-generation string table.
 *
 * Ids: interned names get odd ids from the generation's counter (so the
 * first names of a generation have 1-byte ids), log messages get even ids
 * from per-thread blocks (no shared write per message).  Id 0 is the empty
 * string, defined by the format itself.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>
#include <urcu/rculfhash.h>

struct gt_str_node {
	struct cds_lfht_node node;
	/* Reclamation (gt_strtab_reset): the nodes of one reset form a list
	 * through dead (written by the resetter, release; read by the
	 * callback, acquire: the order ThreadSanitizer sees), and the first
	 * one's rh carries the list to call_rcu. */
	struct rcu_head rh;
	struct gt_str_node *dead;
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
	t->ht = cds_lfht_new(64, 64, 0, CDS_LFHT_AUTO_RESIZE | CDS_LFHT_ACCOUNTING, NULL);
	t->next_id = 0;
	return t->ht ? 0 : -GOTRACE_ENOMEM;
}

static void str_batch_free(struct rcu_head *rh)
{
	struct gt_str_node *sn = caa_container_of(rh, struct gt_str_node, rh);
	while (sn) {
		struct gt_str_node *next = __atomic_load_n(&sn->dead, __ATOMIC_ACQUIRE);
		free(sn);
		sn = next;
	}
}

/*
 * Empty the table: the advancer (flusher thread, or gotrace_stop once the
 * flusher is joined), after every thread left the table's generation.
 *
 * Safety.  Our own threads cannot hold a node any more (the seqlock wait is
 * their grace period), but liburcu's automatic-resize worker can: it walks
 * the bucket chains, regular nodes included, under its own read-side
 * critical section (urcu-bp flavor, the flavor of this table), possibly
 * still growing the table after the generation's insertions.  Freeing a
 * node right after cds_lfht_del let that walk follow freed memory.  So
 * nodes are unlinked (cds_lfht_del, under rcu_read_lock as the lfht API
 * requires) into a private list, and the list is freed by call_rcu, i.e.
 * after a grace period that begins after the last cds_lfht_del: every
 * read-side section that could still reach a node (the worker's, or any
 * thread's) has ended by then.
 *
 * Why call_rcu and not synchronize_rcu: the caller must not wait for
 * readers.  A thread that died inside a read-side section (a fatal signal
 * in gt_intern: the crash handler runs on that thread, which never leaves
 * the section) would block synchronize_rcu forever; the flusher would then
 * never reach a park point and the crash flush would give up (crash.c).
 * call_rcu only enqueues (wait-free) and wakes liburcu's call_rcu thread;
 * it takes no lock of ours, may be called inside or outside a read-side
 * section, and cannot deadlock with the flusher, the advancer or writers.
 * The nodes are freed one grace period late (normally milliseconds; never
 * while a thread sits dead in a read-side section, nor in a forked child
 * whose parent had started liburcu's call_rcu thread, which fork does not
 * copy: a bounded leak there, instead of a hang).
 */
void gt_strtab_reset(struct gt_strtab *t)
{
	struct cds_lfht_iter it;
	struct gt_str_node *sn, *dead = NULL;
	rcu_read_lock();
	cds_lfht_for_each_entry(t->ht, &it, sn, node) {
		cds_lfht_del(t->ht, &sn->node);
		__atomic_store_n(&sn->dead, dead, __ATOMIC_RELEASE);
		dead = sn;
	}
	rcu_read_unlock();
	if (dead)
		call_rcu(&dead->rh, str_batch_free);
	__atomic_store_n(&t->next_id, 0, __ATOMIC_RELAXED);
}

void gt_strtab_destroy(struct gt_strtab *t)
{
	if (!t->ht)
		return;
	gt_strtab_reset(t);
	cds_lfht_destroy(t->ht, NULL);
	t->ht = NULL;
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
	struct gt_strtab *tab = &gt.strtab[e->gen & 1];
	struct gt_str_key key = { s, len };
	uint64_t h = str_hash(s, len);
	struct cds_lfht_iter it;
	uint64_t id = 0;

	rcu_read_lock();
	cds_lfht_lookup(tab->ht, h, str_match, &key, &it);
	struct cds_lfht_node *n = cds_lfht_iter_get_node(&it);
	if (n) {
		id = caa_container_of(n, struct gt_str_node, node)->id; /* matched: ready seen */
		goto out;
	}
	struct gt_str_node *sn = malloc(sizeof *sn + len);
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
	if (!write_def(e, sn->id, s, len, must)) {
		free(sn);
		goto out;
	}
	n = cds_lfht_add_unique(tab->ht, h, str_match, &key, &sn->node);
	id = caa_container_of(n, struct gt_str_node, node)->id;
	if (n != &sn->node)
		free(sn);
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
		uint64_t base = __atomic_fetch_add(&gt.msg_next[e->gen & 1], 32, __ATOMIC_RELAXED);
		tb->str_next = base;
		tb->str_end = base + 32;
	}
	uint64_t id = 2 * (tb->str_next + 1);
	if (!write_def(e, id, s, len, must))
		return 0;
	tb->str_next++;
	return id;
}
