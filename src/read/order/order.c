/*
 * order/order.c: the scheduler state machine of Go's trace reader, written
 * after the rules of Go 1.23's internal/trace/order.go (see order.h).  Calls
 * base/ (maps, growth, the name pool) and wire/ (event table, states) only.
 * Messages are Go's, word for word, so that both readers can be compared.
 *
 * IDs are kept as the uint64 of the wire; Go's GoID, ProcID and ThreadID are
 * int64 (none = -1), so they are printed signed.
 */
#include "order/order.h"
#include "base/error.h"
#include "base/grow.h"
#include "base/map.h"
#include "base/names.h"
#include "wire/spec.h"
#include "wire/states.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NONE UINT64_MAX

enum { GC_UNDETERMINED, GC_NOTRUNNING, GC_RUNNING };

static const char *go_status_str(uint64_t s)
{
	switch (s) {
	case GO_RUNNABLE:
		return "Runnable";
	case GO_RUNNING:
		return "Running";
	case GO_SYSCALL:
		return "Syscall";
	case GO_WAITING:
		return "Waiting";
	}
	return "Bad";
}

static const char *proc_status_str(uint64_t s)
{
	switch (s) {
	case P_RUNNING:
		return "Running";
	case P_IDLE:
		return "Idle";
	case P_SYSCALL:
		return "Syscall";
	}
	return "Bad";
}

static const char *evname(uint8_t t)
{
	if (t < GTR_NSPECS)
		return gtr_specs[t].name ? gtr_specs[t].name : "";
	return "Invalid";
}

/* ------------------------------------------------------------ pieces */

struct seq {
	uint64_t gen, n;
};

static bool succeeds(struct seq a, struct seq b)
{
	return a.gen == b.gen && a.n == b.n + 1;
}

struct rng {
	uint8_t typ;
	uint64_t desc;
};

struct ranges {
	struct rng *v;
	size_t n, cap;
};

struct region {
	uint64_t task;
	uint32_t name; /* interned */
};

struct gst {
	uint64_t id;
	bool live;
	uint8_t status;
	struct seq seq;
	struct region *reg;
	size_t nreg, capreg;
	struct ranges rs;
};

struct pst {
	uint64_t id;
	uint8_t status;
	struct seq seq;
	struct ranges rs;
};

struct mst {
	uint64_t id, g, p;
};

struct task {
	uint64_t id;
	bool live;
	uint32_t name;
	uint64_t parent;
};

struct gtr_ord {
	struct gtr_map gmap, pmap, mmap, tmap;
	struct gst *gs;
	size_t ngs, capgs;
	struct pst *ps;
	size_t nps, capps;
	struct mst *ms;
	size_t nms, capms;
	struct task *ts;
	size_t nts, capts;
	uint64_t gcseq;
	int gcstate;
	uint64_t initial_gen;
	struct gtr_names *names; /* the reader's; see base/names.h */
	struct ord_out q[8];
	size_t qh, qn;
	bool nomem;
};

struct gtr_ord *ord_new(struct gtr_names *names)
{
	struct gtr_ord *o = calloc(1, sizeof(struct gtr_ord));
	if (o)
		o->names = names;
	return o;
}

void ord_free(struct gtr_ord *o)
{
	if (!o)
		return;
	for (size_t i = 0; i < o->ngs; i++) {
		free(o->gs[i].reg);
		free(o->gs[i].rs.v);
	}
	for (size_t i = 0; i < o->nps; i++)
		free(o->ps[i].rs.v);
	free(o->gs);
	free(o->ps);
	free(o->ms);
	free(o->ts);
	gtr_map_free(&o->gmap);
	gtr_map_free(&o->pmap);
	gtr_map_free(&o->mmap);
	gtr_map_free(&o->tmap);
	free(o);
}

/* Interns a task or region name (they outlive their generation); on
 * allocation failure flags o->nomem and returns 0. */
static uint32_t intern(struct gtr_ord *o, const uint8_t *s, size_t n)
{
	uint32_t i = gtr_names_intern(o->names, s, n);
	if (i == UINT32_MAX) {
		o->nomem = true;
		return 0;
	}
	return i;
}

/* Generic find over a map and an array of entries whose first field is the
 * id. */
#define LOOKUP(o, map, arr, n, id) \
	({ const uint32_t *i_ = gtr_map_get(&(o)->map, (id)); i_ ? &(o)->arr[*i_] : NULL; })

/* Generic "find or add": id's entry in the array *arr of *n entries of size
 * sz (capacity *cap), a zeroed one appended for a new id; NULL, with
 * o->nomem set, when out of memory. */
static void *find_or_add(struct gtr_ord *o, struct gtr_map *map, void **arr, size_t *cap, size_t *n, size_t sz,
			 uint64_t id)
{
	bool added;
	uint32_t *slot = gtr_map_put(map, id, &added);
	if (!slot)
		return o->nomem = true, NULL;
	if (added) {
		if (!gtr_grow(arr, cap, *n, 1, sz))
			return o->nomem = true, NULL;
		*slot = (uint32_t)*n;
		memset((char *)*arr + *n * sz, 0, sz);
		(*n)++;
	}
	return (char *)*arr + (size_t)*slot * sz;
}

static struct gst *gget(struct gtr_ord *o, uint64_t id)
{
	struct gst *g = LOOKUP(o, gmap, gs, ngs, id);
	return g && g->live ? g : NULL;
}

