/*
 * evstack.c: stacks on events (gotrace_options.event_stacks).
 * May call: stacktab.c (ids), symbolize.c, libunwind, src/core (strings,
 * chunks, arenas).
 *
 * The calling thread unwinds its own stack with the DWARF call-frame
 * information (libunwind's unw_backtrace, in the thread itself, before it
 * enters its critical section: see stacks.h), so that code built without
 * frame pointers (Debian's default -O2) gets its callers; when that yields
 * nothing, it walks its frame pointers instead (bounded by its stack's
 * bounds, read once per thread with pthread_getattr_np).  It drops the
 * frames inside libgotrace (and libunwind's own), and interns the PCs in
 * the current generation's event stack table.  The flusher symbolises and
 * writes the table with the generation.
 *
 * The table, one per generation parity: an lfht keyed by the PC array, for
 * lookups, plus a push-only list of every node (es_all), the table's
 * contents for the advancer and for the crash flush (which must not walk an
 * lfht: see gt_evstack_crash_walk).  Threads touch table[g % 2] only while
 * their seqlock is odd for generation g; the advancer writes and empties it
 * (gt_evstack_write) only after every thread left g, and frees the nodes
 * after a grace period (the argument is at gt_evstack_write); lookups run
 * under rcu_read_lock because the lfht's own resizing needs it.  Ids come
 * from the generation's stack id counter shared with stacktab.c
 * (gt_stack_id_new).
 */
#include "stacks.h"
#include "../core/arena.h"

#define UNW_LOCAL_ONLY
#include <libunwind.h>
#include <link.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <urcu/rculfhash.h>

#define ES_MAX GT_EVSTACK_MAX

/* Nodes live in a generation arena (arena.h): allocated without the
 * allocator by the capturing thread, all of a parity retired at once by
 * gt_evstack_write. */
static struct gt_garena es_arena = GT_GARENA_INIT(GT_GARENA_STACK);

struct es_node {
	struct cds_lfht_node node;
	/* Next node of es_all[parity]: set before the node is pushed there
	 * (CAS, release), read-only afterwards. */
	struct es_node *all;
	int ready;     /* release-stored before publication (see strtab.c) */
	int lost;      /* atomic: lost the insertion race; its id is unused */
	uint64_t id;
	int n;
	uint64_t pcs[];
};

struct es_key {
	const uint64_t *pcs;
	int n;
};

/* Created once, when the library is loaded (es_ctor: never by an
 * application thread inside a critical section, where dl_iterate_phdr's
 * loader lock and the table's allocation would be fork hazards), published
 * with a release store.  They do not resize themselves (a fork hazard: see
 * strtab.c, st_buckets); the advancer replaces the table of a parity, empty
 * and unreachable until the next generation of that parity, when the last
 * one outgrew it (gt_evstack_write), keeping the old one to the end of the
 * process (es_old: a read-side walker may still stand on it).  Threads load
 * es_ht[p] with acquire inside a critical section of parity p. */
static struct cds_lfht *es_ht[2];
static unsigned long es_buckets[2]; /* advancer-private after es_init */
#define ES_MIN_BUCKETS 256ul
#define ES_MAX_BUCKETS (1ul << 18)
#define ES_OLD_MAX 16
static struct cds_lfht *es_old[2][ES_OLD_MAX];
static int es_old_n[2];
static pthread_once_t es_once = PTHREAD_ONCE_INIT;
/* Every node created for generation g (winners and losers of the insertion
 * race), per parity: pushed (CAS, release) by the creating thread, inside
 * g, BEFORE the node is published in the lfht, so a stack id that any
 * thread can find is on the list.  Taken whole (exchange, acquire) by the
 * advancer after every thread left g; read (acquire) by the crash flush.
 * Push-only while threads are in g: no ABA, and nodes are freed only by
 * the advancer, after taking the list. */
