/*
 * plrobust.c: programs that are hard on a tracer, for test_robust.sh
 * (issue 12's robustness under the preload library).  Each mode prints
 * deterministic bytes and ends with a distinctive status (or signal):
 * traced and untraced runs must agree.  Before its end every mode runs a
 * thread named "last" whose final act is a nanosleep (a syscall) and a
 * contended mutex (a block), so that the trace's last generation can be
 * checked for the program's last events.
 *
 *   segv      its own SIGSEGV handler; faults twice and recovers with
 *             siglongjmp each time; exit 4
 *   segvexit  its own SIGSEGV handler that writes a line and _exit(5)s
 *   segvdfl   its own SIGSEGV handler (a crash reporter) that writes a
 *             line, restores SIG_DFL and returns: dies of SIGSEGV
 *   prof      its own SIGPROF handler and ITIMER_PROF; counts 20 signals
 *             (all its own) then exits 0
 *   crash     a NULL store on a thread: dies of SIGSEGV
 *   abort     abort() on a thread: dies of SIGABRT
 *   texit     _exit(7) from a thread while main waits in pthread_join
 *   spawn     vfork+execve, posix_spawn and system() of "ARGV0 child";
 *             exit 8
 *   daemon    closes every descriptor (0..1023 and closefrom), reopens
 *             /dev/null as 0-2, burns 100 ms of CPU (burn_100ms), then
 *             keeps running threads; exit 9
 *   dlopen    dlopens ARGV2 (pldl.so), whose pldl_run creates 2 threads;
 *             exit 10
 *   term      SIGTERM sent to the process (kill): dies of it
 *   sigpipe   a write to a pipe with no reader: dies of SIGPIPE
 *   sigquery  prints the actions of SIGINT SIGTERM SIGPIPE SIGSEGV as
 *             the program sees them (DFL, IGN, handler), sets SIGTERM to
 *             SIG_DFL and prints it again; exit 0
 *   sigvars   the other ways to set an action: sysv_signal(SIGTERM),
 *             bsd_signal(SIGHUP), sigset(SIGINT) install its handler
 *             (queries print "handler"); a SIGTERM runs it once (System V:
 *             reset to DFL on delivery), sigset SIG_HOLD then SIG_DFL;
 *             then sysv_signal(SIGTERM, SIG_DFL) and a SIGTERM: dies of it
 *   fifo      a thread opens a FIFO for reading (open blocks) until
 *             main opens it for writing, 60 ms after the thread sits in
 *             the kernel's openat; exit 11
 *   sempost   a thread waits 200 times in sem_wait; a SIGALRM handler
 *             (ITIMER_REAL, 1 ms) posts, interrupting main's loop of
 *             computation and write()s; exit 12
 *   masks     SIGPROF in the signal masks as the program sees them:
 *             blocked with pthread_sigmask, inherited by a thread,
 *             unblocked with sigprocmask; then a thread that blocks every
 *             signal (as xz's workers do) burns 300 ms of CPU; traced,
 *             writes the start notes to masks.notes; exit 13
 *   dup2      onto the perf event descriptors it finds in /proc/self/fd
 *             (the sampler's, traced; none untraced): a dup2 from a bad
 *             descriptor (must fail, EBADF), a dup2 of /dev/null, a dup3
 *             of /dev/null, each onto the events found just before it;
 *             checks each number then names /dev/null (or, after the
 *             failed call, nothing); writes the events found before each
 *             call to dup2.count; burns 100 ms of CPU (burn_100ms); exit 14
 *   dup2trace onto the trace's descriptor (the one link to a *.trace
 *             file in /proc/self/fd, traced; untraced, a free number from
 *             600), 40 times 2 ms apart, while a thread makes write(2)s to
 *             /dev/null (traced: syscall events for the flusher to write
 *             meanwhile): each dup2 of dup2trace.victim must return the
 *             number, and a line written there lands in the victim;
 *             writes "FOUND 40" to dup2trace.count, FOUND the rounds that
 *             found one trace descriptor; burns 100 ms of CPU; exit 15
 *   child     what spawn runs: prints a line, exit 0
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <setjmp.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include "insyscall.h"

extern char **environ;
/* Hidden or deprecated by glibc's headers; old programs call them. */
extern __sighandler_t bsd_signal(int sig, __sighandler_t h);
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static sigjmp_buf jb;
static volatile sig_atomic_t nprof;
static const char *mode;

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