/* An entry that is reused (its goroutine ended) keeps its buffers. */
static struct gst *gnew(struct gtr_ord *o, uint64_t id, uint8_t status, uint64_t gen)
{
	struct gst *g = find_or_add(o, &o->gmap, (void **)&o->gs, &o->capgs, &o->ngs, sizeof *o->gs, id);
	if (!g)
		return NULL;
	g->id = id;
	g->live = true;
	g->status = status;
	g->seq = (struct seq){ gen, 0 };
	g->nreg = 0;
	g->rs.n = 0;
	return g;
}

static struct pst *pget(struct gtr_ord *o, uint64_t id)
{
	return LOOKUP(o, pmap, ps, nps, id);
}

static struct pst *pnew(struct gtr_ord *o, uint64_t id, uint8_t status, uint64_t gen)
{
	struct pst *p = find_or_add(o, &o->pmap, (void **)&o->ps, &o->capps, &o->nps, sizeof *o->ps, id);
	if (!p)
		return NULL;
	p->id = id;
	p->status = status;
	p->seq = (struct seq){ gen, 0 };
	p->rs.n = 0;
	return p;
}

static struct mst *mget(struct gtr_ord *o, uint64_t id)
{
	return LOOKUP(o, mmap, ms, nms, id);
}

static struct mst *mnew(struct gtr_ord *o, uint64_t id, uint64_t g, uint64_t p)
{
	struct mst *m = find_or_add(o, &o->mmap, (void **)&o->ms, &o->capms, &o->nms, sizeof *o->ms, id);
	if (m)
		*m = (struct mst){ id, g, p };
	return m;
}

static struct task *tget(struct gtr_ord *o, uint64_t id)
{
	struct task *t = LOOKUP(o, tmap, ts, nts, id);
	return t && t->live ? t : NULL;
}

static struct task *tnew(struct gtr_ord *o, uint64_t id)
{
	struct task *t = find_or_add(o, &o->tmap, (void **)&o->ts, &o->capts, &o->nts, sizeof *o->ts, id);
	if (t) {
		t->id = id;
		t->live = true;
	}
	return t;
}

/* ------------------------------------------------------------ ranges */

static uint8_t start_ev(uint8_t typ)
{
	switch (typ) {
	case 23: /* GoSyscallEnd */
	case 24: /* GoSyscallEndBlocked */
		return 22;
	case 27: /* STWEnd */
		return 26;
	case 28: /* GCActive */
	case 30: /* GCEnd */
		return 29;
	case 31: /* GCSweepActive */
	case 33: /* GCSweepEnd */
		return 32;
	case 34: /* GCMarkAssistActive */
	case 36: /* GCMarkAssistEnd */
		return 35;
	case 43: /* UserRegionEnd */
		return 42;
	}
	return 0;
}

static struct rng make_range(uint8_t typ, uint64_t desc)
{
	uint8_t s = start_ev(typ);
	return (struct rng){ s ? s : typ, desc };
}

static bool has_range(const struct ranges *r, struct rng t)
{
	for (size_t i = 0; i < r->n; i++)
		if (r->v[i].typ == t.typ && r->v[i].desc == t.desc)
			return true;
	return false;
}

static int push_range(struct gtr_ord *o, struct ranges *r, struct rng t)
{
	if (!gtr_grow((void **)&r->v, &r->cap, r->n, 1, sizeof *r->v))
		return o->nomem = true, -1;
	r->v[r->n++] = t;
	return 0;
}

static int begin_range(struct gtr_ord *o, struct ranges *r, struct rng t, char *msg, size_t cap)
{
	if (has_range(r, t)) {
		snprintf(msg, cap, "discovered event already in-flight for when starting event %s", evname(t.typ));
		return -1;
	}
	return push_range(o, r, t);
}

static int active_range(struct gtr_ord *o, struct ranges *r, struct rng t, bool initial, char *msg,
			size_t cap)
{
	if (initial) {
		if (has_range(r, t)) {
			snprintf(msg, cap, "found named active range already in first gen: {%u %" PRIu64 "}", t.typ,
				 t.desc);
			return -1;
		}
		return push_range(o, r, t);
	}
	if (!has_range(r, t)) {
		size_t n = (size_t)snprintf(msg, cap, "resource is missing active range: %s [", evname(t.typ));
		for (size_t i = 0; i < r->n && n + 32 < cap; i++)
			n += (size_t)snprintf(msg + n, cap - n, "%s{%u %" PRIu64 "}", i ? " " : "", r->v[i].typ,
					      r->v[i].desc);
		if (n + 2 < cap)
			snprintf(msg + n, cap - n, "]");
		return -1;
	}
	return 0;
}

/* Returns 0 and the range's desc, or -1. */
static int end_range(struct ranges *r, uint8_t typ, uint64_t *desc, char *msg, size_t cap)
{
	uint8_t st = start_ev(typ);
	for (size_t i = 0; i < r->n; i++) {
		if (r->v[i].typ == st) {
			*desc = r->v[i].desc;
			r->v[i] = r->v[r->n - 1];
			r->n--;
			return 0;
		}
	}
	snprintf(msg, cap, "tried to end event %s, but not in-flight", evname(st));
	return -1;
}

/* ------------------------------------------------------------ context */

struct ctx {
	uint64_t g, p, m;
};

enum { MAY, MUST, MUSTNOT };

