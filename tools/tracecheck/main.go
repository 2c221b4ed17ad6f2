// Command tracecheck is gotrace's judge of execution traces.
//
// It is NOT a module package: it imports Go's internal/trace packages and is
// therefore compiled as if it lived at GOROOT/src/internal/trace/gotracecheck
// of each toolchain, using `go build -overlay`. Use scripts/build-tracecheck.sh
// to build it (once for Go 1.23, once for the newest Go).
//
// Usage:
//
//	tracecheck [-summary [-keep-going]] FILE     (FILE may be "-" for stdin)
//	tracecheck -digest FILE...  |  tracecheck -prefixes FILE   (see digest.go)
//
// The whole trace is read with internal/trace.NewReader and every event is fed
// to the strict validator internal/trace/testtrace.Validator (like Go's own
// gotracevalidate). For the new toolchain, the validator's GoVersion is taken
// from the trace header (otherwise it demands clock snapshots).
//
// Exit status:
//
//	0  the trace is valid
//	1  the reader or the validator rejected it; stderr has exactly one line
//	   "tracecheck: <go version>: <error>" (the error text may span lines)
//	2  usage or I/O error
//
// # Summary format (-summary)
//
// One line per event, on stdout, in reader order. Every line is
// "<kind> gen=N t=T g=G m=M p=P" followed by kind-specific fields. All fields
// are key=value, separated by single spaces.
//
//   - gen: 1-based generation the event belongs to. Go 1.23's reader puts a
//     Sync at the END of each generation, the newer reader puts one at the START
//     of each generation plus a final one at the end; gen is derived so that
//     every non-sync event gets the same gen under both toolchains.
//   - t: event time in ns (as returned by the reader, i.e. after its clamping).
//   - g, m, p: the event's goroutine, thread and proc; -1 for none.
//   - Task IDs are unsigned decimal, except NoTask which is written as -1.
//   - String values are escaped: every byte outside [A-Za-z0-9._/:+-] is
//     written as %XX (uppercase hex); an empty string is an empty value ("name=").
//   - A frame is written func@file:line with func and file escaped (so '@', ';',
//     '%', ' ' never appear inside them; file may contain ':' so split the line
//     number off at the LAST ':').
//
// Lines:
//
//	sync        gen= t= g= m= p=
//	taskbegin   gen= t= g= m= p= id= parent= name=
//	taskend     gen= t= g= m= p= id= name=
//	regionbegin gen= t= g= m= p= task= name= stack=<leaf frame or empty>
//	regionend   gen= t= g= m= p= task= name=
//	log         gen= t= g= m= p= task= cat= msg=
//	sample      gen= t= g= m= p= stack=<frames leaf-first joined by ';'>
//	gostate     gen= t= g= m= p= id=<goid> from=<state> to=<state> reason=<reason> stack=<func of the ROOT frame of the transition's stack, or empty>
//	            evstack=<func of the LEAF frame of the event's own stack (a GoCreate's: the creator's), or empty>
//	procstate   gen= t= g= m= p= id=<procid> from=<state> to=<state>
//	label       gen= t= g= m= p= label=
//	other       gen= t= g= m= p= kind=<EventKind string>
//
// then, after the last event (only if the trace is valid):
//
//	gsum id=<goid> name=<entry function (summarizer's Name)> exec_ns= sched_ns= block_ns= syscall_ns=
//	end events=<events read, incl. Sync> gens=<number of generations>
//
// gsum lines come from internal/trace's Summarizer, one per goroutine in
// ascending id order: exec_ns = ExecTime, sched_ns = SchedWaitTime,
// block_ns = sum of BlockTimeByReason, syscall_ns = SyscallTime +
// SyscallBlockTime.
//
// Goroutine states print as Go prints them: Undetermined, NotExist, Runnable,
// Running, Waiting, Syscall; proc states: Undetermined, NotExist, Running, Idle.
//
// Differences between toolchains that remain visible in the summary: the
// number and times of "sync" lines (1.23: one at the end of each generation;
// new: one at the start of each generation, the first one timed at the
// generation's first batch, plus a final one), and hence "end events=".
// A sync that starts a generation carries that generation's number; the final
// sync (followed by no further event, including one just before a reader
// error) carries the number of the generation it closes (0 if none was read).
// Also toolchain-dependent:
//   - gostate stack= of a GoStatusStack event (Undetermined->X, written by
//     the Go 1.23 runtime for goroutines already existing at a generation
//     start): only the newer reader exposes that stack; 1.23 gives none. The
//     gsum name of such goroutines is therefore empty under 1.23.
//   - gsum times: the newer Summarizer charges a goroutine first seen in an
//     Undetermined state with the time since its generation's start Sync; the
//     1.23 one starts counting at the first event. Goroutine names agree.
//   - t= and the order of events whose raw timestamps are equal: the readers
//     break ties differently and then clamp times to be strictly increasing
//     (the newer reader's start Sync takes the earliest batch time, so an
//     event at exactly that time is shifted by 1ns). With distinct
//     timestamps, every non-sync line is identical under both toolchains.
//
// If the trace is rejected, the lines printed so far are still flushed (and
// any pending sync line), but no gsum/end lines are written. With
// -keep-going a last line "error msg=<escaped error>" follows them (a panic
// of the reader or validator, e.g. on an unknown CPU sample stack, is
// reported the same way, as "panic: ..."); the exit status is still 1.
package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"internal/trace"
	"internal/trace/testtrace"
	"internal/trace/version"
)

