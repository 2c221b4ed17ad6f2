/*
 * bench_sync: cost of the scheduling calls (issue 5).
 *   - uncontended lock/unlock: pthread_mutex_lock vs gotrace_mutex_lock
 *     (tracing on: the trylock succeeds and nothing is recorded);
 *   - a syscall bracket (gotrace_syscall_begin + _end) with tracing on and
 *     off, and a block + block_end pair (self-woken);
 *   - an explicit goroutine's start + stop pair (user-level scheduler:
 *     gotrace_go_start / gotrace_go_stop), median of 11 runs, side by side
 *     with the baseline it instruments: a coroutine switch there and back
 *     (swapcontext pair), and the two together.
 * Usage: bench_sync [ITERS]  (tracing into /dev/null, 1 s advances)
 */
#define _GNU_SOURCE 1
#include <gotrace.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

static double now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e9 + t.tv_nsec;
}

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

#define BEST_OF 5
#define MEASURE(label, body)                                             \
	do {                                                             \
		double best = 1e30;                                      \
		for (int r = 0; r < BEST_OF; r++) {                      \
			double t0 = now_ns();                            \
			for (long i = 0; i < n; i++) {                   \
				body;                                    \
			}                                                \
			double ns = (now_ns() - t0) / (double)n;         \
			best = ns < best ? ns : best;                    \
		}                                                        \
		printf("%-44s %8.2f ns/op\n", label, best);              \
		res = best;                                              \
	} while (0)

/* Median of MED_RUNS runs of n iterations, in ns per iteration. */
#define MED_RUNS 11
static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}
#define MEDIAN(label, body)                                              \
	do {                                                             \
		double v[MED_RUNS];                                      \
		for (int r = 0; r < MED_RUNS; r++) {                     \
			double t0 = now_ns();                            \
			for (long i = 0; i < n; i++) {                   \
				body;                                    \
			}                                                \
			v[r] = (now_ns() - t0) / (double)n;              \
		}                                                        \
		qsort(v, MED_RUNS, sizeof v[0], cmp_d);                  \
		res = v[MED_RUNS / 2];                                   \
		printf("%-44s %8.2f ns/op (median of %d; min %.2f max %.2f)\n", label, res, \
		       MED_RUNS, v[0], v[MED_RUNS - 1]);                 \
	} while (0)

/* A coroutine that switches straight back: the baseline switch pair. */
static ucontext_t main_ctx, coro_ctx;
static void coro_body(void)
{
	for (;;)
		swapcontext(&coro_ctx, &main_ctx);
}

static void bench_goroutines(long n, int fd, const gotrace_options *o)
{
	double res, base, pair, both;
	static char stack[64 * 1024];
	getcontext(&coro_ctx);
	coro_ctx.uc_stack.ss_sp = stack;
	coro_ctx.uc_stack.ss_size = sizeof stack;
	coro_ctx.uc_link = NULL;
	makecontext(&coro_ctx, coro_body, 0);
	printf("-- explicit goroutine (user-level scheduler) --\n");
	if (gotrace_start_fd(fd, o) != 0)
		return;
	gotrace_goroutine_t g = gotrace_go_create("bench_coro");
	gotrace_go_start(g); /* the first start parks the thread's goroutine */
	gotrace_go_stop(g);
	MEDIAN("baseline: swapcontext there and back", swapcontext(&main_ctx, &coro_ctx));
	base = res;
	MEDIAN("go_start + go_stop (tracing on)", gotrace_go_start(g); gotrace_go_stop(g));
	pair = res;
	MEDIAN("go_start + swapcontext pair + go_stop (on)",
	       gotrace_go_start(g); swapcontext(&main_ctx, &coro_ctx); gotrace_go_stop(g));
	both = res;
	printf("%-44s %8.2f x\n", "ratio start+stop / switch pair", pair / base);
	printf("%-44s %8.2f x\n", "ratio traced switch / switch pair", both / base);
	gotrace_go_destroy(g);
	gotrace_stop();
	gotrace_goroutine_t off = gotrace_go_create("off"); /* {NULL, 0} */
	MEDIAN("go_start + go_stop (tracing off)", gotrace_go_start(off); gotrace_go_stop(off));
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 5000000;
	double res, plain, instr;
	int fd = open("/dev/null", O_WRONLY);
	gotrace_options o;
	gotrace_options_init(&o);
	o.max_buffered = 256u << 20;
	o.event_stacks = 0; /* the figures without stacks (bench_evstack: with) */
	if (gotrace_start_fd(fd, &o) != 0) {
		fprintf(stderr, "start: %s\n", gotrace_last_error());
		return 1;
	}
	gotrace_log(0, "bench", "registered");
	MEASURE("pthread_mutex_lock+unlock (tracing on)", pthread_mutex_lock(&mu); pthread_mutex_unlock(&mu));
	plain = res;
	MEASURE("gotrace_mutex_lock+unlock (tracing on)", gotrace_mutex_lock(&mu); pthread_mutex_unlock(&mu));
	instr = res;
	printf("%-44s %8.2f x\n", "ratio instrumented/plain", instr / plain);
	MEASURE("syscall bracket (tracing on)", gotrace_syscall_begin(); gotrace_syscall_end());
	MEASURE("block + block_end, self-woken (tracing on)", gotrace_block("sync"); gotrace_block_end());
	long n0 = n;
	n = n0 / 10;
	{
		gotrace_options o2 = o;
		gotrace_stop();
		o2.event_stacks = GOTRACE_STACK_ALL;
		gotrace_start_fd(fd, &o2);
		gotrace_log(0, "bench", "registered");
		MEASURE("syscall bracket with stack (tracing on)", gotrace_syscall_begin(); gotrace_syscall_end());
		MEASURE("block + block_end with stacks (tracing on)", gotrace_block("sync"); gotrace_block_end());
	}
	gotrace_stop();
	n = n0;
	MEASURE("syscall bracket (tracing off)", gotrace_syscall_begin(); gotrace_syscall_end());
	MEASURE("gotrace_mutex_lock+unlock (tracing off)", gotrace_mutex_lock(&mu); pthread_mutex_unlock(&mu));
	bench_goroutines(n / 5, fd, &o);
	close(fd);
	return 0;
}
