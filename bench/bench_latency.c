/*
 * bench_latency: does a generation advance stall a writer?  (issue 14)
 *
 * Writer threads emit region begin/end events (the _lit fast path) as fast
 * as they can for S seconds while the library advances the generation
 * every 1 ms; each call is timed with the timestamp counter and filed in
 * one of two histograms: "during an advance" (the generation was bumped
 * and the previous one is not completely written yet: the window in which
 * a writer could feel the advancer) or "away" from one.  Printed: events,
 * p50 / p99 / p99.9 / max of each and the share of calls over 150 ns, for
 *   1w          one writer, CPU sampling off
 *   1w+cpu      one writer, CPU sampling at 1 kHz (perf events, or the
 *               per-thread timer where perf is refused)
 *   2w+churn    two writers and a thread that keeps creating threads that
 *               emit a few events and exit, sampling on
 * A benchmark, not a test: it judges nothing.  It links the library's
 * objects (not the shared library) to read the generation counters.
 *
 * usage: bench_latency [-s seconds] [-a advance_us] [-o trace_dir]
 */
#define _GNU_SOURCE 1
#include <gotrace.h>
#include "arch/arch.h"
#include "core/core.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Histogram of latencies in cycles: exact below LIN, then 16 sub-buckets
 * per power of two. */
#define LIN 2048
#define LOGB (64 * 16)
struct hist {
	uint64_t lin[LIN];
	uint64_t log[LOGB];
	uint64_t n, max;
};

static int hbucket(uint64_t v)
{
	int e = 63 - __builtin_clzll(v);        /* v >= LIN: e >= 11 */
	int sub = (int)((v >> (e - 4)) & 15);
	return e * 16 + sub;
}

static uint64_t hvalue(int b)
{
	int e = b / 16, sub = b % 16;
	return (16ull + (uint64_t)sub) << (e - 4);
}

static void hadd(struct hist *h, uint64_t v)
{
	if (v < LIN)
		h->lin[v]++;
	else
		h->log[hbucket(v)]++;
	h->n++;
	if (v > h->max)
		h->max = v;
}

static void hmerge(struct hist *a, const struct hist *b)
{
	for (int i = 0; i < LIN; i++)
		a->lin[i] += b->lin[i];
	for (int i = 0; i < LOGB; i++)
		a->log[i] += b->log[i];
	a->n += b->n;
	if (b->max > a->max)
		a->max = b->max;
}

static uint64_t hpct(const struct hist *h, double q)
{
	uint64_t want = (uint64_t)(q * (double)h->n), seen = 0;
	for (int i = 0; i < LIN; i++)
		if ((seen += h->lin[i]) > want)
			return (uint64_t)i;
	for (int i = 0; i < LOGB; i++)
		if ((seen += h->log[i]) > want)
			return hvalue(i);
	return h->max;
}

static double ns_per_cycle;

/* Share of the calls that took more than ns nanoseconds: the tail's mass,
 * which moves with a few misses per generation long before p99.9 does. */
static double hover(const struct hist *h, double ns)
{
	uint64_t lim = (uint64_t)(ns / ns_per_cycle), over = 0;
	for (int i = 0; i < LIN; i++)
		if ((uint64_t)i > lim)
			over += h->lin[i];
	for (int i = 0; i < LOGB; i++)
		if (hvalue(i) > lim)
			over += h->log[i];
	return h->n ? (double)over / (double)h->n : 0;
}

static void calibrate(void)
{
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	uint64_t c0 = gt_arch_cycles();
	usleep(200000);
	uint64_t c1 = gt_arch_cycles();
	clock_gettime(CLOCK_MONOTONIC, &b);
	double ns = (double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec);
	ns_per_cycle = ns / (double)(c1 - c0);
}

static volatile int stop_flag;

struct writer {
	pthread_t th;
	/* [0] away, [1] during an advance (not first), [2] the thread's first
	 * call in a generation (it restates the thread: stated_gen) */
	struct hist h[3];
};

/* The previous generation is not completely written yet. */
static inline int advancing(void)
{
	uint64_t g = __atomic_load_n(&gt_session.gen, __ATOMIC_RELAXED);
	uint64_t w = __atomic_load_n(&gt_session.gens_written, __ATOMIC_RELAXED);
	return g != 0 && w + gt_session.gen_first < g;
}

/* The generation of the last status the calling thread wrote: it changes
 * exactly at the thread's first call in a generation (the prologue restates
 * the thread), so comparing it around a call tells a first call for sure,
 * also when the generation was bumped while the call ran (the generation
 * counter read before or after the call would file those by guess). */
static inline uint64_t stated_gen(void)
{
	struct gt_thread *t = gt_tls_self;
	return t ? __atomic_load_n(&t->status_gen, __ATOMIC_RELAXED) : 0;
}

