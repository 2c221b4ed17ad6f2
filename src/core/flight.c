/*
 * flight.c: the flight recorder's ring (gotrace_start_flight): instead of
 * writing drained batches to a file, the flusher copies them into the open
 * generation of a ring of generations in memory; at the end of each
 * generation it seals the open one into the ring and drops the oldest whole
 * generations the retention rule (gotrace.h) no longer wants.  A write-out
 * is the trace header plus every sealed generation, oldest first.
 * May call: mmap/malloc, write/poll, the clock.  Nothing above src/core.
 *
 * Memory.  Data is copied into blocks of FB_SIZE bytes, mmap'd so that
 * the memory goes back to the system at once, whatever malloc's trimming
 * policy.  Every block that exists is counted, before it is mapped, in
 * exactly one of
 *   held_bytes   blocks of the open generation, of the sealed ones, and
 *                of generations the ring dropped that a write-out still
 *                holds (they count until their last reference goes);
 *   spare_bytes  blocks of freed generations kept for reuse (block_put);
 * and held_bytes + spare_bytes <= ring_cap at all times (both are changed
 * only under mem_lock, which checks it).  ring_cap is flight_max_bytes
 * minus the budget of the data on its way into the ring (the queue and
 * its pool: session.c sets it), so that the recorder's memory as a whole
 * stays within flight_max_bytes.  When a new block does not fit, the
 * oldest sealed generations are dropped (one that a write-out holds is
 * waited for first: block_new); if none is left the open generation is
 * abandoned (not retained; counted in gens_lost).
 *
 * Who touches what:
 *   open           flusher-private (gt_out_drain, the seal; stop after
 *                  joining the flusher; the crash flush once the flusher
 *                  is parked).
 *   oldest/newest  the sealed list (prev/next links).  Modified only by
 *                  the flusher, under ring_lock; read by gotrace_flight_write
 *                  under ring_lock (it takes a reference on each
 *                  generation of its snapshot and writes without the lock);
 *                  read by the crash flush without the lock, once the
 *                  flusher is parked (it then cannot be modifying it: it
 *                  parks only outside these functions).
 *   fgen->refs     atomic: 1 for the ring + 1 per snapshot holding it; who
 *                  drops the last one unmaps the blocks (never the crash
 *                  flush: it takes no reference and frees nothing).
 *   fgen contents  written by the flusher before the generation is linked
 *                  under ring_lock (the lock publishes them); immutable
 *                  once sealed.
 *   held_bytes, spare_bytes, spare: under mem_lock (held_bytes is also
 *                  read with an atomic load by the statistics).
 *   gens_lost, ring_gens, ring_data: statistics (see there).
 * Emitting threads never see any of it: they hand chunks to the queue as
 * in a file session, so a write-out never blocks them.
 *
 * Why a mutex and reference counts rather than RCU: a write-out may take
 * as long as its file descriptor makes it (a slow pipe); an RCU read-side
 * section held that long would hold up every grace period of the library
 * (the advancer's synchronize_rcu when it reaps threads), whereas here the
 * flusher holds ring_lock only to link or unlink a generation and a
 * dumper only to take its references, and neither ever waits for the
 * other's writing.  The crash flush needs neither (see above).
 */
#include "core.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define FB_SIZE 65536u

struct fblock {
	struct fblock *next;
	uint32_t len;
	uint8_t data[FB_SIZE - 16];
};

struct fgen {
	struct fgen *prev, *next; /* sealed list, oldest first */
	uint64_t gen;
	uint64_t bytes;            /* FB_SIZE per block */
	uint64_t data;             /* bytes of trace in the blocks */
	uint64_t t_min;            /* earliest batch time (ticks) */
	struct fblock *head, *tail;
	int refs;
	bool lost;                 /* did not fit: not retained */
	uint32_t waited_ms;        /* open: time spent waiting for a write-out */
};

static pthread_mutex_t ring_lock = PTHREAD_MUTEX_INITIALIZER;
static struct fgen *oldest, *newest, *open_gen;
static uint64_t ring_cap, min_age_ticks;
static uint64_t gens_lost; /* atomic */
/* The sealed list's length and data bytes: changed under ring_lock with
 * atomic stores, read (atomic loads) by gotrace_get_flight_stats. */
static uint64_t ring_gens, ring_data;
/* A write-out's request time minus MinAge (ticks), 0: none.  Written by
 * gotrace_flight_write (serialised) before it asks for the generation end
 * and cleared once it holds its snapshot; read (acquire) by the flusher at
 * each seal: while it is set no seal drops a generation that the window
 * before that request needs, so the dump covers MinAge before the moment
 * it was asked for, not before the (later) moment of the snapshot. */
static uint64_t pin_horizon;

