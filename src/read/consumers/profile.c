/*
 * consumers/profile.c: the CPU profile of a trace (gotrace-read pprof), see
 * gtr_profile_compute in include/gtread.h.  Only complete generations
 * count: a generation's matched samples are held until its Sync and
 * dropped if it never comes, as stats.c does.
 *
 * Calls the public reader API (include/gtread.h) and base/ only.
 */
#include "base/error.h"
#include "base/grow.h"
#include "base/map.h"
#include "gtread.h"

#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ interning */

/* A set of byte strings, each with a dense index: the global tables of the
 * profile (strings, functions, locations, stacks) are built by interning
 * what each generation's tables say, so that equal things from different
 * generations share one index.  The base map is keyed by a 64-bit hash;
 * on a hash collision (a different blob under the same key) the key is
 * stepped to the next one, so the set stays exact. */
struct blobset {
	struct gtr_map map;
	uint8_t *bytes;
	size_t nbytes, capbytes;
	size_t *off;
	uint32_t *len;
	size_t n, cap, caplen;
};

static uint64_t hash_bytes(const void *p, size_t len)
{
	const uint8_t *b = p;
	uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a; the map mixes in its own seed */
	for (size_t i = 0; i < len; i++)
		h = (h ^ b[i]) * 0x100000001b3ULL;
	return h;
}

/* Index of blob p[0..len) in s (added if new; a NUL is stored after it so
 * that strings can be used as C strings).  Returns false on allocation
 * failure. */
static bool blob_intern(struct blobset *s, const void *p, size_t len, uint32_t *idx)
{
	uint64_t h = hash_bytes(p, len);
	for (;;) {
		const uint32_t *v = gtr_map_get(&s->map, h);
		if (!v)
			break;
		if (s->len[*v] == len && !memcmp(s->bytes + s->off[*v], p, len)) {
			*idx = *v;
			return true;
		}
		h = h * 0x9E3779B97F4A7C15ULL + 1;
	}
	if (!gtr_grow((void **)&s->bytes, &s->capbytes, s->nbytes, len + 1, 1) ||
	    !gtr_grow((void **)&s->off, &s->cap, s->n, 1, sizeof *s->off) ||
	    !gtr_grow((void **)&s->len, &s->caplen, s->n, 1, sizeof *s->len))
		return false;
	bool added;
	uint32_t *slot = gtr_map_put(&s->map, h, &added);
	if (!slot)
		return false;
	if (len)
		memcpy(s->bytes + s->nbytes, p, len);
	s->bytes[s->nbytes + len] = 0;
	s->off[s->n] = s->nbytes;
	s->len[s->n] = (uint32_t)len;
	s->nbytes += len + 1;
	*slot = (uint32_t)s->n;
	*idx = (uint32_t)s->n++;
	return true;
}

static void blob_free(struct blobset *s)
{
	gtr_map_free(&s->map);
	free(s->bytes);
	free(s->off);
	free(s->len);
	memset(s, 0, sizeof *s);
}

/* ------------------------------------------------------------ state */

#define NO_STRING UINT32_MAX

struct region {
	uint32_t name; /* global string index */
	uint64_t task;
};

/* What the filters need to know of one goroutine. */
struct gor {
	uint32_t entry; /* string index of its entry function, NO_STRING: not known yet */
	uint64_t on_m;  /* the thread it runs on (Running or in a syscall), GTR_NONE: none */
	struct region *reg;
	size_t nreg, capreg;
};

struct task {
	uint32_t name;
	uint64_t parent;
};

struct prof {
	struct blobset strs, funcs, stacks;
	/* Locations by PC alone (0: "(no stack)"), their line and function
	 * those of the PC's latest generation: a frame whose source line was
	 * not known yet when an early generation was written (the emitter's
	 * line resolver answers later; meanwhile the file is the module's
	 * path) would otherwise split its function in two.  Symbolisation
	 * only improves during a session (the crash flush reuses the cache). */
	struct blobset locs;
	uint64_t *loc_line;
	uint32_t *loc_func;
	size_t caplocl, caplocf;
	struct gtr_prof_func *fn; /* decoded copies of the funcs/locs sets, built at the end */
	struct gtr_prof_loc *lc;
	const char **strp;
	struct gtr_prof_sample *smp;
	size_t nsmp, capsmp;
	uint32_t *sloc;
	size_t nsloc, capsloc;

