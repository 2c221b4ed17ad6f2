/*
 * insyscall.h: whether a thread of this process sits in a given system
 * call now (/proc/self/task/TID/syscall starts with its number), for the
 * preload test programs that release a waiter only once it really waits in
 * the kernel: a release timed by sleeps alone missed the wait on a loaded
 * machine.
 */
#ifndef GT_TEST_INSYSCALL_H
#define GT_TEST_INSYSCALL_H

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

static inline int in_syscall(pid_t tid, long nr)
{
	char path[64], buf[32], num[24];
	snprintf(path, sizeof path, "/proc/self/task/%d/syscall", (int)tid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	buf[n > 0 ? n : 0] = 0;
	snprintf(num, sizeof num, "%ld ", nr);
	return strncmp(buf, num, strlen(num)) == 0;
}

#endif
