//go:build !go1.24

// API of internal/trace as of Go 1.23.

package main

import (
	"internal/trace"
	"internal/trace/testtrace"
	"internal/trace/version"
)

// The 1.23 reader emits a Sync after the last event of each generation.
const syncStartsGeneration = false

// Stack.Frames takes a callback in Go 1.23.
func stackFrames(s trace.Stack) []trace.StackFrame {
	var fs []trace.StackFrame
	s.Frames(func(f trace.StackFrame) bool {
		fs = append(fs, f)
		return true
	})
	return fs
}

// The 1.23 validator has no version-dependent checks.
func configureValidator(v *testtrace.Validator, ver version.Version) {}