static struct es_node *es_all[2];
/* Our own text: [lib_lo, lib_hi), found once (es_once).  In libgotrace.so
 * it is the executable segment holding es_init.  libgotrace.a is linked
 * into the program's own segment, with the program's functions: there its
 * code is the one section gotrace_text (CMakeLists.txt), whose bounds the
 * program's linker defines; weak, so that they are NULL in the shared
 * library and in the test programs linking the objects themselves. */
static uintptr_t lib_lo, lib_hi;
extern const char __start_gotrace_text[] __attribute__((weak, visibility("hidden")));
extern const char __stop_gotrace_text[] __attribute__((weak, visibility("hidden")));

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

static void es_mods_refresh(void);

static void es_init(void)
{
	uintptr_t me = (uintptr_t)es_init, lo = (uintptr_t)__start_gotrace_text,
	          hi = (uintptr_t)__stop_gotrace_text;
	if (lo && hi && me >= lo && me < hi) {
		lib_lo = lo;
		lib_hi = hi;
	} else {
		dl_iterate_phdr(find_self, (void *)me);
	}
	/* libunwind's register-state cache, per thread rather than global:
	 * the global one is guarded by a lock (taken with signals blocked) on
	 * every lookup, which application threads would contend for and which
	 * a fork could leave held in the child.  The setting is libunwind's,
	 * process-wide: a program that unwinds locally itself gets the same
	 * (correct) results from the per-thread cache. */
	unw_set_caching_policy(unw_local_addr_space, UNW_CACHE_PER_THREAD);
	es_mods_refresh(); /* before es_ht is published: see es_mods */
	for (int i = 0; i < 2; i++) {
		es_buckets[i] = ES_MIN_BUCKETS;
		__atomic_store_n(&es_ht[i], cds_lfht_new(ES_MIN_BUCKETS, ES_MIN_BUCKETS, 0, 0, NULL),
		                 __ATOMIC_RELEASE);
	}
}

__attribute__((constructor)) static void es_ctor(void)
{
	pthread_once(&es_once, es_init);
}

/* The calling thread's stack bounds (owner-private, lazily). */
static __thread uintptr_t stk_lo __attribute__((tls_model("initial-exec")));
static __thread uintptr_t stk_hi __attribute__((tls_model("initial-exec")));

/* Once per thread, at its first capture.  pthread_getattr_np allocates
 * (the affinity mask; the main thread's reads /proc/self/maps through
 * stdio): that happens under the registry lock, which the fork handlers
 * hold across a fork (session.c), so that a fork never lands inside this
 * allocation, as for a thread's registration.  Called before the caller's
 * critical section (gt_evstack_capture); inside one it would be safe too,
 * as for thread exit: nobody holds the lock while waiting for a thread to
 * leave one. */