static void on_segv(int sig)
{
	if (strcmp(mode, "segvdfl") == 0) {
		/* A crash reporter: reports, restores the default action and
		 * returns; the store faults again and the process dies. */
		static const char m[] = "segv reported\n";
		(void)!write(1, m, sizeof m - 1);
		struct sigaction cur;
		signal(sig, SIG_DFL);
		if (sigaction(sig, NULL, &cur) != 0 || cur.sa_handler != SIG_DFL)
			(void)!write(1, "not SIG_DFL\n", 12);
		return;
	}
	if (strcmp(mode, "segvexit") == 0) {
		static const char m[] = "segv handled, exiting\n";
		(void)!write(1, m, sizeof m - 1);
		_exit(5);
	}
	siglongjmp(jb, 1);
}

static void on_prof(int sig)
{
	(void)sig;
	nprof++;
}

/* Burn ms of CPU time (the process's: what ITIMER_PROF counts). */
static void spin_ms(long ms)
{
	struct timespec t0, t;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t0);
	do
		clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
	while ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 < ms);
}

/* A store through a NULL pointer the compiler cannot see. */
static int *volatile nowhere;

static void fault(void)
{
	*nowhere = 1;
}

/* Whether thread tid sits in futex(2): after its nanosleep, that is its
 * wait for mu. */
static int in_futex(pid_t tid)
{
	return in_syscall(tid, SYS_futex);
}

/* The last named thread: a syscall then a block on mu (held by main until
 * the thread waits in the kernel for it), then the mode's ending. */
static pid_t last_tid;

static void *last(void *arg)
{
	(void)arg;
	__atomic_store_n(&last_tid, (pid_t)syscall(SYS_gettid), __ATOMIC_RELEASE);
	pthread_setname_np(pthread_self(), "last");
	sleep_ms(5);
	pthread_mutex_lock(&mu);
	pthread_mutex_unlock(&mu);
	if (strcmp(mode, "crash") == 0 || strcmp(mode, "segvdfl") == 0) {
		fflush(stdout);
		fault();
	}
	if (strcmp(mode, "abort") == 0) {
		fflush(stdout);
		abort();
	}
	if (strcmp(mode, "texit") == 0) {
		/* Once main waits in pthread_join (a futex wait of its own). */
		for (int i = 0; i < 20000 && !in_futex(getpid()); i++)
			sleep_ms(1);
		fflush(stdout);
		_exit(7);
	}
	return NULL;
}

static void run_last(void)
{
	pthread_t t;
	__atomic_store_n(&last_tid, 0, __ATOMIC_RELAXED);
	pthread_mutex_lock(&mu);
	if (pthread_create(&t, NULL, last, NULL) != 0)
		exit(1);
	/* Contended for sure: wait (up to 20 s) until it waits for mu. */
	sleep_ms(20);
	pid_t tid;
	while (!(tid = __atomic_load_n(&last_tid, __ATOMIC_ACQUIRE)))
		sleep_ms(1);
	for (int i = 0; i < 20000 && !in_futex(tid); i++)
		sleep_ms(1);
	pthread_mutex_unlock(&mu);
	pthread_join(t, NULL);
}

