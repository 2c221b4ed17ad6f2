/*
 * arch.h: everything architecture-specific lives here (timestamp counter,
 * spin hint, cache eviction).  x86-64 first; arm64 reads CNTVCT_EL0
 * (always invariant).
 * May call: nothing (inline assembly, compiler builtins).
 */
#ifndef GT_ARCH_H
#define GT_ARCH_H

#include <stddef.h>
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
#include <cpuid.h>
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
/* Cache eviction (gt_arch_evict, below): clflushopt where CPUID has it
 * (leaf 7, EBX bit 23), else clflush (every x86-64).  The assembler takes
 * both mnemonics without a target option; only the CPU must have them. */
static inline int gt_arch_evict_probe(void)
{
	unsigned a, b, c, d;
	return __get_cpuid_count(7, 0, &a, &b, &c, &d) && (b & (1u << 23)) ? 2 : 1;
}
static inline void gt_arch_evict_line(const void *p, int how)
{
	if (how == 2)
		__asm__ __volatile__("clflushopt %0" : : "m"(*(const char *)p));
	else
		__asm__ __volatile__("clflush %0" : : "m"(*(const char *)p));
}
#elif defined(__aarch64__)
#define GT_HAVE_CYCLE_COUNTER 1
static inline uint64_t gt_arch_cycles(void)
{
	uint64_t v;
	__asm__ __volatile__("isb; mrs %0, cntvct_el0" : "=r"(v));
	return v;
}
static inline void gt_arch_relax(void) { __asm__ __volatile__("yield" ::: "memory"); }
static inline int gt_arch_evict_probe(void) { return 1; }
static inline void gt_arch_evict_line(const void *p, int how)
{
	(void)how;
	__asm__ __volatile__("dc civac, %0" : : "r"(p) : "memory");
}
#else
#define GT_HAVE_CYCLE_COUNTER 0
static inline uint64_t gt_arch_cycles(void) { return 0; }
static inline void gt_arch_relax(void) { }
static inline int gt_arch_evict_probe(void) { return 0; }
static inline void gt_arch_evict_line(const void *p, int how) { (void)p; (void)how; }
#endif

/*
 * Write back and drop the lines of [p, p + n) from every cache: a hint, not
 * a barrier (nothing is ordered by it, and a concurrent access is simply a
 * miss).  how: gt_arch_evict_probe()'s answer, 0 where there is no such
 * instruction (then nothing is done).  The flusher's use: chunk.c,
 * pool_put.
 */
static inline void gt_arch_evict(const void *p, size_t n, int how)
{
	if (how == 0)
		return;
	uintptr_t a = (uintptr_t)p & ~(uintptr_t)(GT_LINE - 1);
	for (; a < (uintptr_t)p + n; a += GT_LINE)
		gt_arch_evict_line((const void *)a, how);
}

/* Does this machine have a cycle counter usable as a trace clock (invariant,
 * synchronised across CPUs)?  Implemented in core/clock.c, reads cpuinfo. */
int gt_arch_cycles_invariant(void);

#endif
