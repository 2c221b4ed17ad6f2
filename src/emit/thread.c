/*
 * thread.c: the thread registry.  Threads register on their first traced
 * call; their record lives until the thread exits (then the advancer reaps
 * it once its last events are collected).
 * May call: event.c, sched.c (exit events), src/core -- and the registry
 * hooks (core.h), which the session layer installs; it names no layer above.
 */
#include "emit.h"
#include "../core/registry.h"
#include "../core/arena.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/* The thread's name survives sessions (gotrace_thread_name may be called
 * before start). */
static __thread char tls_name[64] __attribute__((tls_model("initial-exec")));
/* The entry set with gotrace_thread_entry*: kept for the thread's later
 * sessions, copied into each record it registers. */
static __thread uintptr_t tls_entry_fn __attribute__((tls_model("initial-exec")));
static __thread char tls_entry_name[64] __attribute__((tls_model("initial-exec")));

static pthread_key_t exit_key;
static pthread_once_t exit_key_once = PTHREAD_ONCE_INIT;

static void thread_exit(void *arg);
static void name_pending_take(pthread_t self);

/* Names given to threads not registered (yet) in the session: a thread
 * named by its creator right after pthread_create usually has not made
 * its first traced call.  Under reg_lock; taken by the thread's
 * registration (same lock, so a namer either finds the record published
 * or leaves the name here before the registration looks).  Small and
 * overwritten oldest first: a name for a thread that never registers must
 * not pin memory (and pthread_t values are reused). */
#define NAME_PENDING 16
static struct {
	pthread_t th;
	bool used;
	char name[64];
} name_pending[NAME_PENDING];
static unsigned name_pending_next;

static void make_key(void)
{
	pthread_key_create(&exit_key, thread_exit);
}

/* ------------------------------------------------------------------ P ids */

/* Under reg_lock.  A released P id is reused only two generations later, so
 * the parser has long seen its ProcStop when a new thread states it Idle. */
uint64_t gt_p_alloc(void)
{
	uint64_t gen = __atomic_load_n(&gt_session.gen, __ATOMIC_RELAXED);
	for (size_t i = 0; i < gt_session.free_p_n; i++) {
		if (gt_session.free_p_gen[i] + 2 <= gen) {
			uint64_t p = gt_session.free_p[i];
			gt_session.free_p[i] = gt_session.free_p[gt_session.free_p_n - 1];
			gt_session.free_p_gen[i] = gt_session.free_p_gen[gt_session.free_p_n - 1];
			gt_session.free_p_n--;
			return p;
		}
	}
	return gt_session.next_p++;
}

void gt_p_free(uint64_t p, uint64_t gen)
{
	if (gt_session.free_p_n == gt_session.free_p_cap) {
		size_t cap = gt_session.free_p_cap ? 2 * gt_session.free_p_cap : 64;
		uint64_t *a = realloc(gt_session.free_p, cap * sizeof *a);
		if (!a)
			return; /* the id is simply not reused */
		gt_session.free_p = a;
		uint64_t *b = realloc(gt_session.free_p_gen, cap * sizeof *b);
		if (!b)
			return;
		gt_session.free_p_gen = b;
		gt_session.free_p_cap = cap;
	}
	gt_session.free_p[gt_session.free_p_n] = p;
	gt_session.free_p_gen[gt_session.free_p_n] = gen;
	gt_session.free_p_n++;
}

/* ----------------------------------------------------------- registration */

/* The thread's chosen entry into its record (owner; at registration, or
 * at the first gotrace_thread_entry* call of the session). */
static void entry_copy(struct gt_thread *t)
{
	if (__atomic_load_n(&t->entry_set, __ATOMIC_RELAXED) != 0)
		return;
	if (tls_entry_fn) {
		t->entry_fn = tls_entry_fn;
		__atomic_store_n(&t->entry_set, 1, __ATOMIC_RELEASE);
	} else if (tls_entry_name[0]) {
		memcpy(t->entry_name, tls_entry_name, sizeof t->entry_name);
		__atomic_store_n(&t->entry_set, 2, __ATOMIC_RELEASE);
	}
}

static void entry_set(uintptr_t fn, const char *name)
{
	if (tls_entry_fn || tls_entry_name[0])
		return; /* the first call wins */
	if (fn)
		tls_entry_fn = fn;
	else
		snprintf(tls_entry_name, sizeof tls_entry_name, "%s", name);
	struct gt_thread *t = gt_tls_self;
	if (t && gt_tls_session == __atomic_load_n(&gt_session.session, __ATOMIC_RELAXED))
		entry_copy(t);
}

