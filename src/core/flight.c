/*
 * flight.c: the flight recorder's ring (gotrace_start_flight): instead of
 * writing drained batches to a file, the flusher copies them into the open
 * generation of a ring of generations in memory; at the end of each
 * generation it seals the open one into the ring and drops the oldest whole
 * generations the retention rule (gotrace.h) no longer wants.  A write-out
 * is the trace header plus every sealed generation, oldest first.
 * May call: mmap/malloc, write/poll, the clock.  Nothing above src/core.
 *
 * Memory.  Data is copied into blocks of FB_SIZE bytes (mmap'd, so that
 * the memory goes back to the system at once, whatever malloc's trimming
 * policy; a dropped generation's blocks are kept as spares within the
 * bound, see block_put); ring_bytes counts whole blocks of the sealed
 * generations and of the open one, and is never let past max_bytes: before
 * a new block is taken, the oldest sealed generations are dropped; if none
 * is left the open generation is abandoned (not retained; counted in
 * gens_lost).
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
 *   ring_bytes, gens_lost: atomics (statistics readers).
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
	uint64_t t_min;            /* earliest batch time (ticks) */
	struct fblock *head, *tail;
	int refs;
	bool lost;                 /* did not fit: not retained */
};

static pthread_mutex_t ring_lock = PTHREAD_MUTEX_INITIALIZER;
static struct fgen *oldest, *newest, *open_gen;
static uint64_t max_bytes, min_age_ticks;
static uint64_t ring_bytes; /* atomic */
static uint64_t gens_lost;  /* atomic */
/* A write-out's request time minus MinAge (ticks), 0: none.  Written by
 * gotrace_flight_write (serialised) before it asks for the generation end
 * and cleared once it holds its snapshot; read (acquire) by the flusher at
 * each seal: while it is set no seal drops a generation that the window
 * before that request needs, so the dump covers MinAge before the moment
 * it was asked for, not before the (later) moment of the snapshot. */
static uint64_t pin_horizon;

/* Spare blocks: those of dropped generations, kept for the next ones.
 * Mapping and faulting in a fresh block for every FB_SIZE bytes of trace,
 * and unmapping it when its generation was dropped, was most of what the
 * recorder cost the flusher over a file session.  A block is kept only
 * while ring_bytes + spare_bytes stays within max_bytes (else unmapped),
 * so ring and spares together keep the bound.  Put by whoever frees a
 * generation (the flusher, or a write-out dropping the last reference),
 * taken by the flusher; spare_lock guards the list and spare_bytes. */
static pthread_mutex_t spare_lock = PTHREAD_MUTEX_INITIALIZER;
static struct fblock *spare;
static uint64_t spare_bytes;

static void block_put(struct fblock *b)
{
	pthread_mutex_lock(&spare_lock);
	if (__atomic_load_n(&ring_bytes, __ATOMIC_RELAXED) + spare_bytes + FB_SIZE <= max_bytes) {
		b->next = spare;
		spare = b;
		spare_bytes += FB_SIZE;
		b = NULL;
	}
	pthread_mutex_unlock(&spare_lock);
	if (b)
		munmap(b, FB_SIZE);
}

static struct fblock *block_take(void)
{
	pthread_mutex_lock(&spare_lock);
	struct fblock *b = spare;
	if (b) {
		spare = b->next;
		spare_bytes -= FB_SIZE;
	}
	pthread_mutex_unlock(&spare_lock);
	return b;
}

static void spares_release(void)
{
	pthread_mutex_lock(&spare_lock);
	struct fblock *b = spare, *n;
	spare = NULL;
	spare_bytes = 0;
	pthread_mutex_unlock(&spare_lock);
	for (; b; b = n) {
		n = b->next;
		munmap(b, FB_SIZE);
	}
}

static void gen_free(struct fgen *g)
{
	struct fblock *b, *n;
	for (b = g->head; b; b = n) {
		n = b->next;
		block_put(b);
	}
	free(g);
}

