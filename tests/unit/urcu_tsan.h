/*
 * urcu_tsan.h: for the unit tests that drive liburcu directly (one include
 * per test program: it defines a function).
 *
 * liburcu is not built with TSan: its lfht resize work queue and its
 * call_rcu / rcu_barrier hand-offs (malloc in one thread, free in another,
 * ordered by its own barriers and futexes) look racy to it.  These are the
 * entries of tests/tsan.supp, built in so that a bare `ctest` in a TSan
 * build is clean too; our own code is not suppressed.
 */
#ifndef GT_TEST_URCU_TSAN_H
#define GT_TEST_URCU_TSAN_H

#if defined(__SANITIZE_THREAD__)
const char *__tsan_default_suppressions(void);
const char *__tsan_default_suppressions(void)
{
	return "called_from_lib:liburcu-cds.so.8\n"
	       "called_from_lib:liburcu-bp.so.8\n"
	       "race:liburcu-cds.so.8\n"
	       "race:liburcu-bp.so.8\n";
}
#endif

#endif
