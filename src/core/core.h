/*
 * core.h: the substrate every layer writes through -- chunks (batches) and
 * the flusher's queue, a thread's record and its open batches, the string
 * table, the session state, the emit context -- and the few calls on them
 * that every layer may make.  Every shared structure says who writes it,
 * who reads it and how it is published.
 * May call: src/seqlock, src/arch (through clock.h), liburcu.
 */
#ifndef GT_CORE_H
#define GT_CORE_H

#define _GNU_SOURCE 1
#include <stdint.h>
#include <stdbool.h>
#include <stddef.h>
#include <pthread.h>

#include <urcu-bp.h>
#include <urcu/list.h>
#include <urcu/rculist.h>
#include <urcu/wfcqueue.h>

#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "gotrace.h"
#include "../seqlock/seqlock.h"
#include "clock.h"
#include "wire.h"

#define GT_HIDDEN __attribute__((visibility("hidden")))
#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

/* futex(2) on a 32-bit word (the flusher's wake word, flush_done). */
static inline long gt_futex(uint32_t *w, int op, uint32_t val, const struct timespec *ts)
{
	return syscall(SYS_futex, w, op, val, ts, NULL, 0);
}

/* ------------------------------------------------------------------ chunk */
/*
 * A chunk holds one batch: header then payload.  Ownership moves, it is never
 * shared: a thread's open chunk is written only by that thread while its
 * seqlock is odd for a generation of the chunk's parity; the advancer takes
 * it only after that thread has provably left the generation; once pushed on
 * a full queue (gt_queue_push) it belongs to the flusher, which writes it out
 * and frees it (gt_chunk_free: to the pool of written chunks, chunk.c, from
 * which gt_chunk_new takes before it mallocs).
 */
struct gt_chunk {
	struct cds_wfcq_node qnode;
	uint64_t gen;
	uint64_t last_ts;  /* time of the last event written (ticks) */
	uint32_t cap;      /* bytes of data[] */
	uint32_t limit;    /* ordinary events stop here; [limit,cap) is the
	                    * reserve for events that must not be dropped */
	uint32_t len;      /* bytes used */
	uint32_t hdr_len;  /* header bytes; size field ends at hdr_len */
	int queued;        /* release-stored before the enqueue, acquired by the
	                    * dequeuer: the hand-off order TSan can see (the
	                    * wfcq's own xchg orders it on real CPUs) */
	uint32_t mapped;   /* bytes mmap'd for it, 0 if malloc'd (chunk.c);
	                    * immutable */
	uint8_t data[];
};

/* Reserve kept at the end of every event chunk for must-emit events (status,
 * region ends of emitted begins, exit, drop notes). */
#define GT_RESERVE 2048u

GT_HIDDEN struct gt_chunk *gt_chunk_new(uint32_t cap, uint32_t reserve);
/* A written chunk: pooled for reuse (bounded, see chunk.c) or freed.  Not
 * AS-safe (may free).  gt_chunk_pool_drain frees the pool (stop). */
GT_HIDDEN void gt_chunk_free(struct gt_chunk *c);
GT_HIDDEN void gt_chunk_pool_drain(void);
/* c's memory back to where it came from (munmap or free), never pooled. */
GT_HIDDEN void gt_chunk_release(struct gt_chunk *c);
GT_HIDDEN size_t gt_chunk_pool_bytes(void); /* bytes pooled (tests) */
GT_HIDDEN void gt_chunk_open(struct gt_chunk *c, uint64_t gen, uint64_t m, uint64_t ts);
GT_HIDDEN void gt_chunk_finish(struct gt_chunk *c);
static inline uint32_t gt_chunk_payload(const struct gt_chunk *c) { return c->len - c->hdr_len; }

/* Hand a finished chunk of generation gen to the flusher.  Wait-free
 * (cds_wfcq_enqueue), AS-safe.  Accounts its bytes as buffered. */
GT_HIDDEN uint64_t gt_queue_push(struct gt_chunk *c);

/* ----------------------------------------------------------------- thread */
struct gt_region {
	uint64_t task;
	uint64_t id_gen;   /* generation in which id is the name's string id, 0
	                    * if none: the end reuses the begin's id instead of
	                    * interning the name again (ids are per generation) */
	char *blk;         /* copy of a name longer than the inline room: a
	                    * block of the block pool (arena.h), never the
	                    * allocator's (fork safety); owned by whoever owns
	                    * the region (thread, or explicit goroutine) */
	uint32_t id;
	uint16_t len;      /* at most GT_MAX_STRING (1024) */
	uint8_t emitted;   /* begin reached the trace: its end must, too */
	/* The name when it is a call site's string literal (the _lit calls):
	 * immutable for the program's lifetime, so neither copied into text
	 * nor compared by content when the end comes through the same site;
	 * NULL otherwise. */
	const char *lit;
	char text[40];
};
#define GT_REGION_DEPTH 64

