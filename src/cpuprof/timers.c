/*
 * timers.c: what delivers SIGPROF.
 * May call: cpuprof.h (cp_ctl), timer syscalls, perf_event_open.
 *
 *   GOTRACE_CPU_SETITIMER     setitimer(ITIMER_PROF): process CPU time, the
 *                             signal goes to whichever thread is running.
 *                             Every thread is sampled, registered or not.
 *                             Limited by the kernel tick (HZ): at 1 kHz on
 *                             a HZ=250 kernel about a quarter of the asked
 *                             rate is delivered.
 *   GOTRACE_CPU_THREAD_TIMER  timer_create on each thread's CPU clock with
 *                             SIGEV_THREAD_ID (as the Go runtime does):
 *                             every thread is sampled at the full rate of its
 *                             own CPU time (fair attribution), same tick cap.
 *   GOTRACE_CPU_PERF          perf_event_open software CPU clock per thread,
 *                             signal routed to that thread with F_SETOWN_EX
 *                             + F_SETSIG (as async-profiler does):
 *                             hrtimer-driven, not limited by the tick.  A
 *                             descriptor per thread, capped (perf_fd_cap):
 *                             the threads past the cap get CPU timers.
 *
 * Per-thread sources arm (a) every thread alive when profiling starts
 * (/proc/self/task, skipping the library's own threads and threads that
 * block SIGPROF), and (b) each thread that registers with the library later (the
 * registration hook runs on the thread itself).  A thread created after the
 * start that never makes a traced call is not sampled by them: use
 * setitimer for such programs.
 *
 * Fallback: PERF -> THREAD_TIMER -> SETITIMER, decided once at start by
 * probing on the starting thread; the reason goes to gotrace_last_error().
 * perf_event_open is first tried counting kernel time too, then (EACCES,
 * perf_event_paranoid >= 2 without CAP_PERFMON) user time only.
 *
 * The slot table (one per armed thread) is written and read under cp_lock
 * only, never by a signal handler.
 */
#include "cpuprof.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/perf_event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

struct slot {
	pid_t tid;
	int fd;          /* perf event, or -1 */
	timer_t timer;   /* POSIX timer, if has_timer */
	bool has_timer;
};

static pthread_mutex_t cp_lock = PTHREAD_MUTEX_INITIALIZER;
/* Under cp_lock. */
static struct slot *slots;
static size_t nslots, capslots;
static int cur_source = -1;  /* armed source, -1 when stopped */
static int cur_hz;
static bool perf_user_only;  /* perf events exclude kernel time */
static bool perf_need_kernel; /* AUTO: perf only if it counts kernel time */
/* Perf events cost the program one descriptor per sampled thread.  They
 * are kept out of its way: moved to numbers at or above perf_fd_floor and
 * at most perf_fd_cap of them (1/8 of RLIMIT_NOFILE's soft limit at the
 * start, at most 4096); a thread past the cap, or whose event cannot be
 * opened for want of descriptors, gets a per-thread CPU timer instead (the
 * handler accepts both under PERF: handler.c, source_accepts). */
static size_t perf_fds, perf_fd_cap;
static int perf_fd_floor;
/* The perf events' descriptor numbers (below PERF_FD_BITS), for the
 * preload's close wrappers (gt_cpuprof_fd_is_ours): a daemon's closefrom
 * would otherwise end the sampling of the threads it already has.  Bits
 * are set once the event is routed and cleared before it is closed, under
 * cp_lock; read without it (relaxed atomics: a close racing with a
 * thread's start or exit sees the old or the new bit, both safe). */
#define PERF_FD_BITS 8192
static unsigned long perf_fd_map[PERF_FD_BITS / 64];

static void fd_mark(int fd, bool on)
{
	if (fd < 0 || fd >= PERF_FD_BITS)
		return;
	unsigned long bit = 1ul << (fd % 64);
	if (on)
		__atomic_or_fetch(&perf_fd_map[fd / 64], bit, __ATOMIC_RELAXED);
	else
		__atomic_and_fetch(&perf_fd_map[fd / 64], ~bit, __ATOMIC_RELAXED);
}

bool gt_cpuprof_fd_is_ours(int fd)
{
	return fd >= 0 && fd < PERF_FD_BITS &&
	       (__atomic_load_n(&perf_fd_map[fd / 64], __ATOMIC_RELAXED) >> (fd % 64) & 1);
}

