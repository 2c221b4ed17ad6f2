/*
 * order/order.h: the scheduler state machine of Go's trace reader
 * (internal).  Calls base/ and wire/ only; used by the reader (reader.c).
 *
 * A port of the rules of Go 1.23's internal/trace/order.go: per thread (M)
 * the proc (P) and goroutine (G) it holds, per G and P a status and a
 * per-generation sequence number, user regions per goroutine, active tasks,
 * the GC state and special ranges.  ord_advance() decides whether an event
 * can be applied now (1), must wait for events of other threads (0), or is
 * impossible (-1, with Go's message); applied events, plus the ones Go
 * synthesises (GoSwitch's block/destroy and start, GoDestroySyscall's
 * steal), are queued for ord_next().
 */
#ifndef GTREAD_ORDER_H
#define GTREAD_ORDER_H

#include "base/names.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Go's baseEvent: type, time, arguments after dt plus the "extra" slots the
 * ordering uses to pass information on. */
struct ord_ev {
	uint8_t typ;
	int64_t time;
	uint64_t ts; /* raw ticks (not used by the rules) */
	uint64_t args[5];
	uint64_t off; /* wire position, for the API */
	uint32_t size;
};

/* Go's Event: a baseEvent in a scheduling context (-1 = none).  Written
 * by the ordering into its queue; the reader copies it out with ord_next()
 * (a UserTaskEnd carries its task's type as an index of the name pool in
 * args[3], which the validator reads). */
struct ord_out {
	struct ord_ev ev;
	int64_t g, p, m;
	uint64_t thread; /* M of the batch it came from */
};

/* Looks up string id of the current generation. */
typedef bool (*ord_string_fn)(const void *ctx, uint64_t id, const uint8_t **s, size_t *len);

struct gtr_ord;

/* names: the reader's name pool (base/names.h), which must outlive the
 * ordering; task types and region names are interned there. */
struct gtr_ord *ord_new(struct gtr_names *names);
void ord_free(struct gtr_ord *o);

/* Returns 1 (advanced), 0 (cannot advance yet) or -1 (error in msg, or out
 * of memory: *nomem). */
int ord_advance(struct gtr_ord *o, struct ord_ev *ev, ord_string_fn str, const void *strctx, uint64_t m,
		uint64_t gen, char *msg, size_t msgcap, bool *nomem);
bool ord_next(struct gtr_ord *o, struct ord_out *out);

/* Appends Go's dump of the ordering state (after a failed advance). */
size_t ord_dump(const struct gtr_ord *o, char *out, size_t cap);

#endif
