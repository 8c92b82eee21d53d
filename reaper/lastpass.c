#include "lastpass.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "escape.h"

void
lastpass_key(const char *leader_key, char *out, size_t outsz)
{
	/* A name with braces keeps them: its tag, or none that wrapping could fix. */
	if (strpbrk(leader_key, "{}") != NULL)
		snprintf(out, outsz, "%s%s", leader_key, LASTPASS_SUFFIX);
	else
		snprintf(out, outsz, "{%s}%s", leader_key, LASTPASS_SUFFIX);
}

#define NFIELDS 11

int
lastpass_write(struct rconn *c, struct script *s, const struct leader *l,
    const char *key, const struct lastpass *lp, char *err, size_t errlen)
{
	const struct reconcile_stats *st = lp->st;
	char v[NFIELDS][32], ttl[32];
	const char *names[NFIELDS] = { "result", "scanned", "stale", "removed", "ghosts",
		"online", "seconds", "interval", "sample_stale", "guard_applies", "by" };
	const char *argv[7 + 2 * NFIELDS];
	size_t argvlen[7 + 2 * NFIELDS];
	redisReply *rep;
	int rc = -1;

	snprintf(v[1], 32, "%llu", st->scanned);
	snprintf(v[2], 32, "%llu", st->stale);
	snprintf(v[3], 32, "%llu", st->removed);
	snprintf(v[4], 32, "%llu", st->ghosts);
	snprintf(v[5], 32, "%lld", st->online);
	snprintf(v[6], 32, "%.3f", st->seconds);
	snprintf(v[7], 32, "%g", lp->interval);
	snprintf(v[8], 32, "%.4f", lp->sample_stale);
	snprintf(v[9], 32, "%d", lp->guard_applies);
	snprintf(ttl, sizeof(ttl), "%lld", (long long)(lp->interval * 3000) + 1000);
	argv[2] = "2";
	argv[3] = l->key;
	argv[4] = key;
	argv[5] = l->token;
	argv[6] = ttl;
	for (int i = 0; i < NFIELDS; i++) {
		argv[7 + 2 * i] = names[i];
		argv[8 + 2 * i] = i == 0 ? lp->result : i == NFIELDS - 1 ? l->token : v[i];
	}
	for (size_t i = 2; i < sizeof(argv) / sizeof(argv[0]); i++)
		argvlen[i] = strlen(argv[i]);
	if ((rep = script_call(c, s, 7 + 2 * NFIELDS, argv, argvlen, err, errlen)) == NULL)
		return -1;
	if (rep->type == REDIS_REPLY_INTEGER && (rep->integer == 0 || rep->integer == 1))
		rc = (int)rep->integer;
	else
		s->err_class = rerr_format(err, errlen, "EVALSHA status script", rep);
	freeReplyObject(rep);
	return rc;
}

/* One field's value into v. */
static void
field(struct lastpass_view *v, const char *name, const redisReply *val)
{
	const char *s = val->str;

	if (strcmp(name, "finished_ms") == 0)
		v->finished_ms = strtoll(s, NULL, 10);
	else if (strcmp(name, "result") == 0)
		escape_id(v->result, sizeof(v->result), s, val->len);
	else if (strcmp(name, "by") == 0)
		escape_id(v->by, sizeof(v->by), s, val->len);
	else if (strcmp(name, "scanned") == 0)
		v->scanned = strtoull(s, NULL, 10);
	else if (strcmp(name, "stale") == 0)
		v->stale = strtoull(s, NULL, 10);
	else if (strcmp(name, "removed") == 0)
		v->removed = strtoull(s, NULL, 10);
	else if (strcmp(name, "ghosts") == 0)
		v->ghosts = strtoull(s, NULL, 10);
	else if (strcmp(name, "online") == 0)
		v->online = strtoll(s, NULL, 10);
	else if (strcmp(name, "seconds") == 0)
		v->seconds = strtod(s, NULL);
	else if (strcmp(name, "interval") == 0)
		v->interval = strtod(s, NULL);
	else if (strcmp(name, "sample_stale") == 0)
		v->sample_stale = strtod(s, NULL);
}

int
lastpass_parse(const redisReply *rep, struct lastpass_view *v)
{
	memset(v, 0, sizeof(*v));
	if (rep->type != REDIS_REPLY_ARRAY || rep->elements % 2 != 0)
		return -1;
	for (size_t i = 0; i < rep->elements; i++)
		if (rep->element[i]->type != REDIS_REPLY_STRING)
			return -1;
	for (size_t i = 0; i < rep->elements; i += 2)
		if (memchr(rep->element[i]->str, '\0', rep->element[i]->len) == NULL)
			field(v, rep->element[i]->str, rep->element[i + 1]);
	v->present = rep->elements > 0;
	return 0;
}
