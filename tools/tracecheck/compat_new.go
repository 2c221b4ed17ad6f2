//go:build go1.24

// API of internal/trace in newer toolchains (tested with Go 1.27).

package main

import (
	"internal/trace"
	"internal/trace/testtrace"
	"internal/trace/version"
)

// The newer reader emits a Sync at the start of each generation, plus a final
// one at the end of the trace (or before a reader error).
const syncStartsGeneration = true

// Stack.Frames is an iter.Seq in newer toolchains.
func stackFrames(s trace.Stack) []trace.StackFrame {
	var fs []trace.StackFrame
	for f := range s.Frames() {
		fs = append(fs, f)
	}
	return fs
}

// The validator defaults to the newest trace version, which requires clock
// snapshots in every Sync; set it from the trace header instead.
func configureValidator(v *testtrace.Validator, ver version.Version) {
	v.GoVersion = ver
}
