/*
 * base/map.c: the hash map of base/map.h.  Calls only the C library.
 */
#include "base/map.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

/* IDs come from the input: seed the hash per process (from an ASLR'd
 * address and the clock) so that a crafted trace cannot aim at
 * collisions.  Only speed depends on it, never results. */
static uint64_t hash_seed;

static uint64_t seed_now(void)
{
	uint64_t s = __atomic_load_n(&hash_seed, __ATOMIC_RELAXED);
	if (!s) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		uint64_t n = ((uint64_t)(uintptr_t)&hash_seed ^ (uint64_t)ts.tv_nsec * 0x9E3779B97F4A7C15ULL ^
			      (uint64_t)ts.tv_sec) | 1;
		uint64_t zero = 0;
		if (!__atomic_compare_exchange_n(&hash_seed, &zero, n, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
			n = zero;
		s = n;
	}
	return s;
}

static size_t map_hash(uint64_t k)
{
	k ^= __atomic_load_n(&hash_seed, __ATOMIC_RELAXED);
	k ^= k >> 33;
	k *= 0xff51afd7ed558ccdULL;
	k ^= k >> 33;
	k *= 0xc4ceb9fe1a85ec53ULL;
	k ^= k >> 33;
	return (size_t)k;
}

void gtr_map_clear(struct gtr_map *m)
{
	if (m->n && m->used)
		memset(m->used, 0, m->cap);
	m->n = 0;
}

void gtr_map_free(struct gtr_map *m)
{
	free(m->keys);
	free(m->vals);
	free(m->used);
	memset(m, 0, sizeof *m);
}

static bool map_resize(struct gtr_map *m, size_t ncap)
{
	seed_now();
	uint64_t *keys = malloc(ncap * sizeof *keys);
	uint32_t *vals = malloc(ncap * sizeof *vals);
	uint8_t *used = calloc(ncap, 1);
	if (!keys || !vals || !used) {
		free(keys);
		free(vals);
		free(used);
		return false;
	}
	for (size_t i = 0; i < m->cap; i++) {
		if (!m->used[i])
			continue;
		size_t j = map_hash(m->keys[i]) & (ncap - 1);
		while (used[j])
			j = (j + 1) & (ncap - 1);
		used[j] = 1;
		keys[j] = m->keys[i];
		vals[j] = m->vals[i];
	}
	free(m->keys);
	free(m->vals);
	free(m->used);
	m->keys = keys;
	m->vals = vals;
	m->used = used;
	m->cap = ncap;
	return true;
}

uint32_t *gtr_map_put(struct gtr_map *m, uint64_t key, bool *added)
{
	if ((m->n + 1) * 4 > m->cap * 3) {
		if (!map_resize(m, m->cap ? m->cap * 2 : 64))
			return NULL;
	}
	size_t j = map_hash(key) & (m->cap - 1);
	while (m->used[j]) {
		if (m->keys[j] == key) {
			*added = false;
			return &m->vals[j];
		}
		j = (j + 1) & (m->cap - 1);
	}
	m->used[j] = 1;
	m->keys[j] = key;
	m->vals[j] = 0;
	m->n++;
	*added = true;
	return &m->vals[j];
}

const uint32_t *gtr_map_get(const struct gtr_map *m, uint64_t key)
{
	if (!m->n)
		return NULL;
	size_t j = map_hash(key) & (m->cap - 1);
	while (m->used[j]) {
		if (m->keys[j] == key)
			return &m->vals[j];
		j = (j + 1) & (m->cap - 1);
	}
	return NULL;
}

