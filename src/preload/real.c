/*
 * real.c: the real libc functions behind the interposers: their table
 * (resolved once) and the gt_real_* functions that the library objects
 * linked into the preload call instead of the interposed names (see
 * redefine.h for why).
 * May call: libdl.
 */
#define _GNU_SOURCE
#include "preload.h"

#include <dlfcn.h>

struct pl_real pl_real;

/* dlsym allocates (its error buffer) and takes the loader's lock: called
 * from the constructor, or at an interposed call made before it (another
 * library's constructor), never from a signal handler of ours. */
void pl_resolve(void)
{
#define PL_SYSCALL(ret, name, params, args) \
	__atomic_store_n(&pl_real.name, (__typeof__(name) *)dlsym(RTLD_NEXT, #name), __ATOMIC_RELAXED);
#define PL_FUNC(ret, name, params, args, version)                                             \
	{                                                                                     \
		void *p_ = version ? dlvsym(RTLD_NEXT, #name, version ? version : "") : NULL; \
		if (!p_)                                                                      \
			p_ = dlsym(RTLD_NEXT, #name);                                         \
		__atomic_store_n(&pl_real.name, (__typeof__(name) *)p_, __ATOMIC_RELAXED);    \
	}
#include "interpose.def"
#undef PL_SYSCALL
#undef PL_FUNC
}

/* gt_real_NAME: what the library's own code calls for NAME. */
#define PL_SYSCALL(ret, name, params, args) \
	PL_HIDDEN ret gt_real_##name params;     \
	PL_HIDDEN ret gt_real_##name params { return PL_REAL(name) args; }
#define PL_FUNC(ret, name, params, args, version) PL_SYSCALL(ret, name, params, args)
#include "interpose.def"
#undef PL_SYSCALL
#undef PL_FUNC