static void push(struct gtr_ord *o, struct ctx c, const struct ord_ev *ev, uint64_t thread)
{
	struct ord_out *q = &o->q[(o->qh + o->qn) % 8];
	q->ev = *ev;
	q->g = (int64_t)c.g;
	q->p = (int64_t)c.p;
	q->m = (int64_t)c.m;
	q->thread = thread;
	o->qn++;
}

static void push_made(struct gtr_ord *o, struct ctx c, const struct ord_ev *from, uint8_t typ, uint64_t a0,
		      uint64_t a1, uint64_t thread)
{
	struct ord_ev e = { .typ = typ, .time = from->time, .ts = from->ts };
	e.args[0] = a0;
	e.args[1] = a1;
	push(o, c, &e, thread);
}

bool ord_next(struct gtr_ord *o, struct ord_out *out)
{
	if (!o->qn)
		return false;
	*out = o->q[o->qh];
	o->qh = (o->qh + 1) % 8;
	o->qn--;
	return true;
}

/* ------------------------------------------------------------ the rules */

/* What a handler works on.  A handler returns 1 (applied), 0 (must wait,
 * with nothing changed: a stuck reader prints ord_dump()) or -1 (Go's
 * message in msg, or o->nomem).  Its checks and changes come in Go's order,
 * so that the first check to fail gives Go's message; need_go(),
 * need_proc() and ready_go() only look. */
struct env {
	struct gtr_ord *o;
	struct ord_ev *ev;
	ord_string_fn str;
	const void *strctx;
	uint64_t m, gen;
	char *msg;
	size_t cap;
};

#define A(i) (e->ev->args[i])
#define ERR(...) (snprintf(e->msg, e->cap, __VA_ARGS__), -1)
#define SID(x) ((int64_t)(x))

/* Go's validateCtx: t, p and g say whether the event needs (MUST) or
 * forbids (MUSTNOT) a thread, a proc and a goroutine. */
static int validate_ctx(const struct env *e, const struct ctx *c, int t, int p, int g)
{
	if (t == MUST && c->m == NONE)
		return ERR("expected a thread but didn't have one");
	if (t == MUSTNOT && c->m != NONE)
		return ERR("expected no thread but had one");
	if (p == MUST && c->p == NONE)
		return ERR("expected a proc but didn't have one");
	if (p == MUSTNOT && c->p != NONE)
		return ERR("expected no proc but had one");
	if (g == MUST && c->g == NONE)
		return ERR("expected a goroutine but didn't have one");
	if (g == MUSTNOT && c->g != NONE)
		return ERR("expected no goroutine but had one");
	return 0;
}

/* Go's event.UserGoReqs */
#define USERGO(c) validate_ctx(e, c, MUST, MUST, MUST)

/* The event is applied: queued in the context it came in. */
static int emit(const struct env *e, const struct ctx *cur)
{
	push(e->o, *cur, e->ev, e->m);
	return 1;
}

/* Go's checks of an event on the current goroutine, in Go's order: the
 * context (a thread, a goroutine, and a proc as p says), then that the
 * goroutine exists and is in status want.  Returns the goroutine, or NULL
 * with Go's message.  what is the status the message names: Go's own text,
 * which for GoSyscallEnd and GoSyscallEndBlocked says "Running" of a
 * goroutine that is not in a syscall. */
static struct gst *need_go(const struct env *e, const struct ctx *cur, int p, uint8_t want, const char *what)
{
	if (validate_ctx(e, cur, MUST, p, MUST))
		return NULL;
	struct gst *s = gget(e->o, cur->g);
	if (!s) {
		snprintf(e->msg, e->cap, "event %s for goroutine (%" PRId64 ") that doesn't exist",
			 evname(e->ev->typ), SID(cur->g));
		return NULL;
	}
	if (s->status != want) {
		snprintf(e->msg, e->cap, "%s event for goroutine that's not %s", evname(e->ev->typ), what);
		return NULL;
	}
	return s;
}

/* The proc of a syscall event, which must have a state; NULL with Go's
 * message if not. */
static struct pst *need_proc(const struct env *e, uint64_t pid)
{
	struct pst *p = pget(e->o, pid);
	if (!p)
		snprintf(e->msg, e->cap, "uninitialized proc %" PRId64 " found during %s", SID(pid),
			 evname(e->ev->typ));
	return p;
}

/* GoSyscallBegin, GoSyscallEnd: the current goroutine moves from status
 * from to status to (Go's message says "Running" for both), before Go looks
 * at the proc, which must have a state; returns the proc, or NULL with Go's
 * message. */
static struct pst *syscall_move(const struct env *e, const struct ctx *cur, uint8_t from, uint8_t to)
{
	struct gst *s = need_go(e, cur, MUST, from, "Running");
	if (!s)
		return NULL;
	s->status = to;
	return need_proc(e, cur->p);
}

/* The goroutine an event resumes (A(0)) if it is in status want and the
 * event's sequence number (A(1)) follows its own; NULL otherwise, which is
 * no error: the event waits for other threads' events. */
static struct gst *ready_go(const struct env *e, uint8_t want)
{
	struct seq sq = { e->gen, A(1) };
	struct gst *s = gget(e->o, A(0));
	return s && s->status == want && succeeds(sq, s->seq) ? s : NULL;
}

