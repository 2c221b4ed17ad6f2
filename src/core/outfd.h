/*
 * outfd.h: moving the trace's descriptor under a running session -- the
 * one entry point of the output that the preload library (above every
 * layer) calls, from its dup2 and dup3 wrappers.  Definition: output.c.
 * May call: nothing (declarations).
 */
#ifndef GT_CORE_OUTFD_H
#define GT_CORE_OUTFD_H

/* Moves the trace from number fd to a new one (>= floor, close-on-exec)
 * and returns it, or -1 if fd is not the running session's trace, another
 * move is under way, or no number is free.  On return the flusher no
 * longer uses fd: the caller may put a file of its own there, and owns
 * closing fd (which still refers to the trace) if it does not.  MT-safe;
 * not AS-safe (it may wait for one poll or write(2) of the flusher). */
__attribute__((visibility("hidden"))) int gt_out_fd_move(int fd, int floor);

#endif
