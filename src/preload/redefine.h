/*
 * redefine.h: preprocessed (cc -E -P) by the build into the objcopy
 * --redefine-syms list for the library objects linked into the preload
 * library: each interposed name NAME becomes gt_real_NAME in them, which
 * real.c defines as a call of the real function.  Why: inside
 * libgotrace-preload.so an undefined pthread_mutex_lock of the library's
 * own code would bind to the preload's interposer (the first definition in
 * the process), so the library's internal locks, waits and writes would
 * trace themselves and recurse.  Renaming at link time keeps one copy of
 * the library sources (no second compilation, no #ifdef in them).
 */
#define PL_SYSCALL(ret, name, params, args) name gt_real_##name
#define PL_FUNC(ret, name, params, args, version) name gt_real_##name
#include "interpose.def"
