/*
 * arch.h: everything architecture-specific lives here (timestamp counter,
 * spin hint).  x86-64 first; arm64 reads CNTVCT_EL0 (always invariant).
 * May call: nothing (inline assembly, compiler builtins).
 */
#ifndef GT_ARCH_H
#define GT_ARCH_H

#include <stdint.h>

/*
 * The cache line, for data two threads must not share.  A global that
 * every emit reads (the fence flag, the clock, the session's generation)
 * and that is written only at start keeps a line of its own: next to data
 * another thread writes, each of those stores costs every writer a miss
 * (the fence flag shared a line with the advancer's seqlock, which the
 * advancer takes for each batch it writes: BENCHMARKS.md, "writers during
 * an advance").  64 bytes on every CPU we build for.
 */
#define GT_LINE 64

#if defined(__x86_64__) || defined(__i386__)
#define GT_HAVE_CYCLE_COUNTER 1
/* rdtsc, not rdtscp: we need a monotonic per-CPU clock, not a fence; on CPUs
 * with constant_tsc+nonstop_tsc the counter is synchronised across cores. */
static inline uint64_t gt_arch_cycles(void)
{
	uint32_t lo, hi;
	__asm__ __volatile__("rdtsc" : "=a"(lo), "=d"(hi));
	return ((uint64_t)hi << 32) | lo;
}
static inline void gt_arch_relax(void) { __asm__ __volatile__("pause" ::: "memory"); }
#elif defined(__aarch64__)
#define GT_HAVE_CYCLE_COUNTER 1
static inline uint64_t gt_arch_cycles(void)
{
	uint64_t v;
	__asm__ __volatile__("isb; mrs %0, cntvct_el0" : "=r"(v));
	return v;
}
static inline void gt_arch_relax(void) { __asm__ __volatile__("yield" ::: "memory"); }
#else
#define GT_HAVE_CYCLE_COUNTER 0
static inline uint64_t gt_arch_cycles(void) { return 0; }
static inline void gt_arch_relax(void) { }
#endif

/* Does this machine have a cycle counter usable as a trace clock (invariant,
 * synchronised across CPUs)?  Implemented in core/clock.c, reads cpuinfo. */
int gt_arch_cycles_invariant(void);

#endif
