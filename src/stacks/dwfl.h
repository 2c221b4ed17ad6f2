/*
 * dwfl.h: a libdw session on this process's own modules (dwfl.c), the one
 * way the library opens one.  Each user keeps its own session (a Dwfl is
 * not thread-safe): the flusher's names (symbolize.c), the line resolver
 * (symlines.c), the CPU sampler's unwinder (src/cpuprof/unwind.c).
 * May call: libdw.
 */
#ifndef GT_STACKS_DWFL_H
#define GT_STACKS_DWFL_H

#include <elfutils/libdwfl.h>
#include <stdbool.h>

/* Open *d if it is NULL, then (re)read the modules mapped in this process
 * (/proc/self/maps).  false if no session could be opened.  Not from a
 * signal handler: allocates. */
__attribute__((visibility("hidden"))) bool gt_dwfl_report(Dwfl **d);

#endif