int gt_cpuprof_next_fd(unsigned lo, unsigned hi)
{
	for (unsigned fd = lo; fd <= hi && fd < PERF_FD_BITS; fd++) {
		unsigned long w = __atomic_load_n(&perf_fd_map[fd / 64], __ATOMIC_RELAXED) >> (fd % 64);
		if (w == 0) {
			fd |= 63; /* the rest of this word is clear */
			continue;
		}
		fd += (unsigned)__builtin_ctzl(w);
		return fd <= hi && fd < PERF_FD_BITS ? (int)fd : -1;
	}
	return -1;
}

static struct itimerval old_itimer;
static uint64_t rnd_state;

static pid_t my_tid(void) { return (pid_t)syscall(SYS_gettid); }

static uint64_t rnd(void)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 7;
	rnd_state ^= rnd_state << 17;
	return rnd_state;
}

static int read_paranoid(void)
{
	int v = -100;
	FILE *f = fopen("/proc/sys/kernel/perf_event_paranoid", "re");
	if (f) {
		if (fscanf(f, "%d", &v) != 1)
			v = -100;
		fclose(f);
	}
	return v;
}

/* ------------------------------------------------------------ per thread */

static int perf_open(pid_t tid)
{
	struct perf_event_attr a;
	memset(&a, 0, sizeof a);
	a.size = sizeof a;
	a.type = PERF_TYPE_SOFTWARE;
	a.config = PERF_COUNT_SW_CPU_CLOCK;
	a.sample_period = 1000000000ull / (uint64_t)cur_hz;
	a.disabled = 1;
	a.exclude_hv = 1;
	a.exclude_kernel = perf_user_only;
	a.wakeup_events = 1;
	int fd = (int)syscall(SYS_perf_event_open, &a, tid, -1, -1, PERF_FLAG_FD_CLOEXEC);
	if (fd < 0 && errno == EACCES && !perf_user_only && !perf_need_kernel) {
		a.exclude_kernel = 1;
		fd = (int)syscall(SYS_perf_event_open, &a, tid, -1, -1, PERF_FLAG_FD_CLOEXEC);
		if (fd >= 0)
			perf_user_only = true;
	}
	if (fd >= 0 && fd < perf_fd_floor) {
		int high = fcntl(fd, F_DUPFD_CLOEXEC, perf_fd_floor);
		if (high >= 0) {
			close(fd);
			fd = high;
		}
	}
	return fd;
}

/* Route fd's overflow signal to thread tid and start counting. */
static int perf_route(int fd, pid_t tid)
{
	struct f_owner_ex own = { F_OWNER_TID, tid };
	if (fcntl(fd, F_SETOWN_EX, &own) != 0 || fcntl(fd, F_SETSIG, SIGPROF) != 0)
		return -1;
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_ASYNC) != 0)
		return -1;
	return ioctl(fd, PERF_EVENT_IOC_ENABLE, 0);
}

/* The CPU clock of thread tid (the kernel's MAKE_THREAD_CPUCLOCK(tid,
 * CPUCLOCK_SCHED)); timer_create accepts it for threads of this process. */
static clockid_t thread_clock(pid_t tid)
{
	if (tid == my_tid())
		return CLOCK_THREAD_CPUTIME_ID;
	return (clockid_t)((~(unsigned)tid << 3) | 6);
}

static int timer_arm(pid_t tid, timer_t *out)
{
	struct sigevent sev;
	memset(&sev, 0, sizeof sev);
	sev.sigev_notify = SIGEV_THREAD_ID;
	sev.sigev_signo = SIGPROF;
	sev._sigev_un._tid = tid;
	if (timer_create(thread_clock(tid), &sev, out) != 0)
		return -1;
	uint64_t period = 1000000000ull / (uint64_t)cur_hz;
	/* A random first expiry, as the Go runtime does, so that threads
	 * started together do not tick in step. */
	uint64_t first = 1 + rnd() % period;
	struct itimerspec its = {
		.it_interval = { (time_t)(period / 1000000000u), (long)(period % 1000000000u) },
		.it_value = { (time_t)(first / 1000000000u), (long)(first % 1000000000u) },
	};
	if (timer_settime(*out, 0, &its, NULL) != 0) {
		timer_delete(*out);
		return -1;
	}
	return 0;
}