static void stack_bounds(void)
{
	pthread_attr_t a;
	void *addr;
	size_t size;
	pthread_mutex_lock(&gt_session.reg_lock);
	stk_hi = 1; /* tried */
	if (pthread_getattr_np(pthread_self(), &a) == 0) {
		if (pthread_attr_getstack(&a, &addr, &size) == 0) {
			stk_lo = (uintptr_t)addr;
			stk_hi = (uintptr_t)addr + size;
		}
		pthread_attr_destroy(&a);
	}
	pthread_mutex_unlock(&gt_session.reg_lock);
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

#if defined(__SANITIZE_THREAD__)
/* Under ThreadSanitizer, the same unwind step by step, without the trace
 * cache: that cache is freed by a thread-specific-data destructor which,
 * like TSan's own, defers itself to the last round of destructors, runs
 * after TSan has finished the thread, and crashes in TSan's mutex
 * interceptor.  Slower, otherwise the same frames. */
static int unwind_ips(void **ips, int max)
{
	unw_context_t uc;
	unw_cursor_t c;
	unw_word_t ip;
	int k = 0;
	if (unw_getcontext(&uc) != 0 || unw_init_local(&c, &uc) < 0)
		return 0;
	do {
		if (unw_get_reg(&c, UNW_REG_IP, &ip) < 0 || ip == 0)
			break;
		ips[k++] = (void *)(uintptr_t)ip;
	} while (k < max && unw_step(&c) > 0);
	return k;
}
#else
static int unwind_ips(void **ips, int max)
{
	return unw_backtrace(ips, max);
}
#endif

/* DWARF CFI unwind of the calling thread (libunwind, local: it reads the
 * live stack and the modules' .eh_frame; its fast path, after a first
 * unwind through the same code, hits a per-thread cache of frame recipes
 * keyed by PC, and takes no lock and no allocation).  Leaf first, as
 * return addresses minus one.  The first frames are libunwind's
 * (unw_backtrace) and ours (this function and the API entry that called
 * it): everything up to the last of our frames at the leaf end is left
 * out, so the first PC kept is the application's call into libgotrace. */
static __attribute__((noinline)) int cfi_walk(uint64_t *pcs, int max)
{
	void *ips[ES_MAX + 8];
	int k = unwind_ips(ips, ES_MAX + 8);
	int i = 0;
	while (i < k && !((uintptr_t)ips[i] >= lib_lo && (uintptr_t)ips[i] < lib_hi))
		i++; /* libunwind's frames */
	if (i == k)
		return 0; /* none of ours: not a stack we can trust */
	while (i < k && (uintptr_t)ips[i] >= lib_lo && (uintptr_t)ips[i] < lib_hi)
		i++;
	int n = 0;
	for (; i < k && n < max; i++) {
		uintptr_t ip = (uintptr_t)ips[i];
		if (ip == 0)
			break;
		pcs[n++] = ip - 1;
	}
	return n;
}

void gt_evstack_walk(struct gt_evpcs *s)
{
	pthread_once(&es_once, es_init);
	s->n = cfi_walk(s->pcs, ES_MAX);
	if (s->n <= 0)
		s->n = fp_walk(s->pcs, ES_MAX);
}

struct cds_lfht *gt_evstack_ht(uint64_t gen)
{
	pthread_once(&es_once, es_init);
	return __atomic_load_n(&es_ht[gen & 1], __ATOMIC_ACQUIRE);
}

uint64_t gt_evstack_intern(struct gt_emit *e, const uint64_t *pcs, int n)
{
	if (n <= 0)
		return 0;
	if (n > ES_MAX)
		n = ES_MAX;
	pthread_once(&es_once, es_init);
	struct cds_lfht *ht = __atomic_load_n(&es_ht[e->gen & 1], __ATOMIC_ACQUIRE);
	if (!ht)
		return 0;
	struct es_key key = { pcs, n };
	uint64_t h = gt_hash_pcs(pcs, n), id = 0;
	struct cds_lfht_iter it;
	rcu_read_lock();
	cds_lfht_lookup(ht, h, es_match, &key, &it);
	struct cds_lfht_node *node = cds_lfht_iter_get_node(&it);
	if (node) {
		id = caa_container_of(node, struct es_node, node)->id;
	} else {
		struct es_node *sn = gt_garena_alloc(&es_arena, (unsigned)(e->gen & 1),
		                                     sizeof *sn + (size_t)n * sizeof *sn->pcs);
		if (sn) {
			sn->id = gt_stack_id_new(e->gen);
			sn->n = n;
			sn->lost = 0;
			memcpy(sn->pcs, pcs, (size_t)n * sizeof *sn->pcs);
			cds_lfht_node_init(&sn->node);
			__atomic_store_n(&sn->ready, 1, __ATOMIC_RELEASE);
			struct es_node **head = &es_all[e->gen & 1];
			sn->all = __atomic_load_n(head, __ATOMIC_RELAXED);
			while (!__atomic_compare_exchange_n(head, &sn->all, sn, true, __ATOMIC_RELEASE,
			                                    __ATOMIC_RELAXED))
				;
			node = cds_lfht_add_unique(ht, h, es_match, &key, &sn->node);
			id = caa_container_of(node, struct es_node, node)->id;
			if (node != &sn->node) /* on es_all: freed with the list */
				__atomic_store_n(&sn->lost, 1, __ATOMIC_RELAXED);
		}
	}
	rcu_read_unlock();
	return id;
}

/* ------------------------------------------------------ the crash flush */

/*
 * Loaded objects' executable segments, so that the crash flush can name a
 * PC that was never symbolised ("libfoo.so+0x1234", file the object's path,
 * as symbolize.c does for PCs without symbols).  Symbolisation (libdw,
 * dl_iterate_phdr: allocation, the loader lock) is impossible in a signal
 * handler, so this is prepared in advance: refreshed by the advancer at
 * every gt_evstack_write (flusher-private writes); read by the crash flush
 * only after it parked the flusher (crash.c park_flusher: the flusher's
 * seq_cst store of flusher_busy = 0, the handler's acquire load), when the
 * flusher can no longer write it.  An object loaded after the last advance
 * is not here: its PCs are written as bare addresses.
 */
#define ES_MODS 256
struct es_mod {
	uintptr_t lo, hi, base;
	char path[160];
	const char *name; /* basename, inside path */
};
static struct es_mod es_mods[ES_MODS];
static int es_nmods;
static char es_exe[160]; /* the main program's path (readlink, once) */

static int mods_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
	(void)size;
	(void)arg;
	const char *path = info->dlpi_name && *info->dlpi_name ? info->dlpi_name : NULL;
	if (!path) {
		if (!es_exe[0]) {
			ssize_t k = readlink("/proc/self/exe", es_exe, sizeof es_exe - 1);
			es_exe[k > 0 ? k : 0] = 0;
			if (k <= 0)
				memcpy(es_exe, "?", 2);
		}
		path = es_exe;
	}
	for (int i = 0; i < info->dlpi_phnum && es_nmods < ES_MODS; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X))
			continue;
		struct es_mod *m = &es_mods[es_nmods++];
		m->lo = info->dlpi_addr + ph->p_vaddr;
		m->hi = m->lo + ph->p_memsz;
		m->base = info->dlpi_addr;
		snprintf(m->path, sizeof m->path, "%s", path);
		const char *b = strrchr(m->path, '/');
		m->name = b && b[1] ? b + 1 : m->path;
	}
	return 0;
}

