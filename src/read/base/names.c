/*
 * base/names.c: the interned name pool of base/names.h.  Calls base/map
 * and base/grow.
 */
#include "base/names.h"
#include "base/grow.h"
#include "base/map.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct gtr_names {
	uint8_t *data;
	size_t n, cap;
	struct entry {
		size_t off;
		uint32_t len;
	} *e;
	size_t ne, cape;
	struct gtr_map map; /* hash -> index (probing on collisions) */
};

struct gtr_names *gtr_names_new(void)
{
	return calloc(1, sizeof(struct gtr_names));
}

void gtr_names_free(struct gtr_names *p)
{
	if (!p)
		return;
	free(p->data);
	free(p->e);
	gtr_map_free(&p->map);
	free(p);
}

static uint64_t hash_bytes(const uint8_t *s, size_t n)
{
	uint64_t h = 1469598103934665603ULL;
	for (size_t i = 0; i < n; i++) {
		h ^= s[i];
		h *= 1099511628211ULL;
	}
	return h;
}

uint32_t gtr_names_intern(struct gtr_names *p, const uint8_t *s, size_t n)
{
	uint64_t h = hash_bytes(s, n);
	for (;;) {
		bool added;
		uint32_t *slot = gtr_map_put(&p->map, h, &added);
		if (!slot)
			return UINT32_MAX;
		if (!added) {
			struct entry *e = &p->e[*slot];
			if (e->len == n && !memcmp(p->data + e->off, s, n))
				return *slot;
			h = h * 6364136223846793005ULL + 1442695040888963407ULL; /* probe */
			continue;
		}
		if (!gtr_grow((void **)&p->data, &p->cap, p->n, n + 1, 1) ||
		    !gtr_grow((void **)&p->e, &p->cape, p->ne, 1, sizeof *p->e))
			return UINT32_MAX;
		if (n)
			memcpy(p->data + p->n, s, n);
		p->e[p->ne] = (struct entry){ p->n, (uint32_t)n };
		p->n += n;
		*slot = (uint32_t)p->ne;
		return (uint32_t)p->ne++;
	}
}

void gtr_names_get(const struct gtr_names *p, uint32_t i, const char **s, int *n)
{
	if (i >= p->ne) {
		*s = "";
		*n = 0;
		return;
	}
	*s = (const char *)p->data + p->e[i].off;
	*n = (int)p->e[i].len;
}