void gotrace_thread_entry_(const void *fn)
{
	if (fn)
		entry_set((uintptr_t)fn, NULL);
}

void gotrace_thread_entry_name(const char *name)
{
	if (name && *name)
		entry_set(0, name);
}

/* Record the outermost frames of the thread's stack outside the C library
 * (start_thread, clone and __libc_start_main are skipped), outermost first.
 * The flusher symbolises them and takes the first that is not a program
 * entry stub such as _start (not visible to dladdr) as the entry function. */
/* glibc's backtrace(3) by its own name: a program linking libgotrace.a
 * also links libunwind, before the C library, and libunwind's weak
 * backtrace then interposes glibc's for the whole process.  libunwind's
 * first unwind in a thread is slow (dl_iterate_phdr under the loader
 * lock, .eh_frame parsing, where libgcc's uses the lock-free
 * _dl_find_object), and this runs under the registry lock, which the
 * flusher takes too: with libunwind here, emit_test_crash's
 * test_stress_random_kills (SIGABRT while threads register) lost 4 or 5
 * crash flushes in 100 runs, none with glibc's.  Under ThreadSanitizer
 * libunwind's per-thread cache also crashes at thread exit (evstack.c). */
extern int __backtrace(void **buffer, int size);

void gt_entry_capture(struct gt_thread *t)
{
	void *pcs[128];
	int n = __backtrace(pcs, 128);
	t->entry_n = 0;
	Dl_info self, info;
	if (!dladdr((void *)gt_entry_capture, &self))
		self.dli_fbase = NULL;
	for (int i = n - 1; i >= 0 && t->entry_n < GT_ENTRY_MAX; i--) {
		if (!dladdr(pcs[i], &info))
			continue;
		if (info.dli_fbase == self.dli_fbase)
			break; /* reached our own frames: nothing above is user code */
		const char *f = info.dli_fname ? info.dli_fname : "";
		const char *base = strrchr(f, '/');
		base = base ? base + 1 : f;
		/* The C library and sanitizer runtimes wrap thread starts. */
		if (strncmp(base, "libc.so", 7) == 0 || strncmp(base, "ld-linux", 8) == 0 ||
		    strncmp(base, "libtsan.so", 10) == 0 || strncmp(base, "libasan.so", 10) == 0 ||
		    strncmp(base, "libubsan.so", 11) == 0 || strncmp(base, "liblsan.so", 10) == 0)
			continue;
		if (info.dli_sname && strcmp(info.dli_sname, "_start") == 0)
			continue;
		t->entry_pc[t->entry_n++] = (uintptr_t)pcs[i] - 1; /* inside the call */
	}
}

/* What a record holds of an ended session, back to where it came from:
 * its uncollected batches (pooled, mapped or malloced: gt_chunk_release
 * knows) and the long names of regions still open or owed an end (the
 * block pool).  The slots and names are left dangling: the caller resets
 * or frees the record. */
static void record_release(struct gt_thread *t)
{
	for (int i = 0; i < 2; i++) {
		gt_chunk_release(t->tb[i].ev);
		gt_chunk_release(t->tb[i].str);
	}
	for (uint32_t i = 0; i < t->depth && i < GT_REGION_DEPTH; i++)
		gt_block_put(t->regions[i].blk);
	for (uint32_t i = 0; i < t->owed_n; i++)
		gt_block_put(t->owed[i].blk);
}

/* Called with reg_lock held: fork (atfork_prepare takes reg_lock) never
 * lands inside this allocation. */
static struct gt_thread *record_new(void)
{
	/* On a cache-line boundary (the record's lines, core.h): calloc
	 * only promises 16 bytes. */
	void *mem = NULL;
	if (posix_memalign(&mem, GT_THREAD_ALIGN, sizeof(struct gt_thread)) != 0)
		return NULL;
	struct gt_thread *t = memset(mem, 0, sizeof *t);
	CDS_INIT_LIST_HEAD(&t->node);
	t->tid = (uint64_t)syscall(SYS_gettid);
	t->pth = pthread_self();
	return t;
}

/* Reset the per-session part of a record (owner, before publishing).  What
 * an earlier session left is freed, not forgotten: names of regions still
 * open (or owed an end) at its stop, and batches it never collected (a
 * crash flush writes them in place).  Nobody else can reach them: the
 * record was unlinked at that stop, after every thread left its critical
 * section, and a slot never keeps a chunk handed to the flusher. */
