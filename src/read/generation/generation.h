/*
 * generation/generation.h: one generation of the input, read and checked
 * as Go's readGeneration does: batches (the framing), the string, stack and
 * CPU sample tables, the frequency, and -- in wire order -- every event and
 * its references.  Calls wire/ and base/; used by the reader (reader.c),
 * and through gtr_string/gtr_stack (include/gtread.h) by the validator and
 * the API's users.
 */
#ifndef GTREAD_GENERATION_H
#define GTREAD_GENERATION_H

#include "base/map.h"
#include "gtread.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Where the batches come from: the input, the position of the next batch,
 * the first batch of the next generation once read ("spill") and a read
 * error held back until the current generation is delivered.
 * Owner: the reader (embedded in struct gtr_reader).  Written by gen_read;
 * the reader reads have_spill / have_spill_err / spill_err to decide what
 * follows a generation's Sync. */
struct gtr_batch_src {
	const uint8_t *buf; /* the input (the caller's) */
	size_t len;
	size_t pos; /* next batch */
	bool wire_order, lenient_gen_order; /* gtr_options */
	bool have_spill;
	struct gtr_batch spill;
	bool have_spill_err;
	struct gtr_error spill_err;
	struct gtr_error *err; /* where errors go (the reader's) */
};

struct strent {
	uint64_t id;
	uint64_t off; /* of the bytes in the input */
	uint32_t len;
};

struct stkent {
	uint64_t id;
	size_t first; /* index in gen.frames */
	uint32_t n;
};

/* The index of one generation.  Owner: the reader (embedded in struct
 * gtr_reader), which hands gen_read a reset-on-entry instance per
 * generation.  Written by gen_read; afterwards read by the reader (batches
 * by thread, samples, tables) and updated by it only through
 * gen_note_time and pub.nevents.  Published as pub (struct gtr_generation,
 * pub.priv = this), valid until the reader reads the next generation. */
struct gen {
	struct gtr_generation pub;
	const uint8_t *buf; /* the input */
	bool have_freq;
	uint64_t freq;
	struct gtr_batch *b;
	size_t nb, capb;
	struct strent *s;
	size_t ns, caps;
	struct gtr_map smap; /* id -> index in s */
	struct stkent *k;
	size_t nk, capk;
	struct gtr_map kmap;   /* id -> index in k */
	struct gtr_frame *f;   /* frames of all stacks, resolved by PC */
	size_t nf, capf;
	struct gtr_map pcmap;  /* pc -> index in f of its first-seen frame */
	struct gtr_map mmap;   /* thread of event batches -> index in mg */
	size_t nevents, nsamples;
	uint64_t min_time, max_time;
	struct smp {
		int64_t time;
		uint64_t ts, m, p, g, stack, off;
		uint32_t size;
	} *smp; /* CPU samples (ordered mode: sorted by time) */
	size_t capsmp;
	struct mgrp {
		uint64_t m;
		size_t first, n; /* in mb */
	} *mg; /* event batches by thread, threads in order of appearance */
	size_t nmg, capmg;
	size_t *mb, capmb;
};

/* Go's readGeneration: reads the next generation from src into g (reset
 * first), with the checks Go makes on reading (and, in wire order, the ones
 * it makes while delivering).  0, or -1 with *src->err set. */
int gen_read(struct gen *g, struct gtr_batch_src *src);
void gen_free(struct gen *g);

/* Widens g's [min_time, max_time] to t. */
void gen_note_time(struct gen *g, uint64_t t);

/* Go's Event.validateTableIDs for an event of type typ with args after dt
 * (a CPU sample: m, p, g, stack): 0, or -1 with *err (GTR_EREF). */
int gen_check_refs(const struct gen *g, uint64_t genno, uint8_t typ, const uint64_t *args, uint64_t off,
		   struct gtr_error *err);

/* Decodes the CPU sample at *pp (its type byte) into v (time, m, p, g,
 * stack) and advances *pp: 0, or -1 with *src->err. */
int gen_read_sample(struct gtr_batch_src *src, uint64_t genno, const uint8_t **pp, const uint8_t *end,
		    uint64_t v[5]);

#endif
