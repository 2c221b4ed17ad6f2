package main

// Digest mode: a compact account of what Go's reader (and validator)
// delivered for a trace, one line per input, so that another reader (gotrace's
// C reader, src/read) can be compared with Go's on many damaged inputs
// without starting one process per input.
//
//	tracecheck -digest FILE...      one line per file: "<FILE> <digest>"
//	tracecheck -prefixes FILE       one line per prefix length L = 0..len(FILE):
//	                                "<L> <digest of FILE[:L]>"
//
// A digest is
//
//	gens=<G> events=<n1>,<n2>,...,<nG> tail=<T> err=<SRC>:<MSG>
//
// G is the number of generations the reader closed with a Sync (Go 1.23: a
// Sync after each generation; newer readers: a Sync at the start of each
// generation plus a final one, so every Sync but the first closes one).
// n_i counts the non-Sync events of generation i, T the non-Sync events
// delivered after the last closing Sync (a partial generation before an
// error). events= is "-" when G is 0. err= is "-" for a valid trace, else
// SRC is "reader", "validator" or "panic" (a panic in either, e.g. an
// unknown CPU sample stack) and MSG the first line of the error, escaped
// like the -summary strings.

import (
	"bytes"
	"fmt"
	"io"
	"strconv"
	"strings"

	"internal/trace"
	"internal/trace/testtrace"
	"internal/trace/version"
)

func digest(data []byte) (res string) {
	var counts []int
	cur, syncs := 0, 0
	fail := func(src string, err any) string {
		msg := fmt.Sprint(err)
		if i := strings.IndexByte(msg, '\n'); i >= 0 {
			msg = msg[:i]
		}
		return src + ":" + esc(msg)
	}
	errs := "-"
	func() {
		src := "reader"
		defer func() {
			if p := recover(); p != nil {
				errs = fail("panic", p)
			}
		}()
		ver, err := version.ReadHeader(bytes.NewReader(data))
		if err != nil {
			errs = fail(src, err)
			return
		}
		r, err := trace.NewReader(bytes.NewReader(data))
		if err != nil {
			errs = fail(src, err)
			return
		}
		v := testtrace.NewValidator()
		configureValidator(v, ver)
		for {
			src = "reader"
			ev, err := r.ReadEvent()
			if err == io.EOF {
				return
			}
			if err != nil {
				errs = fail(src, err)
				return
			}
			src = "validator"
			if err := v.Event(ev); err != nil {
				errs = fail(src, err)
				return
			}
			if ev.Kind() != trace.EventSync {
				cur++
				continue
			}
			syncs++
			if syncStartsGeneration && syncs == 1 {
				continue
			}
			counts = append(counts, cur)
			cur = 0
		}
	}()
	ev := "-"
	if len(counts) > 0 {
		s := make([]string, len(counts))
		for i, c := range counts {
			s[i] = strconv.Itoa(c)
		}
		ev = strings.Join(s, ",")
	}
	return fmt.Sprintf("gens=%d events=%s tail=%d err=%s", len(counts), ev, cur, errs)
}

func runDigest(files []string) {
	for _, name := range files {
		data, err := readInput(name)
		if err != nil {
			ioFail("%v", err)
		}
		fmt.Fprintf(out, "%s %s\n", name, digest(data))
	}
	if err := out.Flush(); err != nil {
		ioFail("writing stdout: %v", err)
	}
}

func runPrefixes(name string) {
	data, err := readInput(name)
	if err != nil {
		ioFail("%v", err)
	}
	for l := 0; l <= len(data); l++ {
		fmt.Fprintf(out, "%d %s\n", l, digest(data[:l:l]))
	}
	if err := out.Flush(); err != nil {
		ioFail("writing stdout: %v", err)
	}
}
