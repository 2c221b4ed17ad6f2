/*
 * base/names.h: a pool of interned byte strings (task types, region and
 * range names), where equal strings get equal indices for the whole trace.
 * Calls base/map and base/grow.
 *
 * Owner: the reader (reader.c) creates one pool per reader and frees it.
 * Writers and readers: the ordering (order/) interns task and region names
 * and passes a task's type index to the validator in an event's extra
 * argument; the validator (validate/) interns range names and compares
 * those indices.  Single-threaded, like the reader.
 */
#ifndef GTREAD_BASE_NAMES_H
#define GTREAD_BASE_NAMES_H

#include <stddef.h>
#include <stdint.h>

struct gtr_names;

struct gtr_names *gtr_names_new(void);
void gtr_names_free(struct gtr_names *p);

/* The index of s[0..n), added if new; UINT32_MAX on allocation failure. */
uint32_t gtr_names_intern(struct gtr_names *p, const uint8_t *s, size_t n);

/* The string of index i ("" if there is no such index). */
void gtr_names_get(const struct gtr_names *p, uint32_t i, const char **s, int *n);

#endif