/* Is s->fd still our event?  A program that closes every descriptor (a
 * daemon's closefrom) closes it too, and its next open may take the
 * number: an ioctl or close of ours would then hit the program's file.
 * Ours signals SIGPROF to the slot's thread (perf_route), or to no one
 * once that thread has exited (the kernel then reports owner 0: a thread
 * armed by the start's scan exits without our exit hook); nothing else in
 * a process whose SIGPROF is our handler's does. */
static bool slot_fd_ours(const struct slot *s)
{
	struct f_owner_ex own;
	return s->fd >= 0 && fcntl(s->fd, F_GETSIG) == SIGPROF && fcntl(s->fd, F_GETOWN_EX, &own) == 0 &&
	       own.type == F_OWNER_TID && (own.pid == s->tid || own.pid == 0);
}

/* The preload's dup2/dup3 onto fd, one of the events' numbers: the event
 * moves to another number (at or above perf_fd_floor) first, so that the
 * program's dup2 closes only the old number and the thread keeps its
 * samples.  false if fd is not an event of ours, or the event could not be
 * moved now: no descriptor free, or cp_lock busy -- dup2 is
 * async-signal-safe, so the caller may be a signal handler that
 * interrupted the lock's holder, hence trylock.  Then the program's dup2
 * ends that thread's samples, and slot_fd_ours keeps the library off the
 * program's file.  MT-safe; AS-safe (trylock, fcntl, atomics). */
bool gt_cpuprof_fd_move(int fd)
{
	if (!gt_cpuprof_fd_is_ours(fd) || pthread_mutex_trylock(&cp_lock) != 0)
		return false;
	bool moved = false;
	for (size_t i = 0; i < nslots; i++) {
		struct slot *s = &slots[i];
		if (s->fd != fd)
			continue;
		int n = slot_fd_ours(s) ? fcntl(fd, F_DUPFD_CLOEXEC, perf_fd_floor) : -1;
		if (n >= 0) {
			/* The same open file description: its owner and
			 * signal (perf_route) carry over. */
			fd_mark(n, true);
			fd_mark(fd, false);
			s->fd = n;
			moved = true;
		}
		break;
	}
	pthread_mutex_unlock(&cp_lock);
	return moved;
}

static void slot_disarm(struct slot *s)
{
	if (s->fd >= 0) {
		fd_mark(s->fd, false);
		if (slot_fd_ours(s)) {
			ioctl(s->fd, PERF_EVENT_IOC_DISABLE, 0);
			close(s->fd);
		}
		s->fd = -1;
		perf_fds--;
	}
	if (s->has_timer) {
		timer_delete(s->timer);
		s->has_timer = false;
	}
}

/* cp_lock held.  Arm thread tid with the current source (replacing an
 * existing slot of the same tid: the id may belong to a thread that died).
 * Returns 0 or an errno value. */
static int arm_thread(pid_t tid)
{
	for (size_t i = 0; i < nslots; i++) {
		if (slots[i].tid == tid) {
			slot_disarm(&slots[i]);
			slots[i] = slots[--nslots];
			break;
		}
	}
	struct slot s = { .tid = tid, .fd = -1 };
	if (cur_source == GOTRACE_CPU_PERF && perf_fds < perf_fd_cap) {
		s.fd = perf_open(tid);
		if (s.fd < 0 && errno != EMFILE && errno != ENFILE)
			return errno;
		if (s.fd >= 0 && perf_route(s.fd, tid) != 0) {
			int e = errno;
			close(s.fd);
			return e;
		}
		if (s.fd >= 0)
			perf_fds++;
	}
	if (s.fd < 0 && (cur_source == GOTRACE_CPU_PERF || cur_source == GOTRACE_CPU_THREAD_TIMER)) {
		if (timer_arm(tid, &s.timer) != 0)
			return errno;
		s.has_timer = true;
	}
	if (s.fd < 0 && !s.has_timer)
		return 0;
	if (nslots == capslots) {
		size_t ncap = capslots ? 2 * capslots : 64;
		struct slot *n = realloc(slots, ncap * sizeof *n);
		if (!n) {
			slot_disarm(&s);
			return ENOMEM;
		}
		slots = n;
		capslots = ncap;
	}
	slots[nslots++] = s;
	fd_mark(s.fd, true);
	return 0;
}

