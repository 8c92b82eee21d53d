#include "reconcile.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "escape.h"
#include "log.h"
#include "scripts.h"
#include "timeutil.h"

#define GUARD_SAMPLE "1000"

/*
 * Reap script argv: EVALSHA sha numkeys online lock stream key*n
 * token mode channel maxlen repair_ms id*n.
 */
#define REAP_LEAD 6
#define REAP_MID 5
#define GHOST_SAMPLE 5

void
reconcile_init(struct reconcile *r, const struct cfg *cfg, struct leader *leader,
    int dry_run, FILE *out)
{
	memset(r, 0, sizeof(*r));
	r->cfg = cfg;
	keys_init(&r->keys, cfg->socket_prefix, cfg->socket_suffix);
	r->leader = leader;
	r->dry_run = dry_run;
	r->out = out;
	r->reap_script = (struct script){ "reap", script_reap, "" };
	idset_init(&r->printed);
}

void
reconcile_free(struct reconcile *r)
{
	free(r->buf.argv);
	free(r->buf.argvlen);
	free(r->buf.arena);
	free(r->buf.esc);
	idset_clear(&r->printed);
	memset(&r->buf, 0, sizeof(r->buf));
}

static int
grow(void **p, size_t *cap, size_t want, size_t elsz)
{
	void *n;

	if (want <= *cap)
		return 0;
	if ((n = realloc(*p, want * elsz)) == NULL)
		return -1;
	*p = n;
	*cap = want;
	return 0;
}

/*
 * Fill argv[lead..lead+n) with the socket keys of members[0..n) (laid out in
 * the reused arena) and make room for nargs arguments in all.
 */
static int
build_keys(struct reconcile *r, redisReply **members, size_t n, size_t lead, size_t nargs)
{
	struct batchbuf *b = &r->buf;
	size_t need = 0, off = 0, cap = b->nargs;

	for (size_t i = 0; i < n; i++)
		need += keys_socket_len(&r->keys, members[i]->len);
	if (grow((void **)&b->arena, &b->arenasz, need ? need : 1, 1) < 0 ||
	    grow((void **)&b->argv, &cap, nargs, sizeof(*b->argv)) < 0 ||
	    grow((void **)&b->argvlen, &b->nargs, nargs, sizeof(*b->argvlen)) < 0) {
		snprintf(r->err, sizeof(r->err), "out of memory building a batch");
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		b->argv[lead + i] = b->arena + off;
		b->argvlen[lead + i] = keys_socket(&r->keys, b->arena + off,
		    members[i]->str, members[i]->len);
		off += b->argvlen[lead + i];
	}
	return 0;
}

static const char *
escaped(struct reconcile *r, const char *s, size_t len)
{
	size_t need = 4 * len + 1;

	if (grow((void **)&r->buf.esc, &r->buf.escsz, need, 1) < 0)
		return "(out of memory)";
	escape_id(r->buf.esc, r->buf.escsz, s, len);
	return r->buf.esc;
}

/* Every element of a member list must be a string. */
static int
check_members(struct reconcile *r, const redisReply *arr, const char *cmd)
{
	for (size_t i = 0; i < arr->elements; i++)
		if (arr->element[i]->type != REDIS_REPLY_STRING) {
			snprintf(r->err, sizeof(r->err), "%s %s: unexpected member type %d",
			    cmd, r->cfg->online_set, arr->element[i]->type);
			return -1;
		}
	return 0;
}

/* An error reply on the online set: WRONGTYPE and friends. */
static int
data_error(struct reconcile *r, const redisReply *rep, const char *cmd)
{
	snprintf(r->err, sizeof(r->err), "%s %s: %s", cmd, r->cfg->online_set,
	    rep->type == REDIS_REPLY_ERROR ? rep->str : "unexpected reply");
	return RECONCILE_DATA;
}

static int
conn_error(struct reconcile *r, struct rconn *c)
{
	snprintf(r->err, sizeof(r->err), "redis: %s", rconn_errstr(c));
	return RECONCILE_CONN;
}

/* Queue EXISTS for the n socket keys already in argv[0..n). */
static int
exists_append(struct reconcile *r, struct rconn *c, size_t n)
{
	const char *argv[2] = { "EXISTS", NULL };
	size_t argvlen[2] = { 6, 0 };

	for (size_t i = 0; i < n; i++) {
		argv[1] = r->buf.argv[i];
		argvlen[1] = r->buf.argvlen[i];
		if (rconn_append(c, 2, argv, argvlen) < 0)
			return conn_error(r, c);
	}
	return 0;
}

