/*
 * test_wire.c: the wire encoder (src/core/wire.h) and batch framing
 * (src/core/chunk.c), checked against the format (shared docs §2-§3):
 * LEB128 uvarints, padded size fields, batch headers whose size counts only
 * the payload after the size field.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/core.h"

/* Reference encoder written from the format description (§2.1), used only
 * for values whose exact bytes are not spelled out below. */
static size_t ref_uvarint(uint8_t *out, uint64_t v)
{
	size_t n = 0;
	do {
		uint8_t b = v & 0x7f;
		v >>= 7;
		if (v)
			b |= 0x80;
		out[n++] = b;
	} while (v);
	return n;
}

struct vec {
	uint64_t v;
	size_t n;
	uint8_t bytes[GT_UVARINT_MAX];
};

static const struct vec vectors[] = {
	{ 0, 1, { 0x00 } },
	{ 1, 1, { 0x01 } },
	{ 127, 1, { 0x7f } },
	{ 128, 2, { 0x80, 0x01 } },
	{ 300, 2, { 0xac, 0x02 } },
	{ 16383, 2, { 0xff, 0x7f } },
	{ 16384, 3, { 0x80, 0x80, 0x01 } },
	{ 65536, 3, { 0x80, 0x80, 0x04 } },
	{ 1000000000, 5, { 0x80, 0x94, 0xeb, 0xdc, 0x03 } }, /* §2.5 Frequency */
	{ 4294967295u, 5, { 0xff, 0xff, 0xff, 0xff, 0x0f } },
	{ 1ull << 63, 10, { 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01 } },
	{ UINT64_MAX, 10, { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01 } },
};

static void test_uvarint_exact_bytes(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof vectors / sizeof vectors[0]; i++) {
		const struct vec *x = &vectors[i];
		uint8_t buf[GT_UVARINT_MAX + 4];
		memset(buf, 0xaa, sizeof buf);
		uint8_t *end = gt_put_uvarint(buf, x->v);
		assert_int_equal(end - buf, x->n);
		assert_memory_equal(buf, x->bytes, x->n);
		/* nothing written past the end */
		for (size_t j = x->n; j < sizeof buf; j++)
			assert_int_equal(buf[j], 0xaa);
		assert_int_equal(gt_uvarint_len(x->v), x->n);

		/* decode from an exactly-sized heap buffer (ASan catches any
		 * read past end) */
		uint8_t *h = malloc(x->n);
		assert_non_null(h);
		memcpy(h, x->bytes, x->n);
		uint64_t out = 0x5555;
		assert_int_equal(gt_get_uvarint(h, h + x->n, &out), x->n);
		assert_true(out == x->v);
		free(h);
	}
}

static void test_uvarint_boundaries_roundtrip(void **state)
{
	(void)state;
	/* 2^(7k)-1 takes k bytes, 2^(7k) takes k+1 */
	for (int k = 1; k <= 9; k++) {
		uint64_t lo = (1ull << (7 * k)) - 1, hi = 1ull << (7 * k);
		assert_int_equal(gt_uvarint_len(lo), k);
		assert_int_equal(gt_uvarint_len(hi), k + 1);
	}
	/* Round trip of a spread of values, compared with the reference
	 * encoder byte for byte. */
	uint64_t x = 0x9e3779b97f4a7c15ull;
	for (int i = 0; i < 20000; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		uint64_t v = x >> (i % 64); /* all magnitudes */
		uint8_t a[GT_UVARINT_MAX], b[GT_UVARINT_MAX];
		size_t n = (size_t)(gt_put_uvarint(a, v) - a);
		size_t rn = ref_uvarint(b, v);
		assert_int_equal(n, rn);
		assert_memory_equal(a, b, n);
		assert_int_equal(gt_uvarint_len(v), n);
		uint64_t out;
		assert_int_equal(gt_get_uvarint(a, a + n, &out), n);
		assert_true(out == v);
		/* trailing bytes are not consumed */
		uint8_t c[GT_UVARINT_MAX + 3];
		memcpy(c, a, n);
		c[n] = 0x7f;
		c[n + 1] = 0x80;
		c[n + 2] = 0x01;
		assert_int_equal(gt_get_uvarint(c, c + n + 3, &out), n);
		assert_true(out == v);
	}
}

