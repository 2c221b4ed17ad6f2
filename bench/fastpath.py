# fastpath.py: the instructions one steady-state call of an annotation
# function executes, listed by single-stepping it in gdb (issue 14: "look at
# the generated code of the hot path").
#
#   gdb -q -batch -x bench/fastpath.py build-bench/bench/bench_emit
#
# Environment: FASTPATH_FN (default gotrace_region_begin_site_),
# FASTPATH_CFG (bench_emit configuration, default on_region_lit_pair/1T),
# FASTPATH_SKIP (calls to let pass first, default 2000: the generation's
# names are interned and the buffers open).  Prints "N=<count>" and the
# listing, "=> address <fn+offset>: instruction" per executed instruction,
# starting after the breakpoint (the 2 instructions of the frame setup
# before it are not listed).  Under the debugger time runs on while the
# thread is stopped, so the event's time delta takes more varint bytes (3
# more turns of a 7-instruction loop) than in a free run.
import os
import gdb

fn = os.environ.get("FASTPATH_FN", "gotrace_region_begin_site_")
cfg = os.environ.get("FASTPATH_CFG", "on_region_lit_pair/1T")
skip = int(os.environ.get("FASTPATH_SKIP", "2000"))
gdb.execute("set pagination off")
gdb.execute("set confirm off")
gdb.execute("break " + fn)
gdb.execute("run -p %s -r 1 -n %d -w 0 -s 0 -t 1 > /dev/null" % (cfg, skip + 1000))
gdb.execute("ignore 1 %d" % skip)
gdb.execute("continue")
out = []
while len(out) < 5000:
    ins = gdb.execute("x/i $pc", to_string=True).strip()
    out.append(ins)
    if fn + "+" in ins and ins.endswith("ret"):
        break
    gdb.execute("stepi", to_string=True)
print("N=%d" % len(out))
for line in out:
    print(line)
gdb.execute("kill")
