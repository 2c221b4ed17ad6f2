/*
 * sources.c: the table of generation sources.  The only file of the
 * library that names the CPU sampler's entry points.
 * May call: src/cpuprof (sampler.h).
 */
#include "sources.h"
#include "../cpuprof/sampler.h"

static void cpu_stats(gotrace_stats *st)
{
	gt_cpuprof_stats(&st->cpu_samples, &st->cpu_samples_lost);
	st->cpu_samples_tracer = gt_cpuprof_tracer_samples();
}

static const struct gt_source_ops cpu_sampler = {
	.name = "cpu",
	.start = gt_cpuprof_start,
	.stop = gt_cpuprof_stop,
	.thread_start = gt_cpuprof_thread_start,
	.thread_exit = gt_cpuprof_thread_exit,
	.own_thread = gt_cpuprof_own_thread,
	.quiesce = gt_cpuprof_quiesce,
	.drain = gt_cpuprof_flush,
	.crash_drain = gt_cpuprof_crash_drain,
	.stats = cpu_stats,
};

const struct gt_source_ops *const gt_sources[] = { &cpu_sampler };
const size_t gt_sources_n = sizeof gt_sources / sizeof gt_sources[0];
