/*
 * gotrace-read: look into Go execution traces ("go 1.22"/"go 1.23" format)
 * and recover the complete generations of a damaged one.
 *
 *   gotrace-read dump FILE          events as text, exactly like Go's
 *                                   `gotraceraw bytes2text`
 *   gotrace-read stats FILE         generations, events per kind and per
 *                                   thread, CPU samples, sizes
 *   gotrace-read check FILE         read everything; report the first problem
 *   gotrace-read salvage IN OUT     write the longest prefix of IN made of
 *                                   complete generations to OUT
 *   gotrace-read pprof [FILTERS] FILE OUT
 *                                   the CPU samples of FILE (filtered by time,
 *                                   thread, goroutine, entry function, region
 *                                   or task) as a pprof profile (.pb.gz)
 *
 * FILE/IN may be "-" for standard input, OUT "-" for standard output.
 * Exit status: 0 ok; 1 the trace is damaged (what could be read was printed,
 * or salvaged); 2 usage; 3 cannot read/write a file; 4 not a Go trace;
 * 5 unsupported trace version; 6 salvage found no complete generation;
 * 7 pprof: no CPU sample matched (nothing written).
 */
#define _GNU_SOURCE 1
#include "gtread.h"
#include "pprof.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

enum {
	EXIT_OKAY = 0,
	EXIT_DAMAGED = 1,
	EXIT_USAGE = 2,
	EXIT_IO = 3,
	EXIT_NOTTRACE = 4,
	EXIT_VERSION = 5,
	EXIT_NOTHING = 6,
	/* pprof: no CPU sample passed the filters (or the trace has none): an
	 * empty profile would only show an empty graph, so nothing is written
	 * and scripts can tell this from a damaged trace. */
	EXIT_EMPTY = 7,
};

static const char *prog = "gotrace-read";

static void usage(FILE *f)
{
	fprintf(f,
		"usage: %s COMMAND ARGS\n"
		"  dump FILE          print every event as text (the output of Go's\n"
		"                     `gotraceraw bytes2text`)\n"
		"  stats FILE         generations, events per kind and per thread, CPU samples,\n"
		"                     bytes per event\n"
		"  check FILE         read and check every generation; report the first problem\n"
		"  salvage IN OUT     write the longest prefix of IN made of complete\n"
		"                     generations to OUT, and say what was dropped and why\n"
		"  pprof [FILTERS] FILE OUT\n"
		"                     write the CPU samples of FILE to OUT as a gzip-compressed\n"
		"                     pprof profile (go tool pprof OUT); FILTERS, all optional:\n"
		"    --from T --to T  samples in this window; T in seconds since the trace's\n"
		"                     first event, or with a unit: 1500ms, 2s, 10us, 250000ns\n"
		"    --thread M       samples taken on thread (M) M\n"
		"    --goroutine G    samples of goroutine G\n"
		"    --entry NAME     samples of goroutines whose entry function is NAME\n"
		"    --region NAME    samples whose goroutine was inside a region NAME\n"
		"    --task ID|NAME   samples whose goroutine was inside a region of that task\n"
		"                     (or of a task below it)\n"
		"    --hz N           the sampling rate (default: measured from the samples)\n"
		"FILE and IN may be '-' (standard input), OUT may be '-' (standard output).\n"
		"Exit status: 0 ok, 1 damaged trace, 2 usage, 3 file error, 4 not a Go trace,\n"
		"5 unsupported version, 6 nothing to salvage, 7 no CPU sample matched.\n",
		prog);
}

/* ------------------------------------------------------------ input */

struct input {
	const char *name;
	const uint8_t *data;
	size_t len;
	void *map; /* mmap'd */
	uint8_t *heap;
};

