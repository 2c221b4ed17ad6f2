/*
 * bench_preload_mutex.c: the cost of an uncontended pthread_mutex_lock /
 * unlock pair, for bench_preload.py, which runs it bare and under
 * libgotrace-preload.so with tracing on (the interposers' fast path).  A
 * plain program: it knows nothing of gotrace.  Prints ns per pair.
 *
 * An idle second thread is started first: glibc locks a mutex of a
 * single-threaded process without an atomic instruction, and a traced
 * process is never single-threaded (the library's flusher), so without it
 * the bare run would measure a cheaper lock than any threaded program
 * gets.
 * Usage: bench_preload_mutex [ITERS]
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static volatile long sink;

static void *idle(void *arg)
{
	(void)arg;
	for (;;)
		pause();
	return NULL;
}

static double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 20000000;
	pthread_t th;
	if (pthread_create(&th, NULL, idle, NULL) != 0)
		return 1;
	for (long i = 0; i < n / 10; i++) { /* warm-up */
		pthread_mutex_lock(&mu);
		sink++;
		pthread_mutex_unlock(&mu);
	}
	double t0 = now_ns();
	for (long i = 0; i < n; i++) {
		pthread_mutex_lock(&mu);
		sink++;
		pthread_mutex_unlock(&mu);
	}
	double t1 = now_ns();
	printf("%.3f\n", (t1 - t0) / n);
	return 0;
}
