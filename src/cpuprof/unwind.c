/*
 * unwind.c: offline unwinding of CPU samples (flusher context only).
 * May call: libdw (CFI), cpuprof.h, src/stacks (dwfl.h), src/core.
 *
 * A sample carries the registers of the interrupted context and a copy of
 * the raw stack from the stack pointer up (at most CP_STACK_COPY bytes,
 * never past the thread's stack top).  We unwind it here with the DWARF
 * call-frame information (.eh_frame, else .debug_frame) of the module
 * containing each PC, read through elfutils libdw (dwarf_cfi_addrframe),
 * reading memory only from the copy.  This is correct for code built without
 * frame pointers (Debian's default -O2) and for the prologues and epilogues
 * of code built with them, where a frame-pointer walk skips the caller.
 *
 * For speed, each PC's CFI row is reduced once to a "recipe" (CFA = SP or
 * FP + k; return address saved at CFA + k; caller's FP saved at CFA + k,
 * unchanged or lost) and cached; a row that does not reduce (DWARF
 * expressions: PLT stubs, signal trampolines, stack realignment) and PCs
 * without CFI fall back to one frame-pointer step.  When the copy is too
 * short for the next step, the unwind continues with the handler's own
 * frame-pointer walk (done on the live stack, within its bounds) from the
 * frame whose frame address equals the current FP ("stitching").
 *
 * PCs: the leaf frame is the interrupted PC itself; callers are return
 * addresses minus one (inside the call instruction: the right line, and the
 * right CFI row for a call at the very end of a function).
 *
 * Module list: our own Dwfl (the symbolizer's is separate), filled from
 * /proc/self/maps (no loader lock: this runs concurrently with dlopen and
 * dlclose in other threads).  It is re-read when a PC falls outside every
 * known module (at most once per drain) and once a second; the re-read
 * keeps the modules that are still mapped as they were (libdw reuses a
 * module reported again with the same name and range), so their ELF files
 * are opened once per session, not once a second on the advance path; the
 * recipes are dropped when the module table changed, so a library unloaded
 * and replaced at the same address is not misread for long.  A sample
 * taken in a library that was unloaded before its generation was drained
 * keeps its leaf PC and stops there.
 *
 * Only the modules' own .eh_frame is read here (the ELF file, mapped, and
 * its binary-search table): .debug_frame lives with DWARF, often in a
 * separate debuginfo file with compressed sections, whose loading takes
 * up to hundreds of milliseconds and must not delay a generation's end
 * (issue 10).  It is used only for a module without any .eh_frame; a PC
 * that .eh_frame does not cover takes one frame-pointer step.
 */
#include "cpuprof.h"
#include "../stacks/dwfl.h"

#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwfl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { R_EMPTY = 0, R_CFA, R_END, R_NOCFI, R_NOMOD };
enum { H_SAME = 0, H_AT, H_VAL, H_UNDEF };

struct recipe {
	uint64_t pc;
	uint8_t kind, cfa_reg, ra_how, fp_how;
	int32_t cfa_off, ra_off, fp_off;
};

/* Flusher-private. */
static Dwfl *dwfl;
static struct recipe *tab;
static size_t tab_cap, tab_n;
static uint64_t last_full_refresh;
static bool refreshed_this_drain;

/*
 * The module table of the crash path (cp_module_of): the modules of the
 * last report, copied into static memory (no pointer into libdw, which the
 * crash path must not call).  Written by the flusher at each report;
 * read by the crash drain only once the flusher is parked at a park point,
 * which is never inside an advance (so never inside a report): the
 * flusher's store of flusher_busy = 0 and the crash path's load of it order
 * the two.  A module loaded since the last report is not in it: its PCs
 * are written bare.
 */
#define CP_MODS 256
static struct cp_mod {
	uint64_t lo, hi;
	uint32_t name, path; /* offsets into mod_text */
} mods[CP_MODS];
static int nmods;
static char mod_text[32768];
static size_t mod_text_len;

static uint32_t mod_text_add(const char *s)
{
	size_t n = strlen(s);
	if (mod_text_len + n + 1 > sizeof mod_text)
		return 0; /* offset 0 holds "" */
	uint32_t at = (uint32_t)mod_text_len;
	memcpy(mod_text + at, s, n + 1);
	mod_text_len += n + 1;
	return at;
}

