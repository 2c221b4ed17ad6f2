/*
 * bench_evstack: cost of the stacks on blocking and syscall events (issue
 * 11 part 4), in a program built like Debian's packages (-O2
 * -fomit-frame-pointer: the DWARF unwind is the only way to its callers).
 *
 * The timed operations run DEPTH (10) frames below the thread's entry
 * function (a recursion of noinline frames):
 *   - block: gotrace_block + gotrace_block_end, what a contended
 *     gotrace_mutex_lock records around its wait (GoBlock, then the
 *     self-wake's GoUnblock + GoStart: two stacks with stacks on);
 *   - syscall: gotrace_syscall_begin + _end (one stack).
 * Each repetition runs every configuration (stacks off: event_stacks = 0;
 * stacks on: the default, BLOCK | SYSCALL) in its own session, in an order
 * rotated per repetition; the ratios are medians of per-repetition ratios,
 * the figures medians over the repetitions.  Tracing into /dev/null.
 * Usage: bench_evstack [ITERS] [REPS]
 */
#define _GNU_SOURCE 1
#include <gotrace.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define DEPTH 10
#define MAXREPS 101

static long iters;
static volatile unsigned long sink;

static double now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e9 + t.tv_nsec;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof v[0], cmp_d);
	return v[n / 2];
}

enum { OP_BLOCK, OP_SYSCALL };

/* ns per operation, n operations, DEPTH frames down. */
static __attribute__((noinline, noclone)) double at_depth(int d, int op, long n)
{
	if (d > 0) {
		double r = at_depth(d - 1, op, n);
		sink++; /* not a tail call: the frame stays */
		return r;
	}
	double t0 = now_ns();
	if (op == OP_BLOCK) {
		for (long i = 0; i < n; i++) {
			gotrace_block("sync.Mutex.Lock");
			gotrace_block_end();
		}
	} else {
		for (long i = 0; i < n; i++) {
			gotrace_syscall_begin();
			gotrace_syscall_end();
		}
	}
	return (now_ns() - t0) / (double)n;
}

static double run(int fd, int stacks, int op)
{
	gotrace_options o;
	gotrace_options_init(&o);
	o.max_buffered = 256u << 20;
	o.event_stacks = stacks;
	if (gotrace_start_fd(fd, &o) != 0) {
		fprintf(stderr, "bench_evstack: start: %s\n", gotrace_last_error());
		exit(1);
	}
	at_depth(DEPTH, op, iters / 10 + 1); /* warm-up: caches, first batch */
	double ns = at_depth(DEPTH, op, iters);
	gotrace_stop();
	return ns;
}

int main(int argc, char **argv)
{
	iters = argc > 1 ? atol(argv[1]) : 200000;
	int reps = argc > 2 ? atoi(argv[2]) : 11;
	if (iters < 1 || reps < 1 || reps > MAXREPS) {
		fprintf(stderr, "usage: bench_evstack [ITERS] [REPS <= %d]\n", MAXREPS);
		return 2;
	}
	int fd = open("/dev/null", O_WRONLY);
	static const char *opname[] = { "block + block_end", "syscall begin + end" };
	printf("bench_evstack: %ld iterations, %d repetitions, %d frames deep, "
	       "medians (min-max)\n", iters, reps, DEPTH);
	for (int op = OP_BLOCK; op <= OP_SYSCALL; op++) {
		double off[MAXREPS], on[MAXREPS], ratio[MAXREPS], delta[MAXREPS];
		for (int r = 0; r < reps; r++) {
			if (r % 2 == 0) {
				off[r] = run(fd, 0, op);
				on[r] = run(fd, GOTRACE_STACK_DEFAULT, op);
			} else {
				on[r] = run(fd, GOTRACE_STACK_DEFAULT, op);
				off[r] = run(fd, 0, op);
			}
			ratio[r] = on[r] / off[r];
			delta[r] = on[r] - off[r];
		}
		double moff = median(off, reps), mon = median(on, reps);
		double lo_off = off[0], hi_off = off[reps - 1], lo_on = on[0], hi_on = on[reps - 1];
		printf("%-22s stacks off %8.1f ns (%.1f-%.1f)  on (CFI) %8.1f ns (%.1f-%.1f)  "
		       "ratio %.2fx  +%.1f ns\n",
		       opname[op], moff, lo_off, hi_off, mon, lo_on, hi_on, median(ratio, reps),
		       median(delta, reps));
	}
	close(fd);
	return 0;
}
