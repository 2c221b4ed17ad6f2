/*
 * output.c: writing batches to the file descriptor (flusher context only;
 * gt_out_fd_move, on program threads, moves the descriptor under it).
 * May call: chunk.c (written chunks back to the pool), write/poll.
 *
 * write(2) with short writes and EINTR handled.  Pipes and sockets are
 * written in pieces no larger than PIPE_BUF after poll() says they are
 * writable, so a reader that stops reading never blocks the flusher for
 * longer than one poll period: stop can always give up (ESTALLED).  SIGPIPE
 * is blocked in the flusher, so a closed pipe gives EPIPE, not death.
 */
#include "core.h"
#include "outfd.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

static bool out_is_stream; /* flusher-private: pipe/socket/tty */
static uint64_t stall_deadline; /* flusher-private, mono ns; 0: none */

/*
 * The trace descriptor's number can change under a running session: the
 * preload's dup2 and dup3 move the trace out of the way of a program that
 * puts a file of its own at that number (gt_out_fd_move).  Once the
 * program's dup2 runs, the old number is its file: the flusher must never
 * write there a number it loaded before the move.
 * out_fd_seq: odd while the flusher holds a number loaded from
 * gt_session.fd (from the load to the end of the poll or write using it).
 * Written by the flusher (atomic increments), read by the mover.  The
 * flusher's increment and its load of the number, and the mover's CAS of
 * the number and its load of the counter, are seq_cst: either the mover
 * sees the counter odd and waits for it to change, or the flusher loads
 * the new number.
 */
static uint64_t out_fd_seq;

static int out_fd_enter(void)
{
	__atomic_add_fetch(&out_fd_seq, 1, __ATOMIC_SEQ_CST);
	return __atomic_load_n(&gt_session.fd, __ATOMIC_SEQ_CST);
}

static void out_fd_leave(void)
{
	__atomic_add_fetch(&out_fd_seq, 1, __ATOMIC_RELEASE);
}

/* (outfd.h)  Concurrent movers: a busy flag, the second one gives up (a
 * lock could deadlock a dup2 called from a signal handler that interrupted
 * the first). */
int gt_out_fd_move(int fd, int floor)
{
	static int moving;
	int zero = 0;
	if (fd < 0 || !__atomic_compare_exchange_n(&moving, &zero, 1, false, __ATOMIC_ACQUIRE,
	                                           __ATOMIC_RELAXED))
		return -1;
	int n = -1;
	if (__atomic_load_n(&gt_session.fd, __ATOMIC_RELAXED) == fd &&
	    (n = fcntl(fd, F_DUPFD_CLOEXEC, floor)) >= 0) {
		int want = fd;
		if (!__atomic_compare_exchange_n(&gt_session.fd, &want, n, false, __ATOMIC_SEQ_CST,
		                                 __ATOMIC_SEQ_CST)) {
			close(n); /* stopped meanwhile */
			n = -1;
		} else {
			uint64_t s = __atomic_load_n(&out_fd_seq, __ATOMIC_SEQ_CST);
			while ((s & 1) && __atomic_load_n(&out_fd_seq, __ATOMIC_ACQUIRE) == s) {
				struct timespec d = { 0, 20000 };
				nanosleep(&d, NULL);
			}
		}
	}
	__atomic_store_n(&moving, 0, __ATOMIC_RELEASE);
	return n;
}

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
			struct pollfd pfd = { .fd = out_fd_enter(), .events = POLLOUT };
			int r = poll(&pfd, 1, 100);
			out_fd_leave();
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
		ssize_t w = write(out_fd_enter(), p, n);
		out_fd_leave();
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
