/*
 * procstat.h: a task's scheduling state from /proc, for tests that must
 * tell a thread asleep in the kernel (S), in an uninterruptible kernel wait
 * (D) or gone (Z) from one that runs.
 */
#ifndef GT_TEST_PROCSTAT_H
#define GT_TEST_PROCSTAT_H

#include <stdio.h>
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

#endif
