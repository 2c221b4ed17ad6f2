/*
 * base/grow.c: array growth (base/grow.h).  Calls only the C library.
 */
#include "base/grow.h"

#include <stdint.h>
#include <stdlib.h>

bool gtr_grow(void **arr, size_t *cap, size_t len, size_t n, size_t sz)
{
	if (len + n <= *cap)
		return true;
	size_t ncap = *cap ? *cap : 16;
	while (ncap < len + n) {
		if (ncap > SIZE_MAX / 2 / sz)
			return false;
		ncap *= 2;
	}
	void *p = realloc(*arr, ncap * sz);
	if (!p)
		return false;
	*arr = p;
	*cap = ncap;
	return true;
}