static int mod_note(Dwfl_Module *m, void **ud, const char *name, Dwarf_Addr start, void *arg)
{
	(void)ud;
	(void)arg;
	if (nmods == CP_MODS)
		return DWARF_CB_ABORT;
	Dwarf_Addr lo = 0, hi = 0;
	dwfl_module_info(m, NULL, &lo, &hi, NULL, NULL, NULL, NULL);
	if (hi <= lo)
		return DWARF_CB_OK;
	const char *path = name ? name : "";
	const char *base = strrchr(path, '/');
	struct cp_mod *cm = &mods[nmods++];
	cm->lo = start < lo ? start : lo;
	cm->hi = hi;
	cm->path = mod_text_add(path);
	cm->name = mod_text_add(base ? base + 1 : path);
	return DWARF_CB_OK;
}

static void mods_snapshot(void)
{
	nmods = 0;
	mod_text_len = 1;
	mod_text[0] = 0;
	if (dwfl)
		dwfl_getmodules(dwfl, mod_note, NULL, 0);
}

bool cp_module_of(uint64_t pc, const char **name, const char **path, uint64_t *base)
{
	for (int i = 0; i < nmods; i++) {
		if (pc >= mods[i].lo && pc < mods[i].hi) {
			*name = mod_text + mods[i].name;
			*path = mod_text + mods[i].path;
			*base = mods[i].lo;
			return true;
		}
	}
	return false;
}

static void report(void)
{
	gt_flusher_fork_point(); /* libdw allocates: not across a fork */
	if (!gt_dwfl_report(&dwfl))
		return;
	mods_snapshot();
}

static void tab_clear(void)
{
	if (tab)
		memset(tab, 0, tab_cap * sizeof *tab);
	tab_n = 0;
}

/* Called at the start of each drain. */
/* The crash-path module table differs from the one saved in prev? */
static bool mods_changed(const struct cp_mod *prev, int nprev, const char *prev_text)
{
	if (nprev != nmods)
		return true;
	for (int i = 0; i < nmods; i++)
		if (prev[i].lo != mods[i].lo || prev[i].hi != mods[i].hi ||
		    strcmp(prev_text + prev[i].path, mod_text + mods[i].path) != 0)
			return true;
	return false;
}

void cp_unwind_refresh(void)
{
	uint64_t now = gt_mono_ns();
	refreshed_this_drain = false;
	if (!dwfl || now - last_full_refresh > 1000000000ull) {
		static struct cp_mod prev[CP_MODS]; /* flusher-private */
		static char prev_text[sizeof mod_text];
		int nprev = nmods;
		memcpy(prev, mods, sizeof(mods[0]) * (size_t)nmods);
		memcpy(prev_text, mod_text, mod_text_len);
		report();
		if (mods_changed(prev, nprev, prev_text))
			tab_clear();
		last_full_refresh = now;
		refreshed_this_drain = true;
	}
}

void cp_unwind_reset(void)
{
	if (dwfl)
		dwfl_end(dwfl);
	dwfl = NULL;
	nmods = 0;
	free(tab);
	tab = NULL;
	tab_cap = tab_n = 0;
}

/* Reduce a register rule to H_* (+ offset from the CFA). */
static int reg_rule(Dwarf_Op *ops, size_t nops, int32_t *off)
{
	if (nops == 0)
		return ops == NULL ? H_SAME : H_UNDEF;
	int64_t st_v[4];
	bool st_cfa[4];
	int sp = 0;
	bool value = false;
	for (size_t i = 0; i < nops; i++) {
		uint8_t a = ops[i].atom;
		if (value)
			return -1; /* DW_OP_stack_value must be last */
		if (a == DW_OP_call_frame_cfa || (a >= DW_OP_lit0 && a <= DW_OP_lit31) ||
		    a == DW_OP_constu || a == DW_OP_consts || (a >= 0x08 && a <= 0x0f)) {
			if (sp == 4)
				return -1;
			st_cfa[sp] = a == DW_OP_call_frame_cfa;
			st_v[sp] = a == DW_OP_call_frame_cfa ? 0
			           : (a >= DW_OP_lit0 && a <= DW_OP_lit31) ? a - DW_OP_lit0
			                                                   : (int64_t)ops[i].number;
			sp++;
		} else if (a == DW_OP_plus_uconst) {
			if (sp < 1)
				return -1;
			st_v[sp - 1] += (int64_t)ops[i].number;
		} else if (a == DW_OP_plus || a == DW_OP_minus) {
			if (sp < 2 || (st_cfa[sp - 1] && a == DW_OP_minus))
				return -1;
			if (st_cfa[sp - 2] && st_cfa[sp - 1])
				return -1;
			st_v[sp - 2] = a == DW_OP_plus ? st_v[sp - 2] + st_v[sp - 1] : st_v[sp - 2] - st_v[sp - 1];
			st_cfa[sp - 2] = st_cfa[sp - 2] || st_cfa[sp - 1];
			sp--;
		} else if (a == DW_OP_stack_value) {
			value = true;
		} else {
			return -1;
		}
	}
	if (sp != 1 || !st_cfa[0] || st_v[0] < INT32_MIN || st_v[0] > INT32_MAX)
		return -1;
	*off = (int32_t)st_v[0];
	return value ? H_VAL : H_AT;
}