static int proc_status(struct env *e, struct ctx *cur, struct ctx *nw)
{
	struct gtr_ord *o = e->o;
	/* Go converts the status to a uint8 (go122.ProcStatus) */
	uint64_t pid = A(0), status = A(1) & 0xFF;
	if (status >= 5)
		return ERR("invalid status for proc %" PRId64 ": %" PRIu64, SID(pid), status);
	uint8_t old = gtr_proc_status_state[status];
	struct pst *s = pget(o, pid);
	if (s) {
		if (status == P_ABANDONED && s->status == P_SYSCALL) {
			old = PS_RUNNING;
			A(1) = P_SYSCALL;
		} else if (status == P_ABANDONED && s->status == P_ABANDONED) {
			old = PS_IDLE;
			A(1) = P_ABANDONED;
		} else if (s->status != status) {
			return ERR("inconsistent status for proc %" PRId64 ": old %s vs. new %s", SID(pid),
				   proc_status_str(s->status), proc_status_str(status));
		}
		s->seq = (struct seq){ e->gen, 0 };
	} else {
		if (!pnew(o, pid, (uint8_t)status, e->gen))
			return -1;
		old = e->gen == o->initial_gen ? PS_UNDETERMINED : PS_NOTEXIST;
	}
	A(2) = old;
	*nw = *cur;
	if (status == P_RUNNING || status == P_SYSCALL)
		nw->p = pid;
	if (status == P_ABANDONED && old == PS_RUNNING) {
		bool found = false;
		for (size_t i = 0; i < o->nms; i++) {
			if (o->ms[i].p == pid) {
				cur->m = o->ms[i].id;
				cur->p = pid;
				cur->g = o->ms[i].g;
				found = true;
			}
		}
		if (!found)
			return ERR("failed to find sched context for proc %" PRId64 " that's about to be stolen",
				   SID(pid));
	}
	return emit(e, cur);
}

static int proc_start(struct env *e, struct ctx *cur, struct ctx *nw)
{
	uint64_t pid = A(0);
	struct seq sq = { e->gen, A(1) };
	struct pst *s = pget(e->o, pid);
	if (!s || s->status != P_IDLE || !succeeds(sq, s->seq) || cur->p != NONE)
		return 0;
	if (validate_ctx(e, cur, MUST, MUSTNOT, MAY))
		return -1;
	s->status = P_RUNNING;
	s->seq = sq;
	*nw = *cur;
	nw->p = pid;
	return emit(e, cur);
}

static int proc_stop(struct env *e, struct ctx *cur, struct ctx *nw)
{
	struct pst *s = pget(e->o, cur->p);
	if (!s)
		return ERR("event %s for proc (%" PRId64 ") that doesn't exist", evname(e->ev->typ), SID(cur->p));
	if (s->status != P_RUNNING && s->status != P_SYSCALL)
		return ERR("%s event for proc that's not %s or %s", evname(e->ev->typ), "Running", "Syscall");
	if (validate_ctx(e, cur, MUST, MUST, MAY))
		return -1;
	s->status = P_IDLE;
	*nw = *cur;
	nw->p = NONE;
	return emit(e, cur);
}

static int proc_steal(struct env *e, struct ctx *cur, struct ctx *nw)
{
	uint64_t pid = A(0);
	struct seq sq = { e->gen, A(1) };
	struct pst *s = pget(e->o, pid);
	if (!s || (s->status != P_SYSCALL && s->status != P_ABANDONED) || !succeeds(sq, s->seq))
		return 0;
	if (validate_ctx(e, cur, MUST, MAY, MAY))
		return -1;
	uint8_t old = s->status;
	A(3) = old;
	s->status = P_IDLE;
	s->seq = sq;
	*nw = *cur;
	if (old == P_ABANDONED)
		return emit(e, cur);
	uint64_t mid = A(2);
	if (mid == cur->m) {
		if (cur->p != pid)
			return ERR("tried to self-steal proc %" PRId64 " (thread %" PRId64
				   "), but got proc %" PRId64 " instead",
				   SID(pid), SID(mid), SID(cur->p));
		nw->p = NONE;
		return emit(e, cur);
	}
	struct mst *ms = mget(e->o, mid);
	if (!ms)
		return ERR("stole proc from non-existent thread %" PRId64, SID(mid));
	if (ms->p != pid)
		return ERR("tried to steal proc %" PRId64 " from thread %" PRId64 ", but got proc %" PRId64
			   " instead",
			   SID(pid), SID(mid), SID(ms->p));
	ms->p = NONE;
	return emit(e, cur);
}

static int go_status(struct env *e, struct ctx *cur, struct ctx *nw)
{
	struct gtr_ord *o = e->o;
	/* Go converts the status to a uint8 (go122.GoStatus) */
	uint64_t gid = A(0), mid = A(1), status = A(2) & 0xFF;
	if (status >= 5)
		return ERR("invalid status for goroutine %" PRId64 ": %" PRIu64, SID(gid), status);
	uint8_t old = gtr_go_status_state[status];
	struct gst *s = gget(o, gid);
	if (s) {
		if (s->status != status)
			return ERR("inconsistent status for goroutine %" PRId64 ": old %s vs. new %s", SID(gid),
				   go_status_str(s->status), go_status_str(status));
		s->seq = (struct seq){ e->gen, 0 };
	} else if (e->gen == o->initial_gen) {
		if (!gnew(o, gid, (uint8_t)status, e->gen))
			return -1;
		old = GS_UNDETERMINED;
	} else {
		return ERR("found goroutine status for new goroutine after the first generation: id=%" PRId64
			   " status=%s",
			   SID(gid), go_status_str(status));
	}
	/* extra: after the spec's arguments (GoStatus: 3, GoStatusStack: 4) */
	A(e->ev->typ == 48 ? 4 : 3) = old;
	*nw = *cur;
	switch (status) {
	case GO_RUNNING:
		nw->g = gid;
		break;
	case GO_SYSCALL:
		if (mid == NONE)
			return ERR("found goroutine %" PRId64 " in syscall without a thread", SID(gid));
		if (mid == cur->m) {
			if (e->gen != o->initial_gen && cur->g != gid)
				return ERR("inconsistent thread for syscalling goroutine %" PRId64
					   ": thread has goroutine %" PRId64,
					   SID(gid), SID(cur->g));
			nw->g = gid;
			break;
		}
		struct mst *ms = mget(o, mid);
		if (ms) {
			if (ms->g != gid)
				return ERR("inconsistent thread for syscalling goroutine %" PRId64
					   ": thread has goroutine %" PRId64,
					   SID(gid), SID(ms->g));
			cur->g = ms->g;
		} else if (!mnew(o, mid, gid, NONE)) {
			return -1;
		}
		cur->m = mid;
		break;
	}
	return emit(e, cur);
}

