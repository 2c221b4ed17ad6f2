/*
 * `gotrace-read dump` prints byte for byte what Go 1.23's
 * `gotraceraw bytes2text` prints:
 *  - for traces written by libgotrace;
 *  - for the binary form of every trace of Go's own tests
 *    (src/internal/trace/testdata/tests, every .test file, converted with gotraceraw
 *    text2bytes);
 *  - for strings of every kind of bytes (Go's strconv.Quote: printable
 *    runes, escapes, invalid UTF-8);
 *  - for damaged traces (cut, flipped bytes): the same lines up to where
 *    both stop, and both fail with the same message.
 */
#define _GNU_SOURCE 1
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "readtest.h"

static char *dir;
static size_t compared, equal, silent;

/* Compares the tool's dump of file with gotraceraw's; returns true if the
 * output, the success/failure and the error message agree. */
static bool compare(const char *file, bool quiet)
{
	struct buf mine = { 0 }, go = { 0 }, goerr = { 0 };
	int rc_mine = run(&mine, "'%s' dump '%s' 2>/dev/null", env_need("GOTRACE_READ_TOOL"), file);
	int rc_go = run(&go, "'%s' bytes2text < '%s' 2>'%s/goerr'", env_need("GOTRACE_GOTRACERAW"), file, dir);
	char *errpath;
	if (asprintf(&errpath, "%s/goerr", dir) < 0)
		abort();
	read_file(errpath, &goerr);
	free(errpath);
	bool ok = mine.n == go.n && !memcmp(mine.p, go.p, go.n) && (rc_mine == 0) == (rc_go == 0);
	if (mine.n == go.n && !memcmp(mine.p, go.p, go.n) && rc_go == 0 && rc_mine != 0) {
		/* gotraceraw stops silently at an event cut where an argument
		 * starts; we say so (and fail). */
		struct buf myerr = { 0 };
		run(&myerr, "'%s' dump '%s' 2>&1 >/dev/null", env_need("GOTRACE_READ_TOOL"), file);
		ok = strstr((char *)myerr.p, "stops here silently") != NULL;
		silent += ok;
		buf_free(&myerr);
	} else if (ok && rc_go != 0) {
		/* same message: ours is "gotrace-read: FILE: offset N: MSG" */
		struct buf myerr = { 0 };
		run(&myerr, "'%s' dump '%s' 2>&1 >/dev/null", env_need("GOTRACE_READ_TOOL"), file);
		goerr.p[strcspn((char *)goerr.p, "\n")] = 0;
		const char *g = (char *)goerr.p;
		char *m = strstr((char *)myerr.p, g);
		ok = *g && m && m > (char *)myerr.p && m[-1] == ' ' &&
		     (m[strlen(g)] == '\n' || m[strlen(g)] == ' ');
		if (!ok && !quiet)
			fprintf(stderr, "%s: error messages differ: Go '%s', ours '%s'\n", file, (char *)goerr.p,
				(char *)myerr.p);
		buf_free(&myerr);
	}
	if (!ok && !quiet && (mine.n != go.n || memcmp(mine.p, go.p, go.n))) {
		size_t i = 0;
		while (i < mine.n && i < go.n && mine.p[i] == go.p[i])
			i++;
		size_t ls = i;
		while (ls > 0 && go.p[ls - 1] != '\n')
			ls--;
		fprintf(stderr, "%s: dump differs at byte %zu (ours %zu bytes exit %d, Go %zu bytes exit %d)\n"
				"  Go:   %.120s\n  ours: %.120s\n",
			file, i, mine.n, rc_mine, go.n, rc_go, (char *)go.p + ls,
			ls < mine.n ? (char *)mine.p + ls : "");
	}
	compared++;
	equal += ok;
	buf_free(&mine);
	buf_free(&go);
	buf_free(&goerr);
	return ok;
}

static char *path_in_dir(const char *name)
{
	char *p;
	if (asprintf(&p, "%s/%s", dir, name) < 0)
		abort();
	return p;
}