/* The block accounting (see the top of the file).  Spare blocks: mapping
 * and faulting in a fresh block for every FB_SIZE bytes of trace, and
 * unmapping it when its generation was dropped, was most of what the
 * recorder cost the flusher over a file session.  Blocks are put by
 * whoever frees a generation (the flusher, or a write-out dropping the
 * last reference) and taken by the flusher. */
static pthread_mutex_t mem_lock = PTHREAD_MUTEX_INITIALIZER;
/* Signalled (under mem_lock) when a freed block goes back to the bound:
 * the flusher may be waiting for a write-out to let go of the oldest
 * generation (block_new). */
static pthread_cond_t mem_cond = PTHREAD_COND_INITIALIZER;
static struct fblock *spare;
static uint64_t held_bytes;  /* atomic stores under mem_lock */
static uint64_t spare_bytes;

/* b leaves held_bytes: a spare if the bound has room, else unmapped. */
static void block_put(struct fblock *b)
{
	pthread_mutex_lock(&mem_lock);
	uint64_t held = held_bytes - FB_SIZE;
	__atomic_store_n(&held_bytes, held, __ATOMIC_RELAXED);
	if (held + spare_bytes + FB_SIZE <= ring_cap) {
		b->next = spare;
		spare = b;
		spare_bytes += FB_SIZE;
		b = NULL;
	}
	pthread_cond_broadcast(&mem_cond);
	pthread_mutex_unlock(&mem_lock);
	if (b)
		munmap(b, FB_SIZE);
}

/* A block counted in held_bytes: a spare, or a fresh mapping if the bound
 * has room for it.  NULL: no room (or no memory). */