	struct gtr_map gmap; /* goroutine -> index in gs */
	struct gor *gs;
	size_t ngs, capgs;
	struct gtr_map tmap; /* task id -> index in ts */
	struct task *ts;
	size_t nts, capts;

	struct gtr_map genstk; /* this generation's stack id -> sample index + 1 */
	uint32_t *pending;     /* matched samples of this generation (sample indices) */
	size_t npend, cappend;

	struct gtr_map runm; /* thread -> index in run: the goroutine it runs (GTR_NONE: none) */
	uint64_t *run;
	size_t nrun, caprun;

	struct gtr_map lastm; /* thread -> index in lastt */
	int64_t *lastt;
	size_t nlast, caplast;
	int64_t *iv; /* intervals between successive samples of a thread */
	size_t niv, capiv;

	/* The filter, resolved to string indices. */
	uint32_t f_entry, f_region, f_task;
	bool f_task_num;
	uint64_t f_task_id;
};

static bool intern_str(struct prof *P, const char *s, size_t len, uint32_t *idx)
{
	return blob_intern(&P->strs, s, len, idx);
}

static bool gen_str(struct prof *P, const struct gtr_generation *g, uint64_t id, uint32_t *idx)
{
	const char *s;
	size_t len;
	if (!gtr_string(g, id, &s, &len)) {
		s = "";
		len = 0;
	}
	return intern_str(P, s, len, idx);
}

static struct gor *gor_of(struct prof *P, uint64_t gid)
{
	bool added;
	uint32_t *slot = gtr_map_put(&P->gmap, gid, &added);
	if (!slot)
		return NULL;
	if (added) {
		if (!gtr_grow((void **)&P->gs, &P->capgs, P->ngs, 1, sizeof *P->gs))
			return NULL;
		*slot = (uint32_t)P->ngs;
		memset(&P->gs[P->ngs], 0, sizeof P->gs[0]);
		P->gs[P->ngs].on_m = GTR_NONE;
		P->gs[P->ngs++].entry = NO_STRING;
	}
	return &P->gs[*slot];
}

/* The goroutine's entry function: Go's goroutine summary names a goroutine
 * after the root frame of the first non-empty stack of one of its state
 * transitions, and go tool trace groups goroutines by that name. */
static bool see_transition_stack(struct prof *P, const struct gtr_generation *g, uint64_t gid,
				 uint64_t stack)
{
	if (gid == GTR_NONE || gid == 0 || stack == 0)
		return true;
	struct gor *o = gor_of(P, gid);
	if (!o)
		return false;
	if (o->entry != NO_STRING)
		return true;
	const struct gtr_frame *fr;
	size_t n;
	if (!gtr_stack(g, stack, &fr, &n) || n == 0)
		return true;
	return gen_str(P, g, fr[n - 1].func, &o->entry);
}

/* Goroutine gid (GTR_NONE: none) runs on thread m from now on; the
 * goroutine that ran there before, if another, no longer does. */
static bool set_running(struct prof *P, uint64_t m, uint64_t gid)
{
	if (m == GTR_NONE)
		return true;
	bool added;
	uint32_t *slot = gtr_map_put(&P->runm, m, &added);
	if (!slot)
		return false;
	if (added) {
		if (!gtr_grow((void **)&P->run, &P->caprun, P->nrun, 1, sizeof *P->run))
			return false;
		*slot = (uint32_t)P->nrun;
		P->run[P->nrun++] = GTR_NONE;
	}
	uint64_t old = P->run[*slot];
	if (old != GTR_NONE && old != gid) {
		const uint32_t *gi = gtr_map_get(&P->gmap, old);
		if (gi && P->gs[*gi].on_m == m)
			P->gs[*gi].on_m = GTR_NONE;
	}
	P->run[*slot] = gid;
	if (gid != GTR_NONE) {
		struct gor *o = gor_of(P, gid);
		if (!o)
			return false;
		o->on_m = m;
	}
	return true;
}

/* Which goroutine runs on which thread, after an event (an event's g is
 * the one running when it happened; Go's wire statuses: 2 Running, 3
 * Syscall). */
