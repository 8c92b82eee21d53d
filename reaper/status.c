#include "status.h"

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "escape.h"
#include "fleet.h"
#include "log.h"
#include "shardcfg.h"
#include "statusout.h"

static const char *const names[] = { "OK", "WARNING", "CRITICAL", "UNKNOWN" };

const char *
status_name(enum status_code c)
{
	return names[c];
}

enum status_code
status_worse(enum status_code a, enum status_code b)
{
	static const int rank[] = { 0, 1, 3, 2 };	/* OK, WARNING, CRITICAL, UNKNOWN */

	return rank[a] >= rank[b] ? a : b;
}

/* Add a reason at level c. */
static void
reason(struct status_view *v, enum status_code c, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
reason(struct status_view *v, enum status_code c, const char *fmt, ...)
{
	size_t n = strlen(v->why);
	char text[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (v->nreasons < STATUS_REASONS_MAX) {
		v->levels[v->nreasons] = c;
		memcpy(v->reasons[v->nreasons++], text, sizeof(text));
	}
	snprintf(v->why + n, sizeof(v->why) - n, "%s%s", n ? "; " : "", text);
	v->code = status_worse(v->code, c);
}

/* An integer reply to a read-only command, or -1 with what Redis said in err. */
/* What came instead of the reply wanted: Redis's words, or the connection's error (rep NULL). */
static void
refused(struct daemon *d, const char *what, const redisReply *rep, char *err, size_t errlen)
{
	if (rep == NULL)
		snprintf(err, errlen, "%s: %s", what, rconn_errstr(d->conn));
	else
		(void)rerr_format(err, errlen, what, rep);
}

static long long
integer_reply(struct daemon *d, const char *what, redisReply *rep, char *err, size_t errlen)
{
	long long n = -1;

	if (rep && rep->type == REDIS_REPLY_INTEGER)
		n = rep->integer;
	else
		refused(d, what, rep, err, errlen);
	if (rep)
		freeReplyObject(rep);
	return n;
}

/* Redis's clock, ms: TIME. -1 on an error (in err). */
static long long
redis_now(struct daemon *d, char *err, size_t errlen)
{
	redisReply *rep = rconn_calll(d->conn, "TIME", NULL);
	long long ms = -1;

	if (rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == 2 &&
	    rep->element[0]->type == REDIS_REPLY_STRING &&
	    rep->element[1]->type == REDIS_REPLY_STRING)
		ms = strtoll(rep->element[0]->str, NULL, 10) * 1000 +
		    strtoll(rep->element[1]->str, NULL, 10) / 1000;
	else
		refused(d, "TIME", rep, err, errlen);
	if (rep)
		freeReplyObject(rep);
	return ms;
}

/* The lock: who holds it, and for how long. 0, or -1 (in v->err). */
static int
read_lock(struct daemon *d, struct status_view *v)
{
	int held = leader_holder(&d->leader, d->conn, v->holder, sizeof(v->holder), v->err,
	    sizeof(v->err));

	if (held < 0)
		return -1;
	v->held = held != LEADER_FREE;
	if (!v->held)
		v->holder[0] = '\0';
	v->lease_ms = integer_reply(d, "PTTL lock", rconn_calll(d->conn, "PTTL",
	    d->cfg.leader_key, NULL), v->err, sizeof(v->err));
	return v->err[0] ? -1 : 0;	/* -1 is also PTTL's "no TTL" */
}

/* The leader's last pass (lastpass.h). 0, or -1 (in v->err). */
static int
read_last_pass(struct daemon *d, struct status_view *v)
{
	redisReply *rep = rconn_calll(d->conn, "HGETALL", v->status_key, NULL);
	int rc = 0;

	if (rep == NULL || lastpass_parse(rep, &v->lp) < 0) {
		refused(d, "HGETALL status", rep, v->err, sizeof(v->err));
		rc = -1;
	}
	if (rep)
		freeReplyObject(rep);
	return rc;
}

/* CONFIG GET notify-keyspace-events, into v->notify; what refused it otherwise. */
static void
read_notify(struct daemon *d, struct status_view *v)
{
	redisReply *rep = rconn_calll(d->conn, "CONFIG", "GET", "notify-keyspace-events",
	    NULL);

	v->notify_known = rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == 2 &&
	    rep->element[1]->type == REDIS_REPLY_STRING;
	if (v->notify_known)
		escape_id(v->notify, sizeof(v->notify), rep->element[1]->str,
		    rep->element[1]->len);
	else
		refused(d, "CONFIG GET", rep, v->notify, sizeof(v->notify));
	if (rep)
		freeReplyObject(rep);
}

/* Everything --status reads for one set. 0, or -1: v->err says why (UNKNOWN). */
static int
collect(struct daemon *d, struct status_view *v)
{
	v->cfg = &d->cfg;
	lastpass_key(d->cfg.leader_key, v->status_key, sizeof(v->status_key));
	snprintf(v->lock_key, sizeof(v->lock_key), "%s", d->cfg.leader_key);
	snprintf(v->online_set, sizeof(v->online_set), "%s", d->cfg.online_set);
	if (daemon_connect(d, v->err, sizeof(v->err)) != 0)
		return -1;
	v->err[0] = '\0';	/* what a connection wrote there on its way is not an error */
	snprintf(v->endpoint, sizeof(v->endpoint), "%s", d->endpoint);
	if (read_lock(d, v) < 0 || (v->now_ms = redis_now(d, v->err, sizeof(v->err))) < 0 ||
	    read_last_pass(d, v) < 0)
		return -1;
	reconcile_init(&d->rec, &d->cfg, NULL, 1, NULL);
	if (reconcile_probe(&d->rec, d->conn, &v->g) != 0) {
		snprintf(v->err, sizeof(v->err), "%s", d->rec.err);
		return -1;
	}
	if (d->cfg.watch_expiry)
		read_notify(d, v);
	return 0;
}

/* The last pass: how long ago, and how it ended. */
static void
judge_pass(struct status_view *v)
{
	const struct lastpass_view *lp = &v->lp;
	double interval = lp->interval > 0 ? lp->interval : v->cfg->interval;
	double age = (double)(v->now_ms - lp->finished_ms) / 1000.0;

	if (!lp->present) {
		reason(v, STATUS_CRITICAL, "no pass finished in 3 intervals (%s is gone)",
		    v->status_key);
		return;
	}
	if (age > 3 * interval)
		reason(v, STATUS_CRITICAL, "no pass for %.1f s (3 intervals of %g s)", age,
		    interval);
	else if (age > 2 * interval)
		reason(v, STATUS_WARNING, "no pass for %.1f s (2 intervals of %g s)", age,
		    interval);
	if (strcmp(lp->result, "guard") == 0)
		reason(v, STATUS_CRITICAL, "the stale-ratio guard stopped the last pass");
	else if (strcmp(lp->result, "ok") != 0)
		reason(v, STATUS_WARNING, "the last pass did not finish (%s)", lp->result);
}

/* The state of one set, from what collect() read. */
static void
judge(struct status_view *v)
{
	unsigned long long ghosts;

	if (v->err[0]) {
		reason(v, STATUS_UNKNOWN, "%s", v->err);
		return;
	}
	if (!v->held)
		reason(v, STATUS_CRITICAL, "no leader: the lock %s is free", v->lock_key);
	judge_pass(v);
	if (v->g.tripped)
		reason(v, STATUS_CRITICAL, "the guard's sample is over max_stale_ratio: %d of "
		    "%d without a socket set", v->g.stale, v->g.sampled);
	ghosts = v->lp.ghosts > (unsigned long long)v->g.ghosts ? v->lp.ghosts :
	    (unsigned long long)v->g.ghosts;
	if (ghosts > 0)
		reason(v, STATUS_WARNING, "%llu socket sets without a TTL (ghosts)", ghosts);
	if (v->cfg->watch_expiry && v->notify_known &&
	    (strchr(v->notify, 'x') == NULL ||
	    (strchr(v->notify, 'E') == NULL && strchr(v->notify, 'A') == NULL)))
		reason(v, STATUS_WARNING, "reaper.watch_expiry gets no events: "
		    "notify-keyspace-events is \"%s\"", v->notify);
}

/* One set: collect and judge. */
static void
one_view(struct daemon *d, struct status_view *v)
{
	if (collect(d, v) < 0 && v->err[0] == '\0')
		snprintf(v->err, sizeof(v->err), "unknown error");
	judge(v);
}

/* Each shard's view, one after another. EX_OK, or EX_OSERR. */
static int
shard_views(struct daemon *d, struct shardset *set, struct status_view **out)
{
	struct status_view *views = calloc(set->n, sizeof(*views));

	if (views == NULL)
		return -1;
	for (size_t i = 0; i < set->n; i++) {
		static struct daemon s;

		snprintf(views[i].shard, sizeof(views[i].shard), "%s", set->names[i]);
		if (fleet_shard_daemon(&s, d, set->names[i]) < 0) {
			views[i].cfg = &d->cfg;
			reason(&views[i], STATUS_UNKNOWN, "cannot be set up (see the log)");
			continue;
		}
		one_view(&s, &views[i]);
		views[i].cfg = &d->cfg;	/* s's goes with it; the shared settings stay */
		daemon_free(&s);
		cfg_free(&s.cfg);
	}
	*out = views;
	return 0;
}

int
status_run(struct daemon *d)
{
	int json = d->cli.format && strcmp(d->cli.format, "json") == 0;
	struct status_view one, *views = &one;
	struct shardset set = { 0 };
	enum status_code code = STATUS_OK;
	size_t n = 1;

	signal(SIGPIPE, SIG_IGN);	/* a TLS write to a reset connection */
	memset(&one, 0, sizeof(one));
	if (strcmp(d->cfg.shards, "0") != 0) {
		if (shardset_init(&set, &d->cfg) < 0 || shard_views(d, &set, &views) < 0) {
			log_warn("status");
			shardset_free(&set);
			return STATUS_UNKNOWN;
		}
		n = set.n;
	} else if (tlsctx_load(&d->tls, &d->cfg, one.err, sizeof(one.err)) < 0 ||
	    daemon_init(d) < 0) {
		one.cfg = &d->cfg;
		judge(&one);
	} else {
		one_view(d, &one);
	}
	for (size_t i = 0; i < n; i++)
		code = status_worse(code, views[i].code);
	if (json)
		statusout_json(stdout, views, n, code);
	else
		statusout_text(stdout, views, n, code);
	if (views != &one)
		free(views);
	shardset_free(&set);
	return code;
}
