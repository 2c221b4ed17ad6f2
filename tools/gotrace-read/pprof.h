/*
 * pprof.h: encoding a gtr_profile (src/read) as a gzip-compressed pprof
 * profile.proto, for `gotrace-read pprof`.  Kept out of src/read so that the
 * reader library depends on nothing; this unit uses protobuf-c (the code
 * protoc-c generates from profile.proto) and zlib.
 */
#ifndef GOTRACE_READ_PPROF_H
#define GOTRACE_READ_PPROF_H

#include <stddef.h>
#include <stdint.h>

#include "gtread.h"

/* The profile's metadata besides the samples. */
struct pprof_meta {
	int64_t period_ns;   /* sampling period: value 2 of a sample = count x period */
	int64_t duration_ns; /* the time window the samples were taken from */
	const char *mapping_file; /* the mapping's file name (the trace's) */
	const char *const *comments;
	size_t ncomments;
};

/* Encodes the samples with count > 0 as profile.proto, gzip-compressed,
 * into a malloc'd buffer (*out, *outlen).  Sample types are Go's for CPU
 * profiles: [samples/count, cpu/nanoseconds], period type cpu/nanoseconds.
 * Returns 0, or -1 on allocation or compression failure. */
int pprof_encode(const struct gtr_profile *p, const struct pprof_meta *m, uint8_t **out, size_t *outlen);

#endif
