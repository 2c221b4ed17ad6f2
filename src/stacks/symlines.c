/*
 * symlines.c: source file and line of PCs, found on a thread of the
 * library's own ("gotrace-sym") so that loading a module's DWARF -- tens to
 * hundreds of milliseconds of decompression and parsing for a library with
 * separate debug info, such as libc with libc6-dbg -- never runs inside a
 * generation's advance.  Its only client is the flusher's symbol cache
 * (symbolize.c): the flusher asks, the resolver answers, and the flusher
 * waits for answers only as long as gt_symlines_wait allows.
 *
 * The resolver owns its own libdw session (a Dwfl is not thread-safe; the
 * flusher keeps its own for function names, which never touch DWARF).
 * May call: libdw, src/core (the library_thread hook, core.h).
 */
#include "stacks.h"
#include "symlines.h"
#include "dwfl.h"

#include <elfutils/libdwfl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/*
 * The mailbox between the flusher and the resolver.  Every field is read
 * and written under mu, by those two threads only (never from a signal
 * handler: the crash path reads only the flusher's cache).
 *   ask/nask: PCs the flusher asked for that the resolver has not taken;
 *   ans/nans: answers the flusher has not taken (file: malloc'd by the
 *             resolver, owned by the flusher once taken; NULL: no line);
 *   pending:  asked and not yet answered (flusher adds, resolver subtracts
 *             as it publishes each module's answers); `done` is signalled
 *             whenever it drops;
 *   running:  a resolver thread exists (the flusher starts it, stop joins);
 *   stop:     the resolver is to exit (set by gt_symlines_stop);
 *   park:     a fork is being made (atfork prepare sets it, parent clears
 *             it); the resolver stops at its next park point, where it
 *             holds no lock and is in no allocator, and says so in parked
 *             (idle: waiting for questions, which is as good).
 * Why the resolver parks: a thread inside malloc at fork() leaves the
 * allocator's lock held in the child for good with allocators that have no
 * fork handlers of their own (AddressSanitizer's), and libdw allocates
 * all the time.  At fork the child gets a fresh mailbox
 * (gt_symlines_atfork_child): the resolver does not exist there, and what
 * it held stays unowned.
 */
static struct {
	pthread_mutex_t mu;
	pthread_cond_t work, done;
	uint64_t *ask;
	size_t nask, cask;
	struct gt_line_answer *ans;
	size_t nans, cans;
	size_t pending;
	bool running, stop, park, parked, idle;
	pthread_t th;
	uint32_t epoch; /* bumped when a resolver's unanswered questions are lost */
} box = {
	.mu = PTHREAD_MUTEX_INITIALIZER,
	.work = PTHREAD_COND_INITIALIZER,
	.done = PTHREAD_COND_INITIALIZER,
};

/* Test hook (tests/unit/test_symlines.c): the resolver sleeps this long
 * before each batch, standing for a module whose DWARF takes that long to
 * load.  Written by the test (atomic), read by the resolver. */
uint64_t gt_symlines_stall_ns;

/* ------------------------------------------------------------- resolver */

/* Resolver-private: its libdw session (kept for the process lifetime, one
 * resolver thread at a time) and the modules whose DWARF it has loaded. */
static Dwfl *rdwfl;
#define WARM_MAX 64
static Dwfl_Module *warm[WARM_MAX];
static int nwarm;

static void rreport(void)
{
	gt_dwfl_report(&rdwfl);
	nwarm = 0; /* modules may have been replaced */
}

static bool is_warm(Dwfl_Module *m)
{
	for (int i = 0; i < nwarm; i++)
		if (warm[i] == m)
			return true;
	return false;
}

/* Written once by the preload library's constructor, before tracing
 * starts (before any resolver thread exists); read by the resolver. */
bool gt_symlines_no_libc;

/* The C library and the dynamic loader, by file name. */
static bool is_libc(const char *path)
{
	if (!path)
		return false;
	const char *b = strrchr(path, '/');
	b = b ? b + 1 : path;
	return strncmp(b, "libc.so", 7) == 0 || strncmp(b, "ld-linux", 8) == 0;
}

struct item {
	uint64_t pc;
	Dwfl_Module *m;
	uint64_t span; /* the module's address span: a cheap proxy for its DWARF */
	bool warm;
};

/* Warm modules first (their lines cost microseconds), then cold ones from
 * the smallest: the program's own small objects are answered before libc's
 * debug file is decompressed. */
static int item_cmp(const void *a, const void *b)
{
	const struct item *x = a, *y = b;
	if (x->warm != y->warm)
		return x->warm ? -1 : 1;
	if (x->span != y->span)
		return x->span < y->span ? -1 : 1;
	if (x->m != y->m)
		return (uintptr_t)x->m < (uintptr_t)y->m ? -1 : 1;
	return 0;
}

/* Between two PCs: wait here while a fork is being made. */
static void park_point(void)
{
	pthread_mutex_lock(&box.mu);
	if (box.park) {
		box.parked = true;
		pthread_cond_broadcast(&box.done);
		while (box.park && !box.stop)
			pthread_cond_wait(&box.work, &box.mu);
		box.parked = false;
	}
	pthread_mutex_unlock(&box.mu);
}

static void publish(struct gt_line_answer *a, size_t n)
{
	pthread_mutex_lock(&box.mu);
	if (box.nans + n > box.cans) {
		size_t nc = box.cans ? box.cans : 64;
		while (nc < box.nans + n)
			nc *= 2;
		struct gt_line_answer *na = realloc(box.ans, nc * sizeof *na);
		if (!na) { /* answers lost: the frames keep no line */
			for (size_t i = 0; i < n; i++)
				free(a[i].file);
			n = 0;
		} else {
			box.ans = na;
			box.cans = nc;
		}
	}
	memcpy(box.ans + box.nans, a, n * sizeof *a);
	box.nans += n;
	box.pending -= box.pending < n ? box.pending : n;
	pthread_cond_broadcast(&box.done);
	pthread_mutex_unlock(&box.mu);
}

static void resolve_batch(const uint64_t *pcs, size_t n)
{
	struct item *it = malloc(n * sizeof *it);
	struct gt_line_answer *out = malloc(n * sizeof *out);
	if (!it || !out) {
		free(it);
		free(out);
		struct gt_line_answer none;
		for (size_t i = 0; i < n; i++) {
			none = (struct gt_line_answer){ .pc = pcs[i] };
			publish(&none, 1);
		}
		return;
	}
	if (!rdwfl)
		rreport();
	bool refreshed = false;
	for (size_t i = 0; i < n; i++) {
		Dwfl_Module *m = rdwfl ? dwfl_addrmodule(rdwfl, pcs[i]) : NULL;
		if (!m && rdwfl && !refreshed) { /* a library loaded since */
			rreport();
			refreshed = true;
			/* Earlier items' module pointers may be stale now. */
			for (size_t j = 0; j < i; j++)
				it[j].m = dwfl_addrmodule(rdwfl, it[j].pc);
			m = dwfl_addrmodule(rdwfl, pcs[i]);
		}
		Dwarf_Addr lo = 0, hi = 0;
		if (m) {
			const char *name = dwfl_module_info(m, NULL, &lo, &hi, NULL, NULL, NULL, NULL);
			if (gt_symlines_no_libc && is_libc(name))
				m = NULL; /* answered without a line */
		}
		it[i] = (struct item){ .pc = pcs[i], .m = m, .span = hi - lo, .warm = m && is_warm(m) };
	}
	qsort(it, n, sizeof *it, item_cmp);
	size_t nout = 0;
	for (size_t i = 0; i < n; i++) {
		park_point();
		struct gt_line_answer *a = &out[nout++];
		*a = (struct gt_line_answer){ .pc = it[i].pc };
		if (it[i].m) {
			Dwfl_Line *l = dwfl_module_getsrc(it[i].m, it[i].pc);
			int line = 0;
			const char *file = l ? dwfl_lineinfo(l, NULL, &line, NULL, NULL, NULL) : NULL;
			if (file && *file && line > 0) {
				a->file = strdup(file);
				a->line = (uint64_t)line;
			}
			if (!it[i].warm && nwarm < WARM_MAX) {
				warm[nwarm++] = it[i].m;
				for (size_t j = i + 1; j < n; j++)
					if (it[j].m == it[i].m)
						it[j].warm = true;
			}
		}
		/* Each module's answers as soon as they are known. */
		if (i + 1 == n || it[i + 1].m != it[i].m) {
			publish(out, nout);
			nout = 0;
		}
	}
	free(it);
	free(out);
}

/* The test hook: sleep up to gt_symlines_stall_ns, in steps, ending early
 * when the test clears it or the resolver is to stop. */
static void stall(void)
{
	uint64_t waited = 0;
	for (;;) {
		uint64_t want = __atomic_load_n(&gt_symlines_stall_ns, __ATOMIC_RELAXED);
		pthread_mutex_lock(&box.mu);
		bool stop = box.stop || box.park; /* a fork waits for the park point */
		pthread_mutex_unlock(&box.mu);
		if (waited >= want || stop)
			return;
		struct timespec d = { 0, 5 * 1000 * 1000 };
		nanosleep(&d, NULL);
		waited += 5 * 1000 * 1000;
	}
}

static void *resolver_main(void *arg)
{
	(void)arg;
	/* Signals: inherited from the flusher (all blocked); SIGPROF is
	 * unblocked while our profiler runs, so that the CPU this thread
	 * spends in libdw is sampled here and not handed to a sleeping
	 * thread of the program (the library_thread hook, core.h). */
	pthread_setname_np(pthread_self(), "gotrace-sym");
	pthread_mutex_lock(&box.mu);
	for (;;) {
		box.idle = true;
		pthread_cond_broadcast(&box.done); /* a fork may wait for this */
		while (!box.stop && (box.nask == 0 || box.park))
			pthread_cond_wait(&box.work, &box.mu);
		box.idle = false;
		if (box.stop)
			break;
		uint64_t *pcs = box.ask;
		size_t n = box.nask;
		box.ask = NULL;
		box.nask = box.cask = 0;
		pthread_mutex_unlock(&box.mu);
		gt_library_thread_hook();
		stall();
		resolve_batch(pcs, n);
		free(pcs);
		pthread_mutex_lock(&box.mu);
	}
	pthread_mutex_unlock(&box.mu);
	return NULL;
}

/* --------------------------------------------------------------- flusher */

uint32_t gt_symlines_epoch(void)
{
	pthread_mutex_lock(&box.mu);
	uint32_t e = box.epoch;
	pthread_mutex_unlock(&box.mu);
	return e;
}

/* box.mu held: start the resolver thread if it is not running. */
static bool start_locked(void)
{
	bool ok = true;
	if (!box.running) {
		/* Started with every signal blocked (it inherits the mask): no
		 * handler of the program runs on it, and it takes SIGPROF only
		 * once the library_thread hook has marked it as ours.  The
		 * flusher, which starts it, may have SIGPROF unblocked: a sample
		 * taken on the new thread before its first hook call would be
		 * counted as nobody's (TSan's thread start is long enough for
		 * dozens). */
		box.stop = false;
		sigset_t all, old;
		sigfillset(&all);
		pthread_sigmask(SIG_SETMASK, &all, &old);
		if (pthread_create(&box.th, NULL, resolver_main, NULL) == 0)
			box.running = true;
		else
			ok = false;
		pthread_sigmask(SIG_SETMASK, &old, NULL);
	}
	return ok;
}

bool gt_symlines_start(void)
{
	pthread_mutex_lock(&box.mu);
	bool ok = start_locked();
	pthread_mutex_unlock(&box.mu);
	return ok;
}

bool gt_symlines_ask(uint64_t pc, uint32_t *epoch)
{
	pthread_mutex_lock(&box.mu);
	bool ok = start_locked();
	if (ok && box.nask == box.cask) {
		size_t nc = box.cask ? 2 * box.cask : 256;
		uint64_t *na = realloc(box.ask, nc * sizeof *na);
		if (na) {
			box.ask = na;
			box.cask = nc;
		} else {
			ok = false;
		}
	}
	if (ok) {
		box.ask[box.nask++] = pc;
		box.pending++;
		pthread_cond_signal(&box.work);
	}
	*epoch = box.epoch;
	pthread_mutex_unlock(&box.mu);
	return ok;
}

size_t gt_symlines_wait(uint64_t wait_ns, struct gt_line_answer **ans)
{
	struct timespec dl;
	clock_gettime(CLOCK_MONOTONIC, &dl);
	uint64_t ns = (uint64_t)dl.tv_nsec + wait_ns;
	dl.tv_sec += (time_t)(ns / 1000000000u);
	dl.tv_nsec = (long)(ns % 1000000000u);
	pthread_mutex_lock(&box.mu);
	while (box.pending > 0 && box.running) {
		if (pthread_cond_timedwait(&box.done, &box.mu, &dl) != 0)
			break;
	}
	*ans = box.ans;
	size_t n = box.nans;
	box.ans = NULL;
	box.nans = box.cans = 0;
	pthread_mutex_unlock(&box.mu);
	return n;
}

void gt_symlines_stop(void)
{
	pthread_mutex_lock(&box.mu);
	bool running = box.running;
	box.stop = true;
	pthread_cond_broadcast(&box.work);
	pthread_mutex_unlock(&box.mu);
	if (running)
		pthread_join(box.th, NULL);
	pthread_mutex_lock(&box.mu);
	box.running = false;
	/* Questions no resolver will answer: the flusher asks them again
	 * (symbolize.c compares epochs). */
	if (box.pending || box.nask || box.nans)
		box.epoch++;
	box.pending = 0;
	box.nask = 0;
	/* Answers that came after the final advance took its own: dropped
	 * (the flusher asks again in the next session). */
	for (size_t i = 0; i < box.nans; i++)
		free(box.ans[i].file);
	box.nans = 0;
	pthread_mutex_unlock(&box.mu);
}

void gt_symlines_atfork_prepare(void)
{
	/* Unbounded: the resolver reaches a park point after the PC it is on
	 * (at most one module's DWARF load), and it needs nothing the forking
	 * thread holds (glibc's own fork locks come after the handlers). */
	pthread_mutex_lock(&box.mu);
	box.park = true;
	while (box.running && !box.parked && !box.idle)
		pthread_cond_wait(&box.done, &box.mu);
	pthread_mutex_unlock(&box.mu);
}

void gt_symlines_atfork_parent(void)
{
	pthread_mutex_lock(&box.mu);
	box.park = false;
	pthread_cond_broadcast(&box.work);
	pthread_mutex_unlock(&box.mu);
}

void gt_symlines_atfork_child(void)
{
	/* The resolver does not exist here; it may have held the mutex, and
	 * its libdw session may be half-updated: start afresh, leaking both. */
	uint32_t epoch = box.epoch + 1;
	memset(&box, 0, sizeof box);
	pthread_mutex_init(&box.mu, NULL);
	pthread_cond_init(&box.work, NULL);
	pthread_cond_init(&box.done, NULL);
	box.epoch = epoch;
	rdwfl = NULL;
	nwarm = 0;
}
