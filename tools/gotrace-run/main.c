/*
 * gotrace-run: run an unmodified program with libgotrace-preload.so
 * (issue 12).  Sets the GOTRACE_* variables from its options, puts the
 * preload library in front of LD_PRELOAD and execs the program.  Refuses,
 * with one line on stderr, programs that LD_PRELOAD cannot reach:
 * statically linked executables (no PT_INTERP program header) and
 * setuid/setgid ones.
 */
#define _GNU_SOURCE
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef GOTRACE_RUN_LIBREL
#define GOTRACE_RUN_LIBREL "../lib"
#endif
#define PRELOAD_NAME "libgotrace-preload.so"

/* Options and the variable each one sets (the table --help prints). */
static const struct opt {
	const char *lng;
	char shrt;
	const char *var;
	const char *help;
} opts[] = {
	{ "output", 'o', "GOTRACE_OUT", "trace file (%p: process id; default trace.out)" },
	{ "cpu-hz", 0, "GOTRACE_CPU_HZ", "CPU samples per second, 0: none (default 0)" },
	{ "cpu", 0, "GOTRACE_CPU", "auto | setitimer | timer | perf (default auto)" },
	{ "stacks", 0, "GOTRACE_STACKS", "region,log,block,syscall,goroutine | all | none (default block,syscall,goroutine)" },
	{ "advance", 0, "GOTRACE_ADVANCE", "generation period: 1s, 100ms, 500us (default 1s)" },
	{ "max-buffered", 0, "GOTRACE_MAX_BUFFERED", "bound on unwritten data: 64M, 1G" },
	{ "buffer-size", 0, "GOTRACE_BUFFER_SIZE", "per-thread batch buffer: 4k .. 64k" },
	{ "stop-timeout", 0, "GOTRACE_STOP_TIMEOUT", "wait for a stalled output (default 5s)" },
	{ "crash", 0, "GOTRACE_CRASH", "nosignals,noatexit | none" },
	{ "clock", 0, "GOTRACE_CLOCK", "auto | tsc | monotonic" },
	{ "flight", 0, "GOTRACE_FLIGHT", "1: flight recorder, written at a crash/signal" },
	{ "flight-max-bytes", 0, "GOTRACE_FLIGHT_MAX_BYTES", "recorder's memory bound (default 16M)" },
	{ "flight-min-age", 0, "GOTRACE_FLIGHT_MIN_AGE", "window kept (default 10s)" },
	{ "flight-signal", 0, "GOTRACE_FLIGHT_SIGNAL", "signal that dumps: USR2, 12, none" },
	{ NULL, 0, NULL, NULL },
};

static void usage(FILE *f)
{
	fprintf(f, "usage: gotrace-run [options] [--] program [args...]\n"
	           "Runs program with " PRELOAD_NAME ": its threads, lock waits,\n"
	           "blocking calls and CPU samples go to a Go execution trace\n"
	           "(open it with `go tool trace FILE`).\n\noptions (and the variable each sets):\n");
	for (const struct opt *o = opts; o->lng; o++) {
		char left[40];
		if (o->shrt)
			snprintf(left, sizeof left, "-%c, --%s V", o->shrt, o->lng);
		else
			snprintf(left, sizeof left, "    --%s V", o->lng);
		fprintf(f, "  %-24s %-25s %s\n", left, o->var, o->help);
	}
	fprintf(f, "  %-24s %-25s %s\n", "-h, --help", "", "this text");
	fprintf(f, "\nThe variables may also be set directly, with\n"
	           "LD_PRELOAD=/path/to/" PRELOAD_NAME " GOTRACE_OUT=trace.out program.\n");
}

/* dir of this executable + rel + name, if it exists. */
static int find_preload(char *out, size_t len)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	if (n <= 0)
		return -1;
	self[n] = '\0';
	char *slash = strrchr(self, '/');
	if (!slash)
		return -1;
	*slash = '\0';
	const char *rels[] = { ".", GOTRACE_RUN_LIBREL };
	for (size_t i = 0; i < sizeof rels / sizeof rels[0]; i++) {
		char cand[PATH_MAX + 64];
		snprintf(cand, sizeof cand, "%s/%s/%s", self, rels[i], PRELOAD_NAME);
		char *real = realpath(cand, NULL);
		if (real && access(real, R_OK) == 0 && strlen(real) < len) {
			strcpy(out, real);
			free(real);
			return 0;
		}
		free(real);
	}
	return -1;
}