static bool track_running(struct prof *P, const struct gtr_event *ev)
{
	const uint64_t *a = ev->args;
	switch (ev->type) {
	case 16: /* GoStart: g */
		return set_running(P, ev->m, a[0]);
	case 17: /* GoDestroy */
	case 18: /* GoDestroySyscall */
	case 19: /* GoStop */
	case 20: /* GoBlock */
	case 24: /* GoSyscallEndBlocked: Runnable, off the thread */
		return set_running(P, ev->m, GTR_NONE);
	case 25: /* GoStatus: g, m, status */
	case 48: /* GoStatusStack */
		if (a[2] == 2 || a[2] == 3)
			return set_running(P, a[1], a[0]);
		{
			const uint32_t *gi = gtr_map_get(&P->gmap, a[0]);
			struct gor *o = gi ? &P->gs[*gi] : NULL;
			if (o && o->on_m != GTR_NONE) {
				const uint32_t *ri = gtr_map_get(&P->runm, o->on_m);
				if (ri && P->run[*ri] == a[0])
					P->run[*ri] = GTR_NONE;
				o->on_m = GTR_NONE;
			}
		}
		return true;
	default:
		if (ev->g != GTR_NONE && ev->m != GTR_NONE)
			return set_running(P, ev->m, ev->g);
		return true;
	}
}

/* A task matches the --task filter if it, or a task above it, has that id
 * or name.  The walk up is bounded: parents come from the input. */
static bool task_matches(const struct prof *P, uint64_t id)
{
	for (int depth = 0; depth < 256 && id != 0; depth++) {
		if (P->f_task_num && id == P->f_task_id)
			return true;
		const uint32_t *t = gtr_map_get(&P->tmap, id);
		if (!t)
			return false;
		if (P->ts[*t].name == P->f_task)
			return true;
		id = P->ts[*t].parent;
	}
	return false;
}

/* The goroutine a sample belongs to: the one it names, unless the events
 * show that one not running on any thread while another runs on the
 * sample's thread: then that other.  (gotrace's sampler names the thread's
 * own goroutine even while an explicit goroutine -- gotrace_go_start --
 * runs on the thread; Go's runtime names the running one, so for its
 * traces this changes nothing.) */
static uint64_t sample_goroutine(const struct prof *P, const struct gtr_event *ev)
{
	uint64_t m = ev->args[0], gid = ev->args[2];
	if (gid == 0)
		return 0;
	const uint32_t *gi = gtr_map_get(&P->gmap, gid);
	if (!gi || P->gs[*gi].on_m != GTR_NONE)
		return gid;
	const uint32_t *ri = gtr_map_get(&P->runm, m);
	if (!ri || P->run[*ri] == GTR_NONE)
		return gid;
	return P->run[*ri];
}

static bool sample_matches(const struct prof *P, const struct gtr_prof_filter *f, const struct gtr_event *ev,
			   int64_t rel)
{
	if (rel < f->from_ns || rel > f->to_ns)
		return false;
	uint64_t m = ev->args[0], gid = sample_goroutine(P, ev);
	if (f->thread != GTR_NONE && m != f->thread)
		return false;
	if (f->goroutine != GTR_NONE && gid != f->goroutine)
		return false;
	if (!f->entry && !f->region && !f->task)
		return true;
	if (gid == 0)
		return false;
	const uint32_t *gi = gtr_map_get(&P->gmap, gid);
	if (!gi)
		return false;
	const struct gor *o = &P->gs[*gi];
	if (f->entry && o->entry != P->f_entry)
		return false;
	if (f->region) {
		bool in = false;
		for (size_t i = 0; i < o->nreg && !in; i++)
			in = o->reg[i].name == P->f_region;
		if (!in)
			return false;
	}
	if (f->task) {
		bool in = false;
		for (size_t i = 0; i < o->nreg && !in; i++)
			in = task_matches(P, o->reg[i].task);
		if (!in)
			return false;
	}
	return true;
}

