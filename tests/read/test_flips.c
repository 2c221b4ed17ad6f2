/*
 * Random byte flips in a multi-generation trace written by libgotrace and in
 * one written by the Go 1.23 runtime.
 *
 * Each damaged file is read by the C reader and by Go's readers + validators
 * (tracecheck -digest, Go 1.23 and the newest Go): generations closed by a
 * Sync, events per generation, events delivered after the last Sync, and
 * whether and which error follows must be the same as Go 1.23's (error text
 * included), and agree with the newest Go's on generations, events and
 * whether an error occurs.
 *
 * salvage on each damaged file: its output is the damaged file cut at a
 * generation end, keeps every generation before the one the flip hit (the
 * flip may also have been harmless, then more is kept), and passes both Go
 * validators.
 */
#define _GNU_SOURCE 1
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "readtest.h"

/* GOTRACE_READ_FLIPS overrides the number of flips per trace. */
static int NFLIPS = 300;

static uint64_t rng = 0x9E3779B97F4A7C15ULL;
static uint64_t next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static void flips(const char *label, bool go_runtime)
{
	char *dir = tmp_dir("flips");
	char *path;
	if (asprintf(&path, "%s/orig.trace", dir) < 0)
		abort();
	if (go_runtime)
		make_go_trace(path);
	else
		make_lib_trace(path, 3, 14, 4);
	struct buf t;
	assert_int_equal(read_file(path, &t), 0);
	uint64_t ends[64];
	size_t nends = gen_ends(t.p, t.n, ends, 64);
	assert_true(nends >= 2);
	struct gtr_error e;
	struct gtr_reader *r = gtr_open(t.p, t.n, NULL, &e);
	assert_non_null(r);
	size_t hl = gtr_header_len(r);
	gtr_close(r);

	const char *nf = getenv("GOTRACE_READ_FLIPS");
	if (nf && atoi(nf) > 0)
		NFLIPS = atoi(nf);
	char **files = calloc((size_t)NFLIPS, sizeof *files), **sfiles = calloc((size_t)NFLIPS, sizeof *sfiles);
	size_t *offs = calloc((size_t)NFLIPS, sizeof *offs);
	struct gtr_salvage *salv = calloc((size_t)NFLIPS, sizeof *salv);
	uint8_t *copy = malloc(t.n);
	for (int i = 0; i < NFLIPS; i++) {
		memcpy(copy, t.p, t.n);
		offs[i] = hl + next_rand() % (t.n - hl);
		copy[offs[i]] ^= (uint8_t)(1 + next_rand() % 255);
		if (asprintf(&files[i], "%s/flip-%03d.trace", dir, i) < 0 ||
		    asprintf(&sfiles[i], "%s/flip-%03d.salvaged", dir, i) < 0)
			abort();
		write_file(files[i], copy, t.n);
		gtr_salvage_plan(copy, t.n, &salv[i]);
		write_file(sfiles[i], copy, salv[i].keep_len);
	}
	free(copy);

	struct digest *g123 = calloc((size_t)NFLIPS, sizeof *g123), *gnew = calloc((size_t)NFLIPS, sizeof *gnew);
	struct digest *s123 = calloc((size_t)NFLIPS, sizeof *s123), *snew = calloc((size_t)NFLIPS, sizeof *snew);
	digest_go("go1.23", files, (size_t)NFLIPS, g123);
	digest_go("new", files, (size_t)NFLIPS, gnew);
	digest_go("go1.23", sfiles, (size_t)NFLIPS, s123);
	digest_go("new", sfiles, (size_t)NFLIPS, snew);

	size_t n123[4] = { 0 }, nnew[4] = { 0 }, goerr = 0, shown = 0, go_differ = 0;
	size_t salv_valid = 0, salv_sem = 0, salv_bad = 0, salv_before = 0, salv_none = 0, salv_moved = 0;
	for (int i = 0; i < NFLIPS; i++) {
		struct buf f;
		assert_int_equal(read_file(files[i], &f), 0);
		struct digest c;
		digest_c(f.p, f.n, &c);
		buf_free(&f);
		char why[128];
		enum agree a = digest_agree(&c, &g123[i], true, why, sizeof why);
		enum agree an = digest_agree(&c, &gnew[i], false, why + 64, sizeof why - 64);
		/* The two Go readers can disagree with each other on a damaged
		 * file (a batch whose generation field reads 0: the newest Go
		 * stops at that batch header, "invalid generation number 0",
		 * where Go 1.23 reads on).  No reader can agree with both
		 * then; ours follows Go 1.23 exactly, and such a flip is
		 * counted apart, not as a disagreement of ours. */
		char gwhy[64];
		if (a == AGREE_EXACT && an != AGREE_EXACT &&
		    digest_agree(&g123[i], &gnew[i], false, gwhy, sizeof gwhy) != AGREE_EXACT) {
			go_differ++;
			an = AGREE_EXACT;
		}
		n123[a]++;
		nnew[an]++;
		goerr += g123[i].err;
		if ((a != AGREE_EXACT || an != AGREE_EXACT) && shown++ < 10) {
			/* keep the file for a look */
			char *keep;
			if (asprintf(&keep, "%s.kept", files[i]) < 0)
				abort();
			rename(files[i], keep);
			fprintf(stderr, "%s: flip %d at offset %zu: %s / %s (file kept: %s)\n", label, i, offs[i],
				why, why + 64, keep);
			free(keep);
			digest_print("C     ", &c);
			digest_print("go1.23", &g123[i]);
			digest_print("new   ", &gnew[i]);
		}

		/* salvage */
		const struct gtr_salvage *s = &salv[i];
		size_t k = 0; /* generations entirely before the flipped byte */
		while (k < nends && ends[k] <= offs[i])
			k++;
		bool at_end = s->keep_len == 0;
		for (size_t j = 0; j < nends; j++)
			at_end |= s->keep_len == ends[j];
		bool valid = s->keep_len == 0 ||
			     (!s123[i].err && !snew[i].err && s123[i].gens == s->gens_kept &&
			      snew[i].gens == s->gens_kept);
		bool sem = a == SEMANTIC_MISS || (g123[i].err && !go_error_structural(&g123[i]));
		if (!at_end) {
			salv_bad++;
			fprintf(stderr, "flip %d at %zu: salvage kept %zu bytes: not a generation end\n", i,
				offs[i], s->keep_len);
		} else if (!valid && !sem) {
			salv_bad++;
			fprintf(stderr, "flip %d at %zu: salvaged file (%zu generations) rejected by Go\n", i,
				offs[i], s->gens_kept);
			digest_print("go1.23", &s123[i]);
			digest_print("new   ", &snew[i]);
		} else if (!valid) {
			salv_sem++;
		} else {
			salv_valid++;
		}
		if (s->keep_len >= (k ? ends[k - 1] : 0))
			salv_before++;
		else if (s->keep_len == (k > 1 ? ends[k - 2] : 0) && offs[i] < ends[k - 1] + 24)
			/* The flip hit the first batch header of generation k+1 (its
			 * gen field, say), which then reads as a batch of generation
			 * k: that one is broken too. */
			salv_moved++;
		else if (shown++ < 10)
			fprintf(stderr, "flip %d at %zu (generation %zu): salvage kept %zu generations\n", i,
				offs[i], k + 1, s->gens_kept);
		salv_none += s->keep_len == 0;
	}
	printf("%s: %d random byte flips in a %zu-byte trace of %zu generations; Go 1.23 rejects %zu\n"
	       "  vs Go 1.23:   %zu same generations, events and error (text); %zu same generations and "
	       "events, Go met another error first in the failing generation; %zu errors only Go's "
	       "ordering/validator sees; %zu disagreements\n"
	       "  vs newest Go: %zu agree (%zu of them where the two Go readers differ and ours is Go "
	       "1.23's); %zu other error first; %zu ordering-only; %zu disagreements\n"
	       "  salvage: %zu outputs accepted by both Go validators, %zu rejected for ordering-only "
	       "damage, %zu wrong; %zu kept every generation before the flipped one (%zu more lost the "
	       "generation the damaged header was read into), %zu kept nothing\n",
	       label, NFLIPS, t.n, nends, goerr, n123[AGREE_EXACT], n123[AGREE_PLACE], n123[SEMANTIC_MISS],
	       n123[DISAGREE], nnew[AGREE_EXACT], go_differ, nnew[AGREE_PLACE], nnew[SEMANTIC_MISS],
	       nnew[DISAGREE],
	       salv_valid, salv_sem, salv_bad, salv_before, salv_moved, salv_none);
	assert_int_equal(n123[AGREE_EXACT], (size_t)NFLIPS);
	assert_int_equal(nnew[AGREE_EXACT], (size_t)NFLIPS);
	assert_int_equal(salv_bad + salv_sem, 0);
	assert_int_equal(salv_before + salv_moved, (size_t)NFLIPS);

	for (int i = 0; i < NFLIPS; i++) {
		unlink(files[i]);
		unlink(sfiles[i]);
		free(files[i]);
		free(sfiles[i]);
	}
	free(files);
	free(sfiles);
	free(offs);
	free(salv);
	unlink(path);
	rmdir(dir);
	free(path);
	free(dir);
	free(g123);
	free(gnew);
	free(s123);
	free(snew);
	buf_free(&t);
}

static void test_flips_lib_trace(void **state)
{
	(void)state;
	flips("libgotrace trace", false);
}

static void test_flips_go_runtime_trace(void **state)
{
	(void)state;
	flips("Go 1.23 runtime trace", true);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_flips_lib_trace),
		cmocka_unit_test(test_flips_go_runtime_trace),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
