/*
 * cpuprof.c: CPU profile samples inside the trace (issue: CPU sampling).
 * Placeholder until the sampler lands: nothing to drain.
 */
#include "../emit/internal.h"

void gt_cpuprof_flush(uint64_t gen, uint64_t now)
{
	(void)gen;
	(void)now;
}

int gt_cpuprof_start(const gotrace_options *o)
{
	if (o->cpu_hz != 0) {
		gt_set_start_error("CPU profiling is not built yet");
		return -GOTRACE_EINVAL;
	}
	return 0;
}

void gt_cpuprof_stop(void) { }

void gt_cpuprof_quiesce(uint64_t gen) { (void)gen; }

void gt_cpuprof_stats(uint64_t *samples, uint64_t *lost)
{
	*samples = *lost = 0;
}
