/*
 * base/map.h: a hash map from uint64 keys to uint32 values (open
 * addressing), for the ID tables of every layer.  Knows nothing of the trace
 * format; calls only the C library.
 *
 * A map is owned by the structure that embeds it; it is not shared between
 * threads (the hash seed, set once per process, is the only global).
 */
#ifndef GTREAD_BASE_MAP_H
#define GTREAD_BASE_MAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct gtr_map {
	uint64_t *keys;
	uint32_t *vals;
	uint8_t *used;
	size_t cap, n; /* cap: power of two or 0 */
};

void gtr_map_clear(struct gtr_map *m);  /* keeps the memory */
void gtr_map_free(struct gtr_map *m);
/* Returns a pointer to the value of key, inserting it (value 0) if absent
 * (*added set); NULL on allocation failure. */
uint32_t *gtr_map_put(struct gtr_map *m, uint64_t key, bool *added);
const uint32_t *gtr_map_get(const struct gtr_map *m, uint64_t key);

#endif
