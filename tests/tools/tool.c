#include "tool.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const char *tool_prog = "tool";

void
tool_opts_init(struct tool_opts *o)
{
	o->socket = NULL;
	o->host = "127.0.0.1";
	o->port = 6379;
	o->online = "presence:online-users";
	o->prefix = "presence:user:";
	o->suffix = ":sockets";
}

int
tool_parse_ll(const char *name, const char *s, long long min, long long max,
    long long *out)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < min || v > max) {
		fprintf(stderr, "%s: invalid value \"%s\" for %s (%lld..%lld)\n",
		    tool_prog, s, name, min, max);
		return -1;
	}
	*out = v;
	return 0;
}

int
tool_opts_parse(struct tool_opts *o, int opt, const char *arg)
{
	long long port;

	switch (opt) {
	case TOOL_OPT_SOCKET:
		o->socket = arg;
		return 1;
	case TOOL_OPT_HOST:
		o->host = arg;
		return 1;
	case TOOL_OPT_PORT:
		if (tool_parse_ll("--port", arg, 1, 65535, &port) < 0)
			return -1;
		o->port = (int)port;
		return 1;
	case TOOL_OPT_ONLINE:
		o->online = arg;
		return 1;
	case TOOL_OPT_PREFIX:
		o->prefix = arg;
		return 1;
	case TOOL_OPT_SUFFIX:
		o->suffix = arg;
		return 1;
	default:
		return 0;
	}
}

redisContext *
tool_connect(const struct tool_opts *o)
{
	struct timeval tv = { 5, 0 };
	redisContext *c;

	if (o->socket != NULL)
		c = redisConnectUnixWithTimeout(o->socket, tv);
	else
		c = redisConnectWithTimeout(o->host, o->port, tv);
	if (c == NULL) {
		fprintf(stderr, "%s: out of memory connecting\n", tool_prog);
		return NULL;
	}
	if (c->err) {
		if (o->socket != NULL)
			fprintf(stderr, "%s: cannot connect to %s: %s\n", tool_prog,
			    o->socket, c->errstr);
		else
			fprintf(stderr, "%s: cannot connect to %s:%d: %s\n", tool_prog,
			    o->host, o->port, c->errstr);
		redisFree(c);
		return NULL;
	}
	return c;
}

double
tool_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int
tool_socket_key(const struct tool_opts *o, struct tool_key *k, const char *id,
    size_t idlen)
{
	size_t pl = strlen(o->prefix), sl = strlen(o->suffix);
	size_t need = pl + idlen + sl;
	char *n;

	if (need > k->cap) {
		if ((n = realloc(k->buf, need)) == NULL) {
			fprintf(stderr, "%s: out of memory for a %zu-byte key\n",
			    tool_prog, need);
			return -1;
		}
		k->buf = n;
		k->cap = need;
	}
	memcpy(k->buf, o->prefix, pl);
	if (idlen > 0)
		memcpy(k->buf + pl, id, idlen);
	memcpy(k->buf + pl + idlen, o->suffix, sl);
	k->len = need;
	return 0;
}

void
tool_key_free(struct tool_key *k)
{
	free(k->buf);
	k->buf = NULL;
	k->cap = k->len = 0;
}

int
tool_append(redisContext *c, int argc, const char **argv, const size_t *argvlen)
{
	if (redisAppendCommandArgv(c, argc, argv, argvlen) != REDIS_OK) {
		fprintf(stderr, "%s: %s: %s\n", tool_prog, argv[0],
		    c->err ? c->errstr : "out of memory");
		return -1;
	}
	return 0;
}

redisReply *
tool_reply(redisContext *c, int want, const char *what)
{
	void *p = NULL;
	redisReply *r;

	if (redisGetReply(c, &p) != REDIS_OK || p == NULL) {
		fprintf(stderr, "%s: %s: %s\n", tool_prog, what,
		    c->err ? c->errstr : "no reply");
		return NULL;
	}
	r = p;
	if (r->type != want) {
		if (r->type == REDIS_REPLY_ERROR)
			fprintf(stderr, "%s: %s: %s\n", tool_prog, what, r->str);
		else
			fprintf(stderr, "%s: %s: unexpected reply type %d\n",
			    tool_prog, what, r->type);
		freeReplyObject(r);
		return NULL;
	}
	return r;
}

void
tool_option_end(int r, int ch, void (*usage)(FILE *))
{
	if (r == 0 && ch == 'h') {
		usage(stdout);
		exit(0);
	}
	usage(stderr);
	exit(64);
}

void
tool_no_operands(int argc, char **argv, void (*usage)(FILE *))
{
	if (optind == argc)
		return;
	fprintf(stderr, "%s: unexpected argument \"%s\"\n", tool_prog, argv[optind]);
	usage(stderr);
	exit(64);
}