/* The location of pc, now symbolised as (line, function fidx). */
static bool loc_of(struct prof *P, uint64_t pc, uint64_t line, uint32_t fidx, uint32_t *lidx)
{
	if (!blob_intern(&P->locs, &pc, sizeof pc, lidx) ||
	    !gtr_grow((void **)&P->loc_line, &P->caplocl, *lidx, 1, sizeof *P->loc_line) ||
	    !gtr_grow((void **)&P->loc_func, &P->caplocf, *lidx, 1, sizeof *P->loc_func))
		return false;
	P->loc_line[*lidx] = line;
	P->loc_func[*lidx] = fidx;
	return true;
}

/* The sample index of a stack of generation g (interned across
 * generations: the same frames give the same sample). */
static bool sample_of_stack(struct prof *P, const struct gtr_generation *g, uint64_t stack, uint32_t *out)
{
	bool added;
	uint32_t *slot = gtr_map_put(&P->genstk, stack, &added);
	if (!slot)
		return false;
	if (!added) {
		*out = *slot - 1;
		return true;
	}
	const struct gtr_frame *fr;
	size_t n = 0;
	if (!gtr_stack(g, stack, &fr, &n))
		n = 0;
	uint32_t ids[GTR_MAX_FRAMES + 1];
	size_t k = 0;
	if (n == 0) {
		/* pprof wants a location per sample: a sample without a stack is
		 * shown under this name rather than dropped. */
		uint32_t name, fidx, lidx, none = 0;
		if (!intern_str(P, "(no stack)", 10, &name))
			return false;
		uint32_t fkey[2] = { name, none };
		if (!blob_intern(&P->funcs, fkey, sizeof fkey, &fidx))
			return false;
		if (!loc_of(P, 0, 0, fidx, &lidx))
			return false;
		ids[k++] = lidx;
	}
	for (size_t i = 0; i < n && k < GTR_MAX_FRAMES; i++) {
		uint32_t name, file, fidx, lidx;
		if (!gen_str(P, g, fr[i].func, &name) || !gen_str(P, g, fr[i].file, &file))
			return false;
		uint32_t fkey[2] = { name, file };
		if (!blob_intern(&P->funcs, fkey, sizeof fkey, &fidx))
			return false;
		if (!loc_of(P, fr[i].pc, fr[i].line, fidx, &lidx))
			return false;
		ids[k++] = lidx;
	}
	uint32_t sidx;
	if (!blob_intern(&P->stacks, ids, k * sizeof ids[0], &sidx))
		return false;
	if (sidx == P->nsmp) {
		if (!gtr_grow((void **)&P->smp, &P->capsmp, P->nsmp, 1, sizeof *P->smp) ||
		    !gtr_grow((void **)&P->sloc, &P->capsloc, P->nsloc, k, sizeof *P->sloc))
			return false;
		P->smp[P->nsmp++] = (struct gtr_prof_sample){ .first = P->nsloc, .n = (uint32_t)k };
		memcpy(P->sloc + P->nsloc, ids, k * sizeof ids[0]);
		P->nsloc += k;
	}
	*slot = sidx + 1;
	*out = sidx;
	return true;
}