static int load(const char *path, struct input *in)
{
	memset(in, 0, sizeof *in);
	in->name = strcmp(path, "-") ? path : "<stdin>";
	int fd = strcmp(path, "-") ? open(path, O_RDONLY | O_CLOEXEC) : 0;
	if (fd < 0) {
		fprintf(stderr, "%s: cannot open %s: %s\n", prog, path, strerror(errno));
		return -1;
	}
	struct stat st;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
		if (st.st_size == 0) {
			in->data = (const uint8_t *)"";
			in->len = 0;
			if (fd)
				close(fd);
			return 0;
		}
		void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
		if (m != MAP_FAILED) {
			in->map = m;
			in->data = m;
			in->len = (size_t)st.st_size;
			if (fd)
				close(fd);
			return 0;
		}
	} else if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
		fprintf(stderr, "%s: cannot read %s: it is a directory\n", prog, path);
		if (fd)
			close(fd);
		return -1;
	}
	/* A pipe, or mmap failed: read it all. */
	size_t cap = 1 << 16, n = 0;
	uint8_t *buf = malloc(cap);
	for (;;) {
		if (!buf) {
			fprintf(stderr, "%s: %s: out of memory\n", prog, in->name);
			if (fd)
				close(fd);
			return -1;
		}
		ssize_t k = read(fd, buf + n, cap - n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			fprintf(stderr, "%s: cannot read %s: %s\n", prog, in->name, strerror(errno));
			free(buf);
			if (fd)
				close(fd);
			return -1;
		}
		if (k == 0)
			break;
		n += (size_t)k;
		if (n == cap) {
			cap *= 2;
			uint8_t *nb = realloc(buf, cap);
			if (!nb)
				free(buf);
			buf = nb;
		}
	}
	if (fd)
		close(fd);
	in->heap = buf;
	in->data = buf;
	in->len = n;
	return 0;
}

static void unload(struct input *in)
{
	if (in->map)
		munmap(in->map, in->len);
	free(in->heap);
}

/* ------------------------------------------------------------ messages */

/* Prints Go's message with control bytes escaped (strings of a trace may
 * end up in it). */
static void print_msg(FILE *f, const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '\n' || *p == '\t' || (*p >= 0x20 && *p != 0x7f))
			fputc(*p, f);
		else
			fprintf(f, "\\x%02x", *p);
	}
}

static const char *hint(const struct gtr_error *e)
{
	if (!strcmp(e->msg, "no frequency event found"))
		return "the generation is incomplete: the file is probably cut inside it";
	switch (e->kind) {
	case GTR_EFRAMING:
		return "the file is cut or damaged here";
	case GTR_ETABLE:
		return "a string, stack, CPU sample or frequency batch is damaged or missing";
	case GTR_EEVENT:
		return "an event batch holds bytes that are not events";
	case GTR_EREF:
		return "an event or frame refers to a string or stack its generation lacks";
	case GTR_EEMPTY:
		return "a generation without events";
	case GTR_EORDER:
		return "the events break Go's scheduler model: sequence numbers, goroutine or proc "
		       "states, regions or tasks";
	case GTR_EVALID:
		return "Go's trace validator rejects this event";
	default:
		return NULL;
	}
}

static void print_error(const char *file, const struct gtr_error *e)
{
	fprintf(stderr, "%s: %s: ", prog, file);
	if (e->gen)
		fprintf(stderr, "generation %" PRIu64 ", ", e->gen);
	if (e->kind != GTR_ENOTTRACE && e->kind != GTR_EVERSION)
		fprintf(stderr, "offset %" PRIu64 ": ", e->offset);
	print_msg(stderr, e->msg);
	const char *h = hint(e);
	if (h)
		fprintf(stderr, " (%s)", h);
	if (e->go_sees_eof)
		fprintf(stderr, " [Go's reader stops here silently, as at the end of the trace]");
	if (e->go123_accepts)
		fprintf(stderr, " [Go 1.23 accepts this; newer Go does not]");
	if (e->go_panics)
		fprintf(stderr, " [Go's reader or validator panics here]");
	fputc('\n', stderr);
}

static int open_exit(const struct gtr_error *e)
{
	switch (e->kind) {
	case GTR_ENOTTRACE:
		return EXIT_NOTTRACE;
	case GTR_EVERSION:
		return EXIT_VERSION;
	case GTR_ENOMEM:
	case GTR_EIO:
		return EXIT_IO;
	default:
		return EXIT_DAMAGED;
	}
}

/* ------------------------------------------------------------ dump */

static int write_fd(void *ctx, const void *buf, size_t len)
{
	int fd = *(int *)ctx;
	const char *p = buf;
	while (len) {
		ssize_t k = write(fd, p, len);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return -1;
		p += k;
		len -= (size_t)k;
	}
	return 0;
}