/* Per-thread interning cache, keyed by the caller's pointer and verified
 * against a copy of the text (a pointer may be reused for other text).
 * Thread-local: written and read only by its thread. */
struct gt_scache {
	const char *ptr;
	uint64_t gen;
	uint32_t id;
	uint16_t len;
	char text[42];
};
#define GT_SCACHE_N 64

/* A log message this thread wrote in one generation (event.c, msg_fresh), so
 * that the same message logged again refers to the string record already
 * in the generation instead of writing another.  Keyed by the message's
 * address, and valid only while the text there is still text[0, len) (a
 * buffer the program rewrites is compared, not trusted) and only in
 * generation gen (its string id means nothing in another; generations are
 * never reused, across sessions either: 0 is an empty slot).
 * Owner-private: read and written only by the thread, inside its critical
 * section. */
#define GT_MSGC_N 8
#define GT_MSGC_LEN 39
struct gt_msgc {
	uint64_t gen;
	const char *ptr;
	uint64_t id;
	uint8_t len;
	char text[GT_MSGC_LEN];
};

/* The thread's state for one generation parity.  Written by the owner while
 * in its critical section for a generation of this parity; the advancer
 * reads and resets it after the owner left that generation (seqlock).
 * A cache line of its own (padded to GT_LINE bytes; struct gt_thread): the
 * advancer's reset of the parity the owner left must not take the line of
 * the seqlock or of the other parity, which the owner is writing into
 * meanwhile (a miss in its next call).  Padding, not an alignment
 * attribute: a 64-byte aligned type would make the pseudo-records that
 * liburcu's list walks compute from the list head misaligned (UBSan). */
struct gt_tbuf {
	uint64_t gen;           /* generation the fields below belong to */
	struct gt_chunk *ev;    /* open event batch (m = thread id) */
	struct gt_chunk *str;   /* open strings batch (m = ^0) */
	uint64_t str_next, str_end; /* string ids reserved from the gen's counter */
	uint64_t dropped;       /* events dropped in gen */
	bool stated;            /* the thread's status (or creation) is in gen */
	char line_pad_[GT_LINE - 6 * sizeof(uint64_t) - sizeof(bool)];
};
_Static_assert(sizeof(struct gt_tbuf) == GT_LINE, "struct gt_tbuf: one cache line");

/* Values below GT_TS_EXITED take the emit fast path (event.c). */
enum gt_tstate {
	GT_TS_NEW = 0,     /* goroutine not yet created in this session */
	GT_TS_RUNNING = 1, /* P Running, G Running */
	GT_TS_XG = 2,      /* P Running, explicit goroutine cur Running, own G
	                    * parked (Waiting or Runnable): goroutine.c */
	GT_TS_EXITED = 3,  /* GoDestroy + ProcStop written (or owed) */
	GT_TS_SYSCALL = 4, /* inside gotrace_syscall_begin/end: G (own, or cur
	                    * if set) Syscall, P Syscall or taken by the
	                    * advancer (see sys) */
	GT_TS_BLOCKED = 5, /* own G Waiting (gotrace_block, or parked while the
	                    * thread runs explicit goroutines), or cur Waiting
	                    * (gotrace_block inside it) with own G parked; M
	                    * keeps P Running */
};

/* The syscall word (struct gt_thread.sys): who owns the thread's P while
 * the thread sits in a syscall bracket.  Low 2 bits kind, high bits a
 * generation.  Decided by CAS only:
 *   GT_SYS_NONE                   not in a syscall
 *   GT_SYS_IN    | bg << 2        in a syscall since generation bg, P held
 *   GT_SYS_STOLEN | h << 2        the advancer took the P at the start of h
 * The owner stores IN (release) after writing GoSyscallBegin, and at the end
 * CASes IN -> NONE; the advancer, at the start of each generation h, CASes
 * IN (bg < h) -> STOLEN|h and writes ProcStatus Abandoned + ProcSteal in h.
 * Whoever wins owns the P; the loser sees the winner's value. */
#define GT_SYS_NONE 0u
#define GT_SYS_IN 1u
#define GT_SYS_STOLEN 2u
#define GT_SYS_KIND(w) ((unsigned)((w) & 3u))
#define GT_SYS_GEN(w) ((w) >> 2)

