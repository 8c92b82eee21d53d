#include "script.h"

#include <stdio.h>
#include <string.h>

int
script_load(struct rconn *c, struct script *s, char *err, size_t errlen)
{
	redisReply *r = rconn_calll(c, "SCRIPT", "LOAD", s->src, NULL);
	char what[64];
	int rc = -1;

	s->err_class = RERR_NONE;
	if (r == NULL) {
		snprintf(err, errlen, "SCRIPT LOAD %s: %s", s->name, rconn_errstr(c));
		return -1;
	}
	if (r->type == REDIS_REPLY_STRING && r->len == 40) {
		memcpy(s->sha, r->str, 40);
		s->sha[40] = '\0';
		rc = 0;
	} else if (r->type == REDIS_REPLY_ERROR) {
		snprintf(what, sizeof(what), "SCRIPT LOAD %s", s->name);
		s->err_class = rerr_format(err, errlen, what, r);
	} else {
		snprintf(err, errlen, "SCRIPT LOAD %s: unexpected reply type %d",
		    s->name, r->type);
	}
	freeReplyObject(r);
	return rc;
}

int
script_append(struct rconn *c, struct script *s, int argc, const char **argv,
    size_t *argvlen, char *err, size_t errlen)
{
	if (s->sha[0] == '\0') {
		/* SCRIPT LOAD reads its reply at once: never behind queued commands. */
		if (rconn_pending(c) > 0) {
			snprintf(err, errlen, "%s script not loaded before pipelining", s->name);
			return -1;
		}
		if (script_load(c, s, err, errlen) < 0)
			return -1;
	}
	argv[0] = "EVALSHA";
	argvlen[0] = 7;
	argv[1] = s->sha;
	argvlen[1] = 40;
	if (rconn_append(c, argc, argv, argvlen) < 0) {
		snprintf(err, errlen, "%s", rconn_errstr(c));
		return -1;
	}
	return 0;
}

int
script_is_noscript(const redisReply *r)
{
	return r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOSCRIPT", 8) == 0;
}

redisReply *
script_call(struct rconn *c, struct script *s, int argc, const char **argv,
    size_t *argvlen, char *err, size_t errlen)
{
	redisReply *r = NULL;

	s->err_class = RERR_NONE;
	for (int attempt = 0; attempt < 2; attempt++) {
		if (script_append(c, s, argc, argv, argvlen, err, errlen) < 0)
			return NULL;
		if (rconn_get_reply(c, &r) < 0) {
			snprintf(err, errlen, "%s", rconn_errstr(c));
			return NULL;
		}
		if (!script_is_noscript(r))
			return r;
		freeReplyObject(r);
		r = NULL;
		s->sha[0] = '\0';	/* forces SCRIPT LOAD on the retry */
	}
	snprintf(err, errlen, "EVALSHA %s: NOSCRIPT after reloading", s->name);
	return NULL;
}
