/*
 * wire.h: the Go 1.23 trace wire encoding (see shared docs §2-§5).
 * Pure functions on caller-owned memory: AS-safe.
 * May call: nothing.
 */
#ifndef GT_WIRE_H
#define GT_WIRE_H

#include <stdint.h>
#include <stddef.h>
#include <string.h>

#define GT_HEADER "go 1.23 trace\0\0\0"
#define GT_HEADER_LEN 16

#define GT_MAX_BATCH 65536u    /* MaxBatchSize: payload bytes */
#define GT_MAX_STRING 1024u    /* longest string the parser accepts */
#define GT_MAX_FRAMES 128u     /* longest stack the parser accepts */
#define GT_NO_ID UINT64_MAX    /* ^0: NoThread / NoProc / NoGoroutine */
#define GT_UVARINT_MAX 10      /* bytes of a 64-bit uvarint */

enum gt_ev {
	GT_EV_BATCH = 1, GT_EV_STACKS = 2, GT_EV_STACK = 3, GT_EV_STRINGS = 4,
	GT_EV_STRING = 5, GT_EV_CPU_SAMPLES = 6, GT_EV_CPU_SAMPLE = 7,
	GT_EV_FREQUENCY = 8, GT_EV_PROC_START = 10, GT_EV_PROC_STOP = 11,
	GT_EV_PROC_STEAL = 12, GT_EV_PROC_STATUS = 13, GT_EV_GO_CREATE = 14,
	GT_EV_GO_CREATE_SYSCALL = 15, GT_EV_GO_START = 16, GT_EV_GO_DESTROY = 17,
	GT_EV_GO_DESTROY_SYSCALL = 18, GT_EV_GO_STOP = 19, GT_EV_GO_BLOCK = 20,
	GT_EV_GO_UNBLOCK = 21, GT_EV_GO_SYSCALL_BEGIN = 22,
	GT_EV_GO_SYSCALL_END = 23, GT_EV_GO_SYSCALL_END_BLOCKED = 24,
	GT_EV_GO_STATUS = 25, GT_EV_GO_LABEL = 39, GT_EV_TASK_BEGIN = 40,
	GT_EV_TASK_END = 41, GT_EV_REGION_BEGIN = 42, GT_EV_REGION_END = 43,
	GT_EV_LOG = 44, GT_EV_GO_STATUS_STACK = 48,
};

enum gt_gstatus { GT_G_RUNNABLE = 1, GT_G_RUNNING = 2, GT_G_SYSCALL = 3, GT_G_WAITING = 4 };
enum gt_pstatus { GT_P_RUNNING = 1, GT_P_IDLE = 2, GT_P_SYSCALL = 3, GT_P_ABANDONED = 4 };

/* Append v as a minimal uvarint; returns the new end. */
static inline uint8_t *gt_put_uvarint(uint8_t *p, uint64_t v)
{
	while (v >= 0x80) {
		*p++ = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	*p++ = (uint8_t)v;
	return p;
}

/* Write v as a uvarint padded to exactly n bytes (n >= bytes needed):
 * every byte but the last has bit 7 set.  Used for batch size fields that
 * are filled in after the payload is known. */
static inline void gt_put_uvarint_padded(uint8_t *p, uint64_t v, int n)
{
	for (int i = 0; i < n - 1; i++) {
		p[i] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	p[n - 1] = (uint8_t)v;
}

static inline int gt_uvarint_len(uint64_t v)
{
	int n = 1;
	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

/* Decode a uvarint from [p, end); returns bytes used or 0 if malformed. */
static inline int gt_get_uvarint(const uint8_t *p, const uint8_t *end, uint64_t *out)
{
	uint64_t v = 0;
	for (int i = 0, shift = 0; i < GT_UVARINT_MAX && p + i < end; i++, shift += 7) {
		uint8_t b = p[i];
		if (i == 9 && b > 1)
			return 0;
		v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*out = v;
			return i + 1;
		}
	}
	return 0;
}

/* Batch header: type, gen, m, time, size (size padded to 3 bytes: enough
 * for GT_MAX_BATCH, filled in by gt_batch_finish). */
#define GT_SIZE_FIELD 3
#define GT_BATCH_HDR_MAX (1 + 3 * GT_UVARINT_MAX + GT_SIZE_FIELD)

/* Truncate a C string for the wire: NULL is "", longer than GT_MAX_STRING
 * keeps the first GT_MAX_STRING bytes. */
static inline size_t gt_wire_strlen(const char *s)
{
	return s ? strnlen(s, GT_MAX_STRING) : 0;
}

#endif
