/*
 * bench_sampler_load: how many CPU samples a thread that burns a fixed
 * amount of CPU gets from each SIGPROF source, on a quiet machine and with
 * busy processes competing for the CPUs.
 *
 *   bench_sampler_load [-l BUSY_PROCESSES (default 3)] [-r REPS (default 10)]
 *                      [-m MS_OF_CPU (default 300)] [-z HZ (default 1000)]
 *
 * Two kinds of run, each in a fresh child process, interleaved, first with
 * no competitor and then with the busy processes running:
 *  - "bare": no gotrace; the child's own SIGPROF handler counts the signals
 *    the kernel delivers while one thread burns MS of its CPU (setitimer,
 *    a timer_create on the thread's CPU clock, a perf CPU-clock event routed
 *    to the thread): what any profiler built on that source receives;
 *  - "perf clock": no signal; the periods a counting perf CPU-clock event
 *    on the thread measured over the burn.  That clock counts the time the
 *    hypervisor steals from the vCPU, the thread CPU clock does not: above
 *    1.000, this row is what one sample per perf signal would overcount;
 *  - "gotrace": the library at HZ with that source (and auto), the same
 *    burn on a registered thread; the samples it wrote (gotrace_get_stats).
 * Expected: MS x HZ / 1000 samples.  The table gives min / median / max
 * over the reps, as a fraction of the expected count.
 */
#define _GNU_SOURCE 1
#include <gotrace.h>

#include <fcntl.h>
#include <linux/perf_event.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum {
	BARE_SETITIMER, BARE_TIMER, BARE_PERF, PERF_CLOCK, GT_SETITIMER, GT_TIMER, GT_PERF, GT_AUTO,
	NCONF
};
static const char *const conf_name[NCONF] = {
	"bare setitimer", "bare timer_create", "bare perf", "perf clock", "gotrace setitimer",
	"gotrace timer", "gotrace perf", "gotrace auto",
};

static int hz = 1000, burn_ms = 300;
static volatile sig_atomic_t nsig;
static long clock_periods; /* PERF_CLOCK: written by the burner, read after the join */

static void on_prof(int sig) { (void)sig; nsig++; }

static double thread_cpu(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *burner(void *arg)
{
	int conf = *(int *)arg;
	if (conf >= GT_SETITIMER)
		gotrace_log(0, "burn", "start"); /* registers the thread */
	int fd = -1;
	timer_t tm;
	long period_ns = 1000000000L / hz;
	if (conf == BARE_TIMER) {
		struct sigevent sev;
		memset(&sev, 0, sizeof sev);
		sev.sigev_notify = SIGEV_THREAD_ID;
		sev.sigev_signo = SIGPROF;
		sev._sigev_un._tid = (pid_t)syscall(SYS_gettid);
		struct itimerspec its = { { 0, period_ns }, { 0, period_ns } };
		if (timer_create(CLOCK_THREAD_CPUTIME_ID, &sev, &tm) != 0 ||
		    timer_settime(tm, 0, &its, NULL) != 0)
			_exit(20);
	} else if (conf == BARE_PERF || conf == PERF_CLOCK) {
		struct perf_event_attr a;
		memset(&a, 0, sizeof a);
		a.size = sizeof a;
		a.type = PERF_TYPE_SOFTWARE;
		a.config = PERF_COUNT_SW_CPU_CLOCK;
		a.sample_period = conf == BARE_PERF ? (uint64_t)period_ns : 0;
		a.disabled = 1;
		a.exclude_hv = 1;
		a.wakeup_events = 1;
		fd = (int)syscall(SYS_perf_event_open, &a, 0, -1, -1, PERF_FLAG_FD_CLOEXEC);
		if (conf == PERF_CLOCK && (fd < 0 || ioctl(fd, PERF_EVENT_IOC_ENABLE, 0) != 0))
			_exit(21);
		struct f_owner_ex own = { F_OWNER_TID, (pid_t)syscall(SYS_gettid) };
		if (conf == BARE_PERF && (fd < 0 || fcntl(fd, F_SETOWN_EX, &own) != 0 || fcntl(fd, F_SETSIG, SIGPROF) != 0 ||
		    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_ASYNC) != 0 ||
		    ioctl(fd, PERF_EVENT_IOC_ENABLE, 0) != 0))
			_exit(21);
	}
	double t0 = thread_cpu();
	volatile uint64_t x = 1;
	while (thread_cpu() - t0 < burn_ms / 1000.0)
		for (int i = 0; i < 10000; i++)
			x = x * 6364136223846793005ull + 1;
	if (fd >= 0)
		ioctl(fd, PERF_EVENT_IOC_DISABLE, 0);
	uint64_t ns;
	if (conf == PERF_CLOCK && read(fd, &ns, sizeof ns) == (ssize_t)sizeof ns)
		clock_periods = (long)(ns / (uint64_t)period_ns);
	if (conf == BARE_TIMER)
		timer_delete(tm);
	return NULL;
}

