/*
 * gtread.h: a small reader of Go execution traces in the "go 1.22" / "go
 * 1.23" format (the format libgotrace writes), independent of the emitter.
 * The public API of src/read (includes only the C library); implemented by
 * reader.c, generation/ (table lookups), wire/ (event names, quoting) and
 * consumers/ (dump, salvage, stats, profile).
 *
 * What it checks, per generation: the framing (batch headers, sizes <= 64
 * KiB, generation numbers 1 apart, contiguous generations), exactly one
 * Frequency batch, the string and stack tables (IDs, size limits,
 * duplicates, frame strings), every event of every event batch (known and
 * timed types, complete arguments) and every reference from an event to the
 * string and stack tables, CPU samples included -- and, unless asked not
 * to (gtr_options.wire_order), replays Go's ordering of events: the
 * scheduler state machine of Go's reader (sequence numbers, goroutine and
 * proc states, regions, tasks, GC), and the checks of Go's validator
 * (testtrace) on every delivered event, so that a trace it accepts is one
 * Go's reader and validator accept, generation by generation.
 *
 * Broken-tail policy, as Go's reader after the fixes for Go issues 55160 and
 * 71615:
 *  - an error met while reading a batch after at least one batch of the
 *    current generation has been read (the look-ahead for the first batch of
 *    the next generation) is held back: the current generation is delivered
 *    completely first, followed by a Sync, and then the error is returned;
 *  - an error inside the current generation (bad tables, missing frequency,
 *    bad events or references, events the ordering cannot apply) is
 *    reported first; as in Go, events of that generation before the
 *    problem may have been delivered, but no Sync follows them;
 *  - so a consumer always sees a Sync after the last complete generation,
 *    whatever broke, and errors are sticky.
 *
 * Error messages are Go 1.23's, word for word, and the checks happen in
 * Go's order, so that for any input the sequence of generations, events,
 * Syncs and the final error is the one Go 1.23's reader produces (the tests
 * compare them on every prefix and on random corruptions of real traces).
 * Deliberate differences: three inputs Go's reader takes for a clean end of
 * the trace (an io.EOF surfacing from a table batch or a lone
 * ExperimentalBatch byte) are errors here (go_sees_eof); a Frequency batch
 * with trailing bytes and an incomplete stack frame are rejected as newer
 * Go does (go123_accepts); inputs on which Go panics (a CPU sample naming an
 * unknown stack, ...) are errors (go_panics); with equal timestamps Go 1.23
 * breaks ties in map order (it varies between runs), which this reader
 * does not imitate.
 *
 * Memory: the input is one contiguous buffer owned by the caller (a file
 * mapped in memory, say); nothing is copied out of it.  The reader holds the
 * index of one generation at a time (batches, string/stack/frame tables,
 * CPU samples) and the scheduler state (goroutines, procs, threads, open
 * regions and tasks, names interned once), all bounded by what the input
 * actually contains, never by sizes or counts it merely claims.  Not
 * thread-safe; use one reader per thread.
 */
#ifndef GTREAD_H
#define GTREAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define GTR_MAX_BATCH_SIZE 65536u /* payload bytes */
#define GTR_MAX_STRING_SIZE 1024u
#define GTR_MAX_FRAMES 128u
#define GTR_NONE UINT64_MAX /* NoThread, NoProc, NoGoroutine */

/* Return codes of the iteration functions. */
enum gtr_rc {
	GTR_OK = 0,
	GTR_END = 1,  /* the trace ended cleanly */
	GTR_ERR = -1, /* see gtr_reader_error(); sticky */
};

enum gtr_errkind {
	GTR_ENONE = 0,
	GTR_ENOTTRACE, /* the header is not "go 1.N trace\0\0\0" */
	GTR_EVERSION,  /* a version this reader does not read (not 22/23) */
	GTR_EFRAMING,  /* batch header, size, EOF, generation numbers */
	GTR_ETABLE,    /* strings/stacks/samples/frequency batches, missing frequency */
	GTR_EEVENT,    /* an event in an event batch that cannot be decoded */
	GTR_EREF,      /* a reference to a string or stack the generation lacks */
	GTR_EEMPTY,    /* a generation with no event at all (Go 1.23 rejects it) */
	GTR_EORDER,    /* events Go's scheduler model cannot put in any order */
	GTR_EVALID,    /* an event Go's validator (testtrace) rejects */
	GTR_ENOMEM,
	GTR_EIO,       /* used by the tools: reading or writing a file */
};