static void es_mods_refresh(void)
{
	es_nmods = 0;
	dl_iterate_phdr(mods_cb, NULL);
}

/* AS-safe hex formatting: "0x" and the digits of v, NUL-terminated. */
static char *put_hex(char *p, char *end, uint64_t v)
{
	char tmp[16];
	int n = 0;
	do
		tmp[n++] = "0123456789abcdef"[v & 15];
	while ((v >>= 4) != 0);
	if (end - p < n + 3)
		return p;
	*p++ = '0';
	*p++ = 'x';
	while (n > 0)
		*p++ = tmp[--n];
	*p = 0;
	return p;
}

bool gt_evstack_crash_frame(uint64_t pc, struct gt_frame *fr, char *buf, size_t len)
{
	if (gt_sym_peek(pc, fr))
		return true;
	fr->pc = pc;
	fr->line = 1;
	fr->file = "?";
	fr->func = buf;
	char *p = buf, *end = buf + len;
	*p = 0;
	for (int i = 0; i < es_nmods; i++) {
		const struct es_mod *m = &es_mods[i];
		if (pc < m->lo || pc >= m->hi)
			continue;
		size_t k = strlen(m->name);
		if (k + 20 < len) {
			memcpy(p, m->name, k);
			p += k;
			*p++ = '+';
			put_hex(p, end, pc - m->base);
			fr->file = m->path;
		}
		break;
	}
	if (!buf[0])
		put_hex(buf, end, pc);
	if (!buf[0])
		fr->func = "?";
	return false;
}