#define GT_ENTRY_MAX 8

/* A goroutine that others may wake (gotrace_unblock): the thread's own one
 * (embedded in struct gt_thread).
 *   word: atomic, kind GT_GW_* in the low 2 bits and, except for RUNNING,
 *     the generation of the event that put the G in that state.  The G's
 *     owner (the thread running it) stores WAITING|b (release) right after
 *     writing GoBlock in b.  A waker CASes WAITING -> UNBLOCKING|w; the
 *     winner owns seq/seq_gen and the G's status until it stores
 *     RUNNABLE|w (release) after writing GoUnblock in w.  The owner
 *     resuming CASes WAITING -> RUNNING (it was not woken: it unblocks
 *     itself) or waits for RUNNABLE (acquire) and takes seq back.
 *     Invariant (one-way time): whoever acts on a word of generation x
 *     (CAS, or a status read from it) does so from a critical section of a
 *     generation >= x; one in an older generation renews its section first
 *     (gt_emit_renew: the generation is >= x by then).  Generations overlap
 *     in time (a thread may still be in g-1 while others write g), and
 *     without this a waker left in g-1 would write its GoUnblock into g-1
 *     for a GoBlock written in g, or two wakers one G in g-1 around a
 *     start in g.  A thread stating the G Waiting in h raises a WAITING
 *     word's generation to h by CAS (gt_parked_own_status), so that a
 *     waker still in an older generation cannot unblock it "before" that
 *     status.
 *   traced[g % 3] == g: the G's status (or creation) is in generation g.
 *     Set by CAS by whoever writes it in g (owner, waker); by the advancer
 *     for a generation every thread has left.
 *   seq_gen, seq: the G's sequence number in seq_gen (§6.2); written by
 *     whoever owns the G per word, above. */
enum { GT_GW_RUNNING = 0, GT_GW_WAITING = 1, GT_GW_UNBLOCKING = 2, GT_GW_RUNNABLE = 3 };
/* UNBLOCKING|w: a thread that states the G in h > w (generations overlap)
 * states it Runnable: the GoUnblock is in w.  Compare kinds with
 * GT_GW_KIND. */
#define GT_GW_KIND(w) ((w) & 3u)
#define GT_GW_GEN(w) ((w) >> 2)
#define GT_GW(kind, gen) ((uint64_t)(kind) | (uint64_t)(gen) << 2)
struct gt_gor {
	uint64_t id;        /* atomic: goroutine id (0 while none) */
	uint64_t word;
	uint64_t traced[3];
	uint64_t seq_gen, seq;
	uint64_t xg;        /* immutable: non-zero if embedded in an explicit
	                     * goroutine's record (goroutine.c), 0: a thread's */
};
/* The G's next sequence number in generation g: a status (or creation) of
 * the G in g, written by whoever claimed traced[g % 3], implies 0, so the
 * owner restarts the count when seq_gen is stale (the claimer need not own
 * seq).  Owner only. */
static inline uint64_t gt_gseq_next(struct gt_gor *G, uint64_t g)
{
	if (G->seq_gen != g) {
		G->seq_gen = g;
		G->seq = 0;
	}
	return ++G->seq;
}

struct gt_thread {
	gt_seqlock seq;          /* see seqlock.h */
	char seq_pad_[GT_LINE - sizeof(gt_seqlock)];
	struct gt_tbuf tb[2];    /* indexed by generation parity */

	/* Advancer-private: state snapshot taken before the generation bump,
	 * and the last generation in which the advancer stated this thread.
	 * A line of their own (written by the advancer every generation). */
	int snap_state;
	uint64_t snap_sys, snap_gword;
	struct gt_gor *snap_cur; /* cur and cur->word at the snapshot */
	uint64_t snap_cword;
	uint64_t snap_status_gen;
	uint64_t adv_status_gen;
	char snap_pad_[8];

	/* Identity: written at registration before the record is published
	 * (cds_list_add_rcu), read-only afterwards. */
	uint64_t tid, p, goid;
	uint64_t session;

