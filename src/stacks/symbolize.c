/*
 * symbolize.c: PC -> function, file, line for the stack tables (flusher
 * only), cached per PC for the process lifetime.
 *
 * Function names come from the modules' ELF symbol tables (static
 * functions too), through the flusher's own libdw session: cheap enough to
 * do inside an advance, and always right from the first generation on,
 * which goroutine names depend on.  Source lines come from DWARF.  A
 * module that carries its DWARF in its own file, at most GT_SYM_INLINE_DWARF
 * bytes of it (the program's own objects, typically), is read here: a
 * millisecond or two, once.  Any other module (libc with its debug info in
 * /usr/lib/debug: about 100 ms of decompression; a large program's own
 * DWARF) is read by the line resolver (symlines.c), and an advance waits for
 * its answers only for a bounded time (gt_sym_settle).  A frame whose line
 * is not known yet is written with its module's path as the file and line
 * 1, the same as a frame that has no line at all, and gets its line in a
 * later generation.
 * May call: symlines.c (the line resolver), libdw, src/core.
 */
#include "stacks.h"
#include "symlines.h"
#include "dwfl.h"

#include <elfutils/libdwfl.h>
#include <gelf.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { LINES_ASKED = 1, LINES_FINAL = 2 };

struct sym_ent {
	uint64_t pc;
	char *func;
	const char *file; /* the module's path (shared) until the line is known */
	uint64_t line;
	uint8_t lines;    /* LINES_ASKED: asked in epoch; LINES_FINAL: as good as it gets */
	uint32_t epoch;
};

/* Flusher-private (the crash path peeks, the flusher parked): open
 * addressing, grown at 50% load.  Entries and their strings live for the
 * process lifetime; a file pointer is only ever replaced by a better one,
 * never freed, so a peeker never reads freed memory. */
static struct sym_ent *cache;
static size_t cache_cap, cache_n;
static Dwfl *dwfl;

/* Modules by path (flusher-private, immortal): the path is shared by
 * every frame of the module while its lines are unknown; inline: its
 * lines are read here (see above), -1 not decided yet. */
struct mod_info {
	char *path;
	int inline_dwarf;
};
static struct mod_info *mods;
static size_t n_mods, cap_mods;

/* Larger DWARF is read by the resolver thread. */
#define GT_SYM_INLINE_DWARF (1u << 20)

static void report(void)
{
	gt_dwfl_report(&dwfl);
}

static struct mod_info *mod_of(const char *name)
{
	static struct mod_info unknown = { .path = "?", .inline_dwarf = 0 };
	if (!name || !*name)
		return &unknown;
	for (size_t i = 0; i < n_mods; i++)
		if (!strcmp(mods[i].path, name))
			return &mods[i];
	if (n_mods == cap_mods) {
		size_t nc = cap_mods ? 2 * cap_mods : 32;
		struct mod_info *n = realloc(mods, nc * sizeof *n);
		if (!n)
			return &unknown;
		mods = n;
		cap_mods = nc;
	}
	char *s = strdup(name);
	if (!s)
		return &unknown;
	mods[n_mods] = (struct mod_info){ .path = s, .inline_dwarf = -1 };
	return &mods[n_mods++];
}

/* Does m's own file carry its DWARF, at most GT_SYM_INLINE_DWARF bytes of
 * it?  Reads only the section headers (already in memory). */
static bool small_own_dwarf(Dwfl_Module *m)
{
	Dwarf_Addr bias;
	Elf *e = dwfl_module_getelf(m, &bias);
	size_t shstrndx;
	if (!e || elf_getshdrstrndx(e, &shstrndx) != 0)
		return false;
	uint64_t size = 0;
	bool info = false;
	for (Elf_Scn *scn = NULL; (scn = elf_nextscn(e, scn)) != NULL;) {
		GElf_Shdr sh;
		if (!gelf_getshdr(scn, &sh))
			continue;
		const char *n = elf_strptr(e, shstrndx, sh.sh_name);
		if (n && !strncmp(n, ".debug_", 7)) {
			size += sh.sh_size;
			info |= !strcmp(n, ".debug_info");
		}
	}
	return info && size <= GT_SYM_INLINE_DWARF;
}