/* The crash flush, once every other thread left g (or was given up on) and
 * the flusher is parked: no node of g's list is freed while it walks (only
 * the advancer of g frees them, after taking the list), nodes are pushed
 * fully written (release) and their links never change, and a thread still
 * running (given up on) can only push more nodes in front of the head this
 * walk started from.  No lfht walk: a shrink by liburcu's resize worker
 * could free bucket tables under a walker that holds no read-side section,
 * and taking one may register the thread with urcu-bp (a lock, malloc). */
void gt_evstack_crash_walk(uint64_t g, gt_evstack_fn fn, void *arg)
{
	for (struct es_node *sn = __atomic_load_n(&es_all[g & 1], __ATOMIC_ACQUIRE); sn;
	     sn = sn->all) {
		if (__atomic_load_n(&sn->lost, __ATOMIC_RELAXED))
			continue;
		if (!fn(arg, sn->id, sn->pcs, sn->n))
			return;
	}
}

/*
 * Advancer, after every thread left g: write g's event stacks (symbolised)
 * into Stacks batches of g and empty the table.
 *
 * Safety of the reset (as in strtab.c, gt_strtab_reset): no thread of ours
 * can hold a node (they all left g), but a read-side walker may still stand
 * on one.  So the nodes are unlinked (cds_lfht_del under rcu_read_lock) and
 * their memory, the parity's arena slabs, is unmapped after a grace period
 * that begins after the last unlink (gt_garena_retire: call_rcu, which
 * never waits: a thread that died inside a read-side section cannot block
 * the flusher on its way to the crash flush's park point).  The list head
 * is taken with an exchange; pushes for this parity resume only in g + 2.
 */
void gt_evstack_prefetch(uint64_t g)
{
	/* No thread pushes onto g's list any more (all left g); nodes are
	 * freed only by gt_evstack_write. */
	struct gt_frame fr;
	for (const struct es_node *sn = __atomic_load_n(&es_all[g & 1], __ATOMIC_ACQUIRE); sn; sn = sn->all) {
		if (__atomic_load_n(&sn->lost, __ATOMIC_RELAXED))
			continue;
		for (int k = 0; k < sn->n; k++)
			gt_sym_lookup(sn->pcs[k], &fr);
	}
}

void gt_evstack_write(uint64_t g, uint64_t now)
{
	struct cds_lfht *ht = __atomic_load_n(&es_ht[g & 1], __ATOMIC_ACQUIRE);
	if (!ht)
		return;
	es_mods_refresh();
	struct es_node *list = __atomic_exchange_n(&es_all[g & 1], NULL, __ATOMIC_ACQUIRE);
	struct gt_emit e = { .t = &gt_advancer, .gen = g, .tb = &gt_advancer.tb[g & 1], .now = now };
	if (e.tb->gen != g) {
		e.tb->gen = g;
		e.tb->str_next = e.tb->str_end = 0;
	}
	static struct gt_frame fr[ES_MAX]; /* flusher-private */
	struct gt_chunk *c = NULL;
	unsigned long nodes = 0;
	rcu_read_lock();
	for (struct es_node *sn = list; sn; sn = sn->all) {
		if (__atomic_load_n(&sn->lost, __ATOMIC_RELAXED))
			continue; /* never in the table; its id is unused */
		cds_lfht_del(ht, &sn->node);
		nodes++;
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
	}
	rcu_read_unlock();
	gt_garena_retire(&es_arena, (unsigned)(g & 1));
	if (c)
		gt_queue_push(c);
	unsigned p = (unsigned)(g & 1);
	if (nodes > 2 * es_buckets[p] && es_buckets[p] < ES_MAX_BUCKETS && es_old_n[p] < ES_OLD_MAX) {
		unsigned long b = es_buckets[p];
		while (b < nodes && b < ES_MAX_BUCKETS)
			b *= 2;
		struct cds_lfht *nt = cds_lfht_new(b, ES_MIN_BUCKETS, 0, 0, NULL);
		if (nt) {
			es_old[p][es_old_n[p]++] = ht;
			__atomic_store_n(&es_ht[p], nt, __ATOMIC_RELEASE);
			es_buckets[p] = b;
		}
	}
}
