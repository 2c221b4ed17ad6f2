/*
 * wire/header.h: the trace header ("go 1.N trace\0\0\0").  Calls
 * wire/utf8.h and base/error.
 */
#ifndef GTREAD_WIRE_HEADER_H
#define GTREAD_WIRE_HEADER_H

#include "gtread.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Parses the header like Go's fmt.Fscanf(r, "go 1.%d trace\x00\x00\x00").
 * Returns 0 with *version and *hdrlen, or -1 (not a trace) / -2 (version
 * unsupported by Go: *version set). */
int gtr_parse_header(const uint8_t *buf, size_t len, unsigned *version, size_t *hdrlen);
bool gtr_version_known(unsigned v); /* 11, 19, 21, 22, 23 */

/* gtr_parse_header, with Go's error in *err (may be NULL) for a bad header
 * (GTR_ENOTTRACE) or a version Go does not know (GTR_EVERSION): 0 or -1. */
int gtr_check_header(const uint8_t *buf, size_t len, unsigned *version, size_t *hdrlen,
		     struct gtr_error *err);

#endif
