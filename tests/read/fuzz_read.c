/*
 * libFuzzer target for the trace reader (src/read): reads any input through
 * every entry point -- events with Syncs and tables, generations, salvage,
 * dump, stats -- and checks that salvage is sound: the salvaged prefix reads
 * cleanly, with exactly the generations and events salvage promised, and
 * salvaging it again changes nothing.  Build and run: tests/read/run-fuzz.sh.
 */
#include "gtread.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int sink(void *ctx, const void *p, size_t n)
{
	size_t *total = ctx;
	/* touch the bytes so the sanitizers see every read */
	const volatile unsigned char *b = p;
	for (size_t i = 0; i < n; i += 64)
		(void)b[i];
	*total += n;
	return 0;
}

static void check(int cond, const char *what)
{
	if (!cond) {
		fprintf(stderr, "fuzz_read: invariant broken: %s\n", what);
		abort();
	}
}

static void read_all(const uint8_t *data, size_t size, const struct gtr_options *opt, size_t *gens,
		     size_t *events, int *end)
{
	struct gtr_error e;
	*gens = *events = 0;
	*end = GTR_ERR;
	struct gtr_reader *r = gtr_open(data, size, opt, &e);
	if (!r)
		return;
	struct gtr_event ev;
	const struct gtr_generation *g;
	int rc;
	uint64_t last_gen = 0;
	while ((rc = gtr_next_event(r, &ev, &g)) == GTR_OK) {
		check(g && ev.gen == g->gen, "event of another generation");
		check(ev.offset <= size && ev.offset + ev.size <= size, "event outside the input");
		if (ev.type == GTR_EV_SYNC) {
			check(*gens == 0 || g->gen == last_gen + 1, "generations not consecutive");
			last_gen = g->gen;
			(*gens)++;
			check(g->begin <= g->end && g->end <= size, "generation outside the input");
			for (size_t i = 0; i < g->nbatches; i++)
				check(g->batches[i].data_offset + g->batches[i].size <= g->end,
				      "batch outside its generation");
			continue;
		}
		(*events)++;
		check(gtr_event_name(ev.type) != NULL || ev.type == GTR_EV_CPUSAMPLE, "unknown type delivered");
		/* every reference resolves */
		const char *s;
		size_t n;
		const struct gtr_frame *f;
		if (ev.type == GTR_EV_CPUSAMPLE) {
			check(gtr_stack(g, ev.args[3], &f, &n), "sample stack missing");
		} else {
			for (unsigned i = 0; i < ev.nargs; i++) {
				(void)gtr_string(g, ev.args[i], &s, &n);
				if (gtr_stack(g, ev.args[i], &f, &n))
					for (size_t j = 0; j < n; j++) {
						check(gtr_string(g, f[j].func, &s, &n) || 1, "");
					}
			}
		}
	}
	const struct gtr_error *err = gtr_reader_error(r);
	check(rc == GTR_END || err->kind != GTR_ENONE, "error without a kind");
	check(rc == GTR_END || strlen(err->msg) > 0, "error without a message");
	*end = rc;
	gtr_close(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t gens, events, g2, e2;
	int end, end2;
	read_all(data, size, NULL, &gens, &events, &end);
	struct gtr_options lenient = { .lenient_gen_order = true };
	read_all(data, size, &lenient, &g2, &e2, &end2);
	check(g2 >= gens, "lenient reading delivered less");
	/* file order, no ordering: accepts at least what the ordering accepts */
	struct gtr_options wire = { .wire_order = true };
	size_t g3, e3;
	int end3;
	read_all(data, size, &wire, &g3, &e3, &end3);
	check(g3 >= gens, "wire order delivered less");

	/* generation by generation */
	struct gtr_error e;
	struct gtr_reader *r = gtr_open(data, size, NULL, &e);
	if (r) {
		const struct gtr_generation *g;
		size_t n = 0;
		while (gtr_next_generation(r, &g) == GTR_OK)
			n++;
		check(n == gens, "generations differ between the two APIs");
		gtr_close(r);
	}

	/* salvage is sound */
	struct gtr_salvage s;
	int rc = gtr_salvage_plan(data, size, &s);
	check(s.keep_len <= size && s.keep_len + s.dropped_len == size, "salvage sizes");
	check((rc == GTR_OK) == (s.gens_kept > 0), "salvage status");
	if (rc == GTR_OK) {
		size_t sg, se;
		int send;
		read_all(data, s.keep_len, NULL, &sg, &se, &send);
		check(send == GTR_END, "salvaged prefix does not read cleanly");
		check(sg == s.gens_kept, "salvaged prefix: generations");
		check(se == s.events_kept, "salvaged prefix: events");
		struct gtr_salvage s2;
		check(gtr_salvage_plan(data, s.keep_len, &s2) == GTR_OK && s2.keep_len == s.keep_len &&
			      s2.why.kind == GTR_ENONE,
		      "salvage not idempotent");
	}

	/* dump and stats */
	size_t total = 0;
	(void)gtr_dump(data, size, sink, &total, &e);
	struct gtr_stats st;
	(void)gtr_stats_compute(data, size, &st);
	check(st.gens == gens, "stats: generations");
	gtr_stats_free(&st);
	return 0;
}
