/*
 * seqlock.c: the per-thread seqlocks' process-wide part (seqlock.h): the
 * membarrier registration and gt_seq_sync.
 * May call: membarrier(2); nothing else of the library.
 */
#include "seqlock.h"

#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <errno.h>

struct gt_seq_global gt_seq_global = { .fence_needed = 1 };
#if defined(__SANITIZE_THREAD__)
uint64_t gt_seq_fence_word;
#endif

static long sys_membarrier(int cmd, unsigned flags)
{
	return syscall(__NR_membarrier, cmd, flags, 0);
}

int gt_seq_init(void)
{
	long mask = sys_membarrier(MEMBARRIER_CMD_QUERY, 0);
	if (mask >= 0 && (mask & MEMBARRIER_CMD_PRIVATE_EXPEDITED) &&
	    sys_membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0) == 0)
		__atomic_store_n(&gt_seq_global.fence_needed, 0, __ATOMIC_RELEASE);
	return 0;
}

void gt_seq_sync(void)
{
	int saved = errno;
	gt_full_fence();
	if (!__atomic_load_n(&gt_seq_global.fence_needed, __ATOMIC_ACQUIRE))
		sys_membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0);
	gt_full_fence();
	errno = saved;
}
