/*
 * validate/validate.c: the checks of Go 1.23's trace validator
 * (internal/trace/testtrace.Validator, what Go's own tests and gotrace's
 * judges run on every event the reader delivers), written after its rules
 * with Go's messages.  On top of the reader it follows, per goroutine and
 * proc, the state seen through the events' state transitions and which
 * thread they are bound to, the special ranges (stop-the-world, GC phases,
 * sweeps, mark assists) per resource, task types and labels.
 *
 * A few inputs make Go's reader or validator panic (a status value that
 * passes the ordering's uint8 check but indexes past a table, a
 * stop-the-world end whose reason string is missing from its generation):
 * they are errors here, flagged go_panics, with the panic's text.
 *
 * Calls base/, wire/ and the generation's table lookups (gtr_string,
 * gtr_stack: generation/); never the ordering or the reader.
 */
#include "validate/validate.h"
#include "base/error.h"
#include "base/grow.h"
#include "base/map.h"
#include "base/names.h"
#include "wire/quote.h"
#include "wire/spec.h"
#include "wire/states.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NONE UINT64_MAX

static const char *gs_str(unsigned s)
{
	static const char *const n[] = { "Undetermined", "NotExist", "Runnable", "Running", "Waiting", "Syscall" };
	return s < 6 ? n[s] : "Bad";
}

static const char *ps_str(unsigned s)
{
	static const char *const n[] = { "Undetermined", "NotExist", "Running", "Idle" };
	return s < 4 ? n[s] : "Bad";
}

enum { R_NONE, R_GOROUTINE, R_PROC, R_THREAD };

struct sctx {
	int64_t m, p, g;
};

struct res {
	uint64_t id;
	uint8_t state;
	int32_t binding; /* index in ms, -1 for none */
};

struct rlist {
	uint32_t *v;
	size_t n, cap;
};

struct gtr_val {
	struct gtr_names *names; /* the reader's (see base/names.h) */
	struct gtr_map gmap, pmap, mmap, rmap, tmap;
	struct res *gs, *ps;
	size_t ngs, capgs, nps, capps;
	struct sctx *ms;
	size_t nms, capms;
	struct rlist *rl; /* ranges per resource */
	size_t nrl, caprl;
	struct {
		uint64_t id;
		uint32_t type;
		bool live;
	} *tasks;
	size_t ntasks, captasks;
	bool seen_sync;
	int64_t last_ts;
	bool nomem;
	uint32_t name_gc, name_sweep, name_assist, name_empty;
};

struct gtr_val *val_new(struct gtr_names *names)
{
	struct gtr_val *v = calloc(1, sizeof *v);
	if (!v)
		return NULL;
	v->names = names;
	v->name_gc = gtr_names_intern(v->names, (const uint8_t *)"GC concurrent mark phase", 24);
	v->name_sweep = gtr_names_intern(v->names, (const uint8_t *)"GC incremental sweep", 20);
	v->name_assist = gtr_names_intern(v->names, (const uint8_t *)"GC mark assist", 14);
	v->name_empty = gtr_names_intern(v->names, (const uint8_t *)"", 0);
	if (v->name_gc == UINT32_MAX || v->name_sweep == UINT32_MAX || v->name_assist == UINT32_MAX ||
	    v->name_empty == UINT32_MAX) {
		free(v);
		return NULL;
	}
	return v;
}

void val_free(struct gtr_val *v)
{
	if (!v)
		return;
	for (size_t i = 0; i < v->nrl; i++)
		free(v->rl[i].v);
	free(v->rl);
	free(v->gs);
	free(v->ps);
	free(v->ms);
	free(v->tasks);
	gtr_map_free(&v->gmap);
	gtr_map_free(&v->pmap);
	gtr_map_free(&v->mmap);
	gtr_map_free(&v->rmap);
	gtr_map_free(&v->tmap);
	free(v);
}

/* find (create: *created) a goroutine/proc entry */
static struct res *res_get(struct gtr_val *v, bool proc, uint64_t id, bool create, bool *created)
{
	struct gtr_map *m = proc ? &v->pmap : &v->gmap;
	struct res **arr = proc ? &v->ps : &v->gs;
	size_t *n = proc ? &v->nps : &v->ngs, *cap = proc ? &v->capps : &v->capgs;
	*created = false;
	if (!create) {
		const uint32_t *i = gtr_map_get(m, id);
		return i ? &(*arr)[*i] : NULL;
	}
	bool added;
	uint32_t *slot = gtr_map_put(m, id, &added);
	if (!slot || (added && !gtr_grow((void **)arr, cap, *n, 1, sizeof **arr))) {
		v->nomem = true;
		return NULL;
	}
	if (added) {
		*slot = (uint32_t)*n;
		(*arr)[*n] = (struct res){ id, 0, -1 };
		(*n)++;
		*created = true;
	}
	return &(*arr)[*slot];
}