static void test_uvarint_padded(void **state)
{
	(void)state;
	/* the example of the brief: 0 in 3 bytes */
	uint8_t p3[3];
	gt_put_uvarint_padded(p3, 0, 3);
	const uint8_t zero3[3] = { 0x80, 0x80, 0x00 };
	assert_memory_equal(p3, zero3, 3);

	uint8_t p2[2];
	gt_put_uvarint_padded(p2, 127, 2);
	const uint8_t v127[2] = { 0xff, 0x00 };
	assert_memory_equal(p2, v127, 2);

	/* GT_MAX_BATCH must fit the batch size field */
	assert_true(gt_uvarint_len(GT_MAX_BATCH) <= GT_SIZE_FIELD);
	gt_put_uvarint_padded(p3, GT_MAX_BATCH, GT_SIZE_FIELD);
	const uint8_t max3[3] = { 0x80, 0x80, 0x04 };
	assert_memory_equal(p3, max3, 3);

	const uint64_t vals[] = { 0, 1, 5, 127, 128, 255, 16383, 16384, 65535, 65536,
	                          (1u << 21) - 1, 1ull << 35, (1ull << 63) - 1 };
	for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
		uint64_t v = vals[i];
		for (int n = gt_uvarint_len(v); n <= GT_UVARINT_MAX; n++) {
			if (n == GT_UVARINT_MAX && v >> 63)
				continue;
			uint8_t buf[GT_UVARINT_MAX + 2];
			memset(buf, 0xaa, sizeof buf);
			gt_put_uvarint_padded(buf, v, n);
			for (int j = 0; j < n - 1; j++)
				assert_true(buf[j] & 0x80);
			assert_false(buf[n - 1] & 0x80);
			assert_int_equal(buf[n], 0xaa); /* exactly n bytes */
			uint64_t out = ~v;
			assert_int_equal(gt_get_uvarint(buf, buf + n, &out), n);
			assert_true(out == v);
			/* with the minimal length it is the minimal encoding */
			if (n == gt_uvarint_len(v)) {
				uint8_t m[GT_UVARINT_MAX];
				assert_int_equal(gt_put_uvarint(m, v) - m, n);
				assert_memory_equal(m, buf, n);
			}
		}
	}
	/* UINT64_MAX padded to 10 equals its minimal encoding */
	uint8_t b10[10];
	gt_put_uvarint_padded(b10, UINT64_MAX, 10);
	assert_memory_equal(b10, vectors[sizeof vectors / sizeof vectors[0] - 1].bytes, 10);
}

static int decode_heap(const uint8_t *bytes, size_t n, uint64_t *out)
{
	/* exact-size copy: any read past the end is an ASan error */
	uint8_t *h = malloc(n ? n : 1);
	assert_non_null(h);
	memcpy(h, bytes, n);
	int r = gt_get_uvarint(h, h + n, out);
	free(h);
	return r;
}

static void test_uvarint_malformed(void **state)
{
	(void)state;
	uint64_t out = 12345;
	/* empty input */
	const uint8_t none[1] = { 0 };
	assert_int_equal(gt_get_uvarint(none, none, &out), 0);
	/* truncated: continuation bit on the last available byte */
	const uint8_t t1[] = { 0x80 };
	assert_int_equal(decode_heap(t1, 1, &out), 0);
	const uint8_t t2[] = { 0xff, 0xff };
	assert_int_equal(decode_heap(t2, 2, &out), 0);
	const uint8_t t9[] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
	assert_int_equal(decode_heap(t9, 9, &out), 0);
	/* truncated UINT64_MAX: every prefix fails */
	const uint8_t *mx = vectors[sizeof vectors / sizeof vectors[0] - 1].bytes;
	for (size_t n = 0; n < 10; n++)
		assert_int_equal(decode_heap(mx, n, &out), 0);
	/* 11 bytes: ten continuation bytes then a terminator */
	const uint8_t e11[] = { 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00 };
	assert_int_equal(decode_heap(e11, 11, &out), 0);
	const uint8_t e11b[] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x81, 0x01 };
	assert_int_equal(decode_heap(e11b, 11, &out), 0);
	/* 10th byte carrying more than the 64th bit: overflow */
	const uint8_t ov[] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02 };
	assert_int_equal(decode_heap(ov, 10, &out), 0);
	const uint8_t ov2[] = { 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x7f };
	assert_int_equal(decode_heap(ov2, 10, &out), 0);
	/* out untouched by failures */
	assert_true(out == 12345);
	/* non-minimal but valid 10-byte encodings are accepted (§2.1) */
	const uint8_t pad10[] = { 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00 };
	assert_int_equal(decode_heap(pad10, 10, &out), 10);
	assert_true(out == 0);
	const uint8_t top[] = { 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01 };
	assert_int_equal(decode_heap(top, 10, &out), 10);
	assert_true(out == 1ull << 63);
}