/*
 * Read n EXISTS replies and count the zeros; when print_members is given,
 * print each stale member the first time this cycle sees it (and count
 * only those).
 */
static int
exists_read(struct reconcile *r, struct rconn *c, size_t n, redisReply **print_members,
    int *stale)
{
	int rc = 0;

	*stale = 0;
	for (size_t i = 0; i < n; i++) {
		redisReply *rep;

		if (rconn_get_reply(c, &rep) < 0)
			return conn_error(r, c);
		if (rep->type != REDIS_REPLY_INTEGER) {
			/* Keep reading: the pipeline must be drained in order. */
			if (rc == 0)
				snprintf(r->err, sizeof(r->err), "EXISTS: %s",
				    rep->type == REDIS_REPLY_ERROR ? rep->str : "unexpected reply");
			rc = RECONCILE_DATA;
		} else if (rep->integer == 0) {
			if (print_members == NULL) {
				(*stale)++;
			} else if (idset_add(&r->printed, print_members[i]->str,
			    print_members[i]->len) != 0) {
				(*stale)++;
				fprintf(r->out, "%s\n", escaped(r, print_members[i]->str,
				    print_members[i]->len));
			}
		}
		freeReplyObject(rep);
	}
	return rc;
}

int
reconcile_probe(struct reconcile *r, struct rconn *c, struct guard_probe *g)
{
	const struct cfg *cfg = r->cfg;
	redisReply *rep;
	int rc;

	memset(g, 0, sizeof(*g));
	if ((rep = rconn_calll(c, "SCARD", cfg->online_set, NULL)) == NULL)
		return conn_error(r, c);
	if (rep->type != REDIS_REPLY_INTEGER) {
		rc = data_error(r, rep, "SCARD");
		freeReplyObject(rep);
		return rc;
	}
	g->online = rep->integer;
	freeReplyObject(rep);
	g->applies = cfg->max_stale_ratio < 1.0 && g->online >= cfg->guard_min_users &&
	    g->online > 0;
	if (g->online == 0)
		return 0;

	rep = rconn_calll(c, "SRANDMEMBER", cfg->online_set, GUARD_SAMPLE, NULL);
	if (rep == NULL)
		return conn_error(r, c);
	if (rep->type != REDIS_REPLY_ARRAY) {
		rc = data_error(r, rep, "SRANDMEMBER");
		goto out;
	}
	if ((rc = check_members(r, rep, "SRANDMEMBER")) < 0) {
		rc = RECONCILE_DATA;
		goto out;
	}
	if (build_keys(r, rep->element, rep->elements, 0, rep->elements) < 0) {
		rc = RECONCILE_INTERNAL;
		goto out;
	}
	if ((rc = exists_append(r, c, rep->elements)) != 0 ||
	    (rc = exists_read(r, c, rep->elements, NULL, &g->stale)) != 0)
		goto out;
	g->sampled = (int)rep->elements;
	g->tripped = g->applies &&
	    (double)g->stale / (double)g->sampled > cfg->max_stale_ratio;
out:
	freeReplyObject(rep);
	return rc;
}

/* Split an SSCAN reply into cursor and members; RECONCILE_DATA on a bad shape. */
static int
parse_sscan(struct reconcile *r, redisReply *rep, const char **cursor, redisReply **members)
{
	if (rep->type != REDIS_REPLY_ARRAY)
		return data_error(r, rep, "SSCAN");
	if (rep->elements != 2 || rep->element[0]->type != REDIS_REPLY_STRING ||
	    rep->element[1]->type != REDIS_REPLY_ARRAY) {
		snprintf(r->err, sizeof(r->err), "SSCAN %s: malformed reply",
		    r->cfg->online_set);
		return RECONCILE_DATA;
	}
	*cursor = rep->element[0]->str;
	*members = rep->element[1];
	if (check_members(r, *members, "SSCAN") < 0)
		return RECONCILE_DATA;
	return 0;
}

static int
append_sscan(struct reconcile *r, struct rconn *c, const char *cursor)
{
	char count[16];

	snprintf(count, sizeof(count), "%d", r->cfg->batch_size);
	if (rconn_appendl(c, "SSCAN", r->cfg->online_set, cursor, "COUNT", count, NULL) < 0)
		return conn_error(r, c);
	return 0;
}

