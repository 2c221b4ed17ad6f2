/*
 * pprof.c: a gtr_profile as a gzip-compressed profile.proto (see pprof.h).
 *
 * The messages are filled in arrays allocated once (one per message kind),
 * packed by protobuf-c into one buffer and compressed by zlib in gzip
 * format, which is what `go tool pprof` and other pprof readers expect of a
 * .pb.gz file.
 */
#include "pprof.h"
#include "profile.pb-c.h"

#include <stdlib.h>
#include <string.h>
#include <zlib.h>

typedef Gotrace__Pprof__Profile Profile;
typedef Gotrace__Pprof__ValueType ValueType;
typedef Gotrace__Pprof__Sample Sample;
typedef Gotrace__Pprof__Mapping Mapping;
typedef Gotrace__Pprof__Location Location;
typedef Gotrace__Pprof__Line Line;
typedef Gotrace__Pprof__Function Function;

static int gzip_buf(const uint8_t *in, size_t len, uint8_t **out, size_t *outlen)
{
	z_stream z;
	memset(&z, 0, sizeof z);
	/* windowBits 15 + 16: a gzip header and trailer rather than zlib's. */
	if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		return -1;
	uLong cap = deflateBound(&z, (uLong)len) + 64;
	uint8_t *buf = malloc(cap);
	if (!buf) {
		deflateEnd(&z);
		return -1;
	}
	z.next_in = (Bytef *)in;
	z.avail_in = (uInt)len;
	z.next_out = buf;
	z.avail_out = (uInt)cap;
	int rc = deflate(&z, Z_FINISH);
	if (rc != Z_STREAM_END) {
		deflateEnd(&z);
		free(buf);
		return -1;
	}
	*outlen = z.total_out;
	*out = buf;
	deflateEnd(&z);
	return 0;
}