	/* Written by the owner inside its critical section; read by the
	 * advancer after the owner left the generation (seqlock acquire). The
	 * advancer writes status_gen when it states a silent thread. */
	uint64_t status_gen;     /* last generation holding this thread's status */
	int state;               /* enum gt_tstate */
	uint64_t exit_ts;        /* time of exit (state EXITED) */
	uint64_t exit_gen;       /* generation of the exit */
	bool exit_written;       /* exit events reached the trace */
	uint64_t sys;            /* atomic: the syscall word (GT_SYS_*, above) */
	struct gt_gor own;       /* the thread's goroutine (own.id == goid) */
	/* The explicit goroutine (goroutine.c) on this thread in states XG,
	 * SYSCALL and BLOCKED; NULL: the thread's own.  Written by the owner
	 * inside its critical section (atomic store), meaningless in other
	 * states; read by the advancer's snapshot and the crash path. */
	struct gt_gor *cur;
	uint32_t xg_base;        /* owner-private: regions[0, xg_base) are the
	                          * own G's while cur runs (goroutine.c) */
	/* Owner-private: the explicit goroutine (struct gt_xg, goroutine.c)
	 * this thread adopts as its own at its first status (state NEW):
	 * set at registration by gotrace_thread_adopt, whose goroutine id is
	 * then goid; cleared, and its handle reference dropped, once the
	 * adoption is written (or the record is reset or freed first). */
	void *adopt;

	bool unbounded;          /* the advancer's own strings: never refused */

	/* Owner-private. */
	uint32_t sys_depth;      /* nested syscall brackets (outermost traced) */
	uint64_t sys_word;       /* the IN value this thread stored in sys */
	/* The stack a self-wake's GoUnblock carries (struct gt_evpcs,
	 * stacks.h): set by gotrace_block_end_ around the resume it asks for,
	 * captured before its critical section; NULL otherwise. */
	const struct gt_evpcs *wake_stack;
	uint64_t pseq_gen, pseq; /* the P's sequence number in pseq_gen (§6.2):
	                          * reset by the thread's ProcStatus, taken by
	                          * ProcStart and GoSyscallBegin */
	/* Task ids: this thread's block (task_id, task_lim] of
	 * gt_session.task_next (event.c, task_id); reset per session. */
	uint64_t task_id, task_lim;
	uint32_t depth, owed_n;
	uint32_t depth_overflow; /* untraced open regions (ovf_key, below) */
	uint64_t drop_note;      /* drops not yet reported in the trace */
	struct gt_region regions[GT_REGION_DEPTH];
	/* Untraced open regions, innermost last: begins past GT_REGION_DEPTH
	 * and begins whose long name could not be copied.  For the first
	 * GT_REGION_DEPTH of them, ovf_key is a hash of (task, name), so that
	 * an end can tell whether it ends one of them or a traced region, and
	 * ovf_at the traced depth at the begin (it lies inside regions[0 ..
	 * ovf_at-1]); deeper ones are only counted. */
	uint64_t ovf_key[GT_REGION_DEPTH];
	uint8_t ovf_at[GT_REGION_DEPTH];
	struct gt_region owed[GT_REGION_DEPTH]; /* emitted begins whose end is still to write */
	struct gt_scache scache[GT_SCACHE_N];
	struct gt_msgc msgc[GT_MSGC_N];
	char name[64];           /* goroutine label; "" if none */
	/* Label to (re)write at the next event.  Set by the owner, and by a
	 * namer on another thread (below); cleared by the owner once the
	 * label is written, then re-armed if a request came meanwhile
	 * (event.c, prologue).  Atomic (relaxed loads on the fast path). */
	uint8_t name_dirty;
	/* A name given by another thread (gotrace_thread_name_of, thread.c).
	 * Namers, serialised by reg_lock: name_req_seq to odd, the bytes of
	 * name_req (release stores), name_req_seq to even (release), then
	 * name_req_new = 1 and name_dirty = 1.  The owner, in its prologue:
	 * exchange name_req_new to 0, copy name_req (acquire loads) between
	 * two reads of an even, unchanged name_req_seq (else it drops the
	 * copy: the namer's name_req_new comes next). */
	uint32_t name_req_seq, name_req_new;
	char name_req[64];
	pthread_t pth;           /* the owner's pthread_self(): identity */
	uint64_t dropped_total;  /* atomic: read by gotrace_thread_dropped */

	/* Entry stack: PCs captured at registration (owner, before publish);
	 * symbolised lazily by the flusher (flusher-private). */
	uintptr_t entry_pc[GT_ENTRY_MAX];
	int entry_n;
	int8_t entry_chosen;     /* index of the entry frame (flusher writes) */
	/* The entry the program named (gotrace_thread_entry*), overriding the
	 * captured PCs: entry_fn (a function's address) or entry_name, written
	 * by the thread itself, once per session, before entry_set (1 fn,
	 * 2 name, 0 none) is stored with release; the flusher and the crash
	 * path read entry_set with acquire first. */
	int entry_set;
	uintptr_t entry_fn;
	char entry_name[64];
	struct gt_sym *entry_sym; /* flusher-private cache: the root frame */

