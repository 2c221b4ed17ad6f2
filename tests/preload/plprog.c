/*
 * plprog.c: an ordinary pthread program (it knows nothing of gotrace) that
 * makes every call the preload library wraps, for test_preload.sh: named
 * threads, a contended mutex, a condition variable, an rwlock, a barrier,
 * a semaphore, pthread_join, a read on a pipe and nanosleep.  Its stdout
 * is deterministic: traced and untraced runs must print the same bytes.
 * Every wait it makes is a real one whatever the scheduling: the thread
 * that releases first waits until the waiter sits in the kernel
 * (wait_waiting: a flag set just before the call, then futex(2) in
 * /proc/self/task/TID/syscall).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>

#include "insyscall.h"

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static pthread_rwlock_t rw = PTHREAD_RWLOCK_INITIALIZER;
static pthread_barrier_t bar;
static sem_t sem;
static int ready, pipefd[2];
static long counter;

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

/* A thread about to wait: tid published, then `at` set just before the
 * waiting call. */
struct waiter {
	pid_t tid;
	int at;
};
static struct waiter w_lock, w_cond, w_sem, w_rw, w_join, w_pipe, w_bar;

static void about_to_wait(struct waiter *w)
{
	__atomic_store_n(&w->tid, (pid_t)syscall(SYS_gettid), __ATOMIC_RELAXED);
	__atomic_store_n(&w->at, 1, __ATOMIC_RELEASE);
}


/* Until w's thread sits in system call nr (bounded: 20 s). */
static void wait_in(struct waiter *w, long nr)
{
	for (int i = 0; i < 20000 && !__atomic_load_n(&w->at, __ATOMIC_ACQUIRE); i++)
		sleep_ms(1);
	for (int i = 0; i < 20000 && !in_syscall(__atomic_load_n(&w->tid, __ATOMIC_RELAXED), nr); i++)
		sleep_ms(1);
}

/* Until w's thread waits in the kernel for a lock (futex). */
static void wait_waiting(struct waiter *w)
{
	wait_in(w, SYS_futex);
}

/* Holds the mutex (30 ms at least) until lock_waiter waits for it. */
static void *lock_holder(void *arg)
{
	(void)arg;
	pthread_setname_np(pthread_self(), "holder");
	pthread_mutex_lock(&mu);
	about_to_wait(&w_bar);
	pthread_barrier_wait(&bar); /* first: released by lock_waiter */
	sleep_ms(30);
	wait_waiting(&w_lock);
	counter++;
	pthread_mutex_unlock(&mu);
	return NULL;
}

static void *lock_waiter(void *arg)
{
	(void)arg;
	pthread_setname_np(pthread_self(), "waiter");
	wait_waiting(&w_bar);
	pthread_barrier_wait(&bar); /* last: releases lock_holder */
	sleep_ms(5);
	about_to_wait(&w_lock);
	pthread_mutex_lock(&mu); /* contended: the holder has it */
	counter++;
	pthread_mutex_unlock(&mu);
	return NULL;
}

static void *cond_waiter(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&mu);
	__atomic_store_n(&w_cond.at, 1, __ATOMIC_RELAXED); /* under mu: main sees it once we wait */
	while (!ready)
		pthread_cond_wait(&cv, &mu);
	pthread_mutex_unlock(&mu);
	about_to_wait(&w_sem);
	sem_wait(&sem); /* posted by main once we wait */
	about_to_wait(&w_rw);
	pthread_rwlock_rdlock(&rw);
	pthread_rwlock_unlock(&rw);
	return NULL;
}

static void *pipe_reader(void *arg)
{
	(void)arg;
	char buf[16];
	about_to_wait(&w_pipe);
	ssize_t n = read(pipefd[0], buf, sizeof buf); /* blocks until main writes */
	sleep_ms(30);
	wait_waiting(&w_join); /* main is in pthread_join: our exit wakes it */
	return (void *)(long)n;
}

static void *sleeper(void *arg)
{
	(void)arg;
	sleep_ms(10000);
	return NULL;
}

/* argv[1] "hostile": what daemons and shells do to a tracer: close every
 * descriptor (the trace's included), fork a child that locks and exits
 * without exec, run system(), cancel a thread, and end with _exit (no atexit handlers). */
int main(int argc, char **argv)
{
	pthread_t th[4];
	int hostile = argc > 1 && strcmp(argv[1], "hostile") == 0;
	if (hostile) {
		for (int fd = 3; fd < 1024; fd++)
			close(fd);
		closefrom(3);
		pid_t pid = fork();
		if (pid == 0) {
			pthread_mutex_lock(&mu);
			pthread_mutex_unlock(&mu);
			_exit(0);
		}
		int st;
		if (pid < 0 || waitpid(pid, &st, 0) != pid || st != 0)
			return 1;
		if (system("exit 0") != 0)
			return 1;
		/* A thread cancelled inside a wrapped call (nanosleep). */
		pthread_t c;
		if (pthread_create(&c, NULL, sleeper, NULL) != 0)
			return 1;
		sleep_ms(10);
		void *cr;
		if (pthread_cancel(c) != 0 || pthread_join(c, &cr) != 0 || cr != PTHREAD_CANCELED)
			return 1;
	}
	if (pipe(pipefd) != 0)
		return 1;
	pthread_barrier_init(&bar, NULL, 2);
	sem_init(&sem, 0, 0);
	pthread_create(&th[0], NULL, lock_holder, NULL);
	pthread_create(&th[1], NULL, lock_waiter, NULL);
	pthread_create(&th[2], NULL, cond_waiter, NULL);
	pthread_create(&th[3], NULL, pipe_reader, NULL);
	/* Named by their creator (another thread's name): cond_waiter is
	 * registered by now or soon, pipe_reader blocks in read first. */
	pthread_setname_np(th[2], "condw");
	pthread_setname_np(th[3], "piper");
	pthread_rwlock_wrlock(&rw);
	sleep_ms(20);
	/* cond_waiter set w_cond.at under mu before its wait, which releases
	 * mu: seen under mu, it is waiting. */
	for (;;) {
		pthread_mutex_lock(&mu);
		if (__atomic_load_n(&w_cond.at, __ATOMIC_RELAXED))
			break;
		pthread_mutex_unlock(&mu);
		sleep_ms(1);
	}
	ready = 1;
	pthread_cond_signal(&cv);
	pthread_mutex_unlock(&mu);
	sleep_ms(20);
	wait_waiting(&w_sem);
	sem_post(&sem);
	sleep_ms(20);
	wait_waiting(&w_rw);
	pthread_rwlock_unlock(&rw);
	sleep_ms(20);
	wait_in(&w_pipe, SYS_read);
	sleep_ms(60); /* its read lasts 60 ms at least */
	if (write(pipefd[1], "hello", 5) != 5)
		return 1;
	void *r;
	about_to_wait(&w_join);
	pthread_join(th[3], &r);
	pthread_join(th[0], NULL);
	pthread_join(th[1], NULL);
	pthread_join(th[2], NULL);
	printf("counter=%ld read=%ld\n", counter, (long)r);
	if (hostile) {
		fflush(stdout);
		_exit(3);
	}
	return 3; /* a distinctive exit status, compared with the untraced run */
}
