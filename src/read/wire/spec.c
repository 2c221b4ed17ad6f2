/*
 * wire/spec.c: the event table of the go 1.22/1.23 trace format, as the reader
 * sees it: names and argument names exactly as Go's internal/trace spells
 * them (`dump` prints them like gotraceraw does), which events are timed,
 * which carry data or frames, and which arguments are string or stack IDs;
 * and the decoding of one timed event with it.  Calls wire/varint.h only.
 */
#include "wire/spec.h"
#include "gtread.h"
#include "wire/varint.h"

#include <stdio.h>

#define TIMED GTR_SPEC_TIMED
#define DATA GTR_SPEC_DATA
#define STACK GTR_SPEC_STACK

#define NARGS(...) (sizeof((const char *[]){ __VA_ARGS__ }) / sizeof(const char *))

/* SPEC(type, name, flags, nstack, (stack positions), nstring, (string
 * positions), argument names...).  Positions count dt as 0 (Go's
 * StackIDs/StringIDs) and are listed in the order Go checks them. */
#define SPEC(t, nm, fl, nstk, stk, nstr, str, ...)                                      \
	[t] = { .name = nm, .flags = fl, .nargs = NARGS(__VA_ARGS__), .args = { __VA_ARGS__ }, \
		.nstack = nstk, .stack = { UNPAREN stk }, .nstring = nstr, .string = { UNPAREN str } }
#define SPEC0(t, nm) [t] = { .name = nm }
#define UNPAREN(...) __VA_ARGS__

const struct gtr_spec gtr_specs[GTR_NSPECS] = {
	SPEC(1, "EventBatch", 0, 0, (0), 0, (0), "gen", "m", "time", "size"),
	SPEC0(2, "Stacks"),
	SPEC(3, "Stack", STACK, 0, (0), 0, (0), "id", "nframes"),
	SPEC0(4, "Strings"),
	SPEC(5, "String", DATA, 0, (0), 0, (0), "id"),
	SPEC0(6, "CPUSamples"),
	SPEC(7, "CPUSample", 0, 0, (0), 0, (0), "time", "m", "p", "g", "stack"),
	SPEC(8, "Frequency", 0, 0, (0), 0, (0), "freq"),
	SPEC(9, "ProcsChange", TIMED, 1, (2), 0, (0), "dt", "procs_value", "stack"),
	SPEC(10, "ProcStart", TIMED, 0, (0), 0, (0), "dt", "p", "p_seq"),
	SPEC(11, "ProcStop", TIMED, 0, (0), 0, (0), "dt"),
	SPEC(12, "ProcSteal", TIMED, 0, (0), 0, (0), "dt", "p", "p_seq", "m"),
	SPEC(13, "ProcStatus", TIMED, 0, (0), 0, (0), "dt", "p", "pstatus"),
	SPEC(14, "GoCreate", TIMED, 2, (3, 2), 0, (0), "dt", "new_g", "new_stack", "stack"),
	SPEC(15, "GoCreateSyscall", TIMED, 0, (0), 0, (0), "dt", "new_g"),
	SPEC(16, "GoStart", TIMED, 0, (0), 0, (0), "dt", "g", "g_seq"),
	SPEC(17, "GoDestroy", TIMED, 0, (0), 0, (0), "dt"),
	SPEC(18, "GoDestroySyscall", TIMED, 0, (0), 0, (0), "dt"),
	SPEC(19, "GoStop", TIMED, 1, (2), 1, (1), "dt", "reason_string", "stack"),
	SPEC(20, "GoBlock", TIMED, 1, (2), 1, (1), "dt", "reason_string", "stack"),
	SPEC(21, "GoUnblock", TIMED, 1, (3), 0, (0), "dt", "g", "g_seq", "stack"),
	SPEC(22, "GoSyscallBegin", TIMED, 1, (2), 0, (0), "dt", "p_seq", "stack"),
	SPEC(23, "GoSyscallEnd", TIMED, 0, (0), 0, (0), "dt"),
	SPEC(24, "GoSyscallEndBlocked", TIMED, 0, (0), 0, (0), "dt"),
	SPEC(25, "GoStatus", TIMED, 0, (0), 0, (0), "dt", "g", "m", "gstatus"),
	SPEC(26, "STWBegin", TIMED, 1, (2), 1, (1), "dt", "kind_string", "stack"),
	SPEC(27, "STWEnd", TIMED, 0, (0), 0, (0), "dt"),
	SPEC(28, "GCActive", TIMED, 0, (0), 0, (0), "dt", "gc_seq"),
	SPEC(29, "GCBegin", TIMED, 1, (2), 0, (0), "dt", "gc_seq", "stack"),
	SPEC(30, "GCEnd", TIMED, 0, (0), 0, (0), "dt", "gc_seq"),
	SPEC(31, "GCSweepActive", TIMED, 0, (0), 0, (0), "dt", "p"),
	SPEC(32, "GCSweepBegin", TIMED, 1, (1), 0, (0), "dt", "stack"),
	SPEC(33, "GCSweepEnd", TIMED, 0, (0), 0, (0), "dt", "swept_value", "reclaimed_value"),
	SPEC(34, "GCMarkAssistActive", TIMED, 0, (0), 0, (0), "dt", "g"),
	SPEC(35, "GCMarkAssistBegin", TIMED, 1, (1), 0, (0), "dt", "stack"),
	SPEC(36, "GCMarkAssistEnd", TIMED, 0, (0), 0, (0), "dt"),
	SPEC(37, "HeapAlloc", TIMED, 0, (0), 0, (0), "dt", "heapalloc_value"),
	SPEC(38, "HeapGoal", TIMED, 0, (0), 0, (0), "dt", "heapgoal_value"),
	SPEC(39, "GoLabel", TIMED, 0, (0), 1, (1), "dt", "label_string"),
	SPEC(40, "UserTaskBegin", TIMED, 1, (4), 1, (3), "dt", "task", "parent_task", "name_string", "stack"),
	SPEC(41, "UserTaskEnd", TIMED, 1, (2), 0, (0), "dt", "task", "stack"),
	SPEC(42, "UserRegionBegin", TIMED, 1, (3), 1, (2), "dt", "task", "name_string", "stack"),
	SPEC(43, "UserRegionEnd", TIMED, 1, (3), 1, (2), "dt", "task", "name_string", "stack"),
	SPEC(44, "UserLog", TIMED, 1, (4), 2, (2, 3), "dt", "task", "key_string", "value_string", "stack"),
	SPEC(45, "GoSwitch", TIMED, 0, (0), 0, (0), "dt", "g", "g_seq"),
	SPEC(46, "GoSwitchDestroy", TIMED, 0, (0), 0, (0), "dt", "g", "g_seq"),
	SPEC(47, "GoCreateBlocked", TIMED, 2, (3, 2), 0, (0), "dt", "new_g", "new_stack", "stack"),
	SPEC(48, "GoStatusStack", TIMED, 1, (4), 0, (0), "dt", "g", "m", "gstatus", "stack"),
	SPEC(49, "ExperimentalBatch", DATA, 0, (0), 0, (0), "exp", "gen", "m", "time"),
	/* 50..127: no such events; Go's table has empty entries there. */
	SPEC(128, "Span", TIMED, 0, (0), 0, (0), "dt", "id", "npages_value", "kindclass"),
	SPEC(129, "SpanAlloc", TIMED, 0, (0), 0, (0), "dt", "id", "npages_value", "kindclass"),
	SPEC(130, "SpanFree", TIMED, 0, (0), 0, (0), "dt", "id"),
	SPEC(131, "HeapObject", TIMED, 0, (0), 0, (0), "dt", "id", "type"),
	SPEC(132, "HeapObjectAlloc", TIMED, 0, (0), 0, (0), "dt", "id", "type"),
	SPEC(133, "HeapObjectFree", TIMED, 0, (0), 0, (0), "dt", "id"),
	SPEC(134, "GoroutineStack", TIMED, 0, (0), 0, (0), "dt", "id", "order"),
	SPEC(135, "GoroutineStackAlloc", TIMED, 0, (0), 0, (0), "dt", "id", "order"),
	SPEC(136, "GoroutineStackFree", TIMED, 0, (0), 0, (0), "dt", "id"),
};

