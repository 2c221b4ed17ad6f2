/*
 * dwfl.c: a libdw session on this process's own modules (dwfl.h).
 * May call: libdw.
 */
#include "dwfl.h"

#include <unistd.h>

/* Read by libdw only: NULL, its default list of debug directories. */
static char *debuginfo_path;

/* Separate debuginfo by build id (/usr/lib/debug/.build-id) only: the
 * standard search ends with debuginfod, whose client libdw dlopens (with
 * libcurl, GnuTLS and two dozen more libraries: hundreds of milliseconds
 * under the loader lock, which blocks every dlopen and dladdr of the
 * program meanwhile) and which may go to the network.  Files found only by
 * .gnu_debuglink are not searched. */
static const Dwfl_Callbacks callbacks = {
	.find_elf = dwfl_linux_proc_find_elf,
	.find_debuginfo = dwfl_build_id_find_debuginfo,
	.debuginfo_path = &debuginfo_path,
};

bool gt_dwfl_report(Dwfl **d)
{
	if (!*d)
		*d = dwfl_begin(&callbacks);
	if (!*d)
		return false;
	dwfl_report_begin(*d);
	dwfl_linux_proc_report(*d, getpid());
	dwfl_report_end(*d, NULL, NULL);
	return true;
}