static void *writer_main(void *arg)
{
	struct writer *w = arg;
	gotrace_thread_name("writer");
	while (!__atomic_load_n(&stop_flag, __ATOMIC_RELAXED)) {
		for (int i = 0; i < 256; i++) {
			int adv = advancing();
			uint64_t s0 = stated_gen();
			uint64_t t0 = gt_arch_cycles();
			gotrace_region_begin_lit(0, "lat");
			uint64_t t1 = gt_arch_cycles();
			/* Classified outside the timed calls: advancing() loads
			 * lines the flusher writes, a miss the library does not
			 * cause. */
			uint64_t s1 = stated_gen();
			int adv2 = advancing();
			uint64_t t1b = gt_arch_cycles();
			gotrace_region_end_lit(0, "lat");
			uint64_t t2 = gt_arch_cycles();
			uint64_t s2 = stated_gen();
			hadd(&w->h[s1 != s0 ? 2 : adv | adv2], t1 - t0);
			hadd(&w->h[s2 != s1 ? 2 : adv2 | advancing()], t2 - t1b);
		}
	}
	return NULL;
}

static void *short_lived(void *arg)
{
	(void)arg;
	for (int i = 0; i < 10; i++)
		gotrace_log_lit(0, "churn", "hello");
	return NULL;
}

static void *churn_main(void *arg)
{
	(void)arg;
	while (!__atomic_load_n(&stop_flag, __ATOMIC_RELAXED)) {
		pthread_t t;
		if (pthread_create(&t, NULL, short_lived, NULL) == 0)
			pthread_join(t, NULL);
	}
	return NULL;
}

static void row(const char *name, const struct hist *h)
{
	printf("| %s | %llu | %.0f | %.0f | %.0f | %.0f | %.3f%% |\n", name, (unsigned long long)h->n,
	       (double)hpct(h, 0.5) * ns_per_cycle, (double)hpct(h, 0.99) * ns_per_cycle,
	       (double)hpct(h, 0.999) * ns_per_cycle, (double)h->max * ns_per_cycle, 100 * hover(h, 150));
}

static void run(const char *name, int writers, int cpu, int churn, double secs, uint64_t adv_ns,
                const char *dir)
{
	char path[512];
	snprintf(path, sizeof path, "%s/bench_latency.trace", dir);
	gotrace_options o;
	gotrace_options_init(&o);
	o.advance_period_ns = adv_ns;
	o.event_stacks = 0;
	if (cpu) {
		o.cpu_hz = 1000;
		o.cpu_source = GOTRACE_CPU_PERF; /* falls back by itself */
	}
	if (gotrace_start_path(path, &o) != 0) {
		fprintf(stderr, "bench_latency: %s\n", gotrace_last_error());
		exit(1);
	}
	stop_flag = 0;
	struct writer *w = calloc((size_t)writers, sizeof *w);
	pthread_t ch;
	for (int i = 0; i < writers; i++)
		pthread_create(&w[i].th, NULL, writer_main, &w[i]);
	if (churn)
		pthread_create(&ch, NULL, churn_main, NULL);
	usleep((useconds_t)(secs * 1e6));
	__atomic_store_n(&stop_flag, 1, __ATOMIC_RELAXED);
	for (int i = 0; i < writers; i++)
		pthread_join(w[i].th, NULL);
	if (churn)
		pthread_join(ch, NULL);
	gotrace_stats st;
	gotrace_get_stats(&st);
	gotrace_stop();
	static struct hist away, during, first;
	memset(&away, 0, sizeof away);
	memset(&during, 0, sizeof during);
	memset(&first, 0, sizeof first);
	for (int i = 0; i < writers; i++) {
		hmerge(&away, &w[i].h[0]);
		hmerge(&during, &w[i].h[1]);
		hmerge(&first, &w[i].h[2]);
	}
	char label[128];
	snprintf(label, sizeof label, "%s, away from an advance", name);
	row(label, &away);
	snprintf(label, sizeof label, "%s, during an advance", name);
	row(label, &during);
	snprintf(label, sizeof label, "%s, first call of a writer in a generation", name);
	row(label, &first);
	fprintf(stderr, "%s: %llu generations, %llu events dropped, %llu CPU samples; %s\n", name,
	        (unsigned long long)st.generations, (unsigned long long)st.events_dropped,
	        (unsigned long long)st.cpu_samples, gotrace_start_notes());
	free(w);
	unlink(path);
}

int main(int argc, char **argv)
{
	double secs = 2;
	uint64_t adv_us = 1000;
	const char *dir = "/tmp";
	int c;
	while ((c = getopt(argc, argv, "s:a:o:")) != -1) {
		switch (c) {
		case 's': secs = atof(optarg); break;
		case 'a': adv_us = strtoull(optarg, NULL, 10); break;
		case 'o': dir = optarg; break;
		default:
			fprintf(stderr, "usage: bench_latency [-s seconds] [-a advance_us] [-o trace_dir]\n");
			return 2;
		}
	}
	calibrate();
	printf("Per-call latency of region begin/end (_lit), ns (timestamp counter), advance every %llu us, "
	       "%.1f s per configuration\n\n",
	       (unsigned long long)adv_us, secs);
	printf("| configuration | calls | p50 | p99 | p99.9 | max | over 150 ns |\n"
	       "|---|---:|---:|---:|---:|---:|---:|\n");
	run("1w", 1, 0, 0, secs, adv_us * 1000, dir);
	run("1w+cpu", 1, 1, 0, secs, adv_us * 1000, dir);
	run("2w+churn+cpu", 2, 1, 1, secs, adv_us * 1000, dir);
	return 0;
}