/* The file execvp would run for prog. */
static int find_program(const char *prog, char *out, size_t len)
{
	if (strchr(prog, '/')) {
		snprintf(out, len, "%s", prog);
		return access(out, X_OK);
	}
	const char *path = getenv("PATH");
	if (!path)
		path = "/usr/local/bin:/usr/bin:/bin";
	while (*path) {
		size_t n = strcspn(path, ":");
		snprintf(out, len, "%.*s/%s", (int)(n ? n : 1), n ? path : ".", prog);
		if (access(out, X_OK) == 0)
			return 0;
		path += n;
		if (*path == ':')
			path++;
	}
	return -1;
}

/* 1 if file is an ELF executable without PT_INTERP (statically linked),
 * 0 otherwise (dynamic, a script, unreadable: let exec decide). */
static int is_static_elf(const char *file)
{
	int fd = open(file, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	Elf64_Ehdr eh;
	int st = 0;
	if (pread(fd, &eh, sizeof eh, 0) == (ssize_t)sizeof eh && memcmp(eh.e_ident, ELFMAG, SELFMAG) == 0 &&
	    eh.e_ident[EI_CLASS] == ELFCLASS64 && eh.e_phentsize == sizeof(Elf64_Phdr)) {
		st = 1;
		for (int i = 0; i < eh.e_phnum; i++) {
			Elf64_Phdr ph;
			if (pread(fd, &ph, sizeof ph, (off_t)(eh.e_phoff + (uint64_t)i * sizeof ph)) !=
			    (ssize_t)sizeof ph) {
				st = 0;
				break;
			}
			if (ph.p_type == PT_INTERP) {
				st = 0;
				break;
			}
		}
	}
	close(fd);
	return st;
}

int main(int argc, char **argv)
{
	const char *out = "trace.out";
	int i = 1;
	for (; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--") == 0) {
			i++;
			break;
		}
		if (a[0] != '-')
			break;
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			usage(stdout);
			return 0;
		}
		const struct opt *o = opts;
		const char *val = NULL;
		for (; o->lng; o++) {
			size_t n = strlen(o->lng);
			if (a[1] == '-' && strncmp(a + 2, o->lng, n) == 0 && (a[2 + n] == '\0' || a[2 + n] == '=')) {
				val = a[2 + n] == '=' ? a + 3 + n : NULL;
				break;
			}
			if (o->shrt && a[1] == o->shrt && a[2] == '\0')
				break;
		}
		if (!o->lng) {
			fprintf(stderr, "gotrace-run: unknown option %s (see --help)\n", a);
			return 2;
		}
		if (!val) {
			if (i + 1 >= argc) {
				fprintf(stderr, "gotrace-run: %s needs a value\n", a);
				return 2;
			}
			val = argv[++i];
		}
		if (o->shrt == 'o')
			out = val;
		else
			setenv(o->var, val, 1);
	}
	if (i >= argc) {
		usage(stderr);
		return 2;
	}
	char prog[PATH_MAX];
	if (find_program(argv[i], prog, sizeof prog) != 0) {
		fprintf(stderr, "gotrace-run: %s: not found\n", argv[i]);
		return 127;
	}
	/* The loader ignores LD_PRELOAD paths for setuid/setgid programs
	 * (AT_SECURE): say so rather than run it silently untraced. */
	struct stat st;
	if (stat(prog, &st) == 0 && (st.st_mode & (S_ISUID | S_ISGID))) {
		fprintf(stderr, "gotrace-run: refusing %s: setuid/setgid, the loader would ignore "
		                "LD_PRELOAD\n", prog);
		return 126;
	}
	if (is_static_elf(prog)) {
		fprintf(stderr, "gotrace-run: refusing %s: statically linked, LD_PRELOAD cannot trace it "
		                "(link it with gotrace-autostart.o instead)\n", prog);
		return 126;
	}
	char lib[PATH_MAX];
	if (find_preload(lib, sizeof lib) != 0) {
		fprintf(stderr, "gotrace-run: cannot find " PRELOAD_NAME " next to this program or in "
		                "its " GOTRACE_RUN_LIBREL "\n");
		return 126;
	}
	const char *old = getenv("LD_PRELOAD");
	char *pre = malloc(strlen(lib) + (old ? strlen(old) : 0) + 2);
	if (!pre)
		return 126;
	sprintf(pre, "%s%s%s", lib, old && *old ? ":" : "", old ? old : "");
	setenv("LD_PRELOAD", pre, 1);
	setenv("GOTRACE_OUT", out, 1);
	execv(prog, argv + i);
	fprintf(stderr, "gotrace-run: cannot run %s: %s\n", prog, strerror(errno));
	return 126;
}