struct gtr_error {
	enum gtr_errkind kind;
	uint64_t gen;    /* generation being read, 0 if not known */
	uint64_t offset; /* byte offset in the input of what was wrong */
	/* Met while looking for the end of the previous generation (read error
	 * on a batch after the generation's first): reported after it. */
	bool deferred;
	/* Go's reader takes this problem for a clean end of the trace (it
	 * returns io.EOF from inside a table batch, or a lone ExperimentalBatch
	 * byte at the end of the file): it silently stops there. */
	bool go_sees_eof;
	/* Go 1.23 accepts this, newer Go rejects it (a Frequency batch
	 * holding more than its one event; a stack frame, other than the
	 * first, without function, file, PC or line, which only newer
	 * validators check): rejected here so that what this reader accepts,
	 * both accept. */
	bool go123_accepts;
	/* Go's reader or validator panics on this (its message is the
	 * panic's): a CPU sample or stop-the-world naming a missing ID, a
	 * status value past Go's tables. */
	bool go_panics;
	/* The batch that failed to read was known (its gen field was read) to
	 * belong to the generation just delivered: that generation is certainly
	 * incomplete even though Go's reader delivers it. */
	bool cuts_previous;
	char msg[6144];
};

/* One batch as found in the file. */
enum gtr_batch_kind {
	GTR_BATCH_EVENTS = 0,
	GTR_BATCH_STRINGS,
	GTR_BATCH_STACKS,
	GTR_BATCH_CPUSAMPLES,
	GTR_BATCH_FREQUENCY,
	GTR_BATCH_EXPERIMENTAL,
};

struct gtr_batch {
	uint64_t gen, m, time;
	uint64_t offset;      /* of the batch's first (type) byte */
	uint64_t data_offset; /* of the payload */
	uint32_t size;        /* payload bytes */
	uint8_t kind;         /* enum gtr_batch_kind */
	uint8_t exp;          /* experiment of an ExperimentalBatch */
};

struct gtr_frame {
	uint64_t pc, func, file, line; /* func/file: string IDs */
};

/* A complete, checked generation.  Valid until the next call on its reader. */
struct gtr_generation {
	uint64_t gen;
	uint64_t begin, end; /* [begin, end): its batches' bytes in the input */
	uint64_t freq;       /* timestamp ticks per second */
	double ns_per_tick;  /* as Go computes it: 1 / (freq / 1e9) */
	size_t nbatches;
	const struct gtr_batch *batches; /* file order */
	size_t nevents;   /* events (Go's count; wire order: timed events)
			   * delivered so far: final once its Sync is out */
	size_t nsamples;  /* CPU samples */
	size_t nstrings;  /* string table entries */
	size_t nstacks;   /* stack table entries */
	size_t nframes;   /* frames of all stacks */
	size_t string_bytes; /* bytes of all strings */
	size_t nthreads;  /* distinct M of event batches */
	uint64_t min_time, max_time; /* smallest/largest raw timestamp seen */
	const void *priv;
};

/* The pseudo event type of a Sync (0 is never a valid wire type). */
#define GTR_EV_SYNC 0u
#define GTR_EV_CPUSAMPLE 7u

/* One event.  By default events come as Go's reader delivers them: each
 * generation's events in Go's order (timestamps, with the scheduler state
 * machine deciding which thread's next event may come first), CPU samples
 * merged by time, times made strictly increasing, then a Sync.  Events the
 * ordering synthesises (GoSwitch becomes GoSwitch, GoBlock/GoDestroy and
 * GoStart; GoDestroySyscall on a thread with a P adds a ProcSteal) have size
 * 0.  With gtr_options.wire_order: file order (batch by batch), no
 * scheduler checks, m/p/g of an event = its batch's thread/none/none. */
struct gtr_event {
	uint8_t type;  /* wire type, GTR_EV_CPUSAMPLE, or GTR_EV_SYNC */
	uint8_t nargs; /* arguments after dt of the wire event (see args) */
	uint64_t gen;
	uint64_t m, p, g; /* scheduling context as Go sees it; GTR_NONE: none */
	uint64_t thread;  /* thread (M) of the batch the event was read from */
	uint64_t ts;      /* absolute timestamp in ticks */
	int64_t time_ns;  /* Go's time: converted, strictly increasing (wire
			   * order: converted only) */
	/* Arguments after dt in wire order, then what Go's ordering adds (its
	 * "extra" slots: old states, stolen-from status, task parent).  A CPU
	 * sample: m, p, g (0 = none), stack. */
	uint64_t args[5];
	uint64_t offset; /* in the input */
	uint32_t size;   /* encoded bytes, 0 for synthesised events and Syncs */
};

struct gtr_reader;

