/*
 * symbolize.c: PC -> function, file, line, off the signal path (flusher
 * only).  elfutils libdw reads ELF symbol tables (static functions too) and
 * DWARF line tables of the executable and every loaded library; results are
 * cached per PC for the process lifetime.
 * May call: libdw, src/core.
 */
#include "stacks.h"

#include <elfutils/libdwfl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct sym_ent {
	uint64_t pc;
	char *func, *file;
	uint64_t line;
};

/* Flusher-private: open addressing, grown at 50% load. */
static struct sym_ent *cache;
static size_t cache_cap, cache_n;
static Dwfl *dwfl;
static char *dwfl_debuginfo_path;

/* Separate debuginfo by build id (/usr/lib/debug/.build-id) only: the
 * standard search ends with debuginfod, whose client libdw dlopens (with
 * libcurl, GnuTLS and two dozen more libraries: hundreds of milliseconds
 * in the flusher, under the loader lock, which blocks every dlopen and
 * dladdr of the program meanwhile) and which may go to the network.
 * Files found only by .gnu_debuglink are not searched. */
static const Dwfl_Callbacks callbacks = {
	.find_elf = dwfl_linux_proc_find_elf,
	.find_debuginfo = dwfl_build_id_find_debuginfo,
	.debuginfo_path = &dwfl_debuginfo_path,
};

static void report(void)
{
	if (!dwfl)
		dwfl = dwfl_begin(&callbacks);
	if (!dwfl)
		return;
	dwfl_report_begin(dwfl);
	dwfl_linux_proc_report(dwfl, getpid());
	dwfl_report_end(dwfl, NULL, NULL);
}

void gt_sym_reset(void)
{
	if (dwfl)
		dwfl_end(dwfl);
	dwfl = NULL;
}

static void resolve(uint64_t pc, struct sym_ent *s)
{
	if (!dwfl)
		report();
	Dwfl_Module *m = dwfl ? dwfl_addrmodule(dwfl, pc) : NULL;
	if (!m && dwfl) {
		report(); /* a library loaded since: refresh the module list */
		m = dwfl_addrmodule(dwfl, pc);
	}
	char buf[512];
	const char *func = NULL, *file = NULL, *mname = NULL;
	int line = 0;
	Dwarf_Addr base = 0;
	if (m) {
		mname = dwfl_module_info(m, NULL, &base, NULL, NULL, NULL, NULL, NULL);
		func = dwfl_module_addrname(m, pc);
		Dwfl_Line *l = dwfl_module_getsrc(m, pc);
		if (l)
			file = dwfl_lineinfo(l, NULL, &line, NULL, NULL, NULL);
	}
	const char *mbase = mname ? strrchr(mname, '/') : NULL;
	mbase = mbase ? mbase + 1 : (mname ? mname : "?");
	if (func && *func) {
		s->func = strdup(func);
	} else {
		snprintf(buf, sizeof buf, "%s+0x%" PRIx64, mbase, pc - base);
		s->func = strdup(buf);
	}
	s->file = strdup(file && *file ? file : (mname && *mname ? mname : "?"));
	s->line = line > 0 ? (uint64_t)line : 1;
}

void gt_sym_lookup(uint64_t pc, struct gt_frame *fr)
{
	if (cache_n * 2 >= cache_cap) {
		size_t ncap = cache_cap ? cache_cap * 2 : 256;
		struct sym_ent *n = calloc(ncap, sizeof *n);
		if (n) {
			for (size_t i = 0; i < cache_cap; i++) {
				if (!cache[i].func)
					continue;
				size_t j = (cache[i].pc * 0x9e3779b97f4a7c15ull >> 20) & (ncap - 1);
				while (n[j].func)
					j = (j + 1) & (ncap - 1);
				n[j] = cache[i];
			}
			free(cache);
			cache = n;
			cache_cap = ncap;
		}
	}
	struct sym_ent tmp = { 0 }, *s = &tmp;
	if (cache_cap && cache_n * 2 < cache_cap) {
		size_t j = (pc * 0x9e3779b97f4a7c15ull >> 20) & (cache_cap - 1);
		while (cache[j].func && cache[j].pc != pc)
			j = (j + 1) & (cache_cap - 1);
		s = &cache[j];
	}
	if (!s->func) {
		s->pc = pc;
		resolve(pc, s);
		if (s != &tmp && s->func)
			cache_n++;
	}
	fr->pc = pc;
	fr->func = s->func ? s->func : "?";
	fr->file = s->file ? s->file : "?";
	fr->line = s->line;
	if (s == &tmp) { /* not cached (out of memory): leak-free fallback */
		static char fb[2][256];
		snprintf(fb[0], sizeof fb[0], "%s", fr->func);
		snprintf(fb[1], sizeof fb[1], "%s", fr->file);
		free(tmp.func);
		free(tmp.file);
		fr->func = fb[0];
		fr->file = fb[1];
	}
}

void gt_entry_frame(struct gt_thread *t, struct gt_frame *fr)
{
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
	size_t j = (pc * 0x9e3779b97f4a7c15ull >> 20) & (cache_cap - 1);
	while (cache[j].func && cache[j].pc != pc)
		j = (j + 1) & (cache_cap - 1);
	if (!cache[j].func)
		return false;
	fr->pc = pc;
	fr->func = cache[j].func;
	fr->file = cache[j].file;
	fr->line = cache[j].line;
	return true;
}