/* GoCreate, GoCreateBlocked */
static int go_create(struct env *e, struct ctx *cur, struct ctx *nw)
{
	struct gtr_ord *o = e->o;
	if (validate_ctx(e, cur, MUST, MUST, MAY))
		return -1;
	/* unlike need_go(), Go lets a creator without a state pass */
	struct gst *s = gget(o, cur->g);
	if (s && s->status != GO_RUNNING)
		return ERR("%s event for goroutine that's not %s", evname(e->ev->typ), "Running");
	uint64_t ng = A(0);
	if (gget(o, ng))
		return ERR("tried to create goroutine (%" PRId64 ") that already exists", SID(ng));
	if (!gnew(o, ng, e->ev->typ == 47 ? GO_WAITING : GO_RUNNABLE, e->gen))
		return -1;
	*nw = *cur;
	return emit(e, cur);
}

/* GoDestroy, GoStop, GoBlock */
static int go_stop_exec(struct env *e, struct ctx *cur, struct ctx *nw)
{
	struct gst *s = need_go(e, cur, MUST, GO_RUNNING, "Running");
	if (!s)
		return -1;
	*nw = *cur;
	switch (e->ev->typ) {
	case 17: /* GoDestroy */
		s->live = false;
		nw->g = NONE;
		break;
	case 19: /* GoStop */
		s->status = GO_RUNNABLE;
		nw->g = NONE;
		break;
	case 20: /* GoBlock */
		s->status = GO_WAITING;
		nw->g = NONE;
		break;
	}
	return emit(e, cur);
}

static int go_start(struct env *e, struct ctx *cur, struct ctx *nw)
{
	struct gst *s = ready_go(e, GO_RUNNABLE);
	if (!s)
		return 0;
	if (validate_ctx(e, cur, MUST, MUST, MUSTNOT))
		return -1;
	s->status = GO_RUNNING;
	s->seq = (struct seq){ e->gen, A(1) };
	*nw = *cur;
	nw->g = A(0);
	return emit(e, cur);
}

static int go_unblock(struct env *e, struct ctx *cur, struct ctx *nw)
{
	struct gst *s = ready_go(e, GO_WAITING);
	if (!s)
		return 0;
	s->status = GO_RUNNABLE;
	s->seq = (struct seq){ e->gen, A(1) };
	*nw = *cur;
	return emit(e, cur);
}

/* GoSwitch, GoSwitchDestroy */
static int go_switch(struct env *e, struct ctx *cur, struct ctx *nw)
{
	struct gtr_ord *o = e->o;
	struct gst *cs = need_go(e, cur, MUST, GO_RUNNING, "Running");
	if (!cs)
		return -1;
	struct gst *ns = ready_go(e, GO_WAITING);
	if (!ns)
		return 0;
	push(o, *cur, e->ev, e->m);
	if (e->ev->typ == 45) {
		cs->status = GO_WAITING;
		push_made(o, *cur, e->ev, 20 /* GoBlock */, 0, 0, e->m);
	} else {
		cs->live = false;
		push_made(o, *cur, e->ev, 17 /* GoDestroy */, 0, 0, e->m);
	}
	uint64_t next = A(0);
	ns->status = GO_RUNNING;
	ns->seq = (struct seq){ e->gen, A(1) };
	*nw = *cur;
	nw->g = next;
	struct ctx sc = *cur;
	sc.g = NONE;
	push_made(o, sc, e->ev, 16 /* GoStart */, next, A(1), e->m);
	return 1;
}

static int go_syscall_begin(struct env *e, struct ctx *cur, struct ctx *nw)
{
	struct pst *p = syscall_move(e, cur, GO_RUNNING, GO_SYSCALL);
	if (!p)
		return -1;
	p->status = P_SYSCALL;
	struct seq sq = { e->gen, A(0) };
	if (!succeeds(sq, p->seq))
		return ERR("failed to advance %s: can't make sequence: %" PRIu64 " (gen=%" PRIu64 ") -> %" PRIu64
			   " (gen=%" PRIu64 ")",
			   evname(e->ev->typ), p->seq.n, p->seq.gen, sq.n, sq.gen);
	p->seq = sq;
	*nw = *cur;
	return emit(e, cur);
}