static int32_t thread_get(struct gtr_val *v, uint64_t m)
{
	bool added;
	uint32_t *slot = gtr_map_put(&v->mmap, m, &added);
	if (!slot || (added && !gtr_grow((void **)&v->ms, &v->capms, v->nms, 1, sizeof *v->ms))) {
		v->nomem = true;
		return -1;
	}
	if (added) {
		*slot = (uint32_t)v->nms;
		v->ms[v->nms++] = (struct sctx){ (int64_t)m, -1, -1 };
	}
	return (int32_t)*slot;
}

static struct rlist *ranges_of(struct gtr_val *v, int kind, int64_t id, bool create)
{
	/* key: kind in the top bits, id below (ids are small or -1) */
	uint64_t key = (uint64_t)kind << 62 ^ ((uint64_t)id & 0x3FFFFFFFFFFFFFFFULL);
	if (!create) {
		const uint32_t *i = gtr_map_get(&v->rmap, key);
		return i ? &v->rl[*i] : NULL;
	}
	bool added;
	uint32_t *slot = gtr_map_put(&v->rmap, key, &added);
	if (!slot || (added && !gtr_grow((void **)&v->rl, &v->caprl, v->nrl, 1, sizeof *v->rl))) {
		v->nomem = true;
		return NULL;
	}
	if (added) {
		*slot = (uint32_t)v->nrl;
		memset(&v->rl[v->nrl++], 0, sizeof v->rl[0]);
	}
	return &v->rl[*slot];
}

static bool has_range(struct gtr_val *v, int kind, int64_t id, uint32_t name)
{
	struct rlist *l = ranges_of(v, kind, id, false);
	if (!l)
		return false;
	for (size_t i = 0; i < l->n; i++)
		if (l->v[i] == name)
			return true;
	return false;
}

static void res_str(char *out, size_t cap, int kind, int64_t id)
{
	static const char *const k[] = { "None", "Goroutine", "Proc", "Thread" };
	if (kind == R_NONE)
		snprintf(out, cap, "None");
	else
		snprintf(out, cap, "%s(%" PRId64 ")", k[kind], id);
}

/* Go's %q of a name */
static void quote_name(const struct gtr_val *v, uint32_t name, char *out, size_t cap)
{
	const char *s;
	int n;
	gtr_names_get(v->names, name, &s, &n);
	if ((size_t)n * 4 + 3 > cap)
		n = (int)((cap - 3) / 4);
	size_t k = gtr_go_quote((const uint8_t *)s, (size_t)n, out);
	out[k] = 0;
}

#define ERR(...) (snprintf(msg, cap, __VA_ARGS__), -1)
#define PANIC(...) (*panics = true, snprintf(msg, cap, __VA_ARGS__), -1)

/* A goroutine or proc state transition. */
static int transition(struct gtr_val *v, bool proc, const struct gtr_event *ev, uint64_t id, unsigned old,
		      unsigned nw, char *msg, size_t cap)
{
	const char *what = proc ? "proc" : "goroutine";
	int64_t sid = (int64_t)id;
	unsigned undet = proc ? PS_UNDETERMINED : GS_UNDETERMINED;
	unsigned notexist = proc ? PS_NOTEXIST : GS_NOTEXIST;
	const char *(*str)(unsigned) = proc ? ps_str : gs_str;
	if (nw == undet)
		return ERR("transition to undetermined state for %s %" PRId64, what, sid);
	if (v->seen_sync && old == undet)
		return ERR("undetermined %s %" PRId64 " after first global sync", what, sid);
	if (nw == notexist) {
		struct rlist *l = ranges_of(v, proc ? R_PROC : R_GOROUTINE, sid, false);
		if (l && l->n)
			return ERR("%s %" PRId64 " died with active ranges", what, sid);
	}
	bool created;
	struct res *s = res_get(v, proc, id, true, &created);
	if (!s)
		return -1;
	if (!created) {
		if (old != s->state)
			return ERR("bad old state for %s %" PRId64 ": got %s, want %s", what, sid, str(old),
				   str(s->state));
	} else if (old != undet && old != notexist) {
		return ERR("bad old state for unregistered %s %" PRId64 ": %s", what, sid, str(old));
	}
	s->state = (uint8_t)nw;
	bool ex_new = proc ? nw == PS_RUNNING : (nw == GS_RUNNING || nw == GS_SYSCALL);
	bool ex_old = proc ? old == PS_RUNNING : (old == GS_RUNNING || old == GS_SYSCALL);
	if (ex_new) {
		if (ev->m == NONE)
			return ERR("must have thread, but thread ID is none");
		int32_t ti = thread_get(v, ev->m);
		if (ti < 0)
			return -1;
		struct sctx *c = &v->ms[ti];
		int64_t cur = proc ? c->p : c->g;
		if (cur != -1 && cur != sid)
			return ERR("tried to run %s %" PRId64 " when one was already executing (%" PRId64
				   ") on thread %" PRId64,
				   what, sid, cur, (int64_t)ev->m);
		if (proc)
			c->p = sid;
		else
			c->g = sid;
		s->binding = ti;
	} else if (ex_old && !ex_new) {
		if (s->binding < 0)
			return ERR("stopping %s %" PRId64 " not bound to any active context", what, sid);
		struct sctx *c = &v->ms[s->binding];
		int64_t cur = proc ? c->p : c->g;
		if (cur != sid)
			return ERR("tried to stop %s %" PRId64 " when it wasn't currently executing (currently "
				   "executing %" PRId64 ") on thread %" PRId64,
				   what, sid, cur, proc ? c->m : (int64_t)ev->m);
		if (proc)
			c->p = -1;
		else
			c->g = -1;
		s->binding = -1;
	}
	return 0;
}