static void test_dump_lib_traces(void **state)
{
	(void)state;
	compared = equal = 0;
	char *p = path_in_dir("lib1.trace");
	make_lib_trace(p, 4, 30, 3);
	assert_true(compare(p, false));
	char *q = path_in_dir("lib2.trace");
	make_lib_trace(q, 1, 2, 2);
	assert_true(compare(q, false));
	printf("libgotrace traces: %zu/%zu dumps equal to gotraceraw's\n", equal, compared);
	unlink(p);
	unlink(q);
	free(p);
	free(q);
}

static void test_dump_go_testdata(void **state)
{
	(void)state;
	compared = equal = 0;
	glob_t gl;
	char *pat;
	if (asprintf(&pat, "%s/src/internal/trace/testdata/tests/*.test", env_need("GOTRACE_GO123_ROOT")) < 0)
		abort();
	assert_int_equal(glob(pat, 0, NULL, &gl), 0);
	free(pat);
	assert_true(gl.gl_pathc >= 20);
	for (size_t i = 0; i < gl.gl_pathc; i++) {
		char *bin = path_in_dir("go.bin");
		int rc = run(NULL, "awk '/^-- trace --$/{f=1;next} /^-- /{f=0} f' '%s' | '%s' text2bytes > '%s'",
			     gl.gl_pathv[i], env_need("GOTRACE_GOTRACERAW"), bin);
		assert_int_equal(rc, 0);
		if (!compare(bin, false))
			fprintf(stderr, "  (from %s)\n", gl.gl_pathv[i]);
		unlink(bin);
		free(bin);
	}
	printf("Go's test traces: %zu/%zu dumps equal to gotraceraw's\n", equal, compared);
	assert_int_equal(equal, gl.gl_pathc);
	globfree(&gl);
}

/* ------------------------------------------------------------ strings */

static void test_dump_strings(void **state)
{
	(void)state;
	compared = equal = 0;
	static const char *const special[] = {
		"", "plain ascii", "quote \" backslash \\ tab \t nl \n cr \r", "\a\b\f\v\x01\x1f\x7f",
		"\xc2\x85 \xc2\xa0 \xc2\xad \xc2\xa9", /* U+0085 U+00A0 U+00AD U+00A9 */
		"\xe2\x80\xa8 \xe2\x80\xa9 \xef\xbb\xbf \xee\x80\x80", /* U+2028 U+2029 U+FEFF U+E000 */
		"\xf4\x8f\xbf\xbf \xf0\x9f\x98\x80 \xf3\xa0\x80\x81", /* U+10FFFF U+1F600 U+E0001 */
		"\xed\xa0\x80 \xc0\x80 \xe0\x80\x80 \xf8\x88\x80\x80\x80 \xff\xfe", /* invalid */
		"\xe2\x82 \xf0\x9f\x98 \xc3", /* truncated sequences */
		"\xef\xbf\xbd \xef\xbf\xbe \xef\xbf\xbf", /* U+FFFD U+FFFE U+FFFF */
		"\xcd\xb8 \xd5\x97 \xe1\x9a\x80 \xe3\x80\x80", /* unassigned, spaces */
	};
	uint64_t seed = 12345;
	struct buf b = { 0 };
	buf_put(&b, "go 1.23 trace\0\0\0", 16);
	for (int batch = 0; batch < 40; batch++) {
		struct buf pl = { 0 };
		buf_put(&pl, "\x04", 1);
		for (int k = 0; k < 30; k++) {
			uint8_t s[64];
			size_t n;
			if (batch == 0 && k < (int)(sizeof special / sizeof special[0])) {
				n = strlen(special[k]);
				memcpy(s, special[k], n);
			} else {
				n = (size_t)(k % 17 + 1);
				for (size_t j = 0; j < n; j++) {
					seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
					uint8_t x = (uint8_t)(seed >> 56);
					/* mix: random bytes, and valid multi-byte starts */
					s[j] = batch % 3 == 0 ? x : (batch % 3 == 1 ? (uint8_t)(0x80 | (x & 0x7f)) : x);
				}
			}
			buf_put(&pl, "\x05", 1);
			uv(&pl, (uint64_t)(batch * 100 + k + 1));
			uv(&pl, n);
			buf_put(&pl, s, n);
		}
		buf_put(&b, "\x01\x01\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01\x01", 13);
		uv(&b, pl.n);
		buf_put(&b, pl.p, pl.n);
		buf_free(&pl);
	}
	/* and every valid rune of the BMP and some above, in chunks */
	for (uint32_t r0 = 0x80; r0 < 0x110000; r0 += 160) {
		struct buf pl = { 0 };
		buf_put(&pl, "\x04\x05", 2);
		uv(&pl, r0);
		struct buf s = { 0 };
		for (uint32_t r = r0; r < r0 + 160 && r < 0x110000; r += r0 < 0x10000 ? 1 : 37) {
			uint8_t u[4];
			size_t n;
			if (r < 0x800) {
				u[0] = (uint8_t)(0xC0 | r >> 6);
				u[1] = (uint8_t)(0x80 | (r & 0x3F));
				n = 2;
			} else if (r < 0x10000) {
				u[0] = (uint8_t)(0xE0 | r >> 12);
				u[1] = (uint8_t)(0x80 | (r >> 6 & 0x3F));
				u[2] = (uint8_t)(0x80 | (r & 0x3F));
				n = 3;
			} else {
				u[0] = (uint8_t)(0xF0 | r >> 18);
				u[1] = (uint8_t)(0x80 | (r >> 12 & 0x3F));
				u[2] = (uint8_t)(0x80 | (r >> 6 & 0x3F));
				u[3] = (uint8_t)(0x80 | (r & 0x3F));
				n = 4;
			}
			buf_put(&s, u, n);
		}
		uv(&pl, s.n);
		buf_put(&pl, s.p, s.n);
		buf_put(&b, "\x01\x02\x01\x01", 4);
		uv(&b, pl.n);
		buf_put(&b, pl.p, pl.n);
		buf_free(&s);
		buf_free(&pl);
		if (r0 > 0x10000)
			r0 += 160 * 60;
	}
	char *p = path_in_dir("strings.trace");
	write_file(p, b.p, b.n);
	assert_true(compare(p, false));
	printf("strings of every kind (%zu bytes): dump equal to gotraceraw's\n", b.n);
	unlink(p);
	free(p);
	buf_free(&b);
}