static struct fblock *block_get(void)
{
	pthread_mutex_lock(&mem_lock);
	struct fblock *b = spare;
	bool fresh = false;
	if (b) {
		spare = b->next;
		spare_bytes -= FB_SIZE;
	} else if (held_bytes + spare_bytes + FB_SIZE <= ring_cap) {
		fresh = true; /* counted before it exists: the bound holds */
	} else {
		pthread_mutex_unlock(&mem_lock);
		return NULL;
	}
	__atomic_store_n(&held_bytes, held_bytes + FB_SIZE, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&mem_lock);
	if (fresh) {
		void *m = mmap(NULL, FB_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (m == MAP_FAILED) {
			pthread_mutex_lock(&mem_lock);
			__atomic_store_n(&held_bytes, held_bytes - FB_SIZE, __ATOMIC_RELAXED);
			pthread_mutex_unlock(&mem_lock);
			return NULL;
		}
		b = m;
	}
	b->next = NULL;
	b->len = 0;
	return b;
}

static void spares_release(void)
{
	pthread_mutex_lock(&mem_lock);
	struct fblock *b = spare, *n;
	spare = NULL;
	spare_bytes = 0;
	pthread_mutex_unlock(&mem_lock);
	for (; b; b = n) {
		n = b->next;
		munmap(b, FB_SIZE);
	}
}

static void blocks_put(struct fblock *b)
{
	for (struct fblock *n; b; b = n) {
		n = b->next;
		block_put(b);
	}
}

static void gen_free(struct fgen *g)
{
	blocks_put(g->head);
	free(g);
}

static void gen_unref(struct fgen *g)
{
	if (__atomic_sub_fetch(&g->refs, 1, __ATOMIC_ACQ_REL) == 0)
		gen_free(g);
}

int gt_flight_init(uint64_t cap, uint64_t min_age_ns)
{
	ring_cap = cap;
	min_age_ticks = (uint64_t)((double)min_age_ns * (double)gt_clock.freq / 1e9);
	oldest = newest = open_gen = NULL;
	__atomic_store_n(&held_bytes, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&gens_lost, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&ring_gens, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&ring_data, 0, __ATOMIC_RELAXED);
	return 0;
}

/* Unlink the oldest sealed generation (ring_lock held).  Its blocks stay
 * in held_bytes until its last reference goes. */
static void drop_oldest_locked(void)
{
	struct fgen *g = oldest;
	oldest = g->next;
	if (oldest)
		oldest->prev = NULL;
	else
		newest = NULL;
	__atomic_store_n(&ring_gens, ring_gens - 1, __ATOMIC_RELAXED);
	__atomic_store_n(&ring_data, ring_data - g->data, __ATOMIC_RELAXED);
	gen_unref(g);
}

static void open_abandon(void)
{
	blocks_put(open_gen->head);
	open_gen->head = open_gen->tail = NULL;
	open_gen->bytes = 0;
	if (!open_gen->lost)
		__atomic_add_fetch(&gens_lost, 1, __ATOMIC_RELAXED);
	open_gen->lost = true;
}

/* At a crash, a block past the bound rather than none: the batch being
 * copied must stay whole (a generation missing one of its batches is not
 * a valid one), and the crash flush writes the ring and the open
 * generation next, then the process dies.  Counted in held_bytes all the
 * same. */
static struct fblock *block_over(void)
{
	void *m = mmap(NULL, FB_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		return NULL;
	pthread_mutex_lock(&mem_lock);
	__atomic_store_n(&held_bytes, held_bytes + FB_SIZE, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&mem_lock);
	struct fblock *b = m;
	b->next = NULL;
	b->len = 0;
	return b;
}

/* How long the open generation may wait, in all, for write-outs to let go
 * of the ring's oldest generations before it is abandoned instead. */
#define WAIT_MAX_MS 100u

/* Wait (at most 1 ms) for a block to go back to the bound. */
static void wait_release(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_nsec += 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&mem_lock);
	(void)pthread_cond_timedwait(&mem_cond, &mem_lock, &ts);
	pthread_mutex_unlock(&mem_lock);
}

/* A new block for the open generation g within the bound (past it only
 * at a crash: block_over), or NULL.  The oldest sealed generations make
 * room, as many as it takes.  One that a
 * write-out still holds frees nothing when dropped: the write-out lets go
 * of it as soon as it has written it (oldest first), so the flusher waits
 * for that instead (writers are not held up: their batches queue), up to
 * WAIT_MAX_MS per generation.  Dropping it at once would empty the ring
 * into the write-out, and the next write-out would find only what came
 * after this one. */
static struct fblock *block_new(struct fgen *g)
{
	struct fblock *b;
	while ((b = block_get()) == NULL) {
		bool crashing = gt_crashing();
		pthread_mutex_lock(&ring_lock);
		struct fgen *o = oldest;
		bool held = o && __atomic_load_n(&o->refs, __ATOMIC_ACQUIRE) > 1;
		bool wait = held && !crashing && g->waited_ms < WAIT_MAX_MS &&
		            !__atomic_load_n(&gt_fork_park, __ATOMIC_RELAXED);
		/* At a crash a held generation stays: the crash flush writes
		 * the ring, and dropping it would free nothing. */
		bool drop = o && !wait && !(held && crashing);
		if (drop)
			drop_oldest_locked();
		pthread_mutex_unlock(&ring_lock);
		if (drop)
			continue;
		if (wait) {
			wait_release();
			g->waited_ms++;
			continue;
		}
		return crashing ? block_over() : NULL;
	}
	return b;
}

void gt_flight_append(const struct gt_chunk *c)
{
	if (!open_gen || open_gen->gen != c->gen) {
		if (open_gen) /* a generation never sealed (cannot happen): drop it */
			gen_free(open_gen);
		open_gen = calloc(1, sizeof *open_gen);
		if (!open_gen)
			return;
		open_gen->gen = c->gen;
		open_gen->t_min = UINT64_MAX;
		open_gen->refs = 1;
	}
	struct fgen *g = open_gen;
	if (g->lost)
		return;
	/* Batch header: EventBatch gen m time. */
	const uint8_t *p = c->data + 1, *end = c->data + c->len;
	uint64_t v[3] = { 0, 0, 0 };
	for (int i = 0; i < 3; i++) {
		int n = gt_get_uvarint(p, end, &v[i]);
		if (!n)
			break;
		p += n;
	}
	if (v[2] && v[2] < g->t_min)
		g->t_min = v[2];
	const uint8_t *src = c->data;
	uint32_t left = c->len;
	while (left > 0) {
		struct fblock *b = g->tail;
		if (!b || b->len == sizeof b->data) {
			b = block_new(g);
			if (!b) {
				open_abandon();
				return;
			}
			if (g->tail)
				g->tail->next = b;
			else
				g->head = b;
			g->tail = b;
			g->bytes += FB_SIZE;
		}
		uint32_t n = (uint32_t)sizeof b->data - b->len;
		if (n > left)
			n = left;
		memcpy(b->data + b->len, src, n);
		b->len += n;
		g->data += n;
		src += n;
		left -= n;
	}
}

uint64_t gt_flight_open_bytes(void)
{
	return open_gen ? open_gen->bytes : 0;
}

void gt_flight_seal(uint64_t gen)
{
	struct fgen *g = open_gen;
	if (!g || g->gen != gen)
		return;
	open_gen = NULL;
	if (g->lost) {
		gen_free(g);
		return;
	}
	uint64_t now = gt_now();
	uint64_t horizon = now > min_age_ticks ? now - min_age_ticks : 0;
	uint64_t pin = __atomic_load_n(&pin_horizon, __ATOMIC_ACQUIRE);
	if (pin && pin < horizon)
		horizon = pin;
	pthread_mutex_lock(&ring_lock);
	g->prev = newest;
	g->next = NULL;
	if (newest)
		newest->next = g;
	else
		oldest = g;
	newest = g;
	__atomic_store_n(&ring_gens, ring_gens + 1, __ATOMIC_RELAXED);
	__atomic_store_n(&ring_data, ring_data + g->data, __ATOMIC_RELAXED);
	/* Retention, newest first: keep older generations while the window
	 * does not reach MinAge back and the total fits MaxBytes (it always
	 * does here: the blocks were taken within the bound). */
	struct fgen *keep = g;
	uint64_t size = g->bytes;
	while (keep->prev && keep->t_min > horizon && size + keep->prev->bytes <= ring_cap) {
		keep = keep->prev;
		size += keep->bytes;
	}
	while (oldest != keep)
		drop_oldest_locked();
	pthread_mutex_unlock(&ring_lock);
}

static int write_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	while (len > 0) {
		ssize_t w = write(fd, p, len);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				struct pollfd pfd = { .fd = fd, .events = POLLOUT };
				(void)poll(&pfd, 1, 100);
				continue;
			}
			return -errno;
		}
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