struct gtr_options {
	/* Skip the checks of Go's validator (testtrace.Validator), which by
	 * default run on every delivered event on top of the reader's: the
	 * state transitions of goroutines and procs and the threads they run
	 * on, special ranges, task IDs and types, labels.  (Go's own tools run
	 * the reader alone; its tests and gotrace's judges run both.) */
	bool skip_validation;
	/* Deliver events in file order and skip Go's ordering (scheduler
	 * state machine) checks: a generation is then checked for framing,
	 * tables, event encoding and references only. */
	bool wire_order;
	/* "generations out of order" / "invalid generation number 0" met after
	 * a generation's first batch is fatal for Go's reader (the generation
	 * is not delivered).  With this set it is treated like a read error
	 * there: deferred, the generation delivered first.  Used by salvage. */
	bool lenient_gen_order;
};

/* Opens a reader over data[0..len) (not copied; keep it alive).  Returns
 * NULL and fills *err (may be NULL) if the header is bad or the version is
 * unsupported, or on allocation failure. */
struct gtr_reader *gtr_open(const void *data, size_t len, const struct gtr_options *opt,
			    struct gtr_error *err);
void gtr_close(struct gtr_reader *r);

unsigned gtr_version(const struct gtr_reader *r);     /* 22 or 23 */
size_t gtr_header_len(const struct gtr_reader *r);    /* usually 16 */

/* The next complete generation -- all of its events read and checked --
 * or GTR_END or GTR_ERR.  (If gtr_next_event has delivered part of a
 * generation, that one is completed and returned.) */
int gtr_next_generation(struct gtr_reader *r, const struct gtr_generation **out);

/* Next event: each generation's events, then a Sync, ...; then GTR_END or
 * GTR_ERR.  *gen (may be NULL) is set to the event's generation. */
int gtr_next_event(struct gtr_reader *r, struct gtr_event *ev, const struct gtr_generation **gen);

/* The error after GTR_ERR (kind GTR_ENONE before). */
const struct gtr_error *gtr_reader_error(const struct gtr_reader *r);

/* Table lookups in a generation.  String 0 and stack 0 always exist (empty).
 * Return false if the ID is not defined. */
bool gtr_string(const struct gtr_generation *g, uint64_t id, const char **s, size_t *len);
bool gtr_stack(const struct gtr_generation *g, uint64_t id, const struct gtr_frame **frames,
	       size_t *nframes);

/* Name of a wire type as Go spells it ("Sync" for GTR_EV_SYNC), NULL if
 * there is no such type. */
const char *gtr_event_name(unsigned type);

/* Output sink for dump: returns 0 on success. */
typedef int (*gtr_write_fn)(void *ctx, const void *buf, size_t len);

/*
 * Dump: the whole input as text, one event per line, byte for byte what Go
 * 1.23's `gotraceraw bytes2text` prints (its "raw" reading: the file is one
 * flat stream of events, batch headers included, without any checking of
 * batches or generations).  Returns GTR_END when everything was printed,
 * GTR_ERR with *err filled when the input stops making sense (what was
 * printed up to there is what gotraceraw prints before failing), or when
 * the sink fails (kind GTR_EIO).
 */
int gtr_dump(const void *data, size_t len, gtr_write_fn write, void *ctx, struct gtr_error *err);

/* Go's strconv.Quote of s into out (capacity >= 4 * len + 2); returns the
 * length written. */
size_t gtr_go_quote(const uint8_t *s, size_t len, char *out);

/* Salvage: the longest prefix of the input made of complete generations. */
struct gtr_salvage {
	size_t keep_len;        /* bytes of the input to keep (header included); 0: nothing */
	size_t gens_kept;
	uint64_t first_gen, last_gen;
	size_t events_kept;     /* timed events + CPU samples in the kept generations */
	size_t dropped_len;     /* len - keep_len */
	size_t gens_dropped;    /* generations that were read but had to be dropped */
	struct gtr_error why;   /* why the rest was dropped (kind GTR_ENONE: nothing was) */
};

/* Returns GTR_OK if at least one generation is kept, GTR_ERR otherwise
 * (why says why: not a trace, unsupported version, first generation
 * broken).  The salvaged trace is data[0..keep_len). */
int gtr_salvage_plan(const void *data, size_t len, struct gtr_salvage *out);

/* Statistics of a whole trace (what `gotrace-read stats` prints). */
#define GTR_NTYPES 256
struct gtr_thread_stats {
	uint64_t m;
	uint64_t events, bytes, batches;
};
struct gtr_stats {
	unsigned version;
	uint64_t file_bytes;
	uint64_t gens;              /* complete generations read */
	uint64_t first_gen, last_gen;
	uint64_t batches, event_batches;
	uint64_t events;            /* events as Go delivers them (GoSwitch: 3) */
	uint64_t event_bytes;       /* their encoded bytes */
	uint64_t samples;           /* CPU samples */
	uint64_t samples_no_stack;  /* CPU samples with stack 0 */
	uint64_t strings, string_bytes, stacks, frames;
	uint64_t table_bytes;       /* bytes of strings/stacks/frequency batches */
	uint64_t header_bytes;      /* batch headers */
	uint64_t count[GTR_NTYPES]; /* per wire type; [7] = CPU samples */
	uint64_t bytes[GTR_NTYPES];
	int64_t first_ns, last_ns;  /* time span of the events (Go's conversion) */
	size_t nthreads;
	struct gtr_thread_stats *threads; /* sorted by m; free with gtr_stats_free */
	bool ended_with_error;
	struct gtr_error error;
};