static int cmd_dump(const struct input *in)
{
	struct gtr_error e;
	int fd = 1;
	int rc = gtr_dump(in->data, in->len, write_fd, &fd, &e);
	if (rc == GTR_END)
		return EXIT_OKAY;
	if (e.kind == GTR_EIO) {
		fprintf(stderr, "%s: writing standard output: %s\n", prog, strerror(errno));
		return EXIT_IO;
	}
	print_error(in->name, &e);
	return open_exit(&e);
}

/* ------------------------------------------------------------ stats */

static int cmp_kind(const void *a, const void *b, void *ctx)
{
	const uint64_t *cnt = ctx;
	unsigned x = *(const unsigned *)a, y = *(const unsigned *)b;
	if (cnt[x] != cnt[y])
		return cnt[x] > cnt[y] ? -1 : 1;
	return x < y ? -1 : x > y;
}

static int cmd_stats(const struct input *in)
{
	struct gtr_stats st;
	int rc = gtr_stats_compute(in->data, in->len, &st);
	if (rc == GTR_ERR && st.version == 0) {
		print_error(in->name, &st.error);
		return open_exit(&st.error);
	}
	printf("file            %s: %zu bytes, format go 1.%u\n", in->name, in->len, st.version);
	if (st.gens)
		printf("generations     %" PRIu64 " complete (%" PRIu64 "..%" PRIu64 "), %" PRIu64
		       " batches (%" PRIu64 " event batches)\n",
		       st.gens, st.first_gen, st.last_gen, st.batches, st.event_batches);
	else
		printf("generations     0 complete\n");
	printf("time span       %.9f s\n", (double)(st.last_ns - st.first_ns) / 1e9);
	printf("events          %" PRIu64 " (%" PRIu64 " bytes, %.2f bytes/event)\n", st.events,
	       st.event_bytes, st.events ? (double)st.event_bytes / (double)st.events : 0.0);
	printf("cpu samples     %" PRIu64 " (%" PRIu64 " without a stack; lost samples are not recorded "
	       "in this format)\n",
	       st.samples, st.samples_no_stack);
	printf("threads         %zu\n", st.nthreads);
	printf("tables          %" PRIu64 " strings (%" PRIu64 " bytes), %" PRIu64 " stacks (%" PRIu64
	       " frames), %" PRIu64 " bytes in string/stack/frequency batches\n",
	       st.strings, st.string_bytes, st.stacks, st.frames, st.table_bytes);
	printf("batch headers   %" PRIu64 " bytes\n", st.header_bytes);
	unsigned kinds[GTR_NTYPES], nk = 0;
	for (unsigned t = 0; t < GTR_NTYPES; t++)
		if (st.count[t])
			kinds[nk++] = t;
	qsort_r(kinds, nk, sizeof kinds[0], cmp_kind, st.count);
	if (nk) {
		printf("\nevents per kind:\n  %-22s %12s %12s %8s\n", "kind", "count", "bytes", "bytes/ev");
		for (unsigned i = 0; i < nk; i++) {
			unsigned t = kinds[i];
			printf("  %-22s %12" PRIu64 " %12" PRIu64 " %8.2f\n",
			       t == GTR_EV_CPUSAMPLE ? "CPUSample" : gtr_event_name(t), st.count[t],
			       st.bytes[t], (double)st.bytes[t] / (double)st.count[t]);
		}
	}
	if (st.nthreads) {
		printf("\nevents per thread:\n  %-22s %12s %12s %8s %8s\n", "thread (m)", "events", "bytes",
		       "bytes/ev", "batches");
		for (size_t i = 0; i < st.nthreads; i++) {
			const struct gtr_thread_stats *t = &st.threads[i];
			char m[24];
			if (t->m == GTR_NONE)
				snprintf(m, sizeof m, "none");
			else
				snprintf(m, sizeof m, "%" PRIu64, t->m);
			printf("  %-22s %12" PRIu64 " %12" PRIu64 " %8.2f %8" PRIu64 "\n", m, t->events,
			       t->bytes, t->events ? (double)t->bytes / (double)t->events : 0.0, t->batches);
		}
	}
	fflush(stdout);
	gtr_stats_free(&st);
	if (rc == GTR_ERR) {
		print_error(in->name, &st.error);
		fprintf(stderr, "%s: the numbers above cover the %" PRIu64 " complete generation%s before the "
				"problem\n",
			prog, st.gens, st.gens == 1 ? "" : "s");
		return EXIT_DAMAGED;
	}
	return EXIT_OKAY;
}