	/* The wrapped lock or condition variable this thread waits on
	 * (syncwrap.c), for the thread that releases it to write the
	 * unblock.  Written by the owner: wait_ticket, wait_g, wait_gid
	 * (relaxed), then wait_obj (release) once its GoBlock is written;
	 * wait_obj cleared (release) when the wait returns.  Read by any
	 * thread walking the registry under rcu_read_lock: wait_obj
	 * (acquire), the others, then wait_obj and wait_ticket again. */
	void *wait_obj;
	uint64_t wait_ticket;
	struct gt_gor *wait_g;
	uint64_t wait_gid;

	/* Registry link: modified under gt_session.reg_lock with the RCU list
	 * primitives; walked by the advancer (the only thread that unlinks
	 * and frees, so it needs no read-side section against itself) and by
	 * the crash path under rcu_read_lock. */
	struct cds_list_head node;
	bool linked;             /* in the registry (under reg_lock) */
	bool zombie;             /* thread exited; advancer frees it (reg_lock) */
	struct gt_thread *dead_next; /* reaper-private list of records to free */
	void *altstack;          /* our sigaltstack for this thread (owner) */
	bool crash_skip;         /* crash flush gave up waiting for it */
};
/* The lines the advancer writes every generation (the parity the owner
 * left, the snapshot) are not lines the owner writes on every call (the
 * seqlock, the parity it writes into, the region stack): a store by the
 * advancer there costs the owner a miss in the middle of its events
 * (BENCHMARKS.md, "writers during advances").  Allocated on a line
 * boundary (thread.c, record_new: GT_THREAD_ALIGN). */
#define GT_THREAD_ALIGN GT_LINE
_Static_assert(offsetof(struct gt_thread, tb) == GT_LINE && offsetof(struct gt_thread, tb[1]) == 2 * GT_LINE,
               "seq, tb[0], tb[1]: a line each");
_Static_assert(offsetof(struct gt_thread, snap_state) == 3 * GT_LINE && offsetof(struct gt_thread, tid) == 4 * GT_LINE,
               "the snapshot: a line of its own");
_Static_assert(_Alignof(struct gt_thread) <= 16, "no over-aligned member: struct gt_tbuf");

/* The calling thread's record for the current session, registering it on
 * first use; NULL if tracing is off or registration failed. */
GT_HIDDEN struct gt_thread *gt_thread_self_slow(void);
/* gt_thread_self_slow for a thread adopting an explicit goroutine (its
 * goid is goid, adopt its record, see gotrace_thread_adopt): NULL if
 * tracing is off, the session is not session, or out of memory. */
GT_HIDDEN struct gt_thread *gt_thread_register_as(uint64_t goid, uint64_t session, void *adopt);
/* Owner, in its critical section: take a name another thread gave it
 * (gotrace_thread_name_of) into t->name, if one is there. */
GT_HIDDEN void gt_thread_take_name(struct gt_thread *t);
extern __thread struct gt_thread *gt_tls_self __attribute__((tls_model("initial-exec")));
extern __thread uint64_t gt_tls_session __attribute__((tls_model("initial-exec")));

/* ------------------------------------------------------------ string table */
struct cds_lfht;
/*
 * One string table per generation parity.  The lfht maps text to id; each
 * String definition is written by the thread that won the insertion into its
 * own strings batch of that generation, so the flush needs no table walk.
 * next_id: atomic counter, ids are handed to threads in blocks.
 * Safety: threads touch table[g%2] only while their seqlock is odd for
 * generation g; the advancer empties it (and may replace ht, release
 * store; threads load it with acquire) only after every thread left g.
 * Nodes come from a generation arena, not the allocator (arena.h), and are
 * unmapped after a grace period, for read-side walkers (the argument is at
 * gt_strtab_reset).  The table never resizes itself (a fork hazard: see
 * strtab.c, st_buckets).  Lookups run under rcu_read_lock, the lfht API's
 * rule.
 */
struct gt_strtab {
	struct cds_lfht *ht;
	uint64_t next_id;
};

/* Id of text s (len bytes) in generation e->gen's table, writing its
 * definition if new.  0 if it cannot be written (memory bound). */