static bool strf(const struct gtr_generation *g, uint64_t id, const uint8_t **s, size_t *n)
{
	const char *c;
	if (!gtr_string(g, id, &c, n))
		return false;
	*s = (const uint8_t *)c;
	return true;
}

static int range_ev(struct gtr_val *v, const struct gtr_event *ev,
		    const struct gtr_generation *gen, char *msg, size_t cap, bool *panics)
{
	int kind;
	int64_t id = 0;
	uint32_t name;
	int what; /* 0 begin, 1 active, 2 end */
	switch (ev->type) {
	case 26: /* STWBegin */
	case 27: /* STWEnd */ {
		const uint8_t *s;
		size_t n;
		if (!strf(gen, ev->args[0], &s, &n))
			return PANIC("expected id %" PRIu64 " in string table", ev->args[0]);
		uint8_t buf[1024 + 32];
		memcpy(buf, "stop-the-world (", 16);
		memcpy(buf + 16, s, n);
		buf[16 + n] = ')';
		name = gtr_names_intern(v->names, buf, 17 + n);
		kind = R_GOROUTINE;
		id = (int64_t)ev->g;
		what = ev->type == 26 ? 0 : 2;
		break;
	}
	case 28: /* GCActive */
	case 29: /* GCBegin */
	case 30: /* GCEnd */
		name = v->name_gc;
		kind = R_NONE;
		what = ev->type == 29 ? 0 : ev->type == 28 ? 1 : 2;
		break;
	case 31: /* GCSweepActive */
	case 32:
	case 33:
		name = v->name_sweep;
		kind = R_PROC;
		id = (int64_t)ev->p; /* Go overrides the argument with the event's proc */
		what = ev->type == 32 ? 0 : ev->type == 31 ? 1 : 2;
		break;
	default: /* 34 GCMarkAssistActive, 35, 36 */
		name = v->name_assist;
		kind = R_GOROUTINE;
		id = ev->type == 34 ? (int64_t)ev->args[0] : (int64_t)ev->g;
		what = ev->type == 35 ? 0 : ev->type == 34 ? 1 : 2;
		break;
	}
	if (name == UINT32_MAX)
		return v->nomem = true, -1;
	if (kind == R_NONE)
		id = 0;
	bool has = has_range(v, kind, id, name);
	if (what == 2) {
		if (!has) {
			char q[1024 * 4 + 64], r[64];
			quote_name(v, name, q, sizeof q);
			res_str(r, sizeof r, kind, id);
			return ERR("inactive range %s on %s ended", q, r);
		}
		struct rlist *l = ranges_of(v, kind, id, false);
		for (size_t i = 0; i < l->n; i++) {
			if (l->v[i] == name) {
				memmove(l->v + i, l->v + i + 1, (l->n - i - 1) * sizeof l->v[0]);
				l->n--;
				break;
			}
		}
		return 0;
	}
	if (has) {
		if (what == 0) {
			char q[1024 * 4 + 64], r[64];
			quote_name(v, name, q, sizeof q);
			res_str(r, sizeof r, kind, id);
			return ERR("already active range %s on %s begun again", q, r);
		}
		return 0;
	}
	struct rlist *l = ranges_of(v, kind, id, true);
	if (!l || !gtr_grow((void **)&l->v, &l->cap, l->n, 1, sizeof l->v[0]))
		return v->nomem = true, -1;
	l->v[l->n++] = name;
	return 0;
}