static void record_reset(struct gt_thread *t)
{
	/* Generation tags need no reset: generation numbers are never reused
	 * (gt_session.gen).  The advancer's snapshot is taken only of threads that are
	 * current at the snapshot: a thread that registers between a snapshot
	 * and the advancer's statements must not be stated from a snapshot of
	 * an earlier session (or generation), so it starts as NEW. */
	t->snap_state = GT_TS_NEW;
	t->snap_cur = NULL;
	t->snap_sys = t->snap_gword = t->snap_cword = 0;
	record_release(t);
	memset(t->tb, 0, sizeof t->tb);
	t->status_gen = 0;
	t->state = GT_TS_NEW;
	t->sys = GT_SYS_NONE;
	t->sys_depth = 0;
	memset(&t->own, 0, sizeof t->own);
	t->cur = NULL;     /* explicit goroutines of an earlier session */
	t->xg_base = 0;
	t->exit_written = false;
	t->depth = t->owed_n = t->depth_overflow = 0;
	t->task_id = t->task_lim = 0;
	t->drop_note = 0;
	for (int i = 0; i < GT_SCACHE_N; i++)
		t->scache[i].ptr = NULL;
	t->entry_sym = NULL;
	t->zombie = false;
	t->adopt = NULL; /* dropped by thread_register before it locked */
}

static struct gt_thread *thread_register(uint64_t goid, uint64_t want_session, void *adopt);

struct gt_thread *gt_thread_self_slow(void)
{
	return thread_register(0, 0, NULL);
}

struct gt_thread *gt_thread_register_as(uint64_t goid, uint64_t session, void *adopt)
{
	return thread_register(goid, session, adopt);
}

/* Register the calling thread in the current session: with a new goroutine
 * id, or (goid != 0) with goid, adopting adopt, only in session
 * want_session. */
static struct gt_thread *thread_register(uint64_t goid, uint64_t want_session, void *adopt)
{
	if (!__atomic_load_n(&gotrace_on_, __ATOMIC_ACQUIRE))
		return NULL;
	pthread_once(&exit_key_once, make_key);
	/* Make urcu-bp register this thread now, outside any signal handler,
	 * so later read-side sections (interning) never allocate.  Not under
	 * reg_lock: atfork_prepare takes urcu-bp's registry lock first. */
	rcu_read_lock();
	rcu_read_unlock();
	/* An adoption an earlier session never wrote: dropped here, as its
	 * record may be freed, which takes reg_lock. */
	if (gt_tls_self && gt_tls_self->adopt)
		gt_xg_adopt_drop(gt_tls_self);

	pthread_mutex_lock(&gt_session.reg_lock);
	struct gt_thread *t = gt_tls_self;
	if (!t) {
		t = record_new();
		if (!t) {
			pthread_mutex_unlock(&gt_session.reg_lock);
			return NULL;
		}
		gt_tls_self = t;
		pthread_setspecific(exit_key, t);
	}
	uint64_t session = __atomic_load_n(&gt_session.session, __ATOMIC_RELAXED);
	if (!__atomic_load_n(&gotrace_on_, __ATOMIC_RELAXED) || (goid != 0 && session != want_session)) {
		pthread_mutex_unlock(&gt_session.reg_lock);
		return NULL;
	}
	if (t->linked) { /* still linked from an earlier session: cannot be */
		pthread_mutex_unlock(&gt_session.reg_lock);
		return NULL;
	}
	record_reset(t);
	t->goid = goid != 0 ? goid : ++gt_session.next_goid;
	t->adopt = adopt;
	t->own.id = t->goid; /* published with the record (session release) */
	t->p = gt_p_alloc();
	name_pending_take(t->pth); /* a name given before we registered */
	snprintf(t->name, sizeof t->name, "%s", tls_name);
	__atomic_store_n(&t->name_req_new, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&t->name_dirty, t->name[0] != 0, __ATOMIC_RELAXED);
	gt_entry_capture(t);
	t->entry_set = 0;
	entry_copy(t);
	const struct gt_thread_hooks *hooks = gt_thread_hooks_get();
	if (hooks && hooks->registering)
		hooks->registering(t);
	t->linked = true;
	/* Publish: walkers acquire t->session before reading the record (the
	 * RCU list orders this too; the explicit pair is what TSan can see). */
	__atomic_store_n(&t->session, session, __ATOMIC_RELEASE);
	gt_reg_add_tail(&t->node, &gt_session.threads);
	__atomic_add_fetch(&gt_session.threads_seen, 1, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&gt_session.reg_lock);
	gt_tls_session = session;
	if (hooks && hooks->registered)
		hooks->registered(t);
	return t;
}