struct gt_emit;
GT_HIDDEN uint64_t gt_intern(struct gt_emit *e, const char *s, size_t len, bool must);
/* A fresh id with its definition (log messages: not interned). */
GT_HIDDEN uint64_t gt_string_fresh(struct gt_emit *e, const char *s, size_t len, bool must);
GT_HIDDEN int gt_strtab_init(struct gt_strtab *t);
GT_HIDDEN void gt_strtab_reset(struct gt_strtab *t);
GT_HIDDEN void gt_strtab_destroy(struct gt_strtab *t);

/* ------------------------------------------------------------------ state */
struct gt_state {
	/* Current generation, 0 while off.  Written by start, the advancer and
	 * stop (release); read by writers right after entering their seqlock.
	 *
	 * Generation numbers are never reused within a process: a session
	 * starts at the generation after the last one any earlier session used
	 * (gen_last + 1, as Go's runtime does), so a generation tag left in a
	 * record by an earlier session (a thread's status_gen, adv_status_gen,
	 * tb[].gen, a goroutine's traced[] and seq_gen, a region's id_gen, a
	 * name cache's gen, ...) can never equal a generation of this one and
	 * is never read as current.  Per-session state that is not a
	 * generation tag is reset when a thread registers (record_reset). */
	uint64_t gen;
	/* First generation of the session (start, before the flusher exists);
	 * the last generation any session used (the advancer's final advance,
	 * or the crash flush; read by the next start, after stop joined the
	 * flusher). */
	uint64_t gen_first, gen_last;
	/* Session number: incremented by start.  Read by threads to see whether
	 * their record belongs to this session. */
	uint64_t session;

	gotrace_options opt;     /* written by start, read-only while on */
	uint32_t chunk_cap;

	/* Full queues, indexed by generation parity: many enqueuers (any
	 * thread, wait-free), one dequeuer (the flusher, or the crash path
	 * once the flusher is excluded). */
	struct __cds_wfcq_head qhead[2];
	struct cds_wfcq_tail qtail[2];
	uint64_t buffered;       /* atomic: bytes queued and not yet written */
	uint64_t buffered_peak;  /* atomic max */
	/* The flusher is woken when buffered crosses wake_bytes (written by
	 * start, read-only while on; batch.c, try_handoff): a few chunks, not
	 * a quarter of max_buffered, so that written chunks come back to the
	 * pool (chunk.c) while they are still in the writers' caches instead
	 * of every chunk of the first quarter being freshly mapped and
	 * faulted in. */
	uint64_t wake_bytes;

	/* Thread registry (see struct gt_thread.node). */
	pthread_mutex_t reg_lock;
	struct cds_list_head threads;
	uint64_t next_goid, next_p;
	uint64_t filler_p;       /* idle P stated in otherwise empty generations
	                          * (Go 1.23 rejects a generation without a timed
	                          * event); GT_NO_ID until first needed */
	uint64_t *free_p;        /* P ids released, with the gen they were */
	uint64_t *free_p_gen;    /* released in (reuse after 2 more gens) */
	size_t free_p_n, free_p_cap;

	struct gt_strtab strtab[2];
	/* Fresh-id blocks per parity (atomic): taken by writers for log
	 * messages and call sites' literals (gt_string_fresh), peeked by
	 * site_define (event.c) to keep sites' ids to one byte; reset by the
	 * advancer together with the table. */
	uint64_t msg_next[2];
	uint64_t task_next;      /* atomic: end of the last block of task ids
	                          * handed to a thread (process-wide) */

	/* Output: written only by the flusher (or by stop after joining it).
	 * A new line: bytes_written changes with every write(2), and the
	 * writers' task_next above is read by every task end.  fd: set by
	 * start and stop; while a session runs, changed only by
	 * gt_out_fd_move (CAS, outfd.h), read atomically by the flusher. */
	_Alignas(GT_LINE) int fd;
	int own_fd;
	uint64_t bytes_written;  /* atomic */
	uint64_t gens_written;   /* atomic */
	int out_err;             /* atomic: gotrace_err of a failed output */

	/* Flusher thread. */
	pthread_t flusher;
	bool flusher_running;
	uint32_t wake;           /* futex word: bumped to wake the flusher */
	int stopping;            /* atomic */
	uint64_t flush_req, flush_done; /* atomic: explicit flush requests */

	uint64_t dropped_total;  /* atomic */
	uint64_t threads_seen;   /* atomic */

	/* Crash flush (crash.c).  crashing: set once by the crashing thread;
	 * the flusher polls it at its park points.  crash_tid: that thread,
	 * which the flusher must not wait for.  flusher_busy: 1 while the
	 * flusher works; 0 while it sleeps or after it parked. */
	int crashing;
	int crash_tid;
	int flusher_busy;