/* Newer validators (not Go 1.23's, whose loop never gets there) want every
 * frame but the first of a stack complete. */
static int check_stack(const struct gtr_generation *g, uint64_t id, char *msg, size_t cap, bool *go123_accepts)
{
	const struct gtr_frame *f;
	size_t n;
	if (id == 0 || !gtr_stack(g, id, &f, &n))
		return 0;
	for (size_t i = 1; i < n; i++) {
		const char *fn, *file;
		size_t fl, ffl;
		if (!gtr_string(g, f[i].func, &fn, &fl))
			fl = 0;
		if (!gtr_string(g, f[i].file, &file, &ffl))
			ffl = 0;
		if (fl && ffl && f[i].pc && f[i].line)
			continue;
		char qf[1024 * 4 + 3], qfile[1024 * 4 + 3];
		qf[gtr_go_quote((const uint8_t *)fn, fl, qf)] = 0;
		qfile[gtr_go_quote((const uint8_t *)file, ffl, qfile)] = 0;
		*go123_accepts = true;
		return ERR("invalid stack frame trace.StackFrame{PC:0x%" PRIx64 ", Func:%s, File:%s, Line:0x%" PRIx64
			   "}: missing information",
			   f[i].pc, qf, qfile, f[i].line);
	}
	return 0;
}

/* Go's Event.Stack(): the event's first listed stack (a CPU sample's). */
static uint64_t event_stack(const struct gtr_event *ev)
{
	if (ev->type == GTR_EV_SYNC)
		return 0;
	if (ev->type == GTR_EV_CPUSAMPLE)
		return ev->args[3];
	const struct gtr_spec *s = &gtr_specs[ev->type];
	return s->nstack ? ev->args[s->stack[0] - 1] : 0;
}

