/*
 * syncpool: a worker pool with a shared queue, traced with gotrace's
 * scheduling calls (issue 5).  Producers push jobs, consumers pop them;
 * both block on each other through the instrumented mutex and condition
 * variables (blocks "sync.Mutex.Lock" / "sync.Cond.Wait" with stacks), a
 * consumer wakes the producer it unblocked explicitly with gotrace_unblock
 * (arrows in `go tool trace`), and every job does "I/O" inside a syscall
 * bracket.
 *
 * Beside the pool, a tiny user-level scheduler (a state-machine task loop
 * on two threads sharing a run queue) runs coroutines as explicit
 * goroutines (gotrace_go_*): `go tool trace` lists them as goroutines
 * coro_fetch and coro_parse, with their execution, scheduling wait
 * (run queue), blocking ("sleep", woken by the task that saw the timer
 * expire) and syscall time; they move between the two scheduler threads.
 * Usage: syncpool TRACE-FILE
 *   go tool trace -pprof=sync TRACE-FILE > sync.pprof; go tool pprof -top sync.pprof
 *   go tool trace -pprof=syscall TRACE-FILE > sys.pprof
 */
#define _GNU_SOURCE 1
#include <gotrace.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
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

/* ---- coroutines: a state-machine task loop on NSCHED threads ---------- */
#define NTASK 16
#define NSCHED 2
#define STEPS 8

struct ctask {
	gotrace_goroutine_t g;
	int id, step;
	uint64_t wake_ns;
};
static struct ctask ct[NTASK];
/* The run queue and the sleepers, under rq_mu (not traced: scheduler
 * internals). */
static pthread_mutex_t rq_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t rq_cv = PTHREAD_COND_INITIALIZER;
static struct ctask *runq[NTASK], *sleepers[NTASK];
static int rq_head, rq_len, nsleep, tasks_live;

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void spin_ns(uint64_t ns)
{
	uint64_t end = now_ns() + ns;
	while (now_ns() < end)
		;
}

static void rq_push(struct ctask *t) /* rq_mu held */
{
	runq[(rq_head + rq_len++) % NTASK] = t;
	pthread_cond_signal(&rq_cv);
}

/* Wake the sleepers whose timer expired (rq_mu held).  Called from a
 * running task, the trace shows that task waking them. */
static void wake_sleepers(void)
{
	uint64_t now = now_ns();
	for (int i = 0; i < nsleep;) {
		if (sleepers[i]->wake_ns <= now) {
			gotrace_unblock(sleepers[i]->g);
			rq_push(sleepers[i]);
			sleepers[i] = sleepers[--nsleep];
		} else {
			i++;
		}
	}
}

/* One step of a task, running as its goroutine: 0 yield, 1 sleep, 2 done. */
static __attribute__((noinline)) int task_step(struct ctask *t)
{
	spin_ns(30000); /* compute */
	pthread_mutex_lock(&rq_mu);
	wake_sleepers();
	pthread_mutex_unlock(&rq_mu);
	if (++t->step >= STEPS)
		return 2;
	switch (t->step % 4) {
	case 1:
		do_io(t->id); /* a syscall of the goroutine */
		return 0;
	case 2:
		return 1;
	case 3:
		gotrace_region_begin(0, t->id % 2 ? "parse" : "fetch");
		spin_ns(20000);
		gotrace_region_end(0, t->id % 2 ? "parse" : "fetch");
		return 0;
	default:
		return 0;
	}
}

static void *scheduler(void *arg)
{
	(void)arg;
	gotrace_thread_name("scheduler");
	pthread_mutex_lock(&rq_mu);
	for (;;) {
		while (rq_len == 0 && tasks_live > 0) {
			if (nsleep > 0) { /* idle: poll the timers */
				pthread_mutex_unlock(&rq_mu);
				usleep(100);
				pthread_mutex_lock(&rq_mu);
				wake_sleepers();
			} else {
				pthread_cond_wait(&rq_cv, &rq_mu);
			}
		}
		if (rq_len == 0)
			break;
		struct ctask *t = runq[rq_head];
		rq_head = (rq_head + 1) % NTASK;
		rq_len--;
		pthread_mutex_unlock(&rq_mu);
		gotrace_go_start(t->g); /* this thread's own goroutine waits */
		int r = task_step(t);
		pthread_mutex_lock(&rq_mu);
		if (r == 0) {
			gotrace_go_stop(t->g); /* yield: back to the run queue */
			rq_push(t);
		} else if (r == 1) {
			gotrace_go_block(t->g, "sleep");
			t->wake_ns = now_ns() + 500000;
			sleepers[nsleep++] = t;
		} else {
			gotrace_go_destroy(t->g);
			if (--tasks_live == 0)
				pthread_cond_broadcast(&rq_cv);
		}
	}
	pthread_mutex_unlock(&rq_mu);
	return NULL;
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
	pthread_t p[NPROD], c[NCONS], sc[NSCHED];
	for (int i = 0; i < NTASK; i++) {
		ct[i].id = i;
		ct[i].g = gotrace_go_create(i % 2 ? "coro_parse" : "coro_fetch");
		runq[rq_len++] = &ct[i];
	}
	tasks_live = NTASK;
	for (int i = 0; i < NSCHED; i++)
		pthread_create(&sc[i], NULL, scheduler, NULL);
	for (int i = 0; i < NCONS; i++)
		pthread_create(&c[i], NULL, consumer, NULL);
	for (int i = 0; i < NPROD; i++)
		pthread_create(&p[i], NULL, producer, NULL);
	for (int i = 0; i < NPROD; i++)
		pthread_join(p[i], NULL);
	for (int i = 0; i < NCONS; i++)
		pthread_join(c[i], NULL);
	for (int i = 0; i < NSCHED; i++)
		pthread_join(sc[i], NULL);
	gotrace_stats st;
	gotrace_get_stats(&st);
	printf("trace: %llu bytes, %llu dropped\n", (unsigned long long)st.bytes_written,
	       (unsigned long long)st.events_dropped);
	return gotrace_stop() == 0 ? 0 : 1;
}