/* ------------------------------------------------------------ damaged */

static void test_dump_damaged(void **state)
{
	(void)state;
	compared = equal = silent = 0;
	char *p = path_in_dir("lib.trace");
	make_lib_trace(p, 2, 8, 3);
	struct buf t;
	assert_int_equal(read_file(p, &t), 0);
	char *d = path_in_dir("damaged.trace");
	uint64_t seed = 777;
	size_t n = 0;
	for (int i = 0; i < 100; i++) {
		seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
		size_t cut = (size_t)(seed >> 33) % (t.n + 1);
		write_file(d, t.p, cut);
		n += compare(d, compared - equal > 5);
	}
	uint8_t *c = malloc(t.n);
	for (int i = 0; i < 100; i++) {
		memcpy(c, t.p, t.n);
		seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
		size_t off = 16 + (size_t)(seed >> 33) % (t.n - 16);
		c[off] ^= (uint8_t)(1 + (seed >> 20) % 255);
		write_file(d, c, t.n);
		n += compare(d, compared - equal > 5);
	}
	free(c);
	printf("damaged traces: %zu/%zu dumps (100 cuts, 100 flips) equal to gotraceraw's, same errors "
	       "(%zu where gotraceraw stops silently at a cut event and we report it)\n",
	       equal, compared, silent);
	assert_int_equal(equal, compared);
	unlink(d);
	unlink(p);
	free(d);
	free(p);
	buf_free(&t);
}

static int setup(void **state)
{
	(void)state;
	dir = tmp_dir("dump");
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	char *e = path_in_dir("goerr");
	unlink(e);
	free(e);
	rmdir(dir);
	free(dir);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dump_lib_traces),
		cmocka_unit_test(test_dump_go_testdata),
		cmocka_unit_test(test_dump_strings),
		cmocka_unit_test(test_dump_damaged),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
