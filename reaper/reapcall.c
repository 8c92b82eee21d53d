#include "reapcall.h"

#include <stdio.h>
#include <string.h>

#include "escape.h"
#include "log.h"
#include "recerr.h"
#include "reconcile.h"
#include "timeutil.h"

enum reapcall_verdict
reapcall_parse(const redisReply *rep, redisReply *const **removed, size_t *nremoved)
{
	long long n;

	*removed = NULL;
	*nremoved = 0;
	if (rep->type == REDIS_REPLY_ERROR)
		return REAPCALL_REFUSED;
	if (rep->type != REDIS_REPLY_ARRAY || rep->elements <= REAP_REPLY_STALE ||
	    rep->element[REAP_REPLY_STATUS]->type != REDIS_REPLY_INTEGER)
		return REAPCALL_MALFORMED;
	if (rep->element[REAP_REPLY_STATUS]->integer == 0)
		return REAPCALL_NOT_LEADER;
	if (rep->elements <= REAP_REPLY_NREMOVED ||
	    rep->element[REAP_REPLY_NREMOVED]->type != REDIS_REPLY_INTEGER)
		return REAPCALL_MALFORMED;
	n = rep->element[REAP_REPLY_NREMOVED]->integer;
	if (n < 0 || (size_t)n > rep->elements - REAP_REPLY_REMOVED)
		return REAPCALL_MALFORMED;
	*removed = rep->element + REAP_REPLY_REMOVED;
	for (; *nremoved < (size_t)n; ++*nremoved)
		if ((*removed)[*nremoved]->type != REDIS_REPLY_STRING)
			return REAPCALL_MALFORMED;
	return REAPCALL_DONE;
}

int
reapcall_append(struct reconcile *r, struct rconn *c, const char *const *ids,
    const size_t *lens, size_t n, size_t *argc)
{
	const struct cfg *cfg = r->cfg;
	struct reapcall_args *a = &r->reap;
	size_t key = REAP_ARGV_KEYS, arg = REAP_ARGV_KEYS + REAP_KEY_SOCKETS + n;
	/* Unused outside stream mode: a key already declared keeps one hash slot. */
	const char *stream = strcmp(cfg->events_mode, "stream") == 0 ? cfg->events_stream :
	    cfg->online_set;

	*argc = arg + REAP_ARG_IDS + n;
	if (batchbuf_keys(&a->b, &r->keys, ids, lens, n, key + REAP_KEY_SOCKETS, *argc) < 0)
		return recerr_oom(r, "building a batch");
	snprintf(a->numkeys, sizeof(a->numkeys), "%zu", REAP_KEY_SOCKETS + n);
	snprintf(a->maxlen, sizeof(a->maxlen), "%d", cfg->events_stream_maxlen);
	snprintf(a->repair, sizeof(a->repair), "%lld",
	    (long long)(cfg->repair_missing_ttl * 1000.0));
	batchbuf_set(&a->b, REAP_ARGV_KEYS - 1, a->numkeys, strlen(a->numkeys));
	batchbuf_set(&a->b, key + REAP_KEY_ONLINE, cfg->online_set, strlen(cfg->online_set));
	batchbuf_set(&a->b, key + REAP_KEY_LOCK, r->leader->key, strlen(r->leader->key));
	batchbuf_set(&a->b, key + REAP_KEY_STREAM, stream, strlen(stream));
	batchbuf_set(&a->b, arg + REAP_ARG_TOKEN, r->leader->token, strlen(r->leader->token));
	batchbuf_set(&a->b, arg + REAP_ARG_MODE, cfg->events_mode, strlen(cfg->events_mode));
	batchbuf_set(&a->b, arg + REAP_ARG_CHANNEL, cfg->events_channel,
	    strlen(cfg->events_channel));
	batchbuf_set(&a->b, arg + REAP_ARG_MAXLEN, a->maxlen, strlen(a->maxlen));
	batchbuf_set(&a->b, arg + REAP_ARG_REPAIR, a->repair, strlen(a->repair));
	for (size_t i = 0; i < n; i++)
		batchbuf_set(&a->b, arg + REAP_ARG_IDS + i, ids[i], lens[i]);
	if (script_append(c, &r->reap_script, (int)*argc, a->b.argv, a->b.argvlen, r->err,
	    sizeof(r->err)) < 0)
		return recerr_script(r, c, &r->reap_script);
	return 0;
}

/* The script refused: named with every kind of key it declares. */
static int
refused(struct reconcile *r, const redisReply *rep)
{
	const struct cfg *cfg = r->cfg;
	char what[600];

	if (strcmp(cfg->events_mode, "stream") == 0)
		snprintf(what, sizeof(what), "EVALSHA reap script on %s, %s, %s and %s*%s",
		    cfg->online_set, r->leader->key, cfg->events_stream, cfg->socket_prefix,
		    cfg->socket_suffix);
	else
		snprintf(what, sizeof(what), "EVALSHA reap script on %s, %s and %s*%s",
		    cfg->online_set, r->leader->key, cfg->socket_prefix, cfg->socket_suffix);
	return recerr_reply(r, rep, what);
}

int
reapcall_result(struct reconcile *r, const redisReply *rep, struct reconcile_stats *st)
{
	redisReply *const *removed;
	size_t n;
	enum reapcall_verdict v = reapcall_parse(rep, &removed, &n);

	for (size_t i = 0; i < n; i++) {
		st->removed++;
		if (log_get_level() >= LOG_LVL_DEBUG)
			log_debug("removed stale user %s",
			    recerr_escaped(r, removed[i]->str, removed[i]->len));
	}
	switch (v) {
	case REAPCALL_DONE:
		return 0;
	case REAPCALL_NOT_LEADER:
		snprintf(r->err, sizeof(r->err),
		    "lost leadership: lock %s is no longer ours; stopping the pass",
		    r->leader->key);
		return RECONCILE_NOT_LEADER;
	case REAPCALL_REFUSED:
		return refused(r, rep);
	case REAPCALL_MALFORMED:
		break;
	}
	snprintf(r->err, sizeof(r->err), "reap script: malformed reply");
	return RECONCILE_DATA;
}