static void
set_arg(struct batchbuf *b, size_t i, const char *s, size_t len)
{
	b->argv[i] = s;
	b->argvlen[i] = len;
}

/* Queue the fenced reap script for one batch. */
static int
append_reap(struct reconcile *r, struct rconn *c, redisReply *members, size_t *argc)
{
	const struct cfg *cfg = r->cfg;
	struct batchbuf *b = &r->buf;
	size_t n = members->elements, mid = REAP_LEAD + n;

	*argc = REAP_LEAD + n + REAP_MID + n;
	if (build_keys(r, members->element, n, REAP_LEAD, *argc) < 0)
		return RECONCILE_INTERNAL;
	snprintf(b->numkeys, sizeof(b->numkeys), "%zu", n + 3);
	snprintf(b->maxlen, sizeof(b->maxlen), "%d", cfg->events_stream_maxlen);
	snprintf(b->repair, sizeof(b->repair), "%lld",
	    (long long)(cfg->repair_missing_ttl * 1000.0));
	set_arg(b, 2, b->numkeys, strlen(b->numkeys));
	set_arg(b, 3, cfg->online_set, strlen(cfg->online_set));
	set_arg(b, 4, r->leader->key, strlen(r->leader->key));
	set_arg(b, 5, cfg->events_stream, strlen(cfg->events_stream));
	set_arg(b, mid, r->leader->token, strlen(r->leader->token));
	set_arg(b, mid + 1, cfg->events_mode, strlen(cfg->events_mode));
	set_arg(b, mid + 2, cfg->events_channel, strlen(cfg->events_channel));
	set_arg(b, mid + 3, b->maxlen, strlen(b->maxlen));
	set_arg(b, mid + 4, b->repair, strlen(b->repair));
	for (size_t i = 0; i < n; i++)
		set_arg(b, mid + REAP_MID + i, members->element[i]->str,
		    members->element[i]->len);
	if (script_append(c, &r->reap_script, (int)*argc, b->argv, b->argvlen,
	    r->err, sizeof(r->err)) < 0)
		return rconn_broken(c) ? RECONCILE_CONN : RECONCILE_DATA;
	return 0;
}

/* Remember a few ghost IDs, escaped, for the cycle's warning. */
static void
note_ghost(struct reconcile *r, const redisReply *id, struct reconcile_stats *st)
{
	size_t n = strlen(st->ghost_sample);

	st->ghosts++;
	if (st->ghosts > GHOST_SAMPLE || n + 8 >= sizeof(st->ghost_sample))
		return;
	snprintf(st->ghost_sample + n, sizeof(st->ghost_sample) - n, "%s\"%.60s\"",
	    n ? ", " : "", escaped(r, id->str, id->len));
}

/* Judge the reap script's reply: { status, stale, nremoved, removed..., ghosts... }. */
static int
reap_result(struct reconcile *r, redisReply *rep, struct reconcile_stats *st)
{
	long long nremoved;

	if (rep->type == REDIS_REPLY_ERROR) {
		snprintf(r->err, sizeof(r->err), "reap script: %s", rep->str);
		return RECONCILE_DATA;
	}
	if (rep->type != REDIS_REPLY_ARRAY || rep->elements < 2 ||
	    rep->element[0]->type != REDIS_REPLY_INTEGER ||
	    rep->element[1]->type != REDIS_REPLY_INTEGER)
		goto malformed;
	if (rep->element[0]->integer == 0) {
		snprintf(r->err, sizeof(r->err),
		    "lost leadership: lock %s is no longer ours; stopping the pass",
		    r->leader->key);
		return RECONCILE_NOT_LEADER;
	}
	if (rep->elements < 3 || rep->element[2]->type != REDIS_REPLY_INTEGER)
		goto malformed;
	nremoved = rep->element[2]->integer;
	if (nremoved < 0 || (size_t)nremoved > rep->elements - 3)
		goto malformed;
	st->stale += (unsigned long long)rep->element[1]->integer;
	for (size_t i = 3; i < rep->elements; i++) {
		const redisReply *id = rep->element[i];

		if (id->type != REDIS_REPLY_STRING)
			goto malformed;
		if (i < 3 + (size_t)nremoved) {
			st->removed++;
			if (log_get_level() >= LOG_LVL_DEBUG)
				log_debug("removed stale user %s", escaped(r, id->str, id->len));
		} else {
			note_ghost(r, id, st);
		}
	}
	return 0;
malformed:
	snprintf(r->err, sizeof(r->err), "reap script: malformed reply");
	return RECONCILE_DATA;
}