static void compute(uint64_t pc, struct recipe *r)
{
	r->pc = pc;
	r->kind = R_NOMOD;
	Dwfl_Module *m = dwfl ? dwfl_addrmodule(dwfl, pc) : NULL;
	if (!m && !refreshed_this_drain) {
		report(); /* a library loaded since the last look */
		refreshed_this_drain = true;
		m = dwfl ? dwfl_addrmodule(dwfl, pc) : NULL;
	}
	if (!m)
		return;
	r->kind = R_NOCFI;
	Dwarf_Frame *fr = NULL;
	Dwarf_Addr bias = 0;
	gt_flusher_fork_point(); /* loading a module's CFI allocates */
	Dwarf_CFI *cfi = dwfl_module_eh_cfi(m, &bias);
	if (cfi && dwarf_cfi_addrframe(cfi, pc - bias, &fr) != 0)
		return; /* not covered: a frame-pointer step (see the top) */
	if (!cfi) {
		fr = NULL;
		cfi = dwfl_module_dwarf_cfi(m, &bias);
		if (!cfi || dwarf_cfi_addrframe(cfi, pc - bias, &fr) != 0)
			return;
	}
	bool signalp = false;
	int ra_reg = dwarf_frame_info(fr, NULL, NULL, &signalp);
	Dwarf_Op *ops, mem[3];
	size_t nops;
	if (ra_reg < 0 || signalp || dwarf_frame_cfa(fr, &ops, &nops) != 0 || nops != 1)
		goto out;
	int reg;
	int64_t off;
	if (ops[0].atom == DW_OP_bregx) {
		reg = (int)ops[0].number;
		off = (int64_t)ops[0].number2;
	} else if (ops[0].atom >= DW_OP_breg0 && ops[0].atom <= DW_OP_breg31) {
		reg = ops[0].atom - DW_OP_breg0;
		off = (int64_t)ops[0].number;
	} else {
		goto out;
	}
	if ((reg != CP_REG_SP && reg != CP_REG_FP) || off < INT32_MIN || off > INT32_MAX)
		goto out;
	int32_t ra_off = 0, fp_off = 0;
	if (dwarf_frame_register(fr, ra_reg, mem, &ops, &nops) != 0)
		goto out;
	int ra_how = reg_rule(ops, nops, &ra_off);
	if (ra_how == H_UNDEF) {
		r->kind = R_END; /* outermost frame (_start, clone) */
		goto out;
	}
	if (ra_how != H_AT && ra_how != H_VAL)
		goto out;
	int fp_how = H_UNDEF;
	if (dwarf_frame_register(fr, CP_REG_FP, mem, &ops, &nops) == 0)
		fp_how = reg_rule(ops, nops, &fp_off);
	if (fp_how < 0)
		fp_how = H_UNDEF;
	r->kind = R_CFA;
	r->cfa_reg = (uint8_t)reg;
	r->cfa_off = (int32_t)off;
	r->ra_how = (uint8_t)ra_how;
	r->ra_off = ra_off;
	r->fp_how = (uint8_t)fp_how;
	r->fp_off = fp_off;
out:
	free(fr);
}