int
reapcall_get(struct reconcile *r, struct rconn *c, redisReply **rep)
{
	if (rconn_get_reply(c, rep) < 0)
		return recerr_conn(r, c);
	if (script_is_noscript(*rep)) {
		freeReplyObject(*rep);
		*rep = NULL;
	}
	return 0;
}

/*
 * Read the reply to the call of argc arguments just queued into *rep, with
 * nothing else in flight; on NOSCRIPT load the script and run the call again.
 */
static int
get_retried(struct reconcile *r, struct rconn *c, size_t argc, redisReply **rep)
{
	int rc;

	if ((rc = reapcall_get(r, c, rep)) != 0 || *rep != NULL)
		return rc;
	r->reap_script.sha[0] = '\0';
	*rep = script_call(c, &r->reap_script, (int)argc, r->reap.b.argv, r->reap.b.argvlen,
	    r->err, sizeof(r->err));
	return *rep == NULL ? recerr_script(r, c, &r->reap_script) : 0;
}

/* get_retried(), then judge the reply and count what it removed. */
static int
read_reply(struct reconcile *r, struct rconn *c, size_t argc, struct reconcile_stats *st)
{
	redisReply *rep;
	int rc;

	if ((rc = get_retried(r, c, argc, &rep)) != 0)
		return rc;
	rc = reapcall_result(r, rep, st);
	freeReplyObject(rep);
	return rc;
}

int
reapcall_ids(struct reconcile *r, struct rconn *c, const char *const *ids, const size_t *lens,
    size_t n, const char *what, struct reconcile_stats *st)
{
	size_t argc;
	int rc;

	memset(st, 0, sizeof(*st));
	st->online = -1;
	r->err[0] = '\0';
	r->err_class = RERR_NONE;
	if (n == 0)
		return RECONCILE_OK;
	if (n > (size_t)r->cfg->batch_size) {
		snprintf(r->err, sizeof(r->err), "internal error: %zu users for one script, "
		    "above reaper.batch_size %d", n, r->cfg->batch_size);
		return RECONCILE_INTERNAL;
	}
	if ((rc = guard_events(r, c, n, what)) != 0)
		return rc;
	if (r->reap_script.sha[0] == '\0' &&
	    script_load(c, &r->reap_script, r->err, sizeof(r->err)) < 0)
		return recerr_script(r, c, &r->reap_script);
	if ((rc = reapcall_append(r, c, ids, lens, n, &argc)) == 0)
		rc = read_reply(r, c, argc, st);
	gwin_removed(&r->win, st->removed, mono_ms());
	return rc;
}

/*
 * The script with no users: it removes nobody and runs only its checks,
 * the ACL ones included. "Not leader" is fine here: the checks come first.
 */
static int
preflight(struct reconcile *r, struct rconn *c)
{
	redisReply *rep, *const *removed;
	size_t argc, n;
	int rc;

	if (r->reap_script.sha[0] == '\0' &&
	    script_load(c, &r->reap_script, r->err, sizeof(r->err)) < 0)
		return recerr_script(r, c, &r->reap_script);
	if ((rc = reapcall_append(r, c, NULL, NULL, 0, &argc)) != 0 ||
	    (rc = get_retried(r, c, argc, &rep)) != 0)
		return rc;
	switch (reapcall_parse(rep, &removed, &n)) {
	case REAPCALL_REFUSED:
		rc = refused(r, rep);
		break;
	case REAPCALL_MALFORMED:
		snprintf(r->err, sizeof(r->err), "reap script: malformed reply");
		rc = RECONCILE_DATA;
		break;
	case REAPCALL_DONE:
	case REAPCALL_NOT_LEADER:
		break;
	}
	freeReplyObject(rep);
	return rc;
}

/* TYPE key must be want or none; RECONCILE_DATA with a message otherwise. */
static int
check_type(struct reconcile *r, struct rconn *c, const char *what, const char *key,
    const char *want)
{
	redisReply *rep = rconn_calll(c, "TYPE", key, NULL);
	int rc = 0;

	if (rep == NULL)
		return recerr_conn(r, c);
	if (rep->type != REDIS_REPLY_STATUS) {
		char cmd[300];

		snprintf(cmd, sizeof(cmd), "TYPE %s", key);
		rc = recerr_reply(r, rep, cmd);
	} else if (strcmp(rep->str, want) != 0 && strcmp(rep->str, "none") != 0) {
		char type[4 * 40 + 1];

		escape_id(type, sizeof(type), rep->str, rep->len < 40 ? rep->len : 40);
		r->err_class = RERR_OTHER;
		snprintf(r->err, sizeof(r->err), "WRONGTYPE %s %s holds a %s, not a %s: the reap "
		    "script will refuse to remove anyone until it is fixed", what, key, type,
		    want);
		rc = RECONCILE_DATA;
	}
	freeReplyObject(rep);
	return rc;
}

int
reapcall_check_keys(struct reconcile *r, struct rconn *c)
{
	int rc;

	r->err_class = RERR_NONE;
	rc = check_type(r, c, "online set", r->cfg->online_set, "set");
	if (rc == 0 && strcmp(r->cfg->events_mode, "stream") == 0)
		rc = check_type(r, c, "events stream", r->cfg->events_stream, "stream");
	if (rc == 0 && !r->dry_run && r->leader != NULL)
		rc = preflight(r, c);
	return rc;
}