static int go_syscall_end(struct env *e, struct ctx *cur, struct ctx *nw)
{
	struct pst *p = syscall_move(e, cur, GO_SYSCALL, GO_RUNNING);
	if (!p)
		return -1;
	if (p->status != P_SYSCALL)
		return ERR("expected proc %" PRId64 " in state %s, but got %s instead", SID(cur->p), "Syscall",
			   proc_status_str(p->status));
	p->status = P_RUNNING;
	*nw = *cur;
	return emit(e, cur);
}

static int go_syscall_end_blocked(struct env *e, struct ctx *cur, struct ctx *nw)
{
	if (cur->p != NONE) {
		struct pst *p = need_proc(e, cur->p);
		if (!p)
			return -1;
		if (p->status == P_SYSCALL)
			return 0;
	}
	struct gst *s = need_go(e, cur, MAY, GO_SYSCALL, "Running");
	if (!s)
		return -1;
	*nw = *cur;
	nw->g = NONE;
	s->status = GO_RUNNABLE;
	return emit(e, cur);
}

static int go_create_syscall(struct env *e, struct ctx *cur, struct ctx *nw)
{
	struct gtr_ord *o = e->o;
	if (validate_ctx(e, cur, MUST, MAY, MUSTNOT))
		return -1;
	uint64_t ng = A(0);
	if (gget(o, ng))
		return ERR("tried to create goroutine (%" PRId64 ") in syscall that already exists", SID(ng));
	if (!gnew(o, ng, GO_SYSCALL, e->gen))
		return -1;
	*nw = *cur;
	nw->g = ng;
	return emit(e, cur);
}

static int go_destroy_syscall(struct env *e, struct ctx *cur, struct ctx *nw)
{
	struct gst *s = need_go(e, cur, MAY, GO_SYSCALL, "Syscall");
	if (!s)
		return -1;
	s->live = false;
	*nw = *cur;
	nw->g = NONE;
	if (cur->p != NONE) {
		/* Go's words differ here from need_proc()'s */
		struct pst *p = pget(e->o, cur->p);
		if (!p)
			return ERR("found invalid proc %" PRId64 " during %s", SID(cur->p), evname(e->ev->typ));
		if (p->status != P_SYSCALL)
			return ERR("proc %" PRId64 " in unexpected state %s during %s", SID(cur->p),
				   proc_status_str(p->status), evname(e->ev->typ));
		p->status = P_ABANDONED;
		nw->p = NONE;
		struct ord_ev x = { .typ = 12 /* ProcSteal */, .time = e->ev->time, .ts = e->ev->ts };
		x.args[0] = cur->p;
		x.args[3] = P_SYSCALL;
		push(e->o, *cur, &x, e->m);
	}
	return emit(e, cur);
}

static int user_task_begin(struct env *e, struct ctx *cur, struct ctx *nw)
{
	struct gtr_ord *o = e->o;
	uint64_t id = A(0);
	if (tget(o, id))
		return ERR("task ID conflict: %" PRIu64, id);
	if (A(1) == 0)
		A(1) = NONE;
	const uint8_t *s;
	size_t n;
	if (!e->str(e->strctx, A(2), &s, &n))
		return ERR("invalid string ID %" PRIu64 " for %u event", A(2), e->ev->typ);
	uint32_t name = intern(o, s, n);
	struct task *t = tnew(o, id);
	if (!t || o->nomem)
		return -1;
	t->name = name;
	t->parent = A(1);
	if (USERGO(cur))
		return -1;
	*nw = *cur;
	return emit(e, cur);
}

static int user_task_end(struct env *e, struct ctx *cur, struct ctx *nw)
{
	struct task *t = tget(e->o, A(0));
	if (t) {
		A(2) = t->parent;
		A(3) = t->name;
		t->live = false;
	} else {
		A(2) = NONE;
		A(3) = UINT32_MAX;
	}
	if (USERGO(cur))
		return -1;
	*nw = *cur;
	return emit(e, cur);
}

static int user_region(struct env *e, struct ctx *cur, struct ctx *nw)
{
	struct gtr_ord *o = e->o;
	bool begin = e->ev->typ == 42;
	if (USERGO(cur))
		return -1;
	uint64_t tid = A(0);
	const uint8_t *s;
	size_t n;
	if (!e->str(e->strctx, A(1), &s, &n))
		return ERR("invalid string ID %" PRIu64 " for %u event", A(1), e->ev->typ);
	struct gst *g = gget(o, cur->g);
	if (!g)
		return ERR("encountered EvUserRegion%s without known state for current goroutine %" PRId64,
			   begin ? "Begin" : "End", SID(cur->g));
	uint32_t name = intern(o, s, n);
	if (o->nomem)
		return -1;
	if (begin) {
		if (!gtr_grow((void **)&g->reg, &g->capreg, g->nreg, 1, sizeof *g->reg))
			return o->nomem = true, -1;
		g->reg[g->nreg++] = (struct region){ tid, name };
	} else if (g->nreg) {
		struct region top = g->reg[g->nreg - 1];
		if (top.task != tid || top.name != name) {
			const char *tn;
			int tl;
			gtr_names_get(o->names, top.name, &tn, &tl);
			char b1[GTR_ERRSTR_CAP], b2[GTR_ERRSTR_CAP];
			return ERR("misuse of region in goroutine %" PRId64 ": region end {%" PRIu64
				   " %s} when the inner-most active region start event is {%" PRIu64 " %s}",
				   SID(g->id), tid, gtr_errstr(b1, sizeof b1, s, n), top.task,
				   gtr_errstr(b2, sizeof b2, tn, (size_t)tl));
		}
		g->nreg--;
	}
	*nw = *cur;
	return emit(e, cur);
}