/* Called when tracing stops (flusher joined, every thread out of its
 * critical section): records still owned by live threads are unlinked
 * (their threads re-register in a later session); zombies are freed. */
void gt_threads_release_all(void)
{
	struct gt_thread *t, *tmp, *dead = NULL;
	pthread_mutex_lock(&gt_session.reg_lock);
	memset(name_pending, 0, sizeof name_pending); /* this session's */
	cds_list_for_each_entry_safe(t, tmp, &gt_session.threads, node) {
		gt_reg_del(&t->node);
		t->linked = false;
		if (t->zombie) {
			t->dead_next = dead;
			dead = t;
		}
	}
	pthread_mutex_unlock(&gt_session.reg_lock);
	synchronize_rcu();
	for (t = dead; t; t = tmp) {
		tmp = t->dead_next;
		gt_thread_free(t);
	}
}

/* Free a record nobody can reach any more. */
void gt_thread_free(struct gt_thread *t)
{
	record_release(t);
	gt_xg_adopt_drop(t);
	free(t);
}

/* ---------------------------------------------------------------- exiting */

static void write_exit(struct gt_emit *e)
{
	struct gt_thread *t = e->t;
	uint8_t *p = gt_ev_reserve(e, 8, true);
	if (!p)
		return;
	p = gt_ev_start(e, p, GT_EV_GO_DESTROY);
	p = gt_ev_start(e, p, GT_EV_PROC_STOP);
	gt_ev_commit(e, p);
	t->exit_written = true;
}

static void thread_exit(void *arg)
{
	struct gt_thread *t = arg;
	const struct gt_thread_hooks *hooks = gt_thread_hooks_get();
	if (hooks && hooks->exiting)
		hooks->exiting(t);
	if (gt_tls_self != t)
		return;
	gt_tls_self = NULL;
	gt_tls_session = 0;
	bool keep = false;

	gt_seq_enter(&t->seq);
	uint64_t gen = __atomic_load_n(&gt_session.gen, __ATOMIC_ACQUIRE);
	pthread_mutex_lock(&gt_session.reg_lock);
	bool mine = t->linked && t->session == __atomic_load_n(&gt_session.session, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&gt_session.reg_lock);
	if (gen != 0 && mine && t->state != GT_TS_EXITED) {
		struct gt_emit e = { .t = t, .gen = gen, .tb = &t->tb[gen & 1], .now = gt_now() };
		if (e.tb->gen != gen) {
			e.tb->gen = gen;
			e.tb->str_next = e.tb->str_end = 0;
			e.tb->dropped = 0;
			e.tb->stated = false;
		}
		/* Leaving inside a syscall bracket or blocked: end it first
		 * (sched.c), then exit as a running thread. */
		if (t->state == GT_TS_SYSCALL || t->state == GT_TS_BLOCKED || t->state == GT_TS_XG)
			gt_sched_settle(&e);
		/* An adoption not written yet (gotrace_thread_adopt was short
		 * of memory): the goroutine runs before it ends. */
		if (t->state == GT_TS_NEW && t->adopt)
			(void)gt_write_status(&e);
		if (t->state == GT_TS_RUNNING) {
			if (t->status_gen == gen || gt_write_status(&e))
				write_exit(&e);
		} else {
			t->exit_written = true; /* never appeared: nothing to end */
		}
		t->exit_ts = e.now;
		t->exit_gen = gen;
		__atomic_store_n(&t->state, GT_TS_EXITED, __ATOMIC_RELEASE); /* publishes exit_* */
	}
	gt_seq_leave(&t->seq);
	if (hooks && hooks->left)
		hooks->left(t);

	pthread_mutex_lock(&gt_session.reg_lock);
	if (t->linked) {
		t->zombie = true; /* the advancer collects and frees it */
		keep = true;
	}
	pthread_mutex_unlock(&gt_session.reg_lock);
	if (!keep)
		gt_thread_free(t);
}

