/*
 * syscalls.c: the blocking libc calls, traced as syscalls
 * (gotrace_syscall_begin/end around the real call), generated from the
 * PL_SYSCALL lines of interpose.def.
 * May call: preload.h.
 *
 * errno: the library calls are bracketed by PL_LIB (errno saved and
 * restored), and the real call's errno is what the caller sees.  A signal
 * handler that runs one of these calls while we are inside the library
 * (PL_BUSY) gets the real call only; one that interrupts the real call
 * nests a bracket, which the library ignores (only the outermost counts).
 */
#define _GNU_SOURCE
#include "preload.h"

#define PL_SYSCALL(ret, name, params, args)               \
	PL_EXPORT ret name params                         \
	{                                                 \
		if (!pl_tracing())                        \
			return PL_REAL(name) args;        \
		PL_LIB(gotrace_syscall_begin_());         \
		ret r_ = PL_REAL(name) args;              \
		PL_LIB(gotrace_syscall_end_());           \
		return r_;                                \
	}
#define PL_FUNC(ret, name, params, args, version)
#include "interpose.def"