static int wait_ok(pid_t pid)
{
	int st;
	return pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

static volatile sig_atomic_t nvar;
static void on_var(int sig)
{
	(void)sig;
	nvar++;
}

/* The action of sig as the program sees it. */
static const char *act_name(int sig)
{
	struct sigaction cur;
	sigaction(sig, NULL, &cur);
	return (cur.sa_flags & SA_SIGINFO) ? "siginfo" :
	       cur.sa_handler == SIG_DFL ? "DFL" : cur.sa_handler == SIG_IGN ? "IGN" :
	       cur.sa_handler == on_var ? "handler" : "other";
}

static char fifo_path[64];
static pid_t opener_tid;
static void *fifo_opener(void *arg)
{
	(void)arg;
	__atomic_store_n(&opener_tid, (pid_t)syscall(SYS_gettid), __ATOMIC_RELEASE);
	int fd = open(fifo_path, O_RDONLY); /* blocks until a writer opens it */
	char c = 0;
	ssize_t n = fd >= 0 ? read(fd, &c, 1) : -1;
	if (fd >= 0)
		close(fd);
	return (void *)(long)(n == 1 && c == 'x');
}

static sem_t sp_sem;
static int sp_done;
static volatile sig_atomic_t sp_posts;
static void on_alrm(int sig)
{
	(void)sig;
	sem_post(&sp_sem); /* async-signal-safe: the traced unblock must be too */
	sp_posts++;
}
static void *sem_waiter(void *arg)
{
	(void)arg;
	for (int i = 0; i < 200; i++)
		while (sem_wait(&sp_sem) != 0) /* EINTR: the handler ran here */
			;
	__atomic_store_n(&sp_done, 1, __ATOMIC_RELEASE);
	return NULL;
}

/* Is SIGPROF blocked in this thread, as the program sees it? */
static const char *prof_mask(void)
{
	sigset_t cur;
	pthread_sigmask(SIG_BLOCK, NULL, &cur);
	return sigismember(&cur, SIGPROF) ? "blocked" : "unblocked";
}
static void *mask_child(void *arg)
{
	(void)arg;
	printf("masks: thread inherits %s\n", prof_mask());
	return NULL;
}
static double cpu_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}
/* 100 ms of the main thread's CPU: after it closed every descriptor
 * (daemon), after its dup2s onto the sampler's events (dup2). */