void gotrace_thread_name(const char *name)
{
	snprintf(tls_name, sizeof tls_name, "%s", name ? name : "");
	struct gt_thread *t = gt_tls_self;
	if (!t || gt_tls_session != __atomic_load_n(&gt_session.session, __ATOMIC_RELAXED))
		return;
	/* Owner-private fields, changed inside the critical section so that
	 * the label is written in a consistent generation. */
	gt_seq_enter(&t->seq);
	snprintf(t->name, sizeof t->name, "%s", tls_name);
	__atomic_store_n(&t->name_dirty, t->name[0] != 0, __ATOMIC_RELAXED);
	gt_seq_leave(&t->seq);
}

/* ------------------------------------------- names given by other threads */


/* reg_lock held, the calling thread registering: its pending name, if
 * any, becomes its name (tls_name). */
static void name_pending_take(pthread_t self)
{
	for (int i = 0; i < NAME_PENDING; i++)
		if (name_pending[i].used && pthread_equal(name_pending[i].th, self)) {
			snprintf(tls_name, sizeof tls_name, "%s", name_pending[i].name);
			name_pending[i].used = false;
		}
}

void gt_thread_take_name(struct gt_thread *t)
{
	if (!__atomic_load_n(&t->name_req_new, __ATOMIC_RELAXED) ||
	    !__atomic_exchange_n(&t->name_req_new, 0, __ATOMIC_ACQUIRE))
		return;
	/* The bytes are acquire loads (no fence: ThreadSanitizer knows no
	 * fences): the second read of the counter cannot move before them,
	 * and a byte of a later write, a release store after that write's
	 * odd counter, makes the second read see the counter moved. */
	char tmp[sizeof t->name_req];
	uint32_t s0 = __atomic_load_n(&t->name_req_seq, __ATOMIC_ACQUIRE);
	for (size_t i = 0; i < sizeof tmp; i++)
		tmp[i] = __atomic_load_n(&t->name_req[i], __ATOMIC_ACQUIRE);
	if ((s0 & 1) || __atomic_load_n(&t->name_req_seq, __ATOMIC_RELAXED) != s0) {
		/* A namer is writing: its name_req_new store comes next. */
		return;
	}
	tmp[sizeof tmp - 1] = 0;
	memcpy(t->name, tmp, sizeof t->name);
	/* Kept for the thread's later sessions, as its own name would be. */
	memcpy(tls_name, tmp, sizeof tls_name);
}

int gotrace_thread_name_of(pthread_t th, const char *name)
{
	if (!name)
		name = "";
	if (pthread_equal(th, pthread_self())) {
		gotrace_thread_name(name);
		return 0;
	}
	if (!__atomic_load_n(&gotrace_on_, __ATOMIC_ACQUIRE))
		return -GOTRACE_ENOTON;
	pthread_mutex_lock(&gt_session.reg_lock);
	struct gt_thread *t, *found = NULL;
	/* The newest record of th: an exited thread's pthread_t may be reused
	 * by a later one, registered after it. */
	cds_list_for_each_entry(t, &gt_session.threads, node)
		if (pthread_equal(t->pth, th))
			found = t;
	if (found) {
		uint32_t seq = found->name_req_seq;
		__atomic_store_n(&found->name_req_seq, seq + 1, __ATOMIC_RELAXED);
		size_t n = strnlen(name, sizeof found->name_req - 1);
		for (size_t i = 0; i < sizeof found->name_req; i++) /* release: after the odd count */
			__atomic_store_n(&found->name_req[i], i < n ? name[i] : 0, __ATOMIC_RELEASE);
		__atomic_store_n(&found->name_req_seq, seq + 2, __ATOMIC_RELEASE);
		/* name_req_new before name_dirty, both seq_cst: see the owner's
		 * clear-then-check in event.c's prologue. */
		__atomic_store_n(&found->name_req_new, 1, __ATOMIC_SEQ_CST);
		__atomic_store_n(&found->name_dirty, 1, __ATOMIC_SEQ_CST);
	} else {
		int slot = -1;
		for (int i = 0; i < NAME_PENDING && slot < 0; i++)
			if (name_pending[i].used && pthread_equal(name_pending[i].th, th))
				slot = i;
		if (slot < 0)
			slot = (int)(name_pending_next++ % NAME_PENDING);
		name_pending[slot].th = th;
		name_pending[slot].used = true;
		snprintf(name_pending[slot].name, sizeof name_pending[slot].name, "%s", name);
	}
	pthread_mutex_unlock(&gt_session.reg_lock);
	return 0;
}
