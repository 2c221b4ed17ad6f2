/*
 * consumers/salvage.c: the longest prefix of a trace made of complete generations.
 *
 * The reader runs with lenient_gen_order, so a batch with an impossible
 * generation number right after a generation ends it like a read error
 * would (Go's reader gives up on that generation; its bytes are fine).  The
 * last generation the reader delivers is dropped too when the batch that
 * failed to read is known to belong to it (its gen field was read): Go's
 * reader would deliver it, but it is certainly incomplete.  Generations are
 * contiguous from the header on, so the result is a prefix of the input.
 *
 * Calls the public reader API (include/gtread.h) only.
 */
#include "gtread.h"

#include <string.h>

int gtr_salvage_plan(const void *data, size_t len, struct gtr_salvage *out)
{
	memset(out, 0, sizeof *out);
	struct gtr_options opt = { .lenient_gen_order = true };
	struct gtr_reader *r = gtr_open(data, len, &opt, &out->why);
	if (!r) {
		out->dropped_len = len;
		return GTR_ERR;
	}
	struct rec {
		uint64_t gen, end;
		size_t events;
	} last = { 0, 0, 0 }, prev = { 0, 0, 0 };
	size_t n = 0, events = 0;
	uint64_t first = 0;
	for (;;) {
		const struct gtr_generation *g;
		int rc = gtr_next_generation(r, &g);
		if (rc == GTR_OK) {
			if (n == 0)
				first = g->gen;
			prev = last;
			last = (struct rec){ g->gen, g->end, g->nevents + g->nsamples };
			events += last.events;
			n++;
			continue;
		}
		if (rc == GTR_ERR) {
			out->why = *gtr_reader_error(r);
			if (out->why.deferred && out->why.cuts_previous && n > 0) {
				events -= last.events;
				last = prev;
				n--;
				out->gens_dropped = 1;
			}
		}
		break;
	}
	gtr_close(r);
	out->gens_kept = n;
	out->keep_len = n ? (size_t)last.end : 0;
	out->first_gen = n ? first : 0;
	out->last_gen = n ? last.gen : 0;
	out->events_kept = events;
	out->dropped_len = len - out->keep_len;
	return n ? GTR_OK : GTR_ERR;
}
