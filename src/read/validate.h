/*
 * validate.h: Go 1.23's trace validator (testtrace.Validator) over the
 * events the reader delivers (internal).
 */
#ifndef GTREAD_VALIDATE_H
#define GTREAD_VALIDATE_H

#include "gtread.h"
#include "order.h"

struct gtr_val;

/* Names are interned in the ordering's pool (task types must compare with
 * the names it keeps). */
struct gtr_val *val_new(struct gtr_ord *o);
void val_free(struct gtr_val *v);

/* Go's Validator.Event on a delivered event (Syncs included): 0, or -1 with
 * Go's message in msg (*panics: Go's reader or validator would panic here;
 * *go123_accepts: only newer validators reject it; *nomem: out of
 * memory). */
int val_event(struct gtr_val *v, struct gtr_ord *o, const struct gtr_event *ev,
	      const struct gtr_generation *gen, char *msg, size_t cap, bool *panics, bool *nomem,
	      bool *go123_accepts);

#endif
