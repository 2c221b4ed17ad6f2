/*
 * output.c: writing batches to the file descriptor (flusher context only).
 * May call: chunk.c (written chunks back to the pool), write/poll.
 *
 * write(2) with short writes and EINTR handled.  Pipes and sockets are
 * written in pieces no larger than PIPE_BUF after poll() says they are
 * writable, so a reader that stops reading never blocks the flusher for
 * longer than one poll period: stop can always give up (ESTALLED).  SIGPIPE
 * is blocked in the flusher, so a closed pipe gives EPIPE, not death.
 */
#include "core.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

static bool out_is_stream; /* flusher-private: pipe/socket/tty */
static uint64_t stall_deadline; /* flusher-private, mono ns; 0: none */

void gt_set_error(int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(gt_session.err, sizeof gt_session.err, fmt, ap);
	va_end(ap);
	int zero = 0;
	__atomic_compare_exchange_n(&gt_session.out_err, &zero, code, false, __ATOMIC_RELEASE, __ATOMIC_RELAXED);
}

void gt_out_init(int fd)
{
	struct stat st;
	/* A stream (pipe, socket, terminal) may stall: it is written in
	 * PIPE_BUF pieces after a poll, so that a stalled reader never blocks
	 * the flusher for good.  Files, block devices and the memory devices
	 * (/dev/null, /dev/zero, /dev/full: major 1), which never block, are
	 * written at once: a poll and a write per 4 KiB to /dev/null were
	 * most of the flusher's CPU in the benchmarks. */
	out_is_stream = fstat(fd, &st) == 0 && !S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode) &&
	                !(S_ISCHR(st.st_mode) && major(st.st_rdev) == 1);
	stall_deadline = 0;
}

int gt_out_write(const void *buf, size_t len)
{
	const uint8_t *p = buf;
	if (__atomic_load_n(&gt_session.out_err, __ATOMIC_ACQUIRE))
		return -1;
	while (len > 0) {
		if (out_is_stream) {
			struct pollfd pfd = { .fd = gt_session.fd, .events = POLLOUT };
			int r = poll(&pfd, 1, 100);
			if (r < 0 && errno != EINTR) {
				gt_set_error(GOTRACE_EIO, "poll on trace output: %s", strerror(errno));
				return -1;
			}
			if (r <= 0) {
				if (__atomic_load_n(&gt_session.stopping, __ATOMIC_ACQUIRE)) {
					uint64_t now = gt_mono_ns();
					if (!stall_deadline)
						stall_deadline = now + gt_session.opt.stop_timeout_ns;
					if (now >= stall_deadline) {
						gt_set_error(GOTRACE_ESTALLED,
						             "trace output stalled: nothing could be written for %.1f s",
						             (double)gt_session.opt.stop_timeout_ns / 1e9);
						return -1;
					}
				}
				continue;
			}
			if (pfd.revents & (POLLERR | POLLNVAL)) {
				/* Let write() report the precise error. */
			}
		}
		size_t n = len;
		if (out_is_stream && n > PIPE_BUF)
			n = PIPE_BUF;
		ssize_t w = write(gt_session.fd, p, n);
		if (w < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			gt_set_error(GOTRACE_EIO, "writing the trace: %s", strerror(errno));
			return -1;
		}
		p += w;
		len -= (size_t)w;
		stall_deadline = 0;
		__atomic_add_fetch(&gt_session.bytes_written, (uint64_t)w, __ATOMIC_RELAXED);
	}
	return 0;
}

/* Write and free every chunk queued for generation gen (freed chunks go to
 * the pool of written chunks, chunk.c). */
void gt_out_drain(uint64_t gen)
{
	gt_out_drain_some(gen, UINT64_MAX);
}

/* The same, stopping once at least limit bytes were taken: the flusher's
 * early drain of the current generation, which writers may keep filling
 * as fast as it drains (a flight recorder's generation must end in time:
 * flight.c). */
uint64_t gt_out_drain_some(uint64_t gen, uint64_t limit)
{
	struct cds_wfcq_node *n;
	uint64_t taken = 0;
	/* Stop between two chunks when a crash flush wants the output: it
	 * writes the rest itself. */
	while (!gt_crashing() && taken < limit &&
	       (n = __cds_wfcq_dequeue_blocking(&gt_session.qhead[gen & 1], &gt_session.qtail[gen & 1])) != NULL) {
		struct gt_chunk *c = caa_container_of(n, struct gt_chunk, qnode);
		while (!__atomic_load_n(&c->queued, __ATOMIC_ACQUIRE))
			; /* set before the enqueue: never spins */
		if (gt_session.flight)
			gt_flight_append(c); /* into the ring instead (flight.c) */
		else
			gt_out_write(c->data, c->len);
		taken += c->len;
		__atomic_sub_fetch(&gt_session.buffered, c->len, __ATOMIC_RELAXED);
		gt_chunk_free(c);
	}
	return taken;
}
