/*
 * syncpool: a worker pool with a shared queue, traced with gotrace's
 * scheduling calls (issue 5).  Producers push jobs, consumers pop them;
 * both block on each other through the instrumented mutex and condition
 * variables (blocks "sync.Mutex.Lock" / "sync.Cond.Wait" with stacks), a
 * consumer wakes the producer it unblocked explicitly with gotrace_unblock
 * (arrows in `go tool trace`), and every job does "I/O" inside a syscall
 * bracket.  Usage: syncpool TRACE-FILE
 *   go tool trace -pprof=sync TRACE-FILE > sync.pprof; go tool pprof -top sync.pprof
 *   go tool trace -pprof=syscall TRACE-FILE > sys.pprof
 */
#define _GNU_SOURCE 1
#include <gotrace.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define QCAP 4
#define JOBS 400
#define NPROD 2
#define NCONS 4

static pthread_mutex_t qmu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t not_empty = PTHREAD_COND_INITIALIZER, not_full = PTHREAD_COND_INITIALIZER;
static int queue[QCAP], qhead, qlen, produced, done_producers;
/* Producers waiting for room, so a consumer can name whom it wakes. */
static gotrace_goroutine_t waiting_producer[NPROD];
static int nwaiting;

static __attribute__((noinline)) void do_io(int job)
{
	gotrace_syscall_begin();
	usleep(200 + (job % 5) * 100); /* the blocking call */
	gotrace_syscall_end();
}

static __attribute__((noinline)) void queue_push(int job)
{
	gotrace_mutex_lock(&qmu);
	while (qlen == QCAP) {
		waiting_producer[nwaiting++] = gotrace_self();
		gotrace_block("chan send"); /* woken by a consumer below */
		pthread_cond_wait(&not_full, &qmu);
		gotrace_block_end();
	}
	queue[(qhead + qlen++) % QCAP] = job;
	pthread_cond_signal(&not_empty);
	pthread_mutex_unlock(&qmu);
}

static __attribute__((noinline)) int queue_pop(int *job)
{
	gotrace_mutex_lock(&qmu);
	while (qlen == 0 && done_producers < NPROD)
		gotrace_cond_wait(&not_empty, &qmu);
	if (qlen == 0) {
		pthread_mutex_unlock(&qmu);
		return 0;
	}
	*job = queue[qhead];
	qhead = (qhead + 1) % QCAP;
	qlen--;
	if (nwaiting > 0) /* wake a producer: recorded as this thread's doing */
		gotrace_unblock(waiting_producer[--nwaiting]);
	pthread_cond_signal(&not_full);
	pthread_mutex_unlock(&qmu);
	return 1;
}

static void *producer(void *arg)
{
	(void)arg;
	gotrace_thread_name("producer");
	for (;;) {
		gotrace_mutex_lock(&qmu);
		int job = produced < JOBS ? produced++ : -1;
		pthread_mutex_unlock(&qmu);
		if (job < 0)
			break;
		queue_push(job);
	}
	gotrace_mutex_lock(&qmu);
	done_producers++;
	pthread_cond_broadcast(&not_empty);
	pthread_mutex_unlock(&qmu);
	return NULL;
}

static void *consumer(void *arg)
{
	(void)arg;
	gotrace_thread_name("consumer");
	int job, n = 0;
	while (queue_pop(&job)) {
		uint64_t t = gotrace_task_begin(0, "job");
		do_io(job);
		gotrace_task_end(t);
		n++;
	}
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s TRACE-FILE\n", argv[0]);
		return 2;
	}
	gotrace_options o;
	gotrace_options_init(&o);
	o.advance_period_ns = 50 * 1000 * 1000;
	o.event_stacks = GOTRACE_STACK_BLOCK | GOTRACE_STACK_SYSCALL;
	if (gotrace_start_path(argv[1], &o) != 0) {
		fprintf(stderr, "gotrace: %s\n", gotrace_last_error());
		return 1;
	}
	pthread_t p[NPROD], c[NCONS];
	for (int i = 0; i < NCONS; i++)
		pthread_create(&c[i], NULL, consumer, NULL);
	for (int i = 0; i < NPROD; i++)
		pthread_create(&p[i], NULL, producer, NULL);
	for (int i = 0; i < NPROD; i++)
		pthread_join(p[i], NULL);
	for (int i = 0; i < NCONS; i++)
		pthread_join(c[i], NULL);
	gotrace_stats st;
	gotrace_get_stats(&st);
	printf("trace: %llu bytes, %llu dropped\n", (unsigned long long)st.bytes_written,
	       (unsigned long long)st.events_dropped);
	return gotrace_stop() == 0 ? 0 : 1;
}
