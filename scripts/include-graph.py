#!/usr/bin/env python3
"""include-graph.py: checks that the #include graph of a source tree has no
cycle (issue "One-way structure").

Usage: scripts/include-graph.py [ROOT] [-I DIR]... [--dot FILE] [--units]

Scans the C files (*.c, *.h) under ROOT (default: src/), resolves each
`#include "..."` to a file under ROOT and checks two graphs:

  units    a unit is a source stem: foo.c and foo.h in one folder are one
           unit; a header without a .c (or a .c without a header) is its
           own unit.  An edge A -> B when a file of A includes a file of B.
  folders  a node per folder (its own files; nested folders are separate
           nodes).  An edge A -> B when a file in A includes a file in B.

An include is resolved, in order, against: the including file's folder,
each -I DIR, then each ancestor folder of the including file up to ROOT's
parent and that ancestor's include/ subfolder (what -I src, -I src/read and
-I src/read/include give the compiler).  Includes that resolve to nothing
under ROOT (system or outside headers) are ignored.

Prints every cycle found (one per strongly connected component, as a path
A -> B -> ... -> A) and exits 1; exits 0 when both graphs are acyclic.
With --dot FILE it writes the folder graph as Graphviz DOT (and the unit
graph too, as a second cluster, with --units).  Standard library only.
"""

import argparse
import os
import re
import sys

INCLUDE_RE = re.compile(r'^\s*#\s*include\s*"([^"]+)"')


def scan(root):
    files = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            if name.endswith((".c", ".h")):
                files.append(os.path.normpath(os.path.join(dirpath, name)))
    return files


def includes_of(path):
    out = []
    with open(path, encoding="utf-8", errors="replace") as f:
        in_comment = False
        for line in f:
            # Skip block comments well enough for #include lines.
            if in_comment:
                if "*/" in line:
                    in_comment = False
                    line = line.split("*/", 1)[1]
                else:
                    continue
            if "/*" in line and "*/" not in line.split("/*", 1)[1]:
                in_comment = True
                line = line.split("/*", 1)[0]
            m = INCLUDE_RE.match(line)
            if m:
                out.append(m.group(1))
    return out


def resolve(inc, src, root, incdirs, known):
    cands = [os.path.join(os.path.dirname(src), inc)]
    cands += [os.path.join(d, inc) for d in incdirs]
    stop = os.path.dirname(os.path.abspath(root))
    d = os.path.dirname(os.path.abspath(src))
    while True:
        cands.append(os.path.join(d, inc))
        cands.append(os.path.join(d, "include", inc))
        if d == stop or d == os.path.dirname(d):
            break
        d = os.path.dirname(d)
    for c in cands:
        c = os.path.normpath(os.path.relpath(os.path.abspath(c)))
        if c in known:
            return c
    return None


def unit_of(path):
    """foo.c and foo.h are unit foo; any other file is a unit of its own."""
    return os.path.splitext(path)[0]


def sccs(nodes, edges):
    """Tarjan's algorithm (iterative); returns the components."""
    index, low, onstack, stack, out = {}, {}, set(), [], []
    counter = [0]
    for start in sorted(nodes):
        if start in index:
            continue
        work = [(start, iter(sorted(edges.get(start, ()))))]
        index[start] = low[start] = counter[0]
        counter[0] += 1
        stack.append(start)
        onstack.add(start)
        while work:
            v, it = work[-1]
            advanced = False
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter[0]
                    counter[0] += 1
                    stack.append(w)
                    onstack.add(w)
                    work.append((w, iter(sorted(edges.get(w, ())))))
                    advanced = True
                    break
                if w in onstack:
                    low[v] = min(low[v], index[w])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    onstack.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                out.append(comp)
    return out


def cycle_in(comp, edges):
    """A cycle through the component's smallest node, as a path."""
    members = set(comp)
    start = min(comp)
    # BFS from start back to start within the component.
    prev = {}
    frontier = [start]
    seen = set()
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(edges.get(v, ())):
                if w not in members:
                    continue
                if w == start:
                    path = [v]
                    while path[-1] != start:
                        path.append(prev[path[-1]])
                    return list(reversed(path)) + [start]
                if w not in seen:
                    seen.add(w)
                    prev[w] = v
                    nxt.append(w)
        frontier = nxt
    return [start, start]


def find_cycles(nodes, edges):
    cycles = []
    for comp in sccs(nodes, edges):
        if len(comp) > 1 or comp[0] in edges.get(comp[0], ()):
            cycles.append(cycle_in(comp, edges))
    return cycles


def dot_graph(name, nodes, edges, indent="  "):
    lines = ["%ssubgraph \"cluster_%s\" {" % (indent, name), "%s  label=\"%s\";" % (indent, name)]
    for n in sorted(nodes):
        lines.append('%s  "%s:%s" [label="%s"];' % (indent, name, n, n))
    for a in sorted(edges):
        for b in sorted(edges[a]):
            lines.append('%s  "%s:%s" -> "%s:%s";' % (indent, name, a, name, b))
    lines.append(indent + "}")
    return lines


def main():
    ap = argparse.ArgumentParser(description="Cycle check of the #include graph (units and folders).")
    ap.add_argument("root", nargs="?", default="src", help="tree to scan (default: src)")
    ap.add_argument("-I", dest="incdirs", action="append", default=[], help="extra include folder")
    ap.add_argument("--dot", metavar="FILE", help="write the folder graph as Graphviz DOT")
    ap.add_argument("--units", action="store_true", help="with --dot: add the unit graph")
    args = ap.parse_args()

    if not os.path.isdir(args.root):
        print("include-graph: %s: not a folder" % args.root, file=sys.stderr)
        return 2
    root = os.path.normpath(os.path.relpath(os.path.abspath(args.root)))
    files = scan(root)
    known = set(files)
    unit_nodes, unit_edges = set(), {}
    dir_nodes, dir_edges = set(), {}
    for f in files:
        u, d = unit_of(f), os.path.dirname(f)
        unit_nodes.add(u)
        dir_nodes.add(d)
        for inc in includes_of(f):
            t = resolve(inc, f, root, args.incdirs, known)
            if t is None:
                continue
            tu, td = unit_of(t), os.path.dirname(t)
            if tu != u:
                unit_edges.setdefault(u, set()).add(tu)
            if td != d:
                dir_edges.setdefault(d, set()).add(td)

    rc = 0
    for kind, nodes, edges in (("unit", unit_nodes, unit_edges), ("folder", dir_nodes, dir_edges)):
        for cyc in find_cycles(nodes, edges):
            print("include-graph: %s cycle: %s" % (kind, " -> ".join(cyc)))
            rc = 1

    if args.dot:
        lines = ["digraph includes {", "  rankdir=LR;", "  node [shape=box];"]
        lines += dot_graph("folders", dir_nodes, dir_edges)
        if args.units:
            lines += dot_graph("units", unit_nodes, unit_edges)
        lines.append("}")
        with open(args.dot, "w") as f:
            f.write("\n".join(lines) + "\n")

    if rc == 0:
        print("include-graph: %s: %d files, %d units, %d folders: no cycle"
              % (root, len(files), len(unit_nodes), len(dir_nodes)))
    return rc


if __name__ == "__main__":
    sys.exit(main())