int pprof_encode(const struct gtr_profile *p, const struct pprof_meta *m, uint8_t **out, size_t *outlen)
{
	int ret = -1;
	size_t nused = 0, nlocids = 0;
	for (size_t i = 0; i < p->nsamples; i++) {
		nused += p->samples[i].count > 0;
		nlocids += p->samples[i].count > 0 ? p->samples[i].n : 0;
	}
	/* The trace's strings, then the profile's own. */
	enum { S_SAMPLES, S_COUNT, S_CPU, S_NS, S_MAPFILE, S_EXTRA };
	size_t base = p->nstrings ? p->nstrings : 1;
	size_t nstr = base + S_EXTRA + m->ncomments;
	char **strs = calloc(nstr, sizeof *strs);
	ValueType *vt = calloc(3, sizeof *vt);
	ValueType **vtp = calloc(2, sizeof *vtp);
	Sample *sm = calloc(nused ? nused : 1, sizeof *sm);
	Sample **smp = calloc(nused ? nused : 1, sizeof *smp);
	int64_t *vals = calloc(2 * (nused ? nused : 1), sizeof *vals);
	uint64_t *locids = calloc(nlocids ? nlocids : 1, sizeof *locids);
	Location *lc = calloc(p->nlocs ? p->nlocs : 1, sizeof *lc);
	Location **lcp = calloc(p->nlocs ? p->nlocs : 1, sizeof *lcp);
	Line *ln = calloc(p->nlocs ? p->nlocs : 1, sizeof *ln);
	Line **lnp = calloc(p->nlocs ? p->nlocs : 1, sizeof *lnp);
	Function *fn = calloc(p->nfuncs ? p->nfuncs : 1, sizeof *fn);
	Function **fnp = calloc(p->nfuncs ? p->nfuncs : 1, sizeof *fnp);
	int64_t *comments = calloc(m->ncomments ? m->ncomments : 1, sizeof *comments);
	Mapping map = GOTRACE__PPROF__MAPPING__INIT;
	Mapping *mapp = &map;
	uint8_t *packed = NULL;
	if (!strs || !vt || !vtp || !sm || !smp || !vals || !locids || !lc || !lcp || !ln || !lnp || !fn ||
	    !fnp || !comments)
		goto out;

	strs[0] = (char *)"";
	for (size_t i = 1; i < p->nstrings; i++)
		strs[i] = (char *)p->strings[i];
	strs[base + S_SAMPLES] = (char *)"samples";
	strs[base + S_COUNT] = (char *)"count";
	strs[base + S_CPU] = (char *)"cpu";
	strs[base + S_NS] = (char *)"nanoseconds";
	strs[base + S_MAPFILE] = (char *)(m->mapping_file ? m->mapping_file : "");
	for (size_t i = 0; i < m->ncomments; i++) {
		strs[base + S_EXTRA + i] = (char *)m->comments[i];
		comments[i] = (int64_t)(base + S_EXTRA + i);
	}

	/* Go's CPU profiles: sample types samples/count and cpu/nanoseconds,
	 * period type cpu/nanoseconds, default type cpu. */
	for (int i = 0; i < 3; i++)
		gotrace__pprof__value_type__init(&vt[i]);
	vt[0].type = (int64_t)(base + S_SAMPLES);
	vt[0].unit = (int64_t)(base + S_COUNT);
	vt[1].type = vt[2].type = (int64_t)(base + S_CPU);
	vt[1].unit = vt[2].unit = (int64_t)(base + S_NS);
	vtp[0] = &vt[0];
	vtp[1] = &vt[1];

	for (size_t i = 0; i < p->nfuncs; i++) {
		gotrace__pprof__function__init(&fn[i]);
		fn[i].id = i + 1;
		fn[i].name = fn[i].system_name = p->funcs[i].name;
		fn[i].filename = p->funcs[i].file;
		fnp[i] = &fn[i];
	}
	uint64_t maxpc = 0;
	for (size_t i = 0; i < p->nlocs; i++) {
		gotrace__pprof__location__init(&lc[i]);
		gotrace__pprof__line__init(&ln[i]);
		ln[i].function_id = p->locs[i].func + 1;
		ln[i].line = (int64_t)p->locs[i].line;
		lnp[i] = &ln[i];
		lc[i].id = i + 1;
		lc[i].mapping_id = 1;
		lc[i].address = p->locs[i].pc;
		lc[i].n_line = 1;
		lc[i].line = &lnp[i];
		lcp[i] = &lc[i];
		if (p->locs[i].pc > maxpc)
			maxpc = p->locs[i].pc;
	}
	size_t k = 0, nl = 0;
	for (size_t i = 0; i < p->nsamples; i++) {
		const struct gtr_prof_sample *s = &p->samples[i];
		if (!s->count)
			continue;
		gotrace__pprof__sample__init(&sm[k]);
		sm[k].n_location_id = s->n;
		sm[k].location_id = &locids[nl];
		for (uint32_t j = 0; j < s->n; j++)
			locids[nl++] = (uint64_t)p->stack_locs[s->first + j] + 1;
		vals[2 * k] = (int64_t)s->count;
		vals[2 * k + 1] = (int64_t)s->count * m->period_ns;
		sm[k].n_value = 2;
		sm[k].value = &vals[2 * k];
		smp[k] = &sm[k];
		k++;
	}

	/* One mapping covering every address: the trace names no binaries,
	 * and its frames are already symbolised, which the has_* flags tell
	 * pprof so that it does not look for the program to symbolise. */
	map.id = 1;
	map.memory_start = 0;
	map.memory_limit = maxpc + 1;
	map.filename = (int64_t)(base + S_MAPFILE);
	map.has_functions = map.has_filenames = map.has_line_numbers = map.has_inline_frames = 1;

	Profile pr = GOTRACE__PPROF__PROFILE__INIT;
	pr.n_sample_type = 2;
	pr.sample_type = vtp;
	pr.n_sample = nused;
	pr.sample = smp;
	pr.n_mapping = 1;
	pr.mapping = &mapp;
	pr.n_location = p->nlocs;
	pr.location = lcp;
	pr.n_function = p->nfuncs;
	pr.function = fnp;
	pr.n_string_table = nstr;
	pr.string_table = strs;
	pr.duration_nanos = m->duration_ns;
	pr.period_type = &vt[2];
	pr.period = m->period_ns;
	pr.n_comment = m->ncomments;
	pr.comment = comments;
	pr.default_sample_type = (int64_t)(base + S_CPU);

	size_t len = gotrace__pprof__profile__get_packed_size(&pr);
	packed = malloc(len ? len : 1);
	if (!packed)
		goto out;
	if (gotrace__pprof__profile__pack(&pr, packed) != len)
		goto out;
	ret = gzip_buf(packed, len, out, outlen);
out:
	free(packed);
	free(strs);
	free(vt);
	free(vtp);
	free(sm);
	free(smp);
	free(vals);
	free(locids);
	free(lc);
	free(lcp);
	free(ln);
	free(lnp);
	free(fn);
	free(fnp);
	free(comments);
	return ret;
}