var (
	summary   = flag.Bool("summary", false, "print one line per event and a goroutine summary to stdout")
	keepGoing = flag.Bool("keep-going", false, "with -summary: print a rejection as a last line \"error msg=...\"")
	digestF   = flag.Bool("digest", false, "print one digest line per FILE (see digest.go)")
	prefixesF = flag.Bool("prefixes", false, "print the digest of every prefix of FILE (see digest.go)")
	out       = bufio.NewWriterSize(os.Stdout, 1<<16)
)

func usage() {
	fmt.Fprintf(os.Stderr, "usage: tracecheck [-summary [-keep-going]] FILE   (FILE may be - for stdin)\n")
	fmt.Fprintf(os.Stderr, "       tracecheck -digest FILE...\n       tracecheck -prefixes FILE\n")
	os.Exit(2)
}

func ioFail(format string, args ...any) {
	out.Flush()
	fmt.Fprintf(os.Stderr, "tracecheck: "+format+"\n", args...)
	os.Exit(2)
}

func reject(err error) {
	if *keepGoing && *summary {
		fmt.Fprintf(out, "error msg=%s\n", esc(err.Error()))
	}
	out.Flush()
	fmt.Fprintf(os.Stderr, "tracecheck: %s: %v\n", runtime.Version(), err)
	os.Exit(1)
}

