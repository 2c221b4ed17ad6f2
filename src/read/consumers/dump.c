/*
 * consumers/dump.c: the trace as text, byte for byte like Go 1.23's
 * `gotraceraw bytes2text` (internal/trace/raw: Reader + TextWriter).
 *
 * That reader sees the file as one flat stream of events: EventBatch is an
 * event with four arguments like any other, the events of the batch simply
 * follow.  Its quirks are reproduced on purpose, since the output is meant to
 * be compared with Go's:
 *  - types 50..127 are empty slots of Go's table: they print as an empty
 *    line and have no arguments;
 *  - ExperimentalBatch reads its experiment as a uvarint and its payload as
 *    data (a length and bytes), printed as data="...";
 *  - a Stack whose nframes (or data whose length) does not fit in a Go int
 *    has no frames (no data);
 *  - empty data prints no data line at all;
 *  - an event is printed only once it has been read completely;
 *  - an event cut off where an argument or the data starts (a plain EOF) ends
 *    gotraceraw's output silently, as if the file ended cleanly; here it is
 *    an error flagged go_sees_eof.
 *
 * Calls wire/ (header, event table, uvarints, quoting) and base/error only:
 * it does not use the batch reader.
 */
#include "base/error.h"
#include "gtread.h"
#include "wire/header.h"
#include "wire/quote.h"
#include "wire/spec.h"
#include "wire/varint.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ output */

struct out {
	gtr_write_fn write;
	void *ctx;
	size_t n;
	bool failed;
	char buf[1 << 16];
};

static void out_flush(struct out *o)
{
	if (o->n && !o->failed && o->write(o->ctx, o->buf, o->n) != 0)
		o->failed = true;
	o->n = 0;
}

static void out_put(struct out *o, const void *p, size_t n)
{
	const char *s = p;
	while (n) {
		if (o->n == sizeof o->buf)
			out_flush(o);
		size_t k = sizeof o->buf - o->n;
		if (k > n)
			k = n;
		memcpy(o->buf + o->n, s, k);
		o->n += k;
		s += k;
		n -= k;
	}
}

static void out_str(struct out *o, const char *s)
{
	out_put(o, s, strlen(s));
}

static void out_u64(struct out *o, uint64_t v)
{
	char t[24];
	int n = 0;
	do {
		t[sizeof t - 1 - n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	out_put(o, t + sizeof t - n, (size_t)n);
}

static void out_quote(struct out *o, const uint8_t *s, size_t len)
{
	char t[512]; /* 64 bytes (+3 of a last rune) at most 4 output bytes each */
	out_put(o, "\"", 1);
	/* Quote in pieces, never splitting a rune: cut after an ASCII byte or
	 * once 64 bytes were taken and the next byte starts a new sequence. */
	size_t i = 0;
	while (i < len) {
		size_t j = i, n = 0;
		for (size_t w; j < len && j - i < 64; j += w)
			n += gtr_quote_rune_at(s, len, j, t + n, &w);
		out_put(o, t, n);
		i = j;
	}
	out_put(o, "\"", 1);
}

/* ------------------------------------------------------------ dump */

#define FIELD_NAMES { "pc", "func", "file", "line" }

int gtr_dump(const void *data, size_t len, gtr_write_fn write, void *ctx, struct gtr_error *err)
{
	const uint8_t *buf = data, *p, *end = buf + len;
	unsigned v;
	size_t hl;
	struct gtr_error dummy;
	if (!err)
		err = &dummy;
	memset(err, 0, sizeof *err);
	if (gtr_check_header(buf, len, &v, &hl, err) < 0)
		return GTR_ERR;
	struct out *o = malloc(sizeof *o);
	if (!o) {
		gtr_seterr(err, GTR_ENOMEM, 0, 0, "out of memory");
		return GTR_ERR;
	}
	o->write = write;
	o->ctx = ctx;
	o->n = 0;
	o->failed = false;
	out_str(o, "Trace Go1.");
	out_u64(o, v);
	out_str(o, "\n");
	/* Versions 11, 19 and 21 have no event table in the raw reader. */
	unsigned nspecs = (v == 22 || v == 23) ? GTR_NSPECS : 0;
	int rc = GTR_END;
	static const char *const fields[4] = FIELD_NAMES;
	for (p = buf + hl; p < end && !o->failed;) {
		uint64_t off = (uint64_t)(p - buf);
		uint8_t t = *p++;
		if (t >= nspecs || t == 0) {
			gtr_seterr(err, GTR_EFRAMING, 0, off, "invalid event type: %u", t);
			rc = GTR_ERR;
			break;
		}
		const struct gtr_spec *s = &gtr_specs[t];
		uint64_t args[GTR_SPEC_MAXARGS];
		int uvrc = UV_OK;
		for (int i = 0; i < s->nargs && !uvrc; i++)
			uvrc = gtr_read_uvarint(&p, end, &args[i]);
		/* Frames: check they are all there before printing anything. */
		const uint8_t *frames = p;
		uint64_t nframes = 0;
		if (!uvrc && (s->flags & GTR_SPEC_STACK) && (int64_t)args[1] > 0) {
			nframes = args[1];
			uint64_t x;
			for (uint64_t i = 0; i < nframes && !uvrc; i++)
				for (int j = 0; j < 4 && !uvrc; j++)
					uvrc = gtr_read_uvarint(&p, end, &x);
		}
		const uint8_t *dp = NULL;
		uint64_t dlen = 0;
		if (!uvrc && (s->flags & GTR_SPEC_DATA)) {
			uvrc = gtr_read_uvarint(&p, end, &dlen);
			if (!uvrc && (int64_t)dlen > 0) {
				if ((uint64_t)(end - p) < dlen) {
					gtr_seterr(err, GTR_EFRAMING, 0, off, "EOF");
					err->go_sees_eof = true;
					rc = GTR_ERR;
					break;
				}
				dp = p;
				p += dlen;
			}
		}
		if (uvrc) {
			gtr_seterr(err, GTR_EFRAMING, 0, off, "%s", gtr_uv_errstr(uvrc));
			err->go_sees_eof = uvrc == UV_EOF;
			rc = GTR_ERR;
			break;
		}
		if (s->name)
			out_str(o, s->name);
		for (int i = 0; i < s->nargs; i++) {
			out_put(o, " ", 1);
			out_str(o, s->args[i]);
			out_put(o, "=", 1);
			out_u64(o, args[i]);
		}
		for (uint64_t i = 0; i < nframes; i++) {
			for (int j = 0; j < 4; j++) {
				uint64_t x = 0;
				gtr_read_uvarint(&frames, end, &x);
				out_str(o, j == 0 ? "\n\t" : " ");
				out_str(o, fields[j]);
				out_put(o, "=", 1);
				out_u64(o, x);
			}
		}
		if (dp) {
			out_str(o, "\n\tdata=");
			out_quote(o, dp, (size_t)dlen);
		}
		out_put(o, "\n", 1);
	}
	out_flush(o);
	if (o->failed) {
		gtr_seterr(err, GTR_EIO, 0, (uint64_t)(p - buf), "write failed");
		rc = GTR_ERR;
	}
	free(o);
	return rc;
}