/* Does thread tid block SIGPROF?  (Its signals would never be handled.) */
static bool blocks_sigprof(pid_t tid)
{
	char path[64], line[256];
	snprintf(path, sizeof path, "/proc/self/task/%d/status", (int)tid);
	FILE *f = fopen(path, "re");
	if (!f)
		return true; /* gone */
	bool blocked = false;
	while (fgets(line, sizeof line, f)) {
		if (strncmp(line, "SigBlk:", 7) == 0) {
			unsigned long long m = strtoull(line + 7, NULL, 16);
			blocked = (m >> (SIGPROF - 1)) & 1;
			break;
		}
	}
	fclose(f);
	return blocked;
}

static void arm_all_threads(void)
{
	DIR *d = opendir("/proc/self/task");
	if (!d)
		return;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		char *end;
		long tid = strtol(de->d_name, &end, 10);
		if (*end != 0 || tid <= 0)
			continue;
		if (gt_cpuprof_is_own_tid((pid_t)tid) || blocks_sigprof((pid_t)tid))
			continue;
		arm_thread((pid_t)tid); /* a thread that exited meanwhile fails: fine */
	}
	closedir(d);
}

/* cp_lock held: ITIMER_PROF at the current rate (setitimer counts whole
 * microseconds: at least 1). */
static struct itimerval prof_itimer(void)
{
	uint64_t period = 1000000000ull / (uint64_t)cur_hz;
	struct itimerval it = {
		.it_interval = { (time_t)(period / 1000000000u), (suseconds_t)(period % 1000000000u / 1000) },
	};
	if (it.it_interval.tv_sec == 0 && it.it_interval.tv_usec == 0)
		it.it_interval.tv_usec = 1;
	it.it_value = it.it_interval;
	return it;
}

/* --------------------------------------------------------------- probing */

static bool probe_perf(char *why, size_t len)
{
	int fd = perf_open(my_tid());
	if (fd >= 0) {
		close(fd);
		return true;
	}
	int e = errno, par = read_paranoid();
	if ((e == EACCES || e == EPERM) && perf_need_kernel)
		snprintf(why, len,
		         "perf_event_open refused counting kernel time (%s; "
		         "kernel.perf_event_paranoid=%d: needs <= 1, or CAP_PERFMON)",
		         strerror(e), par);
	else if (e == EACCES || e == EPERM)
		snprintf(why, len,
		         "perf_event_open refused (%s; kernel.perf_event_paranoid=%d: needs <= 2 "
		         "and user-only sampling, or CAP_PERFMON)",
		         strerror(e), par);
	else if (e == ENOSYS || e == ENOENT || e == EOPNOTSUPP)
		snprintf(why, len, "perf events unavailable (%s: kernel without perf events, or "
		         "a seccomp filter)", strerror(e));
	else
		snprintf(why, len, "perf_event_open failed: %s", strerror(e));
	return false;
}

static bool probe_timer(char *why, size_t len)
{
	struct sigevent sev;
	memset(&sev, 0, sizeof sev);
	sev.sigev_notify = SIGEV_THREAD_ID;
	sev.sigev_signo = SIGPROF;
	sev._sigev_un._tid = my_tid();
	timer_t t;
	if (timer_create(CLOCK_THREAD_CPUTIME_ID, &sev, &t) == 0) {
		timer_delete(t);
		return true;
	}
	snprintf(why, len, "timer_create(CLOCK_THREAD_CPUTIME_ID, SIGEV_THREAD_ID) failed: %s",
	         strerror(errno));
	return false;
}

/* ----------------------------------------------------------- start, stop */

static const char *source_name(int s)
{
	return s == GOTRACE_CPU_PERF ? "perf-event CPU clocks"
	       : s == GOTRACE_CPU_THREAD_TIMER ? "per-thread CPU timers" : "setitimer(ITIMER_PROF)";
}

/* Start lock held; the handler is installed and cp_ctl.active is still 0.
 * Chooses the source (falling back as documented), publishes it in
 * cp_ctl.source, and returns it (>= 0) or -1 with the reason in note.
 *
 * AUTO takes the first source that measures what setitimer measures (user
 * and system CPU time) at the asked rate: perf events only if they may
 * count kernel time (a user-only clock drops every period spent in a
 * system call), then per-thread timers, then setitimer.  The kernel checks
 * CPU timers (setitimer and timer_create alike) at its tick, and under
 * load it delivers far fewer signals than ticks: measured here on 2 vCPUs
 * with 3 busy loops, 300 ms of one thread's CPU time drew 0 to 48
 * setitimer signals (BENCHMARKS.md, "CPU samples under load"); the
 * weights recover the periods up to the last signal, not those after it.
 * perf's hrtimer clock fires once per period of the thread's CPU time. */