int val_event(struct gtr_val *v, const struct gtr_event *ev,
	      const struct gtr_generation *gen, char *msg, size_t cap, bool *panics, bool *nomem,
	      bool *go123_accepts)
{
	*panics = *nomem = *go123_accepts = false;
	int rc = 0;
	if (v->last_ts != 0 && ev->time_ns <= v->last_ts)
		rc = ERR("timestamp out-of-order");
	else
		v->last_ts = ev->time_ns;
	if (rc)
		return rc;
	if (check_stack(gen, event_stack(ev), msg, cap, go123_accepts))
		return -1;
	if ((ev->type == 14 || ev->type == 47) && check_stack(gen, ev->args[1], msg, cap, go123_accepts))
		return -1;
	switch (ev->type) {
	case GTR_EV_SYNC:
		v->seen_sync = true;
		break;
	case 39: { /* GoLabel */
		const uint8_t *s;
		size_t n;
		if (!strf(gen, ev->args[0], &s, &n))
			return PANIC("expected id %" PRIu64 " in string table", ev->args[0]);
		if (n == 0)
			return ERR("invalid label \"\"");
		bool created;
		if (!res_get(v, false, ev->g, false, &created))
			return ERR("label for invalid goroutine %" PRId64, (int64_t)ev->g);
		break;
	}
	case 10: /* ProcStart */
		rc = transition(v, true, ev, ev->args[0], PS_IDLE, PS_RUNNING, msg, cap);
		break;
	case 11: /* ProcStop */
		rc = transition(v, true, ev, ev->p, PS_RUNNING, PS_IDLE, msg, cap);
		break;
	case 12: /* ProcSteal */
		rc = transition(v, true, ev, ev->args[0], (ev->args[3] & 0xFF) == 4 ? PS_IDLE : PS_RUNNING,
				PS_IDLE, msg, cap);
		break;
	case 13: /* ProcStatus */
		if (ev->args[1] >= 5)
			return PANIC("runtime error: index out of range [%" PRIu64 "] with length 5", ev->args[1]);
		rc = transition(v, true, ev, ev->args[0], (unsigned)(ev->args[2] & 0xFF),
				gtr_proc_status_state[ev->args[1]], msg, cap);
		break;
	case 14: /* GoCreate */
	case 47: /* GoCreateBlocked */
		rc = transition(v, false, ev, ev->args[0], GS_NOTEXIST, ev->type == 47 ? GS_WAITING : GS_RUNNABLE,
				msg, cap);
		break;
	case 15: /* GoCreateSyscall */
		rc = transition(v, false, ev, ev->args[0], GS_NOTEXIST, GS_SYSCALL, msg, cap);
		break;
	case 16: /* GoStart */
		rc = transition(v, false, ev, ev->args[0], GS_RUNNABLE, GS_RUNNING, msg, cap);
		break;
	case 17: /* GoDestroy */
		rc = transition(v, false, ev, ev->g, GS_RUNNING, GS_NOTEXIST, msg, cap);
		break;
	case 18: /* GoDestroySyscall */
		rc = transition(v, false, ev, ev->g, GS_SYSCALL, GS_NOTEXIST, msg, cap);
		break;
	case 19: /* GoStop */
		rc = transition(v, false, ev, ev->g, GS_RUNNING, GS_RUNNABLE, msg, cap);
		break;
	case 20: /* GoBlock */
		rc = transition(v, false, ev, ev->g, GS_RUNNING, GS_WAITING, msg, cap);
		break;
	case 21: /* GoUnblock */
	case 45: /* GoSwitch */
	case 46: /* GoSwitchDestroy */
		rc = transition(v, false, ev, ev->args[0], GS_WAITING, GS_RUNNABLE, msg, cap);
		break;
	case 22: /* GoSyscallBegin */
		rc = transition(v, false, ev, ev->g, GS_RUNNING, GS_SYSCALL, msg, cap);
		break;
	case 23: /* GoSyscallEnd */
		rc = transition(v, false, ev, ev->g, GS_SYSCALL, GS_RUNNING, msg, cap);
		break;
	case 24: /* GoSyscallEndBlocked */
		rc = transition(v, false, ev, ev->g, GS_SYSCALL, GS_RUNNABLE, msg, cap);
		break;
	case 25: /* GoStatus */
	case 48: /* GoStatusStack */ {
		if (ev->args[2] >= 5)
			return PANIC("runtime error: index out of range [%" PRIu64 "] with length 5", ev->args[2]);
		uint64_t old = ev->args[ev->type == 48 ? 4 : 3];
		rc = transition(v, false, ev, ev->args[0], (unsigned)(old & 0xFF), gtr_go_status_state[ev->args[2]],
				msg, cap);
		break;
	}
	case 26:
	case 27:
	case 28:
	case 29:
	case 30:
	case 31:
	case 32:
	case 33:
	case 34:
	case 35:
	case 36:
		rc = range_ev(v, ev, gen, msg, cap, panics);
		break;
	case 40: { /* UserTaskBegin */
		uint64_t id = ev->args[0];
		const uint8_t *s;
		size_t n;
		if (!strf(gen, ev->args[2], &s, &n))
			return PANIC("expected id %" PRIu64 " in string table", ev->args[2]);
		char tb[GTR_ERRSTR_CAP];
		if (id == NONE || id == 0) {
			return ERR("found invalid task ID for task of type %s", gtr_errstr(tb, sizeof tb, s, n));
		}
		if (ev->args[1] == 0)
			return ERR("found background task as the parent for task of type %s",
				   gtr_errstr(tb, sizeof tb, s, n));
		uint32_t type = gtr_names_intern(v->names, s, n);
		bool added;
		uint32_t *slot = gtr_map_put(&v->tmap, id, &added);
		if (type == UINT32_MAX || !slot ||
		    (added && !gtr_grow((void **)&v->tasks, &v->captasks, v->ntasks, 1, sizeof *v->tasks)))
			return v->nomem = true, -1;
		if (added)
			*slot = (uint32_t)v->ntasks++;
		v->tasks[*slot].id = id;
		v->tasks[*slot].type = type;
		v->tasks[*slot].live = true;
		break;
	}
	case 41: { /* UserTaskEnd */
		const uint32_t *slot = gtr_map_get(&v->tmap, ev->args[0]);
		if (slot && v->tasks[*slot].live) {
			uint32_t type = ev->args[3] > UINT32_MAX - 1 ? v->name_empty : (uint32_t)ev->args[3];
			if (type != v->tasks[*slot].type) {
				char a[1024 * 4 + 8], b[1024 * 4 + 8];
				quote_name(v, type, a, sizeof a);
				quote_name(v, v->tasks[*slot].type, b, sizeof b);
				return ERR("task end type %s doesn't match task start type %s for task %" PRIu64, a, b,
					   ev->args[0]);
			}
			v->tasks[*slot].live = false;
		}
		break;
	}
	default:
		break;
	}
	if (v->nomem) {
		v->nomem = false;
		*nomem = true;
		return -1;
	}
	return rc;
}