/* ------------------------------------------------------------ batch framing */

struct hdr {
	uint64_t gen, m, time, size;
	size_t size_off;   /* offset of the size field */
	size_t size_len;   /* bytes of the size field */
	size_t payload_off;
};

/* Decode a batch header from the chunk's bytes; fails the test if malformed. */
static void decode_header(const uint8_t *d, size_t len, struct hdr *h)
{
	const uint8_t *p = d, *end = d + len;
	assert_true(len >= 1);
	assert_int_equal(*p++, GT_EV_BATCH);
	int n;
	n = gt_get_uvarint(p, end, &h->gen);
	assert_true(n > 0);
	p += n;
	n = gt_get_uvarint(p, end, &h->m);
	assert_true(n > 0);
	p += n;
	n = gt_get_uvarint(p, end, &h->time);
	assert_true(n > 0);
	p += n;
	h->size_off = (size_t)(p - d);
	n = gt_get_uvarint(p, end, &h->size);
	assert_true(n > 0);
	h->size_len = (size_t)n;
	p += n;
	h->payload_off = (size_t)(p - d);
}

static void check_batch(uint32_t cap, uint64_t gen, uint64_t m, uint64_t ts, uint32_t npayload)
{
	struct gt_chunk *c = gt_chunk_new(cap, 0);
	assert_non_null(c);
	assert_int_equal(c->cap, cap);
	assert_int_equal(c->len, 0);
	gt_chunk_open(c, gen, m, ts);
	size_t want_hdr = 1 + (size_t)gt_uvarint_len(gen) + (size_t)gt_uvarint_len(m) +
	                  (size_t)gt_uvarint_len(ts) + GT_SIZE_FIELD;
	assert_int_equal(c->hdr_len, want_hdr);
	assert_int_equal(c->len, want_hdr);
	assert_true(c->gen == gen);
	assert_true(c->last_ts == ts);
	assert_int_equal(gt_chunk_payload(c), 0);
	assert_true(c->hdr_len + npayload <= c->cap);

	/* payload: a recognisable pattern */
	for (uint32_t i = 0; i < npayload; i++)
		c->data[c->len + i] = (uint8_t)(i * 7 + 3);
	c->len += npayload;
	assert_int_equal(gt_chunk_payload(c), npayload);
	gt_chunk_finish(c);

	struct hdr h;
	decode_header(c->data, c->len, &h);
	assert_true(h.gen == gen);
	assert_true(h.m == m);
	assert_true(h.time == ts);
	assert_int_equal(h.size_len, GT_SIZE_FIELD);
	assert_int_equal(h.size_off + GT_SIZE_FIELD, c->hdr_len);
	assert_int_equal(h.payload_off, c->hdr_len);
	/* size == exactly the bytes after the size field */
	assert_int_equal(h.size, npayload);
	assert_int_equal(h.payload_off + h.size, c->len);
	/* the size field is in padded form */
	for (size_t j = 0; j < GT_SIZE_FIELD - 1; j++)
		assert_true(c->data[h.size_off + j] & 0x80);
	assert_false(c->data[h.size_off + GT_SIZE_FIELD - 1] & 0x80);
	/* payload untouched */
	for (uint32_t i = 0; i < npayload; i++)
		assert_int_equal(c->data[h.payload_off + i], (uint8_t)(i * 7 + 3));

	/* finishing again after more payload updates the size */
	if (c->len + 5 <= c->cap) {
		memset(c->data + c->len, 0, 5);
		c->len += 5;
		gt_chunk_finish(c);
		decode_header(c->data, c->len, &h);
		assert_int_equal(h.size, npayload + 5);
		assert_int_equal(h.size_len, GT_SIZE_FIELD);
		assert_int_equal(h.payload_off + h.size, c->len);
	}
	gt_chunk_release(c);
}