/* The GC moves to sequence number sq and state; as in Go, the context is
 * checked only after the move. */
static int gc_step(struct env *e, struct ctx *cur, uint64_t sq, int state)
{
	e->o->gcseq = sq;
	e->o->gcstate = state;
	if (USERGO(cur))
		return -1;
	return emit(e, cur);
}

static int gc_active(struct env *e, struct ctx *cur, struct ctx *nw)
{
	struct gtr_ord *o = e->o;
	uint64_t sq = A(0);
	*nw = *cur;
	if (e->gen == o->initial_gen) {
		if (o->gcstate != GC_UNDETERMINED)
			return ERR("GCActive in the first generation isn't first GC event");
		o->gcseq = sq;
		o->gcstate = GC_RUNNING;
		return emit(e, cur);
	}
	if (sq != o->gcseq + 1)
		return 0;
	if (o->gcstate != GC_RUNNING)
		return ERR("encountered GCActive while GC was not in progress");
	return gc_step(e, cur, sq, GC_RUNNING); /* the state stays */
}

static int gc_begin(struct env *e, struct ctx *cur, struct ctx *nw)
{
	struct gtr_ord *o = e->o;
	uint64_t sq = A(0);
	*nw = *cur;
	if (o->gcstate == GC_UNDETERMINED) {
		o->gcseq = sq;
		o->gcstate = GC_RUNNING;
		return emit(e, cur);
	}
	if (sq != o->gcseq + 1)
		return 0;
	if (o->gcstate == GC_RUNNING)
		return ERR("encountered GCBegin while GC was already in progress");
	return gc_step(e, cur, sq, GC_RUNNING);
}

static int gc_end(struct env *e, struct ctx *cur, struct ctx *nw)
{
	struct gtr_ord *o = e->o;
	uint64_t sq = A(0);
	*nw = *cur;
	if (sq != o->gcseq + 1)
		return 0;
	if (o->gcstate == GC_NOTRUNNING)
		return ERR("encountered GCEnd when GC was not in progress");
	if (o->gcstate == GC_UNDETERMINED)
		return ERR("encountered GCEnd when GC was in an undetermined state");
	return gc_step(e, cur, sq, GC_NOTRUNNING);
}

static int annotation(struct env *e, struct ctx *cur, struct ctx *nw)
{
	if (USERGO(cur))
		return -1;
	*nw = *cur;
	return emit(e, cur);
}

/* HeapAlloc/HeapGoal and the AllocFree experiment. */
static int needs_mp(struct env *e, struct ctx *cur, struct ctx *nw, int p)
{
	if (validate_ctx(e, cur, MUST, p, MAY))
		return -1;
	*nw = *cur;
	return emit(e, cur);
}

/* A range that is active when a generation starts (GCSweepActive on proc
 * A(0), GCMarkAssistActive on goroutine A(0)): rs are its ranges. */
static int range_active(struct env *e, struct ctx *cur, struct ranges *rs)
{
	struct gtr_ord *o = e->o;
	if (active_range(o, rs, make_range(e->ev->typ, 0), e->gen == o->initial_gen, e->msg, e->cap))
		return -1;
	return emit(e, cur);
}

/* The event begins a range on rs (the current proc's or goroutine's), with
 * desc *desc, or ends one, giving back its begin's desc in *desc. */
static int range_edge(struct env *e, struct ranges *rs, uint64_t *desc)
{
	uint8_t t = e->ev->typ;
	if (!start_ev(t))
		return begin_range(e->o, rs, make_range(t, *desc), e->msg, e->cap);
	return end_range(rs, t, desc, e->msg, e->cap);
}

/* GCSweepActive, GCSweepBegin, GCSweepEnd */
static int gc_sweep(struct env *e, struct ctx *cur, struct ctx *nw)
{
	*nw = *cur;
	if (e->ev->typ == 31) { /* GCSweepActive */
		struct pst *p = pget(e->o, A(0));
		if (!p)
			return ERR("encountered GCSweepActive for unknown proc %" PRId64, SID(A(0)));
		return range_active(e, cur, &p->rs);
	}
	if (validate_ctx(e, cur, MUST, MUST, MAY))
		return -1;
	struct pst *p = pget(e->o, cur->p);
	if (!p) /* Go dereferences a nil state here */
		return ERR("internal error: no state for proc %" PRId64, SID(cur->p));
	uint64_t d = 0;
	if (range_edge(e, &p->rs, &d))
		return -1;
	return emit(e, cur);
}

/* STWBegin, STWEnd, GCMarkAssistActive, GCMarkAssistBegin, GCMarkAssistEnd */
static int go_range(struct env *e, struct ctx *cur, struct ctx *nw)
{
	uint8_t t = e->ev->typ;
	*nw = *cur;
	if (t == 34) { /* GCMarkAssistActive */
		struct gst *g = gget(e->o, A(0));
		if (!g)
			return ERR("uninitialized goroutine %" PRId64 " found during %s", SID(A(0)), evname(t));
		return range_active(e, cur, &g->rs);
	}
	if (USERGO(cur))
		return -1;
	struct gst *g = gget(e->o, cur->g);
	if (!g)
		return ERR("encountered event of type %u without known state for current goroutine %" PRId64, t,
			   SID(cur->g));
	uint64_t d = t == 26 ? A(0) : 0; /* STWBegin's kind tells its ranges apart */
	if (range_edge(e, &g->rs, &d))
		return -1;
	if (t == 27) /* STWEnd: the kind of the STWBegin it ends */
		A(0) = d;
	return emit(e, cur);
}

