/*
 * bench_sync: cost of the scheduling calls (issue 5).
 *   - uncontended lock/unlock: pthread_mutex_lock vs gotrace_mutex_lock
 *     (tracing on: the trylock succeeds and nothing is recorded);
 *   - a syscall bracket (gotrace_syscall_begin + _end) with tracing on and
 *     off, and a block + block_end pair (self-woken).
 * Usage: bench_sync [ITERS]  (tracing into /dev/null, 1 s advances)
 */
#define _GNU_SOURCE 1
#include <gotrace.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
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

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 5000000;
	double res, plain, instr;
	int fd = open("/dev/null", O_WRONLY);
	gotrace_options o;
	gotrace_options_init(&o);
	o.max_buffered = 256u << 20;
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
	close(fd);
	return 0;
}
