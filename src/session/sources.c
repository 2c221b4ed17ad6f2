/*
 * sources.c: the table of generation sources and the registry hooks that
 * reach them.  The only file of the library that names the CPU sampler's
 * entry points.  May call: src/cpuprof (sampler.h), the crash flush's
 * per-thread hooks, the registry's hook setter.
 */
#include "../emit/internal.h"
#include "../cpuprof/sampler.h"
#include "sources.h"

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

static void on_registered(struct gt_thread *t)
{
	gt_for_each_source(s)
		if (s->thread_start)
			s->thread_start(t);
}

static void on_exiting(struct gt_thread *t)
{
	gt_for_each_source(s)
		if (s->thread_exit)
			s->thread_exit(t);
}

static const struct gt_registry_hooks registry_hooks = {
	.registering = gt_crash_thread_init,
	.registered = on_registered,
	.exiting = on_exiting,
	.left = gt_crash_thread_exit,
};

void gt_sources_hook_registry(void)
{
	gt_registry_hooks_set(&registry_hooks);
}
