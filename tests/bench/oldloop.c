/*
 * oldloop: the per-server reconcile loop that presence-reaper replaces,
 * reimplemented faithfully in C for the benchmark: SMEMBERS of the whole
 * online set, then one EXISTS round trip per user (awaited one at a time,
 * not pipelined), then one SREM round trip per user whose socket set is
 * gone. Check and removal are not atomic; that is the old design's flaw,
 * kept here on purpose.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tool.h"

/* One command, one round trip; the integer reply or -1 (message printed). */
static long long
call_int(redisContext *c, const char *cmd, const char *a, size_t alen, const char *b,
    size_t blen)
{
	const char *argv[3] = { cmd, a, b };
	size_t argvlen[3] = { strlen(cmd), alen, blen };
	redisReply *r;
	long long v;

	if (tool_append(c, b != NULL ? 3 : 2, argv, argvlen) < 0 ||
	    (r = tool_reply(c, REDIS_REPLY_INTEGER, cmd)) == NULL)
		return -1;
	v = r->integer;
	freeReplyObject(r);
	return v;
}

/*
 * One pass. Fills *scanned, *stale and *removed; returns 0 or -1. The
 * SMEMBERS reply holds every member in client memory for the whole pass,
 * as the old loop did.
 */
static int
old_pass(redisContext *c, const struct tool_opts *o, long long *scanned,
    long long *stale, long long *removed)
{
	const char *argv[2] = { "SMEMBERS", o->online };
	size_t argvlen[2] = { 8, strlen(o->online) };
	struct tool_key k = { 0 };
	redisReply *members = NULL, **gone = NULL;
	size_t ngone = 0;
	long long v;
	int rc = -1;

	*scanned = *stale = *removed = 0;
	if (tool_append(c, 2, argv, argvlen) < 0 ||
	    (members = tool_reply(c, REDIS_REPLY_ARRAY, "SMEMBERS")) == NULL)
		goto fail;
	if ((gone = calloc(members->elements + 1, sizeof(*gone))) == NULL) {
		fprintf(stderr, "%s: out of memory\n", tool_prog);
		goto fail;
	}
	for (size_t i = 0; i < members->elements; i++) {
		redisReply *m = members->element[i];

		if (tool_socket_key(o, &k, m->str, m->len) < 0 ||
		    (v = call_int(c, "EXISTS", k.buf, k.len, NULL, 0)) < 0)
			goto fail;
		if (v == 0)
			gone[ngone++] = m;
	}
	for (size_t i = 0; i < ngone; i++) {
		if ((v = call_int(c, "SREM", o->online, strlen(o->online), gone[i]->str,
		    gone[i]->len)) < 0)
			goto fail;
		*removed += v;
	}
	*scanned = (long long)members->elements;
	*stale = (long long)ngone;
	rc = 0;
fail:
	free(gone);
	if (members != NULL)
		freeReplyObject(members);
	tool_key_free(&k);
	return rc;
}

static void
usage(FILE *f)
{
	fprintf(f, "usage: %s " TOOL_USAGE_REDIS " " TOOL_USAGE_KEYS "\n"
	    "One pass of the old per-server reconcile loop: SMEMBERS, one EXISTS\n"
	    "round trip per user, one SREM per stale user. Prints the counts and\n"
	    "the time on stdout.\n", tool_prog);
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		TOOL_LONGOPTS,
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct tool_opts o;
	redisContext *c;
	long long scanned, stale, removed;
	double t0;
	int ch, r, rc;

	tool_prog = "oldloop";
	tool_opts_init(&o);
	while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		if ((r = tool_opts_parse(&o, ch, optarg)) > 0)
			continue;
		tool_option_end(r, ch, usage);
	}
	tool_no_operands(argc, argv, usage);
	if ((c = tool_connect(&o)) == NULL)
		return 69;
	t0 = tool_now();
	rc = old_pass(c, &o, &scanned, &stale, &removed);
	redisFree(c);
	if (rc < 0)
		return 1;
	printf("oldloop scanned=%lld stale=%lld removed=%lld seconds=%.3f\n", scanned,
	    stale, removed, tool_now() - t0);
	return 0;
}