	/* Flight recorder (flight.c).  flight: 1 for a gotrace_start_flight
	 * session (written by start before the flusher exists, read-only
	 * while on; cleared by stop after the flusher is joined, with an
	 * atomic store that gotrace_flight_write loads).  flight_sig_req: atomic, set to 1 by the flight signal's
	 * handler, taken (exchanged to 0) by the flusher, which then writes
	 * the recording to flight_path (start's copy: written by start,
	 * read-only while on, also read by the crash flush). */
	int flight;
	int flight_sig_req;
	char flight_path[4096];
	char err[256];           /* last error text (start lock or flusher) */
	char note[512];          /* what start chose instead of what was asked
	                          * (gotrace_start_notes): written under the
	                          * start lock before start returns, read after */
};
extern struct gt_state gt_session;
_Static_assert(_Alignof(struct gt_state) == GT_LINE && offsetof(struct gt_state, opt) < GT_LINE,
               "gen and session: the first field of a line no other thread writes");
/* The registry walks (gt_reg_for_each, liburcu's list macros) compute a
 * pseudo-record from the list head: it must be aligned for struct gt_thread
 * (UBSan), which the fields before threads decide. */
_Static_assert((offsetof(struct gt_state, threads) - offsetof(struct gt_thread, node)) % _Alignof(struct gt_thread) == 0,
               "the registry head's pseudo-record is aligned");

/* Test points (tests/unit/test_gword.c): a test sets gt_test_pause to hold
 * a thread inside its critical section at one of these points, where
 * generations overlap (the word rule above).  NULL otherwise: a load and a
 * branch on the scheduling calls, none on the annotation fast path. */
enum { GT_TP_UNBLOCK = 1, GT_TP_RESUME = 2, GT_TP_TAKE = 3 };
extern void (*gt_test_pause)(int point);
#define GT_TEST_POINT(pt)                                                                  \
	do {                                                                               \
		void (*gt_tp_)(int) = __atomic_load_n(&gt_test_pause, __ATOMIC_RELAXED);    \
		if (unlikely(gt_tp_ != NULL))                                              \
			gt_tp_(pt);                                                        \
	} while (0)

/* The emit context: one critical section of one thread. */
struct gt_emit {
	struct gt_thread *t;
	struct gt_tbuf *tb;
	uint64_t gen;
	uint64_t now;
};

static inline void gt_emit_end(struct gt_emit *e) { gt_seq_leave(&e->t->seq); }
/* Room for need bytes in the event chunk; NULL if the event is dropped. */
GT_HIDDEN uint8_t *gt_ev_reserve_slow(struct gt_emit *e, uint32_t need, bool must);
static inline uint8_t *gt_ev_reserve(struct gt_emit *e, uint32_t need, bool must)
{
	struct gt_chunk *c = e->tb->ev;
	if (likely(c != NULL && c->len + need <= c->limit))
		return c->data + c->len;
	return gt_ev_reserve_slow(e, need, must);
}
/* Start an event at p: type byte + dt; returns the end. */
static inline uint8_t *gt_ev_start(struct gt_emit *e, uint8_t *p, uint8_t type)
{
	struct gt_chunk *c = e->tb->ev;
	/* No branch: two events of a thread are about as often in one tick
	 * (64 cycles) as in two, which no predictor guesses; the header's
	 * line is written anyway (gt_ev_commit). */
	uint64_t last = c->last_ts;
	uint64_t dt = e->now > last ? e->now - last : 0;
	/* Opaque to the compiler, which would otherwise branch on dt == 0 to
	 * fold the varint's first byte: the same unpredictable branch. */
	__asm__("" : "+r"(dt));
	c->last_ts = last + dt; /* the later of the two */
	*p++ = type;
	return gt_put_uvarint(p, dt);
}
static inline void gt_ev_commit(struct gt_emit *e, uint8_t *end)
{
	struct gt_chunk *c = e->tb->ev;
	c->len = (uint32_t)(end - c->data);
}
GT_HIDDEN void gt_count_drop(struct gt_emit *e);

/* Strings-batch room (must: may use the chunk's reserve). */
GT_HIDDEN uint8_t *gt_str_reserve(struct gt_emit *e, uint32_t need, bool must);

