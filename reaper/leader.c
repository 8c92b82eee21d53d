#include "leader.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "escape.h"
#include "scripts.h"

void
leader_init(struct leader *l, const char *key, double lease_s, const char *identity,
    uint64_t random)
{
	memset(l, 0, sizeof(*l));
	l->key = key;
	l->lease_ms = (int64_t)(lease_s * 1000.0);
	if (l->lease_ms < 1)
		l->lease_ms = 1;
	snprintf(l->token, sizeof(l->token), "%.1024s:%ld:%016" PRIx64, identity,
	    (long)getpid(), random);
	l->renew_script = (struct script){ "renew", script_renew, "", RERR_NONE };
	l->release_script = (struct script){ "release", script_release, "", RERR_NONE };
}

void
leader_client_name(const char *identity, char *out, size_t outsz)
{
	size_t o = 0;
	int n = snprintf(out, outsz, "presence-reaper@");

	if (n < 0 || (size_t)n >= outsz)
		return;
	o = (size_t)n;
	for (const char *p = identity; *p && o + 1 < outsz; p++) {
		char ch = *p;
		int ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		    (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-';

		out[o++] = ok ? ch : '_';
	}
	out[o] = '\0';
}

/* Run a fenced script (renew / release) on our lock: its integer result or -1. */
static int
fenced(struct leader *l, struct rconn *c, struct script *s, int with_lease,
    char *err, size_t errlen)
{
	const char *argv[6];
	size_t argvlen[6];
	char lease[24], what[600];
	redisReply *r;
	int argc = 5, rc = -1;

	argv[2] = "1"; argvlen[2] = 1;
	argv[3] = l->key; argvlen[3] = strlen(l->key);
	argv[4] = l->token; argvlen[4] = strlen(l->token);
	if (with_lease) {
		snprintf(lease, sizeof(lease), "%" PRId64, l->lease_ms);
		argv[5] = lease;
		argvlen[5] = strlen(lease);
		argc = 6;
	}
	l->err_class = RERR_NONE;
	if ((r = script_call(c, s, argc, argv, argvlen, err, errlen)) == NULL) {
		l->err_class = s->err_class;
		return -1;
	}
	if (r->type == REDIS_REPLY_INTEGER) {
		rc = r->integer ? 1 : 0;
	} else {
		snprintf(what, sizeof(what), "EVALSHA %s script on %s", s->name, l->key);
		l->err_class = rerr_format(err, errlen, what, r);
	}
	freeReplyObject(r);
	return rc;
}

int
leader_acquire(struct leader *l, struct rconn *c, char *holder, size_t holdersz,
    char *err, size_t errlen)
{
	char lease[24], what[600];
	redisReply *r;
	int rc;

	l->err_class = RERR_NONE;
	snprintf(lease, sizeof(lease), "%" PRId64, l->lease_ms);
	r = rconn_calll(c, "SET", l->key, l->token, "NX", "PX", lease, NULL);
	if (r == NULL) {
		snprintf(err, errlen, "%s", rconn_errstr(c));
		return -1;
	}
	if (r->type == REDIS_REPLY_STATUS) {
		freeReplyObject(r);
		return 1;
	}
	if (r->type == REDIS_REPLY_ERROR) {
		snprintf(what, sizeof(what), "SET %s NX", l->key);
		l->err_class = rerr_format(err, errlen, what, r);
		freeReplyObject(r);
		return -1;
	}
	freeReplyObject(r);

	/* Held. Maybe by us, from before a reconnect: then keep it. */
	rc = leader_holder(l, c, holder, holdersz, err, errlen);
	if (rc == LEADER_OURS)
		return leader_renew(l, c, err, errlen);
	if (rc == LEADER_FREE)
		snprintf(holder, holdersz, "(expired just now)");
	return rc < 0 ? -1 : 0;
}

int
leader_holder(struct leader *l, struct rconn *c, char *holder, size_t holdersz, char *err,
    size_t errlen)
{
	char what[600];
	redisReply *r;
	int rc = -1;

	l->err_class = RERR_NONE;
	if ((r = rconn_calll(c, "GET", l->key, NULL)) == NULL) {
		snprintf(err, errlen, "%s", rconn_errstr(c));
		return -1;
	}
	if (r->type == REDIS_REPLY_STRING) {
		/* Any client can write any bytes there: hand it out printable. */
		escape_id(holder, holdersz, r->str, r->len);
		rc = r->len == strlen(l->token) && memcmp(r->str, l->token, r->len) == 0 ?
		    LEADER_OURS : LEADER_OTHER;
	} else if (r->type == REDIS_REPLY_NIL) {
		rc = LEADER_FREE;
	} else {
		snprintf(what, sizeof(what), "GET %s", l->key);
		l->err_class = rerr_format(err, errlen, what, r);
	}
	freeReplyObject(r);
	return rc;
}

int
leader_renew(struct leader *l, struct rconn *c, char *err, size_t errlen)
{
	return fenced(l, c, &l->renew_script, 1, err, errlen);
}

int
leader_release(struct leader *l, struct rconn *c, char *err, size_t errlen)
{
	return fenced(l, c, &l->release_script, 0, err, errlen);
}