static void test_batch_framing(void **state)
{
	(void)state;
	const uint32_t sizes[] = { 0, 1, 2, 127, 128, 129, 1000, 16383, 16384, 30000 };
	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		check_batch(32768 + 64, 1, 101, 1000, sizes[i]);
		check_batch(32768 + 64, 7, GT_NO_ID, 0, sizes[i]);
		check_batch(32768 + 64, (1ull << 40) + 3, 12345678, UINT64_MAX - 1, sizes[i]);
	}
	/* the largest batch the parser accepts */
	check_batch(GT_MAX_BATCH + GT_BATCH_HDR_MAX, 2, GT_NO_ID, 1ull << 50, GT_MAX_BATCH);
	/* the format's own example (§2.5): gen=1 m=101 time=1000 size=42 ->
	 * 01 01 65 e8 07 then a 3-byte padded 42 */
	struct gt_chunk *c = gt_chunk_new(128, 0);
	assert_non_null(c);
	gt_chunk_open(c, 1, 101, 1000);
	memset(c->data + c->len, 0, 42);
	c->len += 42;
	gt_chunk_finish(c);
	const uint8_t want[] = { 0x01, 0x01, 0x65, 0xe8, 0x07, 0xaa, 0x80, 0x00 };
	assert_memory_equal(c->data, want, sizeof want);
	gt_chunk_release(c);
	/* m = ^0 encodes as the 10-byte ^0 right after gen */
	c = gt_chunk_new(128, 0);
	assert_non_null(c);
	gt_chunk_open(c, 1, GT_NO_ID, 1500);
	c->data[c->len++] = GT_EV_FREQUENCY;
	c->len = (uint32_t)(gt_put_uvarint(c->data + c->len, 1000000000) - c->data);
	gt_chunk_finish(c);
	const uint8_t want2[] = { 0x01, 0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
	                          0xdc, 0x0b, 0x86, 0x80, 0x00, 0x08, 0x80, 0x94, 0xeb, 0xdc, 0x03 };
	assert_int_equal(c->len, sizeof want2);
	assert_memory_equal(c->data, want2, sizeof want2);
	gt_chunk_release(c);
}

static void test_chunk_new_limits(void **state)
{
	(void)state;
	struct gt_chunk *c = gt_chunk_new(4096, GT_RESERVE);
	assert_non_null(c);
	assert_int_equal(c->cap, 4096);
	assert_int_equal(c->limit, 4096 - GT_RESERVE);
	assert_int_equal(c->len, 0);
	assert_int_equal(c->hdr_len, 0);
	/* the whole capacity is writable (ASan) */
	memset(c->data, 0x5a, c->cap);
	gt_chunk_release(c);
	c = gt_chunk_new(256, 0);
	assert_non_null(c);
	assert_int_equal(c->limit, 256);
	memset(c->data, 0x5a, c->cap);
	gt_chunk_release(c);
}

static void test_wire_strlen(void **state)
{
	(void)state;
	assert_int_equal(gt_wire_strlen(NULL), 0);
	assert_int_equal(gt_wire_strlen(""), 0);
	assert_int_equal(gt_wire_strlen("hello"), 5);
	char *big = malloc(5001);
	assert_non_null(big);
	memset(big, 'x', 5000);
	big[5000] = 0;
	assert_int_equal(gt_wire_strlen(big), GT_MAX_STRING);
	assert_int_equal(GT_MAX_STRING, 1024);
	big[1024] = 0;
	assert_int_equal(gt_wire_strlen(big), 1024);
	big[1023] = 0;
	assert_int_equal(gt_wire_strlen(big), 1023);
	free(big);
	/* a 1024-byte buffer with no terminator: strnlen must stop at 1024
	 * (ASan: no read past the buffer) */
	char *raw = malloc(GT_MAX_STRING);
	assert_non_null(raw);
	memset(raw, 'y', GT_MAX_STRING);
	assert_int_equal(gt_wire_strlen(raw), GT_MAX_STRING);
	free(raw);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_uvarint_exact_bytes),
		cmocka_unit_test(test_uvarint_boundaries_roundtrip),
		cmocka_unit_test(test_uvarint_padded),
		cmocka_unit_test(test_uvarint_malformed),
		cmocka_unit_test(test_batch_framing),
		cmocka_unit_test(test_chunk_new_limits),
		cmocka_unit_test(test_wire_strlen),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