/* Output (flusher context). */
GT_HIDDEN void gt_out_init(int fd);
GT_HIDDEN int gt_out_write(const void *buf, size_t len);
GT_HIDDEN void gt_out_drain(uint64_t gen);
GT_HIDDEN uint64_t gt_out_drain_some(uint64_t gen, uint64_t limit);
/* Flight recorder ring (flight.c; the rules are there).  Flusher
 * context, except write_fd (any thread: gotrace_flight_write), the crash
 * writers (crash flush, flusher parked; AS-safe) and the statistics. */
GT_HIDDEN int gt_flight_init(uint64_t ring_cap, uint64_t min_age_ns);
GT_HIDDEN uint64_t gt_flight_cap(void);
GT_HIDDEN void gt_flight_append(const struct gt_chunk *c);
GT_HIDDEN void gt_flight_seal(uint64_t gen);
GT_HIDDEN uint64_t gt_flight_open_bytes(void);
GT_HIDDEN void gt_flight_pin(uint64_t t_req);
GT_HIDDEN int gt_flight_write_fd(int fd, uint64_t *bytes, uint64_t *ngens);
GT_HIDDEN bool gt_flight_crash_write_sealed(bool (*wr)(const void *, size_t));
GT_HIDDEN bool gt_flight_crash_write_open(uint64_t gen, bool (*wr)(const void *, size_t));
GT_HIDDEN void gt_flight_destroy(void);
GT_HIDDEN void gt_flight_forget(void);
GT_HIDDEN void gt_flight_stats(uint64_t *held, uint64_t *gens, uint64_t *data, uint64_t *lost);
GT_HIDDEN void gt_set_error(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
GT_HIDDEN void gt_wake_flusher(void);
/* Flusher only, inside an advance, before long allocating work: waits
 * while a fork is being made (state.c; gt_fork_park is set by the session
 * layer's fork handlers, gt_fork_midway says the flusher waits there). */
GT_HIDDEN void gt_flusher_fork_point(void);
GT_HIDDEN extern int gt_fork_park;
GT_HIDDEN extern int gt_fork_midway;

/* Error text for a failed start (start lock held), kept in
 * gt_last_error_text (state.c) for gotrace_last_error(). */
extern char gt_last_error_text[256];
GT_HIDDEN void gt_set_start_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Thread hooks: what other layers do when a thread joins or leaves the
 * registry (thread.c calls them; the session layer installs them, see
 * src/session/sources.c, so that the registry names no layer above it).
 *   registering: reg_lock held, before the record is published;
 *   registered:  after publication, no lock held, outside any critical
 *                section (may allocate and lock);
 *   exiting:     first thing of the thread's exit (its key destructor);
 *   left:        after the thread left its last critical section, before
 *                its record is unlinked or freed;
 *   library_thread: on a thread of the library's own (the flusher, the
 *                line resolver), at each iteration of its loop (the CPU
 *                sampler's own_thread: SIGPROF unblocked while it runs).
 * Written once by gt_thread_hooks_set (session start, before tracing is
 * on; release), read by registering and exiting threads (acquire); a NULL
 * table or member: nothing to do. */
struct gt_thread_hooks {
	void (*registering)(struct gt_thread *t);
	void (*registered)(struct gt_thread *t);
	void (*exiting)(struct gt_thread *t);
	void (*left)(struct gt_thread *t);
	void (*library_thread)(void);
};
GT_HIDDEN void gt_thread_hooks_set(const struct gt_thread_hooks *h);
GT_HIDDEN const struct gt_thread_hooks *gt_thread_hooks_get(void);
/* The library_thread hook, if installed. */
static inline void gt_library_thread_hook(void)
{
	const struct gt_thread_hooks *h = gt_thread_hooks_get();
	if (h && h->library_thread)
		h->library_thread();
}

static inline bool gt_crashing(void) { return __atomic_load_n(&gt_session.crashing, __ATOMIC_SEQ_CST); }

/* The advancer's own writer state (state.c): the strings of a
 * generation's tables.  Flusher-private (the crash path uses it only once
 * the flusher is excluded). */
extern struct gt_thread gt_advancer;

/* Is t registered in this session?  Acquire pairs with the registration's
 * release: the record's identity fields are then visible. */
static inline bool gt_thread_current(struct gt_thread *t)
{
	return __atomic_load_n(&t->session, __ATOMIC_ACQUIRE) == gt_session.session;
}

/* Did the thread write its status in g?  Read from the parity slot of g,
 * which the thread cannot touch again before g+2. */
static inline bool gt_stated_in(struct gt_thread *t, uint64_t g)
{
	return (t->tb[g & 1].gen == g && t->tb[g & 1].stated) || t->adv_status_gen == g;
}

#endif
