/*
 * base/grow.h: growth of the dynamic arrays of every layer (doubling, with
 * overflow checks).  Calls only the C library.
 */
#ifndef GTREAD_BASE_GROW_H
#define GTREAD_BASE_GROW_H

#include <stdbool.h>
#include <stddef.h>

/* Ensures room for n more elements of size sz in *arr (count len, capacity
 * *cap); returns false on allocation failure. */
bool gtr_grow(void **arr, size_t *cap, size_t len, size_t n, size_t sz);

#endif
