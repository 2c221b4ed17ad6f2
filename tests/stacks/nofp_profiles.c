/*
 * nofp_profiles.c: the program of test_nofp_profiles.sh (issue 11 part 4).
 * Built with -O2 -fomit-frame-pointer, as Debian builds its packages, and
 * run with DEFAULT options (no event_stacks set): its threads wait on a
 * contended gotrace_mutex_lock in nofp_lock_worker and sit in a bracketed
 * syscall in nofp_syscall_worker, each through a helper of its own
 * (take_lock, sleep_in_syscall), so that the worker is the helper's
 * caller: a frame-pointer walk gets the helper (the return address our
 * entry point saved) but not the worker, whose frame has no frame pointer
 * to follow.  The script then asks go tool trace for -pprof=sync and
 * -pprof=syscall and looks for the workers' names.
 */
#define _GNU_SOURCE 1
#include <gotrace.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define ROUNDS 5
#define LOCKERS 2

static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
static int waiting; /* atomic: lockers about to lock, all rounds so far */
static int took;    /* atomic: lockers that got the lock, all rounds so far */
static _Thread_local volatile unsigned long sink; /* per thread: no race */

static void sleep_ms(long ms)
{
	struct timespec d = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&d, NULL);
}

/* noclone: the names must stay as written (no .constprop copies). */
static __attribute__((noinline, noclone)) int take_lock(pthread_mutex_t *mu)
{
	int r = gotrace_mutex_lock(mu);
	sink += (unsigned long)r; /* not a tail call */
	return r;
}

static __attribute__((noinline, noclone)) void nofp_lock_worker(int rounds)
{
	for (int i = 0; i < rounds; i++) {
		__atomic_add_fetch(&waiting, 1, __ATOMIC_SEQ_CST);
		if (take_lock(&m) != 0)
			abort();
		__atomic_add_fetch(&took, 1, __ATOMIC_SEQ_CST);
		sink += (unsigned long)i;
		pthread_mutex_unlock(&m);
		sleep_ms(30); /* let the main thread take it again first */
	}
	sink++;
}

static __attribute__((noinline, noclone)) void sleep_in_syscall(long ms)
{
	gotrace_syscall_begin();
	sleep_ms(ms);
	gotrace_syscall_end();
	sink++;
}

static __attribute__((noinline, noclone)) void nofp_syscall_worker(int rounds)
{
	for (int i = 0; i < rounds; i++)
		sleep_in_syscall(10);
	sink++;
}

static void *locker(void *arg)
{
	(void)arg;
	nofp_lock_worker(ROUNDS);
	return NULL;
}

static void *sleeper(void *arg)
{
	(void)arg;
	nofp_syscall_worker(ROUNDS);
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: nofp_profiles TRACE\n");
		return 2;
	}
	gotrace_options o;
	gotrace_options_init(&o); /* the defaults: event_stacks not set */
	if (gotrace_start_path(argv[1], &o) != 0) {
		fprintf(stderr, "nofp_profiles: start: %s\n", gotrace_last_error());
		return 1;
	}
	pthread_t th[LOCKERS + 1];
	pthread_mutex_lock(&m);
	for (int i = 0; i < LOCKERS; i++)
		pthread_create(&th[i], NULL, locker, NULL);
	pthread_create(&th[LOCKERS], NULL, sleeper, NULL);
	for (int r = 0; r < ROUNDS; r++) {
		/* Hold the lock until every locker is about to wait on it, then
		 * some more: their gotrace_mutex_lock is contended. */
		while (__atomic_load_n(&waiting, __ATOMIC_SEQ_CST) < LOCKERS * (r + 1))
			sleep_ms(1);
		sleep_ms(20);
		pthread_mutex_unlock(&m);
		/* Every locker of this round had the lock before main takes it
		 * again (a slow one still waiting for it would otherwise never
		 * come to the next round's count: a deadlock under load). */
		while (__atomic_load_n(&took, __ATOMIC_SEQ_CST) < LOCKERS * (r + 1))
			sleep_ms(1);
		if (r + 1 < ROUNDS)
			pthread_mutex_lock(&m);
	}
	for (int i = 0; i <= LOCKERS; i++)
		pthread_join(th[i], NULL);
	if (gotrace_stop() != 0) {
		fprintf(stderr, "nofp_profiles: stop: %s\n", gotrace_last_error());
		return 1;
	}
	return 0;
}
