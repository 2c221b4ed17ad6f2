/*
 * wire/states.h: goroutine and proc states of the go 1.22/1.23 format: the
 * status values of GoStatus/ProcStatus events (Go's go122 GoStatus and
 * ProcStatus) and the states of Go's trace API (trace.GoState, ProcState)
 * they map to.  Used by the ordering and the validator; no calls.
 */
#ifndef GTREAD_WIRE_STATES_H
#define GTREAD_WIRE_STATES_H

#include <stdint.h>

/* go122 statuses (wire values) */
enum { GO_BAD, GO_RUNNABLE, GO_RUNNING, GO_SYSCALL, GO_WAITING };
enum { P_BAD, P_RUNNING, P_IDLE, P_SYSCALL, P_ABANDONED };

/* trace.GoState / trace.ProcState */
enum { GS_UNDETERMINED, GS_NOTEXIST, GS_RUNNABLE, GS_RUNNING, GS_WAITING, GS_SYSCALL };
enum { PS_UNDETERMINED, PS_NOTEXIST, PS_RUNNING, PS_IDLE };

/* go122 status -> trace state, as Go's tables (index 0: the zero value). */
static const uint8_t gtr_go_status_state[5] = { GS_UNDETERMINED, GS_RUNNABLE, GS_RUNNING, GS_SYSCALL,
						GS_WAITING };
static const uint8_t gtr_proc_status_state[5] = { PS_UNDETERMINED, PS_RUNNING, PS_IDLE, PS_RUNNING, PS_IDLE };

#endif