/* In the child: one run; writes the count on fd out. */
static int child(int conf, int out)
{
	if (conf == BARE_SETITIMER || conf == BARE_TIMER || conf == BARE_PERF) {
		struct sigaction sa;
		memset(&sa, 0, sizeof sa);
		sa.sa_handler = on_prof;
		sa.sa_flags = SA_RESTART;
		sigaction(SIGPROF, &sa, NULL);
	}
	if (conf == BARE_SETITIMER) {
		struct itimerval it = { { 0, 1000000 / hz }, { 0, 1000000 / hz } };
		setitimer(ITIMER_PROF, &it, NULL);
	}
	if (conf >= GT_SETITIMER) {
		gotrace_options o;
		gotrace_options_init(&o);
		o.cpu_hz = hz;
		o.cpu_source = conf == GT_SETITIMER ? GOTRACE_CPU_SETITIMER
		               : conf == GT_TIMER   ? GOTRACE_CPU_THREAD_TIMER
		               : conf == GT_PERF    ? GOTRACE_CPU_PERF
		                                    : GOTRACE_CPU_AUTO;
		if (gotrace_start_path("/dev/null", &o) != 0)
			return 22;
	}
	pthread_t t;
	pthread_create(&t, NULL, burner, &conf);
	pthread_join(t, NULL);
	long n = conf == PERF_CLOCK ? clock_periods : nsig;
	if (conf == BARE_SETITIMER) {
		struct itimerval off;
		memset(&off, 0, sizeof off);
		setitimer(ITIMER_PROF, &off, NULL);
	}
	if (conf >= GT_SETITIMER) {
		gotrace_stop();
		gotrace_stats st;
		gotrace_get_stats(&st);
		n = (long)st.cpu_samples;
	}
	return write(out, &n, sizeof n) == (ssize_t)sizeof n ? 0 : 23;
}

static long run(int conf)
{
	int p[2];
	if (pipe(p) != 0)
		return -1;
	pid_t pid = fork();
	if (pid == 0) {
		close(p[0]);
		_exit(child(conf, p[1]));
	}
	close(p[1]);
	long n = -1;
	if (read(p[0], &n, sizeof n) != (ssize_t)sizeof n)
		n = -1;
	close(p[0]);
	int st;
	waitpid(pid, &st, 0);
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? n : -1;
}

static int cmp_long(const void *a, const void *b)
{
	long x = *(const long *)a, y = *(const long *)b;
	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	int busy = 3, reps = 10, c;
	while ((c = getopt(argc, argv, "l:r:m:z:")) != -1) {
		switch (c) {
		case 'l': busy = atoi(optarg); break;
		case 'r': reps = atoi(optarg); break;
		case 'm': burn_ms = atoi(optarg); break;
		case 'z': hz = atoi(optarg); break;
		default:
			fprintf(stderr, "usage: %s [-l BUSY] [-r REPS] [-m MS] [-z HZ]\n", argv[0]);
			return 2;
		}
	}
	if (reps < 1 || reps > 1000 || hz < 1 || hz > 10000 || burn_ms < 1 || busy < 0 || busy > 64)
		return 2;
	double want = (double)burn_ms * hz / 1000.0;
	printf("%d ms of one thread's CPU at %d Hz: %.0f samples expected; %d reps\n\n", burn_ms, hz,
	       want, reps);
	printf("| source | busy processes | min | median | max |\n|---|---:|---:|---:|---:|\n");
	for (int loaded = 0; loaded < 2; loaded++) {
		int nb = loaded ? busy : 0;
		pid_t spin[64];
		for (int i = 0; i < nb; i++) {
			spin[i] = fork();
			if (spin[i] == 0)
				for (volatile uint64_t x = 0;; x++)
					;
		}
		long got[NCONF][1000];
		for (int r = 0; r < reps; r++)
			for (int k = 0; k < NCONF; k++)
				got[k][r] = run(k);
		for (int i = 0; i < nb; i++) {
			kill(spin[i], SIGKILL);
			waitpid(spin[i], NULL, 0);
		}
		for (int k = 0; k < NCONF; k++) {
			qsort(got[k], (size_t)reps, sizeof got[k][0], cmp_long);
			if (got[k][0] < 0) {
				printf("| %s | %d | (failed) | | |\n", conf_name[k], nb);
				continue;
			}
			printf("| %s | %d | %.3f | %.3f | %.3f |\n", conf_name[k], nb, got[k][0] / want,
			       got[k][reps / 2] / want, got[k][reps - 1] / want);
		}
		fflush(stdout);
	}
	return 0;
}