func main() {
	flag.Usage = usage
	flag.Parse()
	if *digestF {
		if flag.NArg() < 1 {
			usage()
		}
		runDigest(flag.Args())
		return
	}
	if flag.NArg() != 1 {
		usage()
	}
	if *prefixesF {
		runPrefixes(flag.Arg(0))
		return
	}
	data, err := readInput(flag.Arg(0))
	if err != nil {
		ioFail("%v", err)
	}
	if *keepGoing {
		defer func() {
			if p := recover(); p != nil {
				reject(fmt.Errorf("panic: %v", p))
			}
		}()
	}

	ver, err := version.ReadHeader(bytes.NewReader(data))
	if err != nil {
		reject(err)
	}
	r, err := trace.NewReader(bytes.NewReader(data))
	if err != nil {
		reject(err)
	}
	v := testtrace.NewValidator()
	configureValidator(v, ver)

	var s *trace.Summarizer
	if *summary {
		s = trace.NewSummarizer()
	}
	c := &counter{}
	if !syncStartsGeneration {
		c.cur = 1
	}
	nevents := 0
	for {
		ev, err := r.ReadEvent()
		if err == io.EOF {
			break
		}
		if err != nil {
			c.flushPending()
			reject(err)
		}
		nevents++
		if err := v.Event(ev); err != nil {
			c.flushPending()
			reject(err)
		}
		if s != nil {
			evc := ev
			s.Event(&evc)
			c.event(&evc)
		}
	}
	if s == nil {
		return
	}
	c.flushPending()
	sum := s.Finalize()
	ids := make([]trace.GoID, 0, len(sum.Goroutines))
	for id := range sum.Goroutines {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	for _, id := range ids {
		g := sum.Goroutines[id]
		var block time.Duration
		for _, d := range g.BlockTimeByReason {
			block += d
		}
		fmt.Fprintf(out, "gsum id=%d name=%s exec_ns=%d sched_ns=%d block_ns=%d syscall_ns=%d\n",
			id, esc(g.Name), int64(g.ExecTime), int64(g.SchedWaitTime), int64(block),
			int64(g.SyscallTime+g.SyscallBlockTime))
	}
	fmt.Fprintf(out, "end events=%d gens=%d\n", nevents, c.max)
	if err := out.Flush(); err != nil {
		ioFail("writing stdout: %v", err)
	}
}

func readInput(name string) ([]byte, error) {
	if name == "-" {
		return io.ReadAll(os.Stdin)
	}
	return os.ReadFile(name)
}

// counter assigns generation numbers and prints the summary lines.
type counter struct {
	cur     int          // generation of the next non-sync event
	max     int          // largest gen printed
	pending *trace.Event // new reader only: a Sync not yet known to start or end a generation
}

func (c *counter) line(ev *trace.Event, gen int, kind string, rest string) {
	if gen > c.max {
		c.max = gen
	}
	fmt.Fprintf(out, "%s gen=%d t=%d g=%d m=%d p=%d%s\n", kind, gen, int64(ev.Time()),
		int64(ev.Goroutine()), int64(ev.Thread()), int64(ev.Proc()), rest)
}

// flushPending prints a pending Sync as the one closing the current generation.
func (c *counter) flushPending() {
	if c.pending != nil {
		c.line(c.pending, c.cur, "sync", "")
		c.pending = nil
	}
}

// startPending prints a pending Sync as the one starting a new generation.
func (c *counter) startPending() {
	if c.pending != nil {
		c.cur++
		c.line(c.pending, c.cur, "sync", "")
		c.pending = nil
	}
}

func (c *counter) event(ev *trace.Event) {
	if ev.Kind() == trace.EventSync {
		if syncStartsGeneration {
			c.startPending() // two Syncs in a row: the first one started an empty generation
			c.pending = ev
		} else {
			c.line(ev, c.cur, "sync", "")
			c.cur++
		}
		return
	}
	c.startPending()
	gen := c.cur
	var b strings.Builder
	kind := ""
	switch ev.Kind() {
	case trace.EventTaskBegin:
		t := ev.Task()
		kind = "taskbegin"
		fmt.Fprintf(&b, " id=%s parent=%s name=%s", task(t.ID), task(t.Parent), esc(t.Type))
	case trace.EventTaskEnd:
		t := ev.Task()
		kind = "taskend"
		fmt.Fprintf(&b, " id=%s name=%s", task(t.ID), esc(t.Type))
	case trace.EventRegionBegin:
		rg := ev.Region()
		kind = "regionbegin"
		leaf := ""
		if fs := stackFrames(ev.Stack()); len(fs) > 0 {
			leaf = frame(fs[0])
		}
		fmt.Fprintf(&b, " task=%s name=%s stack=%s", task(rg.Task), esc(rg.Type), leaf)
	case trace.EventRegionEnd:
		rg := ev.Region()
		kind = "regionend"
		fmt.Fprintf(&b, " task=%s name=%s", task(rg.Task), esc(rg.Type))
	case trace.EventLog:
		l := ev.Log()
		kind = "log"
		fmt.Fprintf(&b, " task=%s cat=%s msg=%s", task(l.Task), esc(l.Category), esc(l.Message))
	case trace.EventStackSample:
		kind = "sample"
		fs := stackFrames(ev.Stack())
		parts := make([]string, len(fs))
		for i, f := range fs {
			parts[i] = frame(f)
		}
		fmt.Fprintf(&b, " stack=%s", strings.Join(parts, ";"))
	case trace.EventLabel:
		kind = "label"
		fmt.Fprintf(&b, " label=%s", esc(ev.Label().Label))
	case trace.EventStateTransition:
		st := ev.StateTransition()
		switch st.Resource.Kind {
		case trace.ResourceGoroutine:
			kind = "gostate"
			from, to := st.Goroutine()
			root := ""
			if fs := stackFrames(st.Stack); len(fs) > 0 {
				root = esc(fs[len(fs)-1].Func)
			}
			creator := ""
			if fs := stackFrames(ev.Stack()); len(fs) > 0 {
				creator = esc(fs[0].Func)
			}
			fmt.Fprintf(&b, " id=%d from=%s to=%s reason=%s stack=%s evstack=%s",
				int64(st.Resource.Goroutine()), esc(from.String()), esc(to.String()), esc(st.Reason), root, creator)
		case trace.ResourceProc:
			kind = "procstate"
			from, to := st.Proc()
			fmt.Fprintf(&b, " id=%d from=%s to=%s", int64(st.Resource.Proc()), esc(from.String()), esc(to.String()))
		}
	}
	if kind == "" {
		kind = "other"
		fmt.Fprintf(&b, " kind=%s", esc(ev.Kind().String()))
	}
	c.line(ev, gen, kind, b.String())
}

func task(id trace.TaskID) string {
	if id == trace.NoTask {
		return "-1"
	}
	return strconv.FormatUint(uint64(id), 10)
}

func frame(f trace.StackFrame) string {
	return esc(f.Func) + "@" + esc(f.File) + ":" + strconv.FormatUint(f.Line, 10)
}

// esc escapes every byte outside [A-Za-z0-9._/:+-] as %XX.
func esc(s string) string {
	const hex = "0123456789ABCDEF"
	var b []byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9',
			c == '.', c == '_', c == '/', c == ':', c == '+', c == '-':
			b = append(b, c)
		default:
			b = append(b, '%', hex[c>>4], hex[c&15])
		}
	}
	return string(b)
}
