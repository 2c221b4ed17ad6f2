/*
 * A trace cut at every byte offset.
 *
 * For every prefix of a multi-generation trace written by libgotrace (and of
 * a trace written by the Go runtime, from Go's own test data), the C reader's
 * account -- generations closed by a Sync, events per generation, whether
 * and which error follows -- must equal what Go 1.23's reader and validator
 * report (tracecheck -prefixes), error text included, and agree with the
 * newest Go's on generations, events and whether an error occurs.
 *
 * salvage on every prefix must keep exactly the generations that are
 * complete in it (a prefix of the original ending at a generation end), and
 * every distinct salvaged file must pass both Go validators.
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

static void show(const char *label, size_t l, const char *who, const char *why, const struct digest *c,
		 const struct digest *g)
{
	fprintf(stderr, "%s: cut at %zu: %s: %s\n", label, l, who, why);
	digest_print("C     ", c);
	digest_print(who, g);
}

/* exact_all: every cut must agree exactly with Go 1.23 (generations,
 * events, events after the last Sync, error text). */
static void sweep(const char *label, const char *path, bool exact_all)
{
	struct buf t;
	assert_int_equal(read_file(path, &t), 0);
	size_t len = t.n;
	uint64_t ends[256];
	size_t nends = gen_ends(t.p, len, ends, 256);
	assert_true(nends >= 2);
	assert_int_equal(ends[nends - 1], len);

	struct digest *g123 = digest_go_prefixes("go1.23", path, len);
	struct digest *gnew = digest_go_prefixes("new", path, len);
	size_t n123[4] = { 0 }, nnew[4] = { 0 }, salv_ok = 0, shown = 0;
	for (size_t l = 0; l <= len; l++) {
		struct digest c;
		digest_c(t.p, l, &c);
		char why[128];
		enum agree a = digest_agree(&c, &g123[l], true, why, sizeof why);
		n123[a]++;
		if ((a == DISAGREE || a == SEMANTIC_MISS || (exact_all && a != AGREE_EXACT)) && shown++ < 10)
			show(label, l, "go1.23", a == SEMANTIC_MISS ? "ordering error the C reader misses" : why,
			     &c, &g123[l]);
		a = digest_agree(&c, &gnew[l], false, why, sizeof why);
		nnew[a]++;
		if ((a == DISAGREE || a == SEMANTIC_MISS) && shown++ < 10)
			show(label, l, "new   ", a == SEMANTIC_MISS ? "ordering error the C reader misses" : why,
			     &c, &gnew[l]);

		/* salvage keeps exactly the complete generations */
		size_t want = 0, wantn = 0;
		for (size_t i = 0; i < nends; i++)
			if (ends[i] <= l) {
				want = ends[i];
				wantn = i + 1;
			}
		struct gtr_salvage s;
		int rc = gtr_salvage_plan(t.p, l, &s);
		bool at_end = wantn > 0 && want == l;
		if (s.keep_len == want && s.gens_kept == wantn && (rc == GTR_OK) == (wantn > 0) &&
		    at_end == (s.why.kind == GTR_ENONE)) {
			salv_ok++;
		} else if (shown++ < 10) {
			fprintf(stderr,
				"%s: cut at %zu: salvage kept %zu bytes (%zu generations), want %zu (%zu): %s\n",
				label, l, s.keep_len, s.gens_kept, want, wantn, s.why.msg);
		}
	}

	/* Every distinct salvaged file passes both Go validators. */
	char *dir = tmp_dir("cuts");
	char *files[256];
	size_t nf = 0;
	for (size_t i = 1; i <= nends; i++) {
		if (asprintf(&files[nf], "%s/salvaged-%zu.trace", dir, i) < 0)
			abort();
		write_file(files[nf], t.p, ends[i - 1]);
		nf++;
	}
	size_t valid = 0;
	for (int w = 0; w < 2; w++) {
		const char *which = w ? "new" : "go1.23";
		struct digest *d = calloc(nf, sizeof *d);
		digest_go(which, files, nf, d);
		for (size_t i = 0; i < nf; i++) {
			if (!d[i].err && d[i].gens == i + 1) {
				valid++;
			} else {
				fprintf(stderr, "%s: salvaged prefix of %zu generations rejected by %s\n", label,
					i + 1, which);
				digest_print(which, &d[i]);
			}
		}
		free(d);
	}
	printf("%s: %zu bytes, %zu generations, %zu cuts (every offset 0..%zu)\n"
	       "  vs Go 1.23:   %zu same generations, events and error text; %zu same generations and "
	       "events, Go met another error first in the failing generation; %zu ordering errors "
	       "missed; %zu disagreements\n"
	       "  vs newest Go: %zu same generations, events, error or not; %zu other error first; %zu "
	       "missed; %zu disagreements\n"
	       "  salvage: exactly the complete generations at %zu cuts; %zu/%zu distinct salvaged files "
	       "accepted by both Go validators\n",
	       label, len, nends, len + 1, len, n123[AGREE_EXACT], n123[AGREE_PLACE], n123[SEMANTIC_MISS],
	       n123[DISAGREE], nnew[AGREE_EXACT], nnew[AGREE_PLACE], nnew[SEMANTIC_MISS], nnew[DISAGREE],
	       salv_ok, valid / 2, nf);
	if (exact_all)
		assert_int_equal(n123[AGREE_EXACT], len + 1);
	assert_int_equal(n123[DISAGREE] + n123[SEMANTIC_MISS], 0);
	assert_int_equal(nnew[DISAGREE] + nnew[SEMANTIC_MISS], 0);
	assert_int_equal(salv_ok, len + 1);
	assert_int_equal(valid, 2 * nf);
	for (size_t i = 0; i < nf; i++) {
		unlink(files[i]);
		free(files[i]);
	}
	rmdir(dir);
	free(dir);
	free(g123);
	free(gnew);
	buf_free(&t);
}

static void test_cuts_lib_trace(void **state)
{
	(void)state;
	char *dir = tmp_dir("cutslib");
	char *path;
	if (asprintf(&path, "%s/lib.trace", dir) < 0)
		abort();
	make_lib_trace(path, 3, 8, 4);
	sweep("libgotrace trace", path, true);
	unlink(path);
	rmdir(dir);
	free(path);
	free(dir);
}

static void test_cuts_go_runtime_trace(void **state)
{
	(void)state;
	char *dir = tmp_dir("cutsgo");
	char *path;
	if (asprintf(&path, "%s/go.trace", dir) < 0)
		abort();
	make_go_trace(path);
	sweep("Go 1.23 runtime trace", path, true);
	unlink(path);
	rmdir(dir);
	free(path);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cuts_lib_trace),
		cmocka_unit_test(test_cuts_go_runtime_trace),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