static const struct recipe *recipe_for(uint64_t pc)
{
	static struct recipe tmp;
	if (tab_n * 2 >= tab_cap) {
		size_t ncap = tab_cap ? tab_cap * 2 : 4096;
		if (ncap > (1u << 20)) {
			tab_clear(); /* bounded: start over */
		} else {
			struct recipe *n = calloc(ncap, sizeof *n);
			if (!n) {
				compute(pc, &tmp);
				return &tmp;
			}
			for (size_t i = 0; i < tab_cap; i++) {
				if (tab[i].kind == R_EMPTY)
					continue;
				size_t j = (tab[i].pc * 0x9e3779b97f4a7c15ull >> 17) & (ncap - 1);
				while (n[j].kind != R_EMPTY)
					j = (j + 1) & (ncap - 1);
				n[j] = tab[i];
			}
			free(tab);
			tab = n;
			tab_cap = ncap;
		}
	}
	size_t j = (pc * 0x9e3779b97f4a7c15ull >> 17) & (tab_cap - 1);
	while (tab[j].kind != R_EMPTY) {
		if (tab[j].pc == pc)
			return &tab[j];
		j = (j + 1) & (tab_cap - 1);
	}
	compute(pc, &tab[j]);
	tab_n++;
	return &tab[j];
}

struct mem {
	const uint8_t *bytes;
	uint64_t base, len;
};

static bool rd(const struct mem *m, uint64_t addr, uint64_t *out)
{
	if (addr < m->base || addr - m->base > m->len || m->len - (addr - m->base) < 8)
		return false;
	memcpy(out, m->bytes + (addr - m->base), 8);
	return true;
}

void cp_unwind(const struct cp_rec *r, struct cp_unwound *o)
{
	const uint64_t *fps = (const uint64_t *)(const void *)(r + 1);
	struct mem m = { (const uint8_t *)(fps + 2 * r->nfp), r->regs[CP_REG_SP], r->stack_len };
	uint64_t pc = r->regs[CP_REG_PC], sp = r->regs[CP_REG_SP], fp = r->regs[CP_REG_FP];
	bool fp_ok = true, truncated = false, leaf = true;
	o->n = 0;
	o->how = CP_UW_NONE;
	if (pc == 0)
		return;
	o->pcs[o->n++] = pc;
	if (m.len == 0 && r->nfp == 0)
		truncated = true; /* nothing to unwind with */
	while (!truncated && o->n < CP_MAX_FRAMES) {
		const struct recipe *rc = recipe_for(leaf ? pc : pc - 1);
		uint64_t ra, nsp, nfp = fp;
		if (rc->kind == R_END || (rc->kind == R_NOMOD && !leaf))
			break;
		if (rc->kind == R_CFA) {
			if (rc->cfa_reg == CP_REG_FP && !fp_ok)
				break;
			uint64_t cfa = (rc->cfa_reg == CP_REG_SP ? sp : fp) + (uint64_t)(int64_t)rc->cfa_off;
			if (rc->ra_how == H_VAL)
				ra = cfa + (uint64_t)(int64_t)rc->ra_off;
			else if (!rd(&m, cfa + (uint64_t)(int64_t)rc->ra_off, &ra)) {
				truncated = true;
				break;
			}
			if (rc->fp_how == H_AT) {
				if (!rd(&m, cfa + (uint64_t)(int64_t)rc->fp_off, &nfp)) {
					truncated = true;
					break;
				}
			} else if (rc->fp_how == H_VAL) {
				nfp = cfa + (uint64_t)(int64_t)rc->fp_off;
			} else if (rc->fp_how == H_UNDEF) {
				fp_ok = false;
			}
			nsp = cfa;
			o->how |= CP_UW_CFI;
		} else {
			/* No usable CFI: one frame-pointer step. */
			if (!fp_ok || fp < sp)
				break;
			uint64_t sfp;
			if (!rd(&m, fp + 8, &ra) || !rd(&m, fp, &sfp)) {
				truncated = true;
				break;
			}
			nfp = sfp;
			nsp = fp + 16;
			o->how |= CP_UW_FP;
		}
		if (ra < 4096 || nsp <= sp)
			break;
		o->pcs[o->n++] = ra - 1;
		pc = ra;
		sp = nsp;
		fp = nfp;
		leaf = false;
	}
	if (truncated && fp_ok && r->nfp > 0) {
		/* Continue with the handler's walk from the frame at fp. */
		int j = 0;
		while (j < r->nfp && fps[2 * j] != fp)
			j++;
		/* fps[2j] == fp: the current frame's base, whose return
		 * address fps[2j+1] we could not read from the copy. */
		for (; j < r->nfp && o->n < CP_MAX_FRAMES; j++)
			o->pcs[o->n++] = fps[2 * j + 1] - 1;
		o->how |= CP_UW_STITCH;
	}
}