const char *gtr_event_name(unsigned type)
{
	if (type == GTR_EV_SYNC)
		return "Sync";
	if (type < GTR_NSPECS && gtr_specs[type].name)
		return gtr_specs[type].name;
	return NULL;
}

/* Go's readTimedBaseEvent (see wire/spec.h). */
int gtr_decode_timed(const uint8_t *p, const uint8_t *end, uint8_t *type, uint64_t *dt, uint64_t args[4],
		     uint8_t *nargs, char *msg, size_t msgcap)
{
	uint8_t t = p[0];
	if (t >= GTR_NSPECS) {
		snprintf(msg, msgcap, "found invalid event type: %u", t);
		return -1;
	}
	const struct gtr_spec *s = &gtr_specs[t];
	if (s->nargs == 0 || !(s->flags & GTR_SPEC_TIMED)) {
		snprintf(msg, msgcap, "found event without a timestamp: type=%u", t);
		return -1;
	}
	int n = 1;
	int nb = gtr_uvarint_slice(p + n, end, dt);
	if (nb <= 0) {
		snprintf(msg, msgcap, "found invalid uvarint for timestamp");
		return -1;
	}
	n += nb;
	for (int i = 0; i < s->nargs - 1; i++) {
		nb = gtr_uvarint_slice(p + n, end, &args[i]);
		if (nb <= 0) {
			snprintf(msg, msgcap, "found invalid uvarint");
			return -1;
		}
		n += nb;
	}
	*type = t;
	*nargs = (uint8_t)(s->nargs - 1);
	return n;
}