static __attribute__((noinline)) void burn_100ms(void)
{
	volatile unsigned long x = 0;
	double t0 = cpu_now();
	while (cpu_now() - t0 < 0.1)
		for (int i = 0; i < 100000; i++)
			x += (unsigned long)i;
}
/* The perf event descriptors open in this process (at most max). */
static int perf_event_fds(int *fds, int max)
{
	int n = 0;
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	while (d && (e = readdir(d)) != NULL && n < max) {
		char p[300], l[128];
		snprintf(p, sizeof p, "/proc/self/fd/%s", e->d_name);
		ssize_t k = readlink(p, l, sizeof l - 1);
		if (k > 0) {
			l[k] = 0;
			if (strstr(l, "[perf_event]"))
				fds[n++] = atoi(e->d_name);
		}
	}
	if (d)
		closedir(d);
	return n;
}
/* Does fd name path (path NULL: is fd closed)? */
static int fd_names(int fd, const char *path)
{
	char p[64], l[128];
	snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
	ssize_t k = readlink(p, l, sizeof l - 1);
	if (!path)
		return k < 0;
	if (k < 0)
		return 0;
	l[k] = 0;
	return strcmp(l, path) == 0;
}
static int dup2_mode(void)
{
	int nul = open("/dev/null", O_RDWR);
	FILE *f = fopen("dup2.count", "w");
	if (nul < 0 || !f)
		return 1;
	for (int round = 0; round < 3; round++) {
		int fds[16];
		int n = perf_event_fds(fds, 16);
		fprintf(f, "%s%d", round ? " " : "", n);
		for (int i = 0; i < n; i++) {
			if (round == 0) {
				errno = 0;
				if (dup2(1 << 20, fds[i]) != -1 || errno != EBADF || !fd_names(fds[i], NULL))
					return 1;
			} else if ((round == 1 ? dup2(nul, fds[i]) : dup3(nul, fds[i], O_CLOEXEC)) != fds[i] ||
			           !fd_names(fds[i], "/dev/null")) {
				return 1;
			}
		}
	}
	fprintf(f, "\n");
	fclose(f);
	burn_100ms();
	run_last();
	printf("dup2 done\n");
	return 14;
}
/* The descriptors naming a file whose name ends in ".trace" (at most max). */
static int trace_fds(int *fds, int max)
{
	int n = 0;
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	while (d && (e = readdir(d)) != NULL && n < max) {
		char p[300], l[PATH_MAX];
		snprintf(p, sizeof p, "/proc/self/fd/%s", e->d_name);
		ssize_t k = readlink(p, l, sizeof l - 1);
		if (k > 6) {
			l[k] = 0;
			if (strcmp(l + k - 6, ".trace") == 0)
				fds[n++] = atoi(e->d_name);
		}
	}
	if (d)
		closedir(d);
	return n;
}
enum { DUP2TRACE_ROUNDS = 40 };
static int syscaller_stop;
static void *syscaller(void *arg)
{
	int fd = *(int *)arg;
	char buf[64] = { 0 };
	while (!__atomic_load_n(&syscaller_stop, __ATOMIC_RELAXED))
		if (write(fd, buf, sizeof buf) != (ssize_t)sizeof buf)
			return NULL;
	return NULL;
}
static int dup2trace_mode(void)
{
	int victim = open("dup2trace.victim", O_WRONLY | O_CREAT | O_TRUNC, 0644);
	int nul = open("/dev/null", O_WRONLY);
	FILE *f = fopen("dup2trace.count", "w");
	char vpath[PATH_MAX];
	if (victim < 0 || nul < 0 || !f || !realpath("dup2trace.victim", vpath))
		return 1;
	pthread_t t;
	if (pthread_create(&t, NULL, syscaller, &nul) != 0)
		return 1;
	int found = 0;
	for (int round = 0; round < DUP2TRACE_ROUNDS; round++) {
		struct timespec ms2 = { 0, 2000000 };
		nanosleep(&ms2, NULL);
		int fds[4];
		int n = trace_fds(fds, 4);
		found += n == 1;
		int target = n == 1 ? fds[0] : 600 + round;
		char line[32];
		int len = snprintf(line, sizeof line, "round %d\n", round);
		if (dup2(victim, target) != target || !fd_names(target, vpath) ||
		    write(target, line, (size_t)len) != len)
			return 1;
	}
	fprintf(f, "%d %d", found, DUP2TRACE_ROUNDS);
	__atomic_store_n(&syscaller_stop, 1, __ATOMIC_RELAXED);
	pthread_join(t, NULL);
	fprintf(f, "\n");
	fclose(f);
	burn_100ms();
	run_last();
	printf("dup2trace done\n");
	return 15;
}
static void *burner(void *arg)
{
	(void)arg;
	sigset_t all;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, NULL);
	volatile unsigned long x = 0;
	double t0 = cpu_now();
	while (cpu_now() - t0 < 0.3)
		for (int i = 0; i < 100000; i++)
			x += (unsigned long)i;
	return NULL;
}

