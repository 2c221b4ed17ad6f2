/*
 * autostart.c: the constructor object (installed as
 * <libdir>/gotrace/gotrace-autostart.o; CMake: gotrace::autostart;
 * pkg-config: gotrace-autostart).  Linked into a program, it starts tracing
 * before main() as the environment says (gotrace_start_from_env: nothing
 * happens unless GOTRACE_OUT is set), like gperftools' CPUPROFILE; the trace
 * is finished at exit() (or at a crash) by the library's own handlers.
 * Not part of libgotrace: a program gets it only by linking it.
 * May call: the public API only.
 */
#include <gotrace.h>

/* Priority 200: after the C runtime's own constructors and before the
 * program's default-priority ones, so that what they do is traced. */
__attribute__((constructor(200))) static void gotrace_autostart(void)
{
	(void)gotrace_start_from_env();
}