int cp_timers_start(int source, int hz, char *note, size_t note_len)
{
	char why[200] = "", why2[200] = "";
	note[0] = 0;
	pthread_mutex_lock(&cp_lock);
	cur_hz = hz;
	perf_user_only = false;
	perf_need_kernel = source == GOTRACE_CPU_AUTO;
	struct rlimit nofile;
	rlim_t soft = getrlimit(RLIMIT_NOFILE, &nofile) == 0 ? nofile.rlim_cur : 1024;
	perf_fds = 0;
	perf_fd_cap = soft == RLIM_INFINITY || soft / 8 > 4096 ? 4096 : (size_t)(soft / 8);
	perf_fd_floor = soft == RLIM_INFINITY || soft / 2 > 512 ? 512 : (int)(soft / 2);
	rnd_state = gt_mono_ns() | 1;
	int s = source == GOTRACE_CPU_AUTO ? GOTRACE_CPU_PERF : source;
	if (s == GOTRACE_CPU_PERF && !probe_perf(why, sizeof why))
		s = GOTRACE_CPU_THREAD_TIMER;
	if (s == GOTRACE_CPU_THREAD_TIMER && !probe_timer(why2, sizeof why2))
		s = GOTRACE_CPU_SETITIMER;
	if (source == GOTRACE_CPU_AUTO)
		snprintf(note, note_len, "cpu profiling: auto: %s%s%s%s%s", source_name(s),
		         why[0] || why2[0] ? " (" : "", why, why[0] && why2[0] ? "; " : "", why2);
	else if (s != source)
		snprintf(note, note_len, "cpu profiling: %s%s%s: falling back to %s", why,
		         why[0] && why2[0] ? "; " : "", why2, source_name(s));
	else if (s == GOTRACE_CPU_PERF && perf_user_only)
		snprintf(note, note_len, "cpu profiling: perf events count user time only "
		         "(kernel.perf_event_paranoid=%d)", read_paranoid());
	if (source == GOTRACE_CPU_AUTO && (why[0] || why2[0]))
		strncat(note, ")", note_len - strlen(note) - 1);
	cur_source = s;
	__atomic_store_n(&cp_ctl.source, s, __ATOMIC_RELAXED);
	__atomic_store_n(&cp_ctl.period_ns, 1000000000ull / (uint64_t)hz, __ATOMIC_RELAXED);
	__atomic_store_n(&cp_ctl.perf_user, s == GOTRACE_CPU_PERF && perf_user_only, __ATOMIC_RELAXED);
	__atomic_add_fetch(&cp_ctl.epoch, 1, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&cp_lock);
	return s;
}

