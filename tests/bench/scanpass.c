/*
 * scanpass: the read half of the benchmark's ceiling. Walks the online set
 * with SSCAN at a given COUNT until the cursor returns to 0 and does nothing
 * else: the least a full pass that never blocks Redis on the whole set must
 * ask of it before checking anyone.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tool.h"

/* Walk the set; *members counts what SSCAN returned (duplicates included). */
static int
scan_all(redisContext *c, const struct tool_opts *o, const char *count,
    long long *members, long long *calls)
{
	char cursor[32] = "0";

	*members = *calls = 0;
	do {
		const char *argv[5] = { "SSCAN", o->online, cursor, "COUNT", count };
		size_t argvlen[5] = { 5, strlen(o->online), strlen(cursor), 5, strlen(count) };
		redisReply *r;

		if (tool_append(c, 5, argv, argvlen) < 0 ||
		    (r = tool_reply(c, REDIS_REPLY_ARRAY, "SSCAN")) == NULL)
			return -1;
		if (r->elements != 2 || r->element[0]->type != REDIS_REPLY_STRING ||
		    r->element[0]->len >= sizeof(cursor) ||
		    r->element[1]->type != REDIS_REPLY_ARRAY) {
			fprintf(stderr, "%s: SSCAN: malformed reply\n", tool_prog);
			freeReplyObject(r);
			return -1;
		}
		memcpy(cursor, r->element[0]->str, r->element[0]->len + 1);
		*members += (long long)r->element[1]->elements;
		(*calls)++;
		freeReplyObject(r);
	} while (strcmp(cursor, "0") != 0);
	return 0;
}

static void
usage(FILE *f)
{
	fprintf(f, "usage: %s " TOOL_USAGE_REDIS " [--online KEY] [--count N]\n"
	    "One SSCAN pass over the online set (COUNT N, default 500); prints the\n"
	    "members returned, the calls made and the time on stdout.\n", tool_prog);
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		TOOL_LONGOPTS,
		{ "count", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct tool_opts o;
	redisContext *c;
	const char *count = "500";
	long long members, calls, v;
	double t0;
	int ch, r, rc;

	tool_prog = "scanpass";
	tool_opts_init(&o);
	while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		if ((r = tool_opts_parse(&o, ch, optarg)) > 0)
			continue;
		if (r == 0 && ch == 'c' && tool_parse_ll("--count", optarg, 1, 1000000, &v) == 0) {
			count = optarg;
			continue;
		}
		tool_option_end(r, ch, usage);
	}
	tool_no_operands(argc, argv, usage);
	if ((c = tool_connect(&o)) == NULL)
		return 69;
	t0 = tool_now();
	rc = scan_all(c, &o, count, &members, &calls);
	redisFree(c);
	if (rc < 0)
		return 1;
	printf("scanpass members=%lld calls=%lld seconds=%.3f\n", members, calls,
	    tool_now() - t0);
	return 0;
}
