#!/usr/bin/env python3
"""bench_preload.py BUILD_DIR [REPS]: the preload library's cost (issue 12).

1. An uncontended pthread_mutex_lock/unlock pair (bench_preload_mutex,
   20M pairs, an idle second thread) bare and under libgotrace-preload.so
   with tracing on: ns per pair, medians of REPS runs, and the median of
   the per-repetition ratios.
2. pigz -p 4 on 32 MB of generated text, untraced and under gotrace-run
   without samples and with --cpu-hz 100 (locks, syscalls, threads and
   100 Hz CPU samples; stacks as in each row): wall and CPU (user+sys of the child) medians of
   REPS runs, runs interleaved so that a busy moment of the machine hits
   both sides.  Output byte-identity is checked on every run.
Prints a table; a benchmark, not a test.
"""
import os, resource, statistics, subprocess, sys, tempfile, time

build = os.path.abspath(sys.argv[1])
reps = int(sys.argv[2]) if len(sys.argv) > 2 else 5
lib = os.path.join(build, "libgotrace-preload.so")
run = os.path.join(build, "gotrace-run")
mutex = os.path.join(build, "bench", "bench_preload_mutex")
tmp = tempfile.mkdtemp(prefix="gotrace-bench-preload.")
env = {k: v for k, v in os.environ.items() if not k.startswith("GOTRACE_")}


def timed(cmd, stdin=None, stdout=None, extra=None):
    e = dict(env, **(extra or {}))
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    subprocess.run(cmd, stdin=stdin, stdout=stdout, env=e, check=True)
    t1 = time.monotonic()
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    return t1 - t0, cpu


bare, pre, ratio = [], [], []
for i in range(reps):
    b = float(subprocess.run([mutex], env=env, capture_output=True, text=True, check=True).stdout)
    p = float(subprocess.run([mutex], capture_output=True, text=True, check=True,
                             env=dict(env, LD_PRELOAD=lib, GOTRACE_OUT=os.path.join(tmp, "m.trace"))).stdout)
    bare.append(b); pre.append(p); ratio.append(p / b)
print("uncontended mutex lock+unlock, ns per pair (median of %d)" % reps)
print("  bare %.2f   preloaded, tracing on %.2f   ratio %.3f" %
      (statistics.median(bare), statistics.median(pre), statistics.median(ratio)))
print("  runs bare:", " ".join("%.2f" % x for x in bare))
print("  runs pre: ", " ".join("%.2f" % x for x in pre))

inp = os.path.join(tmp, "in")
with open(inp, "w") as f:
    subprocess.run(["awk", 'BEGIN { srand(12); for (i = 0; i < 700000; i++) printf "%d %x line %d of the input %f\\n", i, i * 7919, int(rand() * 1000), rand() }'],
                   stdout=f, check=True)
configs = [("untraced", None), ("no samples", []), ("--cpu-hz 100", ["--cpu-hz", "100"]),
           ("--cpu-hz 100 --stacks all", ["--cpu-hz", "100", "--stacks", "all"])]
res = {name: ([], []) for name, _ in configs}
ref = None
for i in range(reps):
    for name, opts in configs:
        out = os.path.join(tmp, "out")
        cmd = ["pigz", "-p", "4", "-c"]
        if opts is not None:
            cmd = [run, "-o", os.path.join(tmp, "p.trace")] + opts + ["--"] + cmd
        with open(inp) as fi, open(out, "wb") as fo:
            w, c = timed(cmd, stdin=fi, stdout=fo)
        data = open(out, "rb").read()
        if ref is None:
            ref = data
        assert data == ref, "pigz output differs (%s)" % name
        res[name][0].append(w); res[name][1].append(c)
size = os.path.getsize(inp)
print("pigz -p 4 -c, %.1f MB of text (median of %d, interleaved)" % (size / 1e6, reps))
bw = statistics.median(res["untraced"][0]); bc = statistics.median(res["untraced"][1])
for name, _ in configs:
    w = statistics.median(res[name][0]); c = statistics.median(res[name][1])
    print("  %-28s wall %.3f s (%.3fx)   cpu %.3f s (%.3fx)" % (name, w, w / bw, c, c / bc))
for name, _ in configs:
    print("  runs %-26s wall" % name, " ".join("%.3f" % x for x in res[name][0]),
          " cpu", " ".join("%.3f" % x for x in res[name][1]))
