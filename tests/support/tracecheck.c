#define _GNU_SOURCE 1
#include "tracecheck.h"

#include <gotrace.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *need_env(const char *name)
{
	const char *v = getenv(name);
	if (!v || !*v) {
		fprintf(stderr, "FATAL: %s is not set: run the tests through ctest "
		                "(scripts/test.sh), which builds Go's validators\n", name);
		exit(99);
	}
	return v;
}

int judge_trace(const char *path)
{
	const char *script = need_env("GOTRACE_CHECK_TRACE");
	char *cmd;
	if (asprintf(&cmd, "'%s' '%s' >/dev/null", script, path) < 0)
		abort();
	int st = system(cmd);
	free(cmd);
	if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		fprintf(stderr, "judge_trace: %s rejected (status %d)\n", path, st);
		return 1;
	}
	return 0;
}

static void unescape(char *s)
{
	char *w = s;
	for (char *r = s; *r; r++) {
		if (*r == '%' && r[1] && r[2]) {
			char hex[3] = { r[1], r[2], 0 };
			*w++ = (char)strtol(hex, NULL, 16);
			r += 2;
		} else {
			*w++ = *r;
		}
	}
	*w = 0;
}

int tsum_load(const char *path, const char *which, struct tsum *out)
{
	const char *dir = need_env("GOTRACE_TRACECHECK_DIR");
	memset(out, 0, sizeof *out);
	char *cmd;
	if (asprintf(&cmd, "'%s/tracecheck-%s' -summary '%s'", dir, which, path) < 0)
		abort();
	FILE *f = popen(cmd, "r");
	free(cmd);
	if (!f)
		return -1;
	size_t cap = 0, len = 0;
	char chunk[65536];
	size_t n;
	while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
		if (len + n + 1 > cap) {
			cap = (len + n + 1) * 2;
			out->buf = realloc(out->buf, cap);
		}
		memcpy(out->buf + len, chunk, n);
		len += n;
	}
	int st = pclose(f);
	if (!out->buf)
		out->buf = calloc(1, 1);
	out->buf[len] = 0;
	size_t lcap = 1024;
	out->lines = calloc(lcap, sizeof *out->lines);
	char *save = NULL;
	for (char *line = strtok_r(out->buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (out->n == lcap) {
			lcap *= 2;
			out->lines = realloc(out->lines, lcap * sizeof *out->lines);
		}
		struct tline *l = &out->lines[out->n++];
		memset(l, 0, sizeof *l);
		l->gen = l->t = l->g = l->m = l->p = INT64_MIN;
		char *s2 = NULL;
		char *tok = strtok_r(line, " ", &s2);
		snprintf(l->kind, sizeof l->kind, "%s", tok ? tok : "");
		while ((tok = strtok_r(NULL, " ", &s2)) != NULL) {
			char *eq = strchr(tok, '=');
			if (!eq)
				continue;
			*eq = 0;
			char *v = eq + 1;
			if (!strcmp(tok, "gen")) l->gen = strtoll(v, NULL, 10);
			else if (!strcmp(tok, "t")) l->t = strtoll(v, NULL, 10);
			else if (!strcmp(tok, "g")) l->g = strtoll(v, NULL, 10);
			else if (!strcmp(tok, "m")) l->m = strtoll(v, NULL, 10);
			else if (!strcmp(tok, "p")) l->p = strtoll(v, NULL, 10);
			else if (l->nkv < TL_MAXKV) {
				unescape(v);
				l->key[l->nkv] = tok;
				l->val[l->nkv++] = v;
			}
		}
	}
	if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		fprintf(stderr, "tsum_load: tracecheck-%s rejected %s\n", which, path);
		return 1;
	}
	return 0;
}

void tsum_free(struct tsum *s)
{
	free(s->lines);
	free(s->buf);
	memset(s, 0, sizeof *s);
}

const char *tl_get(const struct tline *l, const char *key)
{
	for (int i = 0; i < l->nkv; i++)
		if (!strcmp(l->key[i], key))
			return l->val[i];
	return NULL;
}

int64_t tl_int(const struct tline *l, const char *key)
{
	const char *v = tl_get(l, key);
	return v ? strtoll(v, NULL, 10) : INT64_MIN;
}

size_t tsum_count(const struct tsum *s, const char *kind)
{
	size_t n = 0;
	for (size_t i = 0; i < s->n; i++)
		n += !strcmp(s->lines[i].kind, kind);
	return n;
}

char *tmp_trace_path(const char *tag)
{
	const char *dir = getenv("TMPDIR");
	char *p;
	if (asprintf(&p, "%s/gotrace-%s-%d.trace", dir && *dir ? dir : "/tmp", tag, (int)getpid()) < 0)
		abort();
	return p;
}

int stress_options(struct gotrace_options *o, int what)
{
	const char *v = getenv("GOTRACE_TEST_STRESS");
	if (!v || strcmp(v, "1") != 0)
		return 0;
	if (what & STRESS_BUFFERS)
		o->buffer_size = 4096;
	if (what & STRESS_ADVANCE)
		o->advance_period_ns = 1000000;
	return 1;
}