/* Function name and module of pc; the line is asked of the resolver. */
static void resolve(uint64_t pc, struct sym_ent *s)
{
	gt_flusher_fork_point(); /* libdw allocates: not across a fork */
	if (!dwfl)
		report();
	Dwfl_Module *m = dwfl ? dwfl_addrmodule(dwfl, pc) : NULL;
	if (!m && dwfl) {
		report(); /* a library loaded since: refresh the module list */
		m = dwfl_addrmodule(dwfl, pc);
	}
	const char *func = NULL, *mname = NULL;
	Dwarf_Addr base = 0;
	if (m) {
		mname = dwfl_module_info(m, NULL, &base, NULL, NULL, NULL, NULL, NULL);
		func = dwfl_module_addrname(m, pc);
	}
	const char *mbase = mname ? strrchr(mname, '/') : NULL;
	mbase = mbase ? mbase + 1 : (mname ? mname : "?");
	if (func && *func) {
		s->func = strdup(func);
	} else {
		char buf[512];
		snprintf(buf, sizeof buf, "%s+0x%" PRIx64, mbase, pc - base);
		s->func = strdup(buf);
	}
	struct mod_info *mi = mod_of(mname);
	s->file = mi->path;
	s->line = 1;
	s->lines = LINES_FINAL;
	if (!m)
		return;
	if (mi->inline_dwarf < 0)
		mi->inline_dwarf = small_own_dwarf(m);
	if (mi->inline_dwarf) {
		int line = 0;
		Dwfl_Line *l = dwfl_module_getsrc(m, pc);
		const char *file = l ? dwfl_lineinfo(l, NULL, &line, NULL, NULL, NULL) : NULL;
		char *f = file && *file && line > 0 ? strdup(file) : NULL;
		if (f) {
			s->file = f;
			s->line = (uint64_t)line;
		}
	} else if (gt_symlines_ask(pc, &s->epoch)) {
		s->lines = LINES_ASKED;
	}
}

static struct sym_ent *slot(uint64_t pc)
{
	size_t j = (pc * 0x9e3779b97f4a7c15ull >> 20) & (cache_cap - 1);
	while (cache[j].func && cache[j].pc != pc)
		j = (j + 1) & (cache_cap - 1);
	return &cache[j];
}

void gt_sym_lookup(uint64_t pc, struct gt_frame *fr)
{
	if (cache_n * 2 >= cache_cap) {
		size_t ncap = cache_cap ? cache_cap * 2 : 256;
		struct sym_ent *n = calloc(ncap, sizeof *n);
		if (n) {
			struct sym_ent *old = cache;
			size_t ocap = cache_cap;
			cache = n;
			cache_cap = ncap;
			for (size_t i = 0; i < ocap; i++)
				if (old[i].func)
					*slot(old[i].pc) = old[i];
			free(old);
		}
	}
	struct sym_ent tmp = { 0 }, *s = &tmp;
	if (cache_cap && cache_n * 2 < cache_cap)
		s = slot(pc);
	if (!s->func) {
		s->pc = pc;
		resolve(pc, s);
		if (s != &tmp && s->func)
			cache_n++;
	} else if (s->lines == LINES_ASKED && s->epoch != gt_symlines_epoch()) {
		/* Asked of a resolver that stopped before answering. */
		if (!gt_symlines_ask(pc, &s->epoch))
			s->lines = LINES_FINAL;
	}
	fr->pc = pc;
	fr->func = s->func ? s->func : "?";
	fr->file = s->file ? s->file : "?";
	fr->line = s->line;
	if (s == &tmp) { /* not cached (out of memory): leak-free fallback */
		static char fb[256];
		snprintf(fb, sizeof fb, "%s", fr->func);
		free(tmp.func);
		fr->func = fb;
	}
}

void gt_sym_settle(uint64_t wait_ns)
{
	struct gt_line_answer *a;
	size_t n = gt_symlines_wait(wait_ns, &a);
	for (size_t i = 0; i < n; i++) {
		struct sym_ent *s = cache_cap ? slot(a[i].pc) : NULL;
		if (!s || !s->func) { /* not cached (out of memory) */
			free(a[i].file);
			continue;
		}
		if (a[i].file) {
			s->file = a[i].file;
			s->line = a[i].line;
		}
		s->lines = LINES_FINAL;
	}
	free(a);
}

void gt_entry_frame(struct gt_thread *t, struct gt_frame *fr)
{
	int set = __atomic_load_n(&t->entry_set, __ATOMIC_ACQUIRE);
	if (set == 1) {
		gt_sym_lookup(t->entry_fn, fr); /* a function's own address */
		return;
	}
	if (set == 2) {
		fr->pc = 1;
		fr->func = t->entry_name;
		fr->file = "?";
		fr->line = 1;
		return;
	}
	if (t->entry_n == 0) {
		/* Unknown entry (no unwind info): one fixed synthetic frame. */
		fr->pc = 1;
		fr->func = "thread";
		fr->file = "?";
		fr->line = 1;
		return;
	}
	for (int i = 0; i < t->entry_n; i++) {
		gt_sym_lookup(t->entry_pc[i], fr);
		if (strcmp(fr->func, "_start") != 0 && strncmp(fr->func, "__libc_start", 12) != 0) {
			t->entry_chosen = (int8_t)i; /* the crash path peeks this one */
			return;
		}
	}
}

bool gt_sym_peek(uint64_t pc, struct gt_frame *fr)
{
	if (!cache_cap)
		return false;
	const struct sym_ent *s = slot(pc);
	if (!s->func)
		return false;
	fr->pc = pc;
	fr->func = s->func;
	fr->file = s->file;
	fr->line = s->line;
	return true;
}