int ord_advance(struct gtr_ord *o, struct ord_ev *ev, ord_string_fn str, const void *strctx, uint64_t m,
		uint64_t gen, char *msg, size_t msgcap, bool *nomem)
{
	*nomem = false;
	if (o->initial_gen == 0)
		o->initial_gen = gen;
	struct ctx cur = { NONE, NONE, m }, nw;
	struct mst *ms = NULL;
	if (m != NONE) {
		ms = mget(o, m);
		if (!ms && !(ms = mnew(o, m, NONE, NONE))) {
			*nomem = true;
			return -1;
		}
		cur.p = ms->p;
		cur.g = ms->g;
	}
	nw = cur;
	struct env e = { o, ev, str, strctx, m, gen, msg, msgcap };
	int rc;
	switch (ev->typ) {
	case 9:  /* ProcsChange */
	case 39: /* GoLabel */
	case 44: /* UserLog */
		rc = annotation(&e, &cur, &nw);
		break;
	case 10:
		rc = proc_start(&e, &cur, &nw);
		break;
	case 11:
		rc = proc_stop(&e, &cur, &nw);
		break;
	case 12:
		rc = proc_steal(&e, &cur, &nw);
		break;
	case 13:
		rc = proc_status(&e, &cur, &nw);
		break;
	case 14:
	case 47:
		rc = go_create(&e, &cur, &nw);
		break;
	case 15:
		rc = go_create_syscall(&e, &cur, &nw);
		break;
	case 16:
		rc = go_start(&e, &cur, &nw);
		break;
	case 17:
	case 19:
	case 20:
		rc = go_stop_exec(&e, &cur, &nw);
		break;
	case 18:
		rc = go_destroy_syscall(&e, &cur, &nw);
		break;
	case 21:
		rc = go_unblock(&e, &cur, &nw);
		break;
	case 22:
		rc = go_syscall_begin(&e, &cur, &nw);
		break;
	case 23:
		rc = go_syscall_end(&e, &cur, &nw);
		break;
	case 24:
		rc = go_syscall_end_blocked(&e, &cur, &nw);
		break;
	case 25:
	case 48:
		rc = go_status(&e, &cur, &nw);
		break;
	case 26:
	case 27:
	case 34:
	case 35:
	case 36:
		rc = go_range(&e, &cur, &nw);
		break;
	case 28:
		rc = gc_active(&e, &cur, &nw);
		break;
	case 29:
		rc = gc_begin(&e, &cur, &nw);
		break;
	case 30:
		rc = gc_end(&e, &cur, &nw);
		break;
	case 31:
	case 32:
	case 33:
		rc = gc_sweep(&e, &cur, &nw);
		break;
	case 37:
	case 38:
		rc = needs_mp(&e, &cur, &nw, MUST);
		break;
	case 40:
		rc = user_task_begin(&e, &cur, &nw);
		break;
	case 41:
		rc = user_task_end(&e, &cur, &nw);
		break;
	case 42:
	case 43:
		rc = user_region(&e, &cur, &nw);
		break;
	case 45:
	case 46:
		rc = go_switch(&e, &cur, &nw);
		break;
	default:
		if (ev->typ >= 128 && ev->typ <= 136) {
			rc = needs_mp(&e, &cur, &nw, MAY);
			break;
		}
		snprintf(msg, msgcap, "bad event type found while ordering: %u", ev->typ);
		return -1;
	}
	if (o->nomem) {
		*nomem = true;
		o->nomem = false;
		return -1;
	}
	if (rc == 1 && ms) {
		/* the state may have moved: look it up again */
		ms = mget(o, m);
		ms->p = nw.p;
		ms->g = nw.g;
	}
	return rc;
}

size_t ord_dump(const struct gtr_ord *o, char *out, size_t cap)
{
	size_t n = 0;
#define P(...)                                                                   \
	do {                                                                     \
		if (n < cap)                                                     \
			n += (size_t)snprintf(out + n, cap - n, __VA_ARGS__);    \
	} while (0)
	for (size_t i = 0; i < o->ngs; i++)
		if (o->gs[i].live)
			P("G %" PRId64 " [status=%s seq=%" PRIu64 " (gen=%" PRIu64 ")]\n", SID(o->gs[i].id),
			  go_status_str(o->gs[i].status), o->gs[i].seq.n, o->gs[i].seq.gen);
	P("\n");
	for (size_t i = 0; i < o->nps; i++)
		P("P %" PRId64 " [status=%s seq=%" PRIu64 " (gen=%" PRIu64 ")]\n", SID(o->ps[i].id),
		  proc_status_str(o->ps[i].status), o->ps[i].seq.n, o->ps[i].seq.gen);
	P("\n");
	for (size_t i = 0; i < o->nms; i++)
		P("M %" PRId64 " [g=%" PRId64 " p=%" PRId64 "]\n", SID(o->ms[i].id), SID(o->ms[i].g),
		  SID(o->ms[i].p));
	P("\n");
	static const char *const gcs[] = { "Undetermined", "NotRunning", "Running" };
	P("GC %" PRIu64 " %s\n", o->gcseq, gcs[o->gcstate]);
#undef P
	return n < cap ? n : cap;
}