int main(int argc, char **argv)
{
	mode = argc > 1 ? argv[1] : "";
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (strcmp(mode, "child") == 0) {
		printf("child %s\n", argc > 2 ? argv[2] : "");
		return 0;
	}
	if (strcmp(mode, "segv") == 0 || strcmp(mode, "segvexit") == 0) {
		struct sigaction sa;
		memset(&sa, 0, sizeof sa);
		sa.sa_handler = on_segv;
		sigemptyset(&sa.sa_mask);
		sigaction(SIGSEGV, &sa, NULL);
		run_last();
		static volatile int i;
		for (i = 0; i < 2; i++) {
			if (sigsetjmp(jb, 1) == 0)
				fault();
			else
				printf("recovered %d\n", i);
		}
		run_last();
		return 4;
	}
	if (strcmp(mode, "prof") == 0) {
		/* Handler first, timer later: no SIGPROF may arrive in between
		 * (nor after the timer is disarmed) -- none that is not its own. */
		signal(SIGPROF, on_prof);
		spin_ms(50);
		int before = nprof;
		struct itimerval it = { { 0, 1000 }, { 0, 1000 } };
		setitimer(ITIMER_PROF, &it, NULL);
		while (nprof < before + 20)
			;
		struct itimerval off = { { 0, 0 }, { 0, 0 } };
		setitimer(ITIMER_PROF, &off, NULL);
		int end = nprof;
		spin_ms(50);
		struct sigaction cur;
		sigaction(SIGPROF, NULL, &cur);
		printf("prof: before the timer %d, after it %d, handler %s\n", before, nprof - end,
		       cur.sa_handler == on_prof ? "ours" : "other");
		run_last();
		return 0;
	}
	if (strcmp(mode, "segvdfl") == 0) {
		struct sigaction sa;
		memset(&sa, 0, sizeof sa);
		sa.sa_handler = on_segv;
		sigemptyset(&sa.sa_mask);
		sigaction(SIGSEGV, &sa, NULL);
	}
	if (strcmp(mode, "crash") == 0 || strcmp(mode, "abort") == 0 || strcmp(mode, "texit") == 0 ||
	    strcmp(mode, "segvdfl") == 0) {
		printf("%s: before\n", mode);
		run_last();
		printf("%s: not reached\n", mode);
		return 1;
	}
	if (strcmp(mode, "term") == 0 || strcmp(mode, "sigpipe") == 0) {
		printf("%s: before\n", mode);
		run_last();
		if (mode[0] == 't') {
			kill(getpid(), SIGTERM);
		} else {
			int p[2];
			if (pipe(p) != 0)
				return 1;
			close(p[0]);
			(void)!write(p[1], "x", 1);
		}
		sleep_ms(10000);
		printf("%s: not reached\n", mode);
		return 1;
	}
	if (strcmp(mode, "sigvars") == 0) {
		sysv_signal(SIGTERM, on_var);
		bsd_signal(SIGHUP, on_var);
		sigset(SIGINT, on_var);
		printf("TERM=%s HUP=%s INT=%s\n", act_name(SIGTERM), act_name(SIGHUP), act_name(SIGINT));
		raise(SIGTERM);
		printf("handled %d, TERM=%s\n", (int)nvar, act_name(SIGTERM));
		__sighandler_t held = sigset(SIGINT, SIG_HOLD);
		__sighandler_t was = sigset(SIGINT, SIG_DFL);
		printf("hold returned %s, then %s, INT=%s\n", held == on_var ? "handler" : "other",
		       was == SIG_HOLD ? "HOLD" : "other", act_name(SIGINT));
		fflush(stdout);
		run_last();
		sysv_signal(SIGTERM, SIG_DFL);
		raise(SIGTERM);
		sleep_ms(10000);
		printf("%s: not reached\n", mode);
		return 1;
	}
	if (strcmp(mode, "fifo") == 0) {
		snprintf(fifo_path, sizeof fifo_path, "fifo.%d", (int)getpid());
		if (mkfifo(fifo_path, 0600) != 0)
			return 1;
		pthread_t t;
		if (pthread_create(&t, NULL, fifo_opener, NULL) != 0)
			return 1;
		pid_t tid;
		while (!(tid = __atomic_load_n(&opener_tid, __ATOMIC_ACQUIRE)))
			sleep_ms(1);
		for (int i = 0; i < 20000 && !in_syscall(tid, SYS_openat); i++)
			sleep_ms(1);
		sleep_ms(60);
		int fd = open(fifo_path, O_WRONLY);
		if (fd < 0 || write(fd, "x", 1) != 1)
			return 1;
		close(fd);
		void *ok;
		pthread_join(t, &ok);
		unlink(fifo_path);
		printf("fifo: %s\n", ok ? "read x" : "failed");
		run_last();
		return 11;
	}
	if (strcmp(mode, "sigquery") == 0) {
		static const int sigs[] = { SIGINT, SIGTERM, SIGPIPE, SIGSEGV };
		for (int k = 0; k < 5; k++) {
			struct sigaction cur;
			int sig = sigs[k < 4 ? k : 1];
			if (k == 4)
				signal(SIGTERM, SIG_DFL);
			sigaction(sig, NULL, &cur);
			printf("%s%d=%s", k ? " " : "", sig,
			       (cur.sa_flags & SA_SIGINFO) ? "siginfo" :
			       cur.sa_handler == SIG_DFL ? "DFL" : cur.sa_handler == SIG_IGN ? "IGN" : "handler");
		}
		printf("\n");
		return 0;
	}
	if (strcmp(mode, "spawn") == 0) {
		char *av[] = { argv[0], "child", "vfork", NULL };
		pid_t pid = vfork();
		if (pid == 0) {
			execve(argv[0], av, environ);
			_exit(127);
		}
		if (!wait_ok(pid))
			return 1;
		char *av2[] = { argv[0], "child", "posix_spawn", NULL };
		if (posix_spawn(&pid, argv[0], NULL, NULL, av2, environ) != 0 || !wait_ok(pid))
			return 1;
		char cmd[4096];
		snprintf(cmd, sizeof cmd, "'%s' child system", argv[0]);
		if (system(cmd) != 0)
			return 1;
		run_last();
		printf("spawn done\n");
		return 8;
	}
	if (strcmp(mode, "dup2") == 0)
		return dup2_mode();
	if (strcmp(mode, "dup2trace") == 0)
		return dup2trace_mode();
	if (strcmp(mode, "daemon") == 0) {
		printf("daemon: detaching\n");
		for (int fd = 0; fd < 1024; fd++)
			close(fd);
		closefrom(0);
		if (open("/dev/null", O_RDWR) != 0 || dup(0) != 1 || dup(0) != 2)
			_exit(1);
		burn_100ms();
		run_last();
		run_last();
		return 9;
	}
	if (strcmp(mode, "sempost") == 0) {
		if (sem_init(&sp_sem, 0, 0) != 0 || signal(SIGALRM, on_alrm) == SIG_ERR)
			return 1;
		int fd = open("/dev/null", O_WRONLY);
		pthread_t t;
		if (fd < 0 || pthread_create(&t, NULL, sem_waiter, NULL) != 0)
			return 1;
		struct itimerval it = { { 0, 1000 }, { 0, 1000 } };
		setitimer(ITIMER_REAL, &it, NULL);
		volatile unsigned long x = 0;
		while (!__atomic_load_n(&sp_done, __ATOMIC_ACQUIRE)) {
			for (int i = 0; i < 20000; i++) /* most posts land here */
				x += (unsigned long)i;
			if (write(fd, "x", 1) != 1)
				return 1;
		}
		struct itimerval off = { { 0, 0 }, { 0, 0 } };
		setitimer(ITIMER_REAL, &off, NULL);
		pthread_join(t, NULL);
		close(fd);
		printf("sempost: 200 waits ended by posts\n");
		run_last();
		return 12;
	}
	if (strcmp(mode, "masks") == 0) {
		sigset_t one;
		sigemptyset(&one);
		sigaddset(&one, SIGPROF);
		printf("masks: at start %s\n", prof_mask());
		pthread_sigmask(SIG_BLOCK, &one, NULL);
		printf("masks: after pthread_sigmask(SIG_BLOCK) %s\n", prof_mask());
		pthread_t t;
		if (pthread_create(&t, NULL, mask_child, NULL) != 0)
			return 1;
		pthread_join(t, NULL);
		sigset_t old;
		sigprocmask(SIG_UNBLOCK, &one, &old);
		printf("masks: sigprocmask(SIG_UNBLOCK) old set %s, now %s\n",
		       sigismember(&old, SIGPROF) ? "blocked" : "unblocked", prof_mask());
		if (pthread_create(&t, NULL, burner, NULL) != 0)
			return 1;
		pthread_join(t, NULL);
		/* Traced: which source the sampler chose (the start notes), in
		 * masks.notes (not on stdout, which must match the untraced run). */
		const char *(*notes)(void) = (const char *(*)(void))dlsym(RTLD_DEFAULT, "gotrace_start_notes");
		FILE *f = notes ? fopen("masks.notes", "w") : NULL;
		if (f) {
			fprintf(f, "%s\n", notes());
			fclose(f);
		}
		run_last();
		return 13;
	}
	if (strcmp(mode, "dlopen") == 0) {
		if (argc < 3)
			return 1;
		void *h = dlopen(argv[2], RTLD_NOW);
		if (!h)
			return 1;
		int (*fn)(void) = (int (*)(void))dlsym(h, "pldl_run");
		if (!fn)
			return 1;
		printf("pldl_run: %d\n", fn());
		run_last();
		return 10;
	}
	fprintf(stderr, "usage: plrobust MODE\n");
	return 2;
}