/* Start lock held, cp_ctl.active set: arm the timers.  0 or an errno value. */
int cp_timers_arm(void)
{
	pthread_mutex_lock(&cp_lock);
	int rc = 0;
	if (cur_source == GOTRACE_CPU_SETITIMER) {
		uint64_t period = 1000000000ull / (uint64_t)cur_hz;
		struct itimerval it = prof_itimer();
		struct timespec ts;
		clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
		__atomic_store_n(&cp_ctl.next_cpu_ns,
		                 (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec + period,
		                 __ATOMIC_RELAXED);
		if (setitimer(ITIMER_PROF, &it, &old_itimer) != 0)
			rc = errno;
	} else {
		arm_all_threads();
	}
	pthread_mutex_unlock(&cp_lock);
	return rc;
}

/* Start lock held: every timer of ours disarmed (the previous ITIMER_PROF is
 * restored by cp_timers_restore once our handler is gone). */
void cp_timers_stop(void)
{
	pthread_mutex_lock(&cp_lock);
	if (cur_source == GOTRACE_CPU_SETITIMER) {
		struct itimerval off;
		memset(&off, 0, sizeof off);
		setitimer(ITIMER_PROF, &off, NULL);
	}
	for (size_t i = 0; i < nslots; i++)
		slot_disarm(&slots[i]);
	nslots = 0;
	pthread_mutex_unlock(&cp_lock);
}

void cp_timers_restore(void)
{
	pthread_mutex_lock(&cp_lock);
	if (cur_source == GOTRACE_CPU_SETITIMER)
		setitimer(ITIMER_PROF, &old_itimer, NULL);
	cur_source = -1;
	pthread_mutex_unlock(&cp_lock);
}

/* Registration hook, on the thread itself. */
void cp_timers_thread_start(void)
{
	pthread_mutex_lock(&cp_lock);
	if (cur_source == GOTRACE_CPU_PERF || cur_source == GOTRACE_CPU_THREAD_TIMER)
		arm_thread(my_tid());
	pthread_mutex_unlock(&cp_lock);
}

void cp_timers_thread_exit(pid_t tid)
{
	pthread_mutex_lock(&cp_lock);
	for (size_t i = 0; i < nslots; i++) {
		if (slots[i].tid == tid) {
			slot_disarm(&slots[i]);
			slots[i] = slots[--nslots];
			break;
		}
	}
	pthread_mutex_unlock(&cp_lock);
}

/*
 * exec.  A successful exec keeps a signal that is pending, and ITIMER_PROF
 * armed; a perf event counting kernel time (or a thread timer) can fire in
 * the kernel's own exec work, before the descriptor's close-on-exec or the
 * timers' deletion.  The new image has SIGPROF at its default action,
 * which terminates it.  So the exec'ing thread stops its own source first
 * (setitimer: the process timer); a signal already pending is delivered to
 * our handler on the return from that syscall, before the exec.  The
 * other threads' per-thread sources signal only them, and exec ends them.
 * Returns whether something was paused (then resume re-arms it if the
 * exec failed).  Not AS-safe (cp_lock), like the flush that precedes it.
 */
static struct slot *my_slot(void)
{
	pid_t me = my_tid();
	for (size_t i = 0; i < nslots; i++)
		if (slots[i].tid == me)
			return &slots[i];
	return NULL;
}

static struct itimerspec period_spec(void)
{
	uint64_t period = 1000000000ull / (uint64_t)cur_hz;
	struct itimerspec its = {
		.it_interval = { (time_t)(period / 1000000000u), (long)(period % 1000000000u) },
	};
	its.it_value = its.it_interval;
	return its;
}

bool cp_timers_exec_pause(void)
{
	pthread_mutex_lock(&cp_lock);
	bool paused = false;
	struct slot *s;
	if (cur_source == GOTRACE_CPU_SETITIMER) {
		struct itimerval off;
		memset(&off, 0, sizeof off);
		paused = setitimer(ITIMER_PROF, &off, NULL) == 0;
	} else if ((s = my_slot()) != NULL) {
		if (s->fd >= 0) {
			paused = slot_fd_ours(s) && ioctl(s->fd, PERF_EVENT_IOC_DISABLE, 0) == 0;
		} else if (s->has_timer) {
			struct itimerspec off;
			memset(&off, 0, sizeof off);
			paused = timer_settime(s->timer, 0, &off, NULL) == 0;
		}
	}
	pthread_mutex_unlock(&cp_lock);
	return paused;
}

void cp_timers_exec_resume(void)
{
	pthread_mutex_lock(&cp_lock);
	struct slot *s;
	struct itimerspec its = period_spec();
	if (cur_source == GOTRACE_CPU_SETITIMER) {
		struct itimerval it = prof_itimer();
		setitimer(ITIMER_PROF, &it, NULL);
	} else if ((s = my_slot()) != NULL) {
		if (slot_fd_ours(s))
			ioctl(s->fd, PERF_EVENT_IOC_ENABLE, 0);
		else if (s->has_timer)
			timer_settime(s->timer, 0, &its, NULL);
	}
	pthread_mutex_unlock(&cp_lock);
}

/* Not locking cp_lock around fork: pthread_atfork runs prepare handlers in
 * reverse order, so ours would take cp_lock before the session's start
 * lock, inverting start's order (start lock, then cp_lock).  The child
 * re-initialises the lock instead; its slot table may be mid-update, and it
 * only closes the perf fds it lists. */
void cp_timers_atfork_prepare(void) { }
void cp_timers_atfork_parent(void) { }
/* The child inherits neither interval timers nor POSIX timers; perf fds
 * are inherited but count and signal the parent's threads: close them. */
void cp_timers_atfork_child(void)
{
	memset(perf_fd_map, 0, sizeof perf_fd_map); /* first: the preload's close skips them */
	for (size_t i = 0; i < nslots; i++)
		if (slot_fd_ours(&slots[i]))
			close(slots[i].fd);
	nslots = 0;
	perf_fds = 0;
	cur_source = -1;
	pthread_mutex_init(&cp_lock, NULL);
}