/* Intervals between successive samples of a thread, for period_ns. */
static bool note_interval(struct prof *P, uint64_t m, int64_t t)
{
	bool added;
	uint32_t *slot = gtr_map_put(&P->lastm, m, &added);
	if (!slot)
		return false;
	if (added) {
		if (!gtr_grow((void **)&P->lastt, &P->caplast, P->nlast, 1, sizeof *P->lastt))
			return false;
		*slot = (uint32_t)P->nlast;
		P->lastt[P->nlast++] = t;
		return true;
	}
	int64_t d = t - P->lastt[*slot];
	P->lastt[*slot] = t;
	if (d <= 0)
		return true;
	if (!gtr_grow((void **)&P->iv, &P->capiv, P->niv, 1, sizeof *P->iv))
		return false;
	P->iv[P->niv++] = d;
	return true;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

static bool on_event(struct prof *P, const struct gtr_prof_filter *f, const struct gtr_event *ev,
		     const struct gtr_generation *g, struct gtr_profile *out)
{
	const uint64_t *a = ev->args;
	switch (ev->type) {
	case 14: /* GoCreate: new_g, new_stack, stack */
	case 47: /* GoCreateBlocked */
		return see_transition_stack(P, g, a[0], a[1]);
	case 19: /* GoStop: reason, stack */
	case 20: /* GoBlock */
	case 22: /* GoSyscallBegin: p_seq, stack */
		return see_transition_stack(P, g, ev->g, a[1]);
	case 21: /* GoUnblock: g, g_seq, stack (the unblocker's, which Go's summary uses too) */
		return see_transition_stack(P, g, a[0], a[2]);
	case 48: /* GoStatusStack: g, m, status, stack */
		return see_transition_stack(P, g, a[0], a[3]);
	case 40: { /* UserTaskBegin: task, parent, name, stack */
		bool added;
		uint32_t *slot = gtr_map_put(&P->tmap, a[0], &added);
		if (!slot)
			return false;
		if (added) {
			if (!gtr_grow((void **)&P->ts, &P->capts, P->nts, 1, sizeof *P->ts))
				return false;
			*slot = (uint32_t)P->nts++;
		}
		P->ts[*slot].parent = a[1];
		return gen_str(P, g, a[2], &P->ts[*slot].name);
	}
	case 42: { /* UserRegionBegin: task, name, stack */
		if (ev->g == GTR_NONE)
			return true;
		struct gor *o = gor_of(P, ev->g);
		uint32_t name;
		if (!o || !gen_str(P, g, a[1], &name) ||
		    !gtr_grow((void **)&o->reg, &o->capreg, o->nreg, 1, sizeof *o->reg))
			return false;
		o->reg[o->nreg++] = (struct region){ name, a[0] };
		return true;
	}
	case 43: { /* UserRegionEnd: the innermost open region of that name ends
		    * (one begun before the trace started has none: ignored) */
		if (ev->g == GTR_NONE)
			return true;
		const uint32_t *gi = gtr_map_get(&P->gmap, ev->g);
		uint32_t name;
		if (!gi || !gen_str(P, g, a[1], &name))
			return gi == NULL;
		struct gor *o = &P->gs[*gi];
		for (size_t i = o->nreg; i-- > 0;) {
			if (o->reg[i].name == name) {
				o->nreg = i;
				break;
			}
		}
		return true;
	}
	case GTR_EV_CPUSAMPLE: {
		if (!note_interval(P, a[0], ev->time_ns))
			return false;
		if (!sample_matches(P, f, ev, ev->time_ns - out->first_ns))
			return true;
		uint32_t s;
		if (!sample_of_stack(P, g, a[3], &s) ||
		    !gtr_grow((void **)&P->pending, &P->cappend, P->npend, 1, sizeof *P->pending))
			return false;
		P->pending[P->npend++] = s;
		return true;
	}
	default:
		return true;
	}
}

void gtr_prof_filter_init(struct gtr_prof_filter *f)
{
	memset(f, 0, sizeof *f);
	f->from_ns = 0;
	f->to_ns = INT64_MAX;
	f->thread = GTR_NONE;
	f->goroutine = GTR_NONE;
}

static bool finish(struct prof *P, struct gtr_profile *out)
{
	P->strp = malloc((P->strs.n ? P->strs.n : 1) * sizeof *P->strp);
	P->fn = malloc((P->funcs.n ? P->funcs.n : 1) * sizeof *P->fn);
	P->lc = malloc((P->locs.n ? P->locs.n : 1) * sizeof *P->lc);
	if (!P->strp || !P->fn || !P->lc)
		return false;
	for (size_t i = 0; i < P->strs.n; i++)
		P->strp[i] = (const char *)P->strs.bytes + P->strs.off[i];
	for (size_t i = 0; i < P->funcs.n; i++) {
		uint32_t k[2];
		memcpy(k, P->funcs.bytes + P->funcs.off[i], sizeof k);
		P->fn[i] = (struct gtr_prof_func){ k[0], k[1] };
	}
	for (size_t i = 0; i < P->locs.n; i++) {
		uint64_t pc;
		memcpy(&pc, P->locs.bytes + P->locs.off[i], sizeof pc);
		P->lc[i] = (struct gtr_prof_loc){ .pc = pc, .line = P->loc_line[i], .func = P->loc_func[i] };
	}
	out->nstrings = P->strs.n;
	out->strings = P->strp;
	out->string_len = P->strs.len;
	out->nfuncs = P->funcs.n;
	out->funcs = P->fn;
	out->nlocs = P->locs.n;
	out->locs = P->lc;
	out->nsamples = P->nsmp;
	out->samples = P->smp;
	out->stack_locs = P->sloc;
	if (P->niv) {
		qsort(P->iv, P->niv, sizeof *P->iv, cmp_i64);
		out->period_ns = P->iv[P->niv / 10]; /* see period_ns in gtread.h */
		out->intervals = P->niv;
	}
	if (out->first_ns > out->last_ns)
		out->first_ns = out->last_ns = 0;
	return true;
}

int gtr_profile_compute(const void *data, size_t len, const struct gtr_prof_filter *f,
			struct gtr_profile *out)
{
	memset(out, 0, sizeof *out);
	out->first_ns = INT64_MAX;
	out->last_ns = INT64_MIN;
	struct prof *P = calloc(1, sizeof *P);
	if (!P) {
		out->ended_with_error = true;
		gtr_seterr(&out->error, GTR_ENOMEM, 0, 0, "out of memory");
		return GTR_ERR;
	}
	out->priv = P;
	struct gtr_reader *r = gtr_open(data, len, NULL, &out->error);
	if (!r) {
		out->ended_with_error = true;
		return GTR_ERR;
	}
	uint32_t empty;
	bool ok = intern_str(P, "", 0, &empty); /* string 0 is "" in pprof */
	P->f_entry = P->f_region = P->f_task = NO_STRING;
	if (ok && f->entry)
		ok = intern_str(P, f->entry, strlen(f->entry), &P->f_entry);
	if (ok && f->region)
		ok = intern_str(P, f->region, strlen(f->region), &P->f_region);
	if (ok && f->task) {
		ok = intern_str(P, f->task, strlen(f->task), &P->f_task);
		char *end;
		unsigned long long id = strtoull(f->task, &end, 10);
		P->f_task_num = *f->task >= '0' && *f->task <= '9' && !*end;
		P->f_task_id = id;
	}
	int rc = GTR_END;
	struct gtr_event ev;
	const struct gtr_generation *g;
	uint64_t pend_total = 0;
	while (ok && (rc = gtr_next_event(r, &ev, &g)) == GTR_OK) {
		if (ev.type == GTR_EV_SYNC) {
			for (size_t i = 0; i < P->npend; i++)
				P->smp[P->pending[i]].count++;
			out->matched_samples += P->npend;
			out->total_samples += pend_total;
			P->npend = 0;
			pend_total = 0;
			gtr_map_clear(&P->genstk);
			continue;
		}
		if (out->first_ns == INT64_MAX)
			out->first_ns = ev.time_ns;
		if (ev.time_ns > out->last_ns)
			out->last_ns = ev.time_ns;
		if (ev.type == GTR_EV_CPUSAMPLE)
			pend_total++;
		ok = on_event(P, f, &ev, g, out) && (ev.type == GTR_EV_CPUSAMPLE || track_running(P, &ev));
	}
	if (ok && rc == GTR_ERR) {
		out->ended_with_error = true;
		out->error = *gtr_reader_error(r);
	}
	gtr_close(r);
	if (!ok || !finish(P, out)) {
		out->ended_with_error = true;
		gtr_seterr(&out->error, GTR_ENOMEM, 0, 0, "out of memory");
		return GTR_ERR;
	}
	return out->ended_with_error ? GTR_ERR : GTR_END;
}

void gtr_profile_free(struct gtr_profile *out)
{
	struct prof *P = out->priv;
	if (P) {
		blob_free(&P->strs);
		blob_free(&P->funcs);
		blob_free(&P->locs);
		free(P->loc_line);
		free(P->loc_func);
		blob_free(&P->stacks);
		free(P->fn);
		free(P->lc);
		free(P->strp);
		free(P->smp);
		free(P->sloc);
		gtr_map_free(&P->gmap);
		for (size_t i = 0; i < P->ngs; i++)
			free(P->gs[i].reg);
		free(P->gs);
		gtr_map_free(&P->tmap);
		free(P->ts);
		gtr_map_free(&P->genstk);
		free(P->pending);
		gtr_map_free(&P->runm);
		free(P->run);
		gtr_map_free(&P->lastm);
		free(P->lastt);
		free(P->iv);
		free(P);
	}
	memset(out, 0, sizeof *out);
}