/* Check one batch: the fenced script, or in dry-run a read-only EXISTS pipeline. */
static int
check_batch(struct reconcile *r, struct rconn *c, redisReply *members, int more,
    const char *cursor, redisReply **next, struct reconcile_stats *st)
{
	size_t n = members->elements, argc = 0;
	redisReply *rep = NULL;
	int rc = 0, stale = 0;

	*next = NULL;
	if (r->dry_run) {
		if (build_keys(r, members->element, n, 0, n) < 0)
			return RECONCILE_INTERNAL;
		/* The next SSCAN travels with the EXISTS batch, in one round trip. */
		if ((rc = exists_append(r, c, n)) != 0 ||
		    (more && (rc = append_sscan(r, c, cursor)) != 0))
			return rc;
		rc = exists_read(r, c, n, members->element, &stale);
		if (rc == RECONCILE_CONN)
			return rc;
		st->stale += (unsigned long long)stale;
	} else {
		if ((rc = append_reap(r, c, members, &argc)) != 0)
			return rc;
		if (more && (rc = append_sscan(r, c, cursor)) != 0)
			return rc;
		if (rconn_get_reply(c, &rep) < 0)
			return conn_error(r, c);
	}
	if (more && rconn_get_reply(c, next) < 0) {
		if (rep)
			freeReplyObject(rep);
		return conn_error(r, c);
	}
	if (rep != NULL && script_is_noscript(rep)) {
		/* Script cache flushed under us: load and run this batch again. */
		freeReplyObject(rep);
		r->reap_script.sha[0] = '\0';
		rep = script_call(c, &r->reap_script, (int)argc, r->buf.argv, r->buf.argvlen,
		    r->err, sizeof(r->err));
		if (rep == NULL)
			return rconn_broken(c) ? RECONCILE_CONN : RECONCILE_DATA;
	}
	if (rep != NULL) {
		rc = reap_result(r, rep, st);
		freeReplyObject(rep);
	}
	return rc;
}

enum reconcile_result
reconcile_cycle(struct reconcile *r, struct rconn *c, struct reconcile_stats *st)
{
	int64_t start = mono_ms();
	struct guard_probe g;
	redisReply *cur = NULL, *next = NULL;
	int rc;

	memset(st, 0, sizeof(*st));
	st->online = -1;
	r->err[0] = '\0';
	idset_clear(&r->printed);
	if ((rc = reconcile_probe(r, c, &g)) != 0)
		goto out;
	st->online = g.online;
	if (g.tripped) {
		snprintf(r->err, sizeof(r->err),
		    "stale-ratio guard: %d of %d sampled users (%.0f%%) have no socket set, "
		    "above reaper.max_stale_ratio %.2f; removing nothing. Likely causes: wrong "
		    "keys.socket_prefix/socket_suffix (%s<id>%s), or the realtime servers "
		    "are not refreshing their socket sets", g.stale, g.sampled,
		    100.0 * g.stale / g.sampled, r->cfg->max_stale_ratio,
		    r->cfg->socket_prefix, r->cfg->socket_suffix);
		rc = RECONCILE_GUARD;
		goto out;
	}
	if ((rc = append_sscan(r, c, "0")) != 0)
		goto out;
	if (rconn_get_reply(c, &cur) < 0) {
		rc = conn_error(r, c);
		goto out;
	}
	for (;;) {
		const char *cursor;
		redisReply *members;
		int more;

		if ((rc = parse_sscan(r, cur, &cursor, &members)) != 0)
			goto out;
		more = strcmp(cursor, "0") != 0;
		st->scanned += members->elements;
		if (members->elements > 0) {
			st->batches++;
			rc = check_batch(r, c, members, more, cursor, &next, st);
		} else if (more) {
			if ((rc = append_sscan(r, c, cursor)) == 0 && rconn_get_reply(c, &next) < 0)
				rc = conn_error(r, c);
		}
		freeReplyObject(cur);
		cur = next;
		next = NULL;
		if (rc != 0 || !more)
			goto out;
		if (r->tick && r->tick(r->tick_arg) != 0) {
			rc = RECONCILE_STOPPED;
			goto out;
		}
	}
out:
	if (cur)
		freeReplyObject(cur);
	if (r->out)
		fflush(r->out);
	st->seconds = (double)(mono_ms() - start) / 1000.0;
	return (enum reconcile_result)rc;
}