/* ------------------------------------------------------------ check */

static int cmd_check(const struct input *in)
{
	struct gtr_error e;
	struct gtr_reader *r = gtr_open(in->data, in->len, NULL, &e);
	if (!r) {
		print_error(in->name, &e);
		return open_exit(&e);
	}
	const struct gtr_generation *g;
	uint64_t gens = 0, first = 0, last = 0, events = 0, samples = 0;
	int rc;
	while ((rc = gtr_next_generation(r, &g)) == GTR_OK) {
		if (!gens)
			first = g->gen;
		last = g->gen;
		gens++;
		events += g->nevents;
		samples += g->nsamples;
	}
	unsigned v = gtr_version(r);
	if (rc == GTR_END) {
		printf("%s: ok: go 1.%u trace, %" PRIu64 " generation%s (%" PRIu64 "..%" PRIu64 "), %" PRIu64
		       " events, %" PRIu64 " CPU samples\n",
		       in->name, v, gens, gens == 1 ? "" : "s", first, last, events, samples);
		gtr_close(r);
		return EXIT_OKAY;
	}
	e = *gtr_reader_error(r);
	gtr_close(r);
	print_error(in->name, &e);
	if (gens)
		fprintf(stderr, "%s: %" PRIu64 " complete generation%s (%" PRIu64 "..%" PRIu64
				") precede%s the problem; `%s salvage` recovers %s\n",
			prog, gens, gens == 1 ? "" : "s", first, last, gens == 1 ? "s" : "", prog,
			gens == 1 ? "it" : "them");
	return e.kind == GTR_ENOMEM ? EXIT_IO : EXIT_DAMAGED;
}

/* ------------------------------------------------------------ salvage */

static int write_out(const char *path, const uint8_t *data, size_t len)
{
	if (!strcmp(path, "-")) {
		int fd = 1;
		if (write_fd(&fd, data, len) != 0) {
			fprintf(stderr, "%s: writing standard output: %s\n", prog, strerror(errno));
			return -1;
		}
		return 0;
	}
	/* Write a temporary file next to OUT, then rename it: OUT may be IN. */
	size_t n = strlen(path) + 32;
	char *tmp = malloc(n);
	if (!tmp)
		return -1;
	snprintf(tmp, n, "%s.tmp.%ld", path, (long)getpid());
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		fprintf(stderr, "%s: cannot create %s: %s\n", prog, tmp, strerror(errno));
		free(tmp);
		return -1;
	}
	if (write_fd(&fd, data, len) != 0 || fsync(fd) != 0) {
		fprintf(stderr, "%s: writing %s: %s\n", prog, tmp, strerror(errno));
		close(fd);
		unlink(tmp);
		free(tmp);
		return -1;
	}
	if (close(fd) != 0 || rename(tmp, path) != 0) {
		fprintf(stderr, "%s: cannot write %s: %s\n", prog, path, strerror(errno));
		unlink(tmp);
		free(tmp);
		return -1;
	}
	free(tmp);
	return 0;
}

static int cmd_salvage(const struct input *in, const char *out)
{
	struct gtr_salvage s;
	int rc = gtr_salvage_plan(in->data, in->len, &s);
	if (rc == GTR_ERR) {
		if (s.why.kind == GTR_ENOTTRACE || s.why.kind == GTR_EVERSION) {
			print_error(in->name, &s.why);
			return open_exit(&s.why);
		}
		print_error(in->name, &s.why);
		fprintf(stderr, "%s: salvage: no complete generation in %s; %s not written\n", prog, in->name,
			out);
		return s.why.kind == GTR_ENOMEM ? EXIT_IO : EXIT_NOTHING;
	}
	if (write_out(out, in->data, s.keep_len) != 0)
		return EXIT_IO;
	fprintf(stderr,
		"%s: salvage: kept %zu generation%s (%" PRIu64 "..%" PRIu64 "), %zu events, %zu of %zu bytes\n",
		prog, s.gens_kept, s.gens_kept == 1 ? "" : "s", s.first_gen, s.last_gen, s.events_kept,
		s.keep_len, in->len);
	if (s.why.kind == GTR_ENONE) {
		fprintf(stderr, "%s: salvage: the trace is intact; %s is a copy\n", prog, out);
		return EXIT_OKAY;
	}
	fprintf(stderr, "%s: salvage: dropped %zu bytes from offset %zu because of:\n", prog,
		s.dropped_len, s.keep_len);
	print_error(in->name, &s.why);
	if (s.gens_dropped)
		fprintf(stderr,
			"%s: salvage: the generation after the kept ones was dropped although it reads "
			"fine: the broken batch belongs to it, so it is incomplete\n",
			prog);
	return EXIT_DAMAGED;
}