static void gen_unref(struct fgen *g)
{
	if (__atomic_sub_fetch(&g->refs, 1, __ATOMIC_ACQ_REL) == 0)
		gen_free(g);
}

int gt_flight_init(uint64_t max, uint64_t min_age_ns)
{
	max_bytes = max;
	min_age_ticks = (uint64_t)((double)min_age_ns * (double)gt_clock.freq / 1e9);
	oldest = newest = open_gen = NULL;
	__atomic_store_n(&ring_bytes, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&gens_lost, 0, __ATOMIC_RELAXED);
	return 0;
}

/* Unlink the oldest sealed generation (ring_lock held). */
static void drop_oldest_locked(void)
{
	struct fgen *g = oldest;
	oldest = g->next;
	if (oldest)
		oldest->prev = NULL;
	else
		newest = NULL;
	__atomic_sub_fetch(&ring_bytes, g->bytes, __ATOMIC_RELAXED);
	gen_unref(g);
}

static void open_abandon(void)
{
	struct fblock *b, *n;
	__atomic_sub_fetch(&ring_bytes, open_gen->bytes, __ATOMIC_RELAXED);
	for (b = open_gen->head; b; b = n) {
		n = b->next;
		block_put(b);
	}
	open_gen->head = open_gen->tail = NULL;
	open_gen->bytes = 0;
	if (!open_gen->lost)
		__atomic_add_fetch(&gens_lost, 1, __ATOMIC_RELAXED);
	open_gen->lost = true;
}

/* A new block for the open generation within the bound, or NULL. */
static struct fblock *block_new(void)
{
	if (__atomic_load_n(&ring_bytes, __ATOMIC_RELAXED) + FB_SIZE > max_bytes) {
		pthread_mutex_lock(&ring_lock);
		while (oldest && __atomic_load_n(&ring_bytes, __ATOMIC_RELAXED) + FB_SIZE > max_bytes)
			drop_oldest_locked();
		pthread_mutex_unlock(&ring_lock);
		if (__atomic_load_n(&ring_bytes, __ATOMIC_RELAXED) + FB_SIZE > max_bytes)
			return NULL;
	}
	struct fblock *b = block_take();
	if (!b) {
		void *m = mmap(NULL, FB_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (m == MAP_FAILED)
			return NULL;
		b = m;
	}
	b->next = NULL;
	b->len = 0;
	__atomic_add_fetch(&ring_bytes, FB_SIZE, __ATOMIC_RELAXED);
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
			b = block_new();
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
	/* Retention, newest first: keep older generations while the window
	 * does not reach MinAge back and the total fits MaxBytes (it always
	 * does here: the blocks were taken within the bound). */
	struct fgen *keep = g;
	uint64_t size = g->bytes;
	while (keep->prev && keep->t_min > horizon && size + keep->prev->bytes <= max_bytes) {
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
	for (size_t i = 0; i < n && rc == 0; i++)
		for (struct fblock *b = snap[i]->head; b && rc == 0; b = b->next) {
			rc = write_all(fd, b->data, b->len);
			total += b->len;
		}
	for (size_t i = 0; i < n; i++)
		gen_unref(snap[i]);
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
	__atomic_store_n(&ring_bytes, 0, __ATOMIC_RELAXED);
	spares_release();
}

void gt_flight_forget(void)
{
	/* fork child: the parent's ring is left behind (see atfork_child). */
	pthread_mutex_init(&ring_lock, NULL);
	pthread_mutex_init(&spare_lock, NULL);
	oldest = newest = open_gen = NULL;
	spare = NULL;
	spare_bytes = 0;
	__atomic_store_n(&ring_bytes, 0, __ATOMIC_RELAXED);
}

uint64_t gt_flight_ring_bytes(void)
{
	return __atomic_load_n(&ring_bytes, __ATOMIC_RELAXED);
}

uint64_t gt_flight_gens_lost(void)
{
	return __atomic_load_n(&gens_lost, __ATOMIC_RELAXED);
}