/* Reads everything; returns GTR_END (clean) or GTR_ERR (error in
 * st->error).  Counts cover complete generations only. */
int gtr_stats_compute(const void *data, size_t len, struct gtr_stats *st);
void gtr_stats_free(struct gtr_stats *st);

/*
 * CPU profile of a trace (what `gotrace-read pprof` writes): the CPU
 * samples of the complete generations that pass a filter, aggregated by
 * stack and symbolised from the trace's own stack tables (function, file,
 * line of every frame; strings are interned across generations, so a
 * function keeps one entry however many generations name it).  Encoding
 * (profile.proto, gzip) is the tool's business: this library has no
 * dependency.
 *
 * The filters (all that are set must hold):
 *  - a time window [from_ns, to_ns] measured from the trace's first event;
 *  - the sample's thread (M) or goroutine (G).  A sample's goroutine is
 *    the one it names, unless the events show that one running nowhere
 *    while another runs on the sample's thread: then that other (gotrace's
 *    sampler names the thread's own goroutine while an explicit goroutine
 *    runs on the thread; Go's runtime names the running one);
 *  - the goroutine's entry function, named as Go's goroutine analysis
 *    names it: the root (outermost) frame of the first stack seen on one of
 *    that goroutine's state transitions (GoCreate's start stack,
 *    GoStatusStack, GoStop/GoBlock/GoSyscallBegin, GoUnblock);
 *  - a region or task: the sample's goroutine had a region of that name
 *    open (at any depth) at the sample's time, or one belonging to that
 *    task (by id or name) or to a task below it.  Regions are tracked per
 *    goroutine from UserRegionBegin/End, task names and parents from
 *    UserTaskBegin, across generations.
 */
struct gtr_prof_filter {
	int64_t from_ns, to_ns; /* 0 and INT64_MAX: the whole trace */
	uint64_t thread;        /* GTR_NONE: any */
	uint64_t goroutine;     /* GTR_NONE: any */
	const char *entry;      /* NULL: any */
	const char *region;     /* NULL: any */
	const char *task;       /* NULL: any; decimal: an id (or a name) */
};
void gtr_prof_filter_init(struct gtr_prof_filter *f);

/* Indices: strings[0] is "" (as pprof wants); func and loc indices start at
 * 0 (pprof IDs are index + 1). */
struct gtr_prof_func {
	uint32_t name, file; /* string indices */
};
struct gtr_prof_loc {
	uint64_t pc, line;
	uint32_t func;
};
struct gtr_prof_sample {
	size_t first;   /* its locations: stack_locs[first .. first + n), leaf first */
	uint32_t n;
	uint64_t count; /* 0: only seen in a generation that was dropped */
};
struct gtr_profile {
	size_t nstrings;
	const char *const *strings; /* NUL-terminated (a trace's string may hold a NUL:
				     * then the length below counts) */
	const uint32_t *string_len;
	size_t nfuncs;
	const struct gtr_prof_func *funcs;
	size_t nlocs;
	const struct gtr_prof_loc *locs;
	size_t nsamples;
	const struct gtr_prof_sample *samples;
	const uint32_t *stack_locs;
	uint64_t total_samples;   /* CPU samples of the complete generations */
	uint64_t matched_samples; /* of which passed the filter (sum of the counts) */
	uint64_t intervals;       /* intervals that period_ns is estimated from */
	/* The sampling period as the samples show it: the 10th percentile of
	 * the intervals between successive samples of one thread.  A thread
	 * that stays on the CPU is sampled once per period; one that shares a
	 * CPU or sleeps shows longer intervals (on a loaded machine the median
	 * is 2-3 periods), never shorter ones but for jitter.  0 if no thread
	 * has two samples. */
	int64_t period_ns;
	int64_t first_ns, last_ns; /* time of the first and last event (Go's conversion) */
	bool ended_with_error;
	struct gtr_error error;
	void *priv;
};

/* Reads everything; returns GTR_END (clean) or GTR_ERR (error in
 * p->error; what the complete generations before it held is in *p).
 * Free with gtr_profile_free in both cases. */
int gtr_profile_compute(const void *data, size_t len, const struct gtr_prof_filter *f,
			struct gtr_profile *p);
void gtr_profile_free(struct gtr_profile *p);

#ifdef __cplusplus
}
#endif
#endif
