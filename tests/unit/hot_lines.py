#!/usr/bin/env python3
"""hot_lines.py LIB: the globals every emit reads have their cache line to
themselves in the built library LIB (arch.h, GT_LINE).

A global that each traced call reads and that only start and stop write
costs every writer a miss whenever another datum of its line is stored to:
the fence flag once shared a line with the advancer's seqlock, which the
advancer takes for each batch it writes (BENCHMARKS.md, "Writers during an
advance").  Their placement is the linker's, so the check reads the symbol
table of the library as built (nm -S): for each symbol below, the first
cache line it occupies must hold no byte of any other symbol.

Exit status 0 if all hold, 1 (with the offenders) otherwise.
"""
import subprocess
import sys

LINE = 64
# Read by every emit (or, gotrace_on_, by every traced call site), written
# only by start and stop; gt_session's first line holds gen and session,
# gt_advancer's the advancer's seqlock, which must not sit next to any of
# them.
HOT = ["gotrace_on_", "gt_seq_global", "gt_clock", "gt_session", "gt_advancer"]
# Padding that exists to fill a hot symbol's line (state.c).
PAD = {"gotrace_on_pad_"}


def symbols(lib):
    out = subprocess.run(["nm", "-S", "-n", "--defined-only", lib], check=True,
                         capture_output=True, text=True).stdout
    syms = []
    for ln in out.splitlines():
        f = ln.split()
        if len(f) != 4 or f[2] not in "bBdDrRgGsS":
            continue  # no size: labels, absolute symbols
        syms.append((int(f[0], 16), int(f[1], 16), f[3]))
    return syms


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: hot_lines.py LIB")
    syms = symbols(sys.argv[1])
    byname = {}
    for s in syms:
        byname.setdefault(s[2], s)
    bad = []
    for name in HOT:
        if name not in byname:
            bad.append(f"{name}: not in the symbol table")
            continue
        addr, size, _ = byname[name]
        lo = addr - addr % LINE
        hi = lo + LINE
        if addr != lo:
            bad.append(f"{name}: at {addr:#x}, not on a line boundary")
        for a, sz, n in syms:
            if n == name or n in PAD or sz == 0:
                continue
            if a < hi and a + sz > lo:
                bad.append(f"{name}: its line {lo:#x} also holds {n} ({a:#x}, {sz} bytes)")
        print(f"{name}: {addr:#x}, {size} bytes, line {lo:#x}")
    for b in bad:
        print("FAIL", b)
    sys.exit(1 if bad else 0)


main()
