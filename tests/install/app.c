/* A program written only against the installed gotrace: what a user's
 * first instrumented program looks like (the README shows it).
 * usage: app TRACE
 *        app          (linked with the autostart object: tracing must have
 *                      been started from GOTRACE_OUT before main; exit()
 *                      finishes the trace) */
#include <gotrace.h>
#include <pthread.h>
#include <stdio.h>

static void *work(void *arg)
{
	uint64_t task = gotrace_task_begin(0, "job");
	gotrace_region_begin(task, "compute");
	volatile unsigned long x = 0;
	for (unsigned long i = 0; i < 2000000; i++)
		x += i * (unsigned long)(uintptr_t)arg;
	gotrace_region_end(task, "compute");
	gotrace_log(task, "result", "done");
	gotrace_task_end(task);
	return NULL;
}

int main(int argc, char **argv)
{
	int autostarted = argc == 1;
	if (autostarted ? !gotrace_enabled() : (argc != 2 || gotrace_start_path(argv[1], NULL) != 0)) {
		fprintf(stderr, "app: %s\n",
		        autostarted ? "tracing is off (no autostart, or GOTRACE_OUT unset)"
		        : argc != 2 ? "usage: app TRACE"
		                    : gotrace_last_error());
		return 1;
	}
	pthread_t th[4];
	for (uintptr_t i = 0; i < 4; i++)
		pthread_create(&th[i], NULL, work, (void *)(i + 1));
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	if (autostarted)
		return 0; /* exit() finishes the trace */
	return gotrace_stop() == 0 ? 0 : 1;
}