void gt_flight_pin(uint64_t t_req)
{
	uint64_t h = t_req > min_age_ticks ? t_req - min_age_ticks : 1;
	__atomic_store_n(&pin_horizon, t_req ? h : 0, __ATOMIC_RELEASE);
}

int gt_flight_write_fd(int fd, uint64_t *bytes, uint64_t *ngens)
{
	size_t n = 0, cap = 0;
	struct fgen **snap = NULL;
	pthread_mutex_lock(&ring_lock);
	for (struct fgen *g = oldest; g; g = g->next)
		cap++;
	snap = cap ? malloc(cap * sizeof *snap) : NULL;
	if (cap && !snap) {
		pthread_mutex_unlock(&ring_lock);
		return -ENOMEM;
	}
	for (struct fgen *g = oldest; g; g = g->next) {
		__atomic_add_fetch(&g->refs, 1, __ATOMIC_RELAXED);
		snap[n++] = g;
	}
	pthread_mutex_unlock(&ring_lock);
	__atomic_store_n(&pin_horizon, 0, __ATOMIC_RELEASE);
	int rc = write_all(fd, GT_HEADER, GT_HEADER_LEN);
	uint64_t total = GT_HEADER_LEN;
	/* Each generation is let go once written: one the ring dropped
	 * meanwhile goes back to the bound before the write-out ends. */
	for (size_t i = 0; i < n; i++) {
		for (struct fblock *b = snap[i]->head; b && rc == 0; b = b->next) {
			rc = write_all(fd, b->data, b->len);
			total += b->len;
		}
		gen_unref(snap[i]);
	}
	free(snap);
	if (bytes)
		*bytes = total;
	if (ngens)
		*ngens = n;
	return rc;
}

bool gt_flight_crash_write_sealed(bool (*wr)(const void *, size_t))
{
	if (!wr(GT_HEADER, GT_HEADER_LEN))
		return false;
	for (struct fgen *g = oldest; g; g = g->next)
		for (struct fblock *b = g->head; b; b = b->next)
			if (!wr(b->data, b->len))
				return false;
	return true;
}

bool gt_flight_crash_write_open(uint64_t gen, bool (*wr)(const void *, size_t))
{
	struct fgen *g = open_gen;
	if (!g || g->gen != gen)
		return true;
	for (struct fblock *b = g->head; b; b = b->next)
		if (!wr(b->data, b->len))
			return false;
	return true;
}

void gt_flight_destroy(void)
{
	if (open_gen) {
		gen_free(open_gen);
		open_gen = NULL;
	}
	pthread_mutex_lock(&ring_lock);
	while (oldest)
		drop_oldest_locked();
	pthread_mutex_unlock(&ring_lock);
	spares_release();
}

void gt_flight_forget(void)
{
	/* fork child: the parent's ring is left behind (see atfork_child). */
	pthread_mutex_init(&ring_lock, NULL);
	pthread_mutex_init(&mem_lock, NULL);
	pthread_cond_init(&mem_cond, NULL);
	oldest = newest = open_gen = NULL;
	spare = NULL;
	spare_bytes = 0;
	__atomic_store_n(&held_bytes, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&ring_gens, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&ring_data, 0, __ATOMIC_RELAXED);
}

uint64_t gt_flight_cap(void)
{
	return ring_cap;
}

void gt_flight_stats(uint64_t *held, uint64_t *gens, uint64_t *data, uint64_t *lost)
{
	*held = __atomic_load_n(&held_bytes, __ATOMIC_RELAXED);
	*gens = __atomic_load_n(&ring_gens, __ATOMIC_RELAXED);
	*data = __atomic_load_n(&ring_data, __ATOMIC_RELAXED);
	*lost = __atomic_load_n(&gens_lost, __ATOMIC_RELAXED);
}
