/*
 * procstat.h: what /proc says of a task or the process, for the tests and
 * the benchmarks (bench/ includes tests/support): a task's scheduling
 * state, to tell a thread asleep in the kernel (S), in an uninterruptible
 * kernel wait (D) or gone (Z) from one that runs; the resident set size;
 * the process's threads by name.
 */
#ifndef GT_TEST_PROCSTAT_H
#define GT_TEST_PROCSTAT_H

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The state letter of a /proc/.../stat file (R, S, D, Z, ...); 0 if it
 * cannot be read.  The command name may hold spaces and parentheses: the
 * state follows the last ')'. */
static inline char proc_stat_state(const char *path)
{
	char buf[512];
	FILE *f = fopen(path, "re");
	if (!f)
		return 0;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = 0;
	const char *p = strrchr(buf, ')');
	return p && p[1] == ' ' ? p[2] : 0;
}

/* The process's resident set size (VmRSS) in kB; -1 if it cannot be read. */
static inline long proc_rss_kb(void)
{
	FILE *f = fopen("/proc/self/status", "re");
	if (!f)
		return -1;
	char line[256];
	long kb = -1;
	while (fgets(line, sizeof line, f))
		if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

/* The ids of this process's threads whose name (/proc/self/task/TID/comm)
 * is name -- or starts with it, if prefix -- up to max of them in tids;
 * returns how many were stored. */
static inline int proc_threads_named(const char *name, int prefix, long *tids, int max)
{
	int n = 0;
	DIR *d = opendir("/proc/self/task");
	struct dirent *de;
	while (d && n < max && (de = readdir(d)) != NULL) {
		char path[300], comm[64] = "";
		snprintf(path, sizeof path, "/proc/self/task/%s/comm", de->d_name);
		FILE *f = fopen(path, "re");
		if (!f)
			continue;
		if (fgets(comm, sizeof comm, f))
			comm[strcspn(comm, "\n")] = 0;
		fclose(f);
		if (prefix ? !strncmp(comm, name, strlen(name)) : !strcmp(comm, name))
			tids[n++] = strtol(de->d_name, NULL, 10);
	}
	if (d)
		closedir(d);
	return n;
}

#endif