/* ------------------------------------------------------------ pprof */

/* A time since the trace's first event: seconds (fractions allowed), or a
 * number with the unit ns, us, ms or s.  Returns false if it is not one. */
static bool parse_time(const char *s, int64_t *ns)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (end == s || errno || v < 0)
		return false;
	double mul = 1e9;
	if (!strcmp(end, "ns"))
		mul = 1;
	else if (!strcmp(end, "us"))
		mul = 1e3;
	else if (!strcmp(end, "ms"))
		mul = 1e6;
	else if (*end && strcmp(end, "s"))
		return false;
	double t = v * mul;
	*ns = t >= 9.2e18 ? INT64_MAX : (int64_t)(t + 0.5);
	return true;
}

static bool parse_u64(const char *s, uint64_t *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (end == s || *end || errno || *s == '-')
		return false;
	*out = v;
	return true;
}

static int cmd_pprof(int argc, char **argv)
{
	struct gtr_prof_filter f;
	gtr_prof_filter_init(&f);
	uint64_t hz = 0;
	char desc[1024] = "";
	size_t dl = 0;
	int i = 2;
	for (; i < argc && !strncmp(argv[i], "--", 2) && argv[i][2]; i++) {
		const char *opt = argv[i], *val = strchr(opt, '=');
		char name[32];
		size_t nl = val ? (size_t)(val - opt) : strlen(opt);
		if (nl >= sizeof name)
			nl = sizeof name - 1;
		memcpy(name, opt, nl);
		name[nl] = 0;
		if (val)
			val++;
		else if (i + 1 < argc)
			val = argv[++i];
		else {
			fprintf(stderr, "%s: pprof: %s needs a value\n", prog, name);
			return EXIT_USAGE;
		}
		bool ok = true;
		if (!strcmp(name, "--from"))
			ok = parse_time(val, &f.from_ns);
		else if (!strcmp(name, "--to"))
			ok = parse_time(val, &f.to_ns);
		else if (!strcmp(name, "--thread"))
			ok = parse_u64(val, &f.thread);
		else if (!strcmp(name, "--goroutine"))
			ok = parse_u64(val, &f.goroutine);
		else if (!strcmp(name, "--entry"))
			f.entry = val;
		else if (!strcmp(name, "--region"))
			f.region = val;
		else if (!strcmp(name, "--task"))
			f.task = val;
		else if (!strcmp(name, "--hz"))
			ok = parse_u64(val, &hz) && hz > 0 && hz <= 1000000000u;
		else {
			fprintf(stderr, "%s: pprof: unknown option %s\n", prog, name);
			usage(stderr);
			return EXIT_USAGE;
		}
		if (!ok) {
			fprintf(stderr, "%s: pprof: bad value for %s: %s\n", prog, name, val);
			return EXIT_USAGE;
		}
		if (strcmp(name, "--hz") && dl < sizeof desc)
			dl += (size_t)snprintf(desc + dl, sizeof desc - dl, "%s%s %s", dl ? " " : "", name, val);
	}
	if (argc - i != 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (f.from_ns > f.to_ns) {
		fprintf(stderr, "%s: pprof: --from is after --to\n", prog);
		return EXIT_USAGE;
	}
	const char *out = argv[i + 1];
	struct input in;
	if (load(argv[i], &in) != 0)
		return EXIT_IO;
	struct gtr_profile p;
	int rc = gtr_profile_compute(in.data, in.len, &f, &p), ret = EXIT_OKAY;
	if (rc == GTR_ERR) {
		if (p.error.kind == GTR_ENOTTRACE || p.error.kind == GTR_EVERSION || p.error.kind == GTR_ENOMEM) {
			print_error(in.name, &p.error);
			ret = open_exit(&p.error);
			goto done;
		}
		print_error(in.name, &p.error);
		ret = EXIT_DAMAGED;
	}
	if (p.matched_samples == 0) {
		if (p.total_samples == 0 && ret == EXIT_DAMAGED)
			fprintf(stderr, "%s: pprof: no complete generation of %s holds a CPU sample; %s not written\n",
				prog, in.name, out);
		else if (p.total_samples == 0)
			fprintf(stderr,
				"%s: pprof: %s holds no CPU samples (record with the cpu_hz option or "
				"GOTRACE_CPU_HZ); %s not written\n",
				prog, in.name, out);
		else
			fprintf(stderr,
				"%s: pprof: none of the %" PRIu64 " CPU samples of %s matched the filters (%s); "
				"%s not written\n",
				prog, p.total_samples, in.name, desc, out);
		ret = EXIT_EMPTY;
		goto done;
	}
	/* The period: from --hz, else as the samples show it (period_ns in
	 * gtread.h: what a thread that stays on the CPU shows, which is also
	 * right for a source the kernel's tick slows down), else Go's default
	 * rate, 100 Hz. */
	int64_t period = hz ? (int64_t)(1e9 / (double)hz + 0.5) : p.period_ns;
	const char *how = hz ? "from --hz" : "10th percentile of the intervals between samples of one thread";
	if (!period) {
		period = 10000000;
		how = "no two samples on one thread: assumed 100 Hz";
	}
	int64_t span = p.last_ns - p.first_ns;
	int64_t w0 = f.from_ns < span ? f.from_ns : span, w1 = f.to_ns < span ? f.to_ns : span;
	char c0[1200], c1[160];
	snprintf(c0, sizeof c0, "gotrace-read pprof %s%s%s", desc, dl ? " " : "", in.name);
	snprintf(c1, sizeof c1, "period %.6f ms (%s)", (double)period / 1e6, how);
	const char *comments[] = { c0, c1 };
	const char *base = strrchr(in.name, '/');
	struct pprof_meta meta = {
		.period_ns = period,
		.duration_ns = w1 - w0,
		.mapping_file = base ? base + 1 : in.name,
		.comments = comments,
		.ncomments = 2,
	};
	uint8_t *gz;
	size_t gzlen;
	if (pprof_encode(&p, &meta, &gz, &gzlen) != 0) {
		fprintf(stderr, "%s: pprof: out of memory encoding the profile\n", prog);
		ret = EXIT_IO;
		goto done;
	}
	if (write_out(out, gz, gzlen) != 0) {
		free(gz);
		ret = EXIT_IO;
		goto done;
	}
	free(gz);
	fprintf(stderr,
		"%s: pprof: %" PRIu64 " of %" PRIu64 " CPU samples, period %.3f ms (%s), %zu stacks, "
		"%zu functions\n",
		prog, p.matched_samples, p.total_samples, (double)period / 1e6, how, p.nsamples, p.nfuncs);
	if (ret == EXIT_DAMAGED)
		fprintf(stderr, "%s: pprof: the profile covers the complete generations before the problem\n",
			prog);
done:
	gtr_profile_free(&p);
	unload(&in);
	return ret;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	const char *cmd = argv[1];
	if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) {
		usage(stdout);
		return EXIT_OKAY;
	}
	if (!strcmp(cmd, "pprof"))
		return cmd_pprof(argc, argv);
	int want = !strcmp(cmd, "salvage") ? 2 : 1;
	if ((strcmp(cmd, "dump") && strcmp(cmd, "stats") && strcmp(cmd, "check") &&
	     strcmp(cmd, "salvage")) ||
	    argc != 2 + want) {
		usage(stderr);
		return EXIT_USAGE;
	}
	struct input in;
	if (load(argv[2], &in) != 0)
		return EXIT_IO;
	int rc;
	if (!strcmp(cmd, "dump"))
		rc = cmd_dump(&in);
	else if (!strcmp(cmd, "stats"))
		rc = cmd_stats(&in);
	else if (!strcmp(cmd, "check"))
		rc = cmd_check(&in);
	else
		rc = cmd_salvage(&in, argv[3]);
	unload(&in);
	return rc;
}
