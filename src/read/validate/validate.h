/*
 * validate/validate.h: Go 1.23's trace validator (testtrace.Validator) over
 * the events the reader delivers (internal).  Calls base/, wire/ and the
 * generation tables; used by the reader (reader.c) only.
 */
#ifndef GTREAD_VALIDATE_H
#define GTREAD_VALIDATE_H

#include "base/names.h"
#include "gtread.h"

struct gtr_val;

/* Names are interned in the reader's pool, shared with the ordering (task
 * types must compare with the indices the ordering passes on in a
 * UserTaskEnd's args[3]); it must outlive the validator. */
struct gtr_val *val_new(struct gtr_names *names);
void val_free(struct gtr_val *v);

/* Go's Validator.Event on a delivered event (Syncs included): 0, or -1 with
 * Go's message in msg (*panics: Go's reader or validator would panic here;
 * *go123_accepts: only newer validators reject it; *nomem: out of
 * memory). */
int val_event(struct gtr_val *v, const struct gtr_event *ev, const struct gtr_generation *gen, char *msg,
	      size_t cap, bool *panics, bool *nomem, bool *go123_accepts);

#endif
