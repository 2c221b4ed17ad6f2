/*
 * workers: a few worker threads process jobs from a shared counter, each job
 * a task with nested regions and log messages.  Run it, then open the trace:
 *
 *   ./workers trace.out && go tool trace trace.out
 */
#include <gotrace.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define NWORKERS 4
#define NJOBS 400

static int next_job;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static void spin_us(long us)
{
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	do
		clock_gettime(CLOCK_MONOTONIC, &b);
	while ((b.tv_sec - a.tv_sec) * 1000000L + (b.tv_nsec - a.tv_nsec) / 1000 < us);
}

static int take_job(void)
{
	pthread_mutex_lock(&lock);
	int j = next_job < NJOBS ? next_job++ : -1;
	pthread_mutex_unlock(&lock);
	return j;
}

static void *worker_main(void *arg)
{
	char name[32];
	snprintf(name, sizeof name, "worker-%d", (int)(long)arg);
	gotrace_thread_name(name);
	int j;
	while ((j = take_job()) >= 0) {
		uint64_t task = gotrace_task_begin(0, "job");
		char msg[64];
		snprintf(msg, sizeof msg, "job %d on %s", j, name);
		gotrace_log(task, "jobs", msg);
		gotrace_region_begin(task, "parse");
		spin_us(200 + j % 7 * 50);
		gotrace_region_end(task, "parse");
		gotrace_region_begin(task, "compute");
		gotrace_region_begin(task, "inner-loop");
		spin_us(500 + j % 5 * 100);
		gotrace_region_end(task, "inner-loop");
		gotrace_region_end(task, "compute");
		if (j % 50 == 0)
			gotrace_log(task, "jobs", "checkpoint");
		gotrace_task_end(task);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	const char *out = argc > 1 ? argv[1] : "trace.out";
	gotrace_options opt;
	gotrace_options_init(&opt);
	opt.advance_period_ns = 200 * 1000 * 1000; /* several generations */
	int rc = gotrace_start_path(out, &opt);
	if (rc) {
		fprintf(stderr, "gotrace_start_path: %d %s\n", rc, gotrace_last_error());
		return 1;
	}
	uint64_t all = gotrace_task_begin(0, "all jobs");
	gotrace_region_begin(all, "main: start workers");
	pthread_t th[NWORKERS];
	for (long i = 0; i < NWORKERS; i++)
		pthread_create(&th[i], NULL, worker_main, (void *)i);
	gotrace_region_end(all, "main: start workers");
	for (int i = 0; i < NWORKERS; i++)
		pthread_join(th[i], NULL);
	gotrace_log(all, "main", "all workers done");
	gotrace_task_end(all);
	rc = gotrace_stop();
	if (rc) {
		fprintf(stderr, "gotrace_stop: %d %s\n", rc, gotrace_last_error());
		return 1;
	}
	gotrace_stats st;
	gotrace_get_stats(&st);
	printf("wrote %s: %llu generations, %llu bytes, %llu threads, %llu dropped\n", out,
	       (unsigned long long)st.generations, (unsigned long long)st.bytes_written,
	       (unsigned long long)st.threads_seen, (unsigned long long)st.events_dropped);
	return 0;
}
