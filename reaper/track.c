#include "track.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "recerr.h"
#include "reconcile.h"
#include "screen.h"
#include "timeutil.h"

#define TRACK_JITTER 1.05	/* the loop's interval jitter, 5 % */
#define TRACK_SPARE_MS 500
#define TRACK_SCAN_COUNT 250	/* SSCAN COUNT in the script: each call well under 2 ms */

int64_t
track_horizon(const struct cfg *c, double last_seconds, int64_t next_gap)
{
	double gap = next_gap > 0 ? (double)next_gap / 1000 : c->interval * TRACK_JITTER;

	if (last_seconds > gap)
		gap = last_seconds;
	return (int64_t)((gap + last_seconds / 4) * 1000) + TRACK_SPARE_MS;
}

int
track_scan_append(struct reconcile *r, struct rconn *c, const char *cursor, int n)
{
	char count[16], horizon[24];
	const char *argv[10];
	size_t argvlen[10];
	const char *s[] = { "1", r->cfg->online_set, cursor, count, horizon,
		r->cfg->socket_prefix, r->cfg->socket_suffix };

	snprintf(count, sizeof(count), "%d", n < TRACK_SCAN_COUNT ? n : TRACK_SCAN_COUNT);
	snprintf(horizon, sizeof(horizon), "%lld", (long long)r->horizon);
	for (size_t i = 0; i < sizeof(s) / sizeof(s[0]); i++) {
		argv[i + 2] = s[i];
		argvlen[i + 2] = strlen(s[i]);
	}
	if (script_append(c, &r->scan_script, 9, argv, argvlen, r->err, sizeof(r->err)) < 0)
		return recerr_conn(r, c);
	return 0;
}

int
track_scan_parse(struct reconcile *r, const redisReply *rep, const char **cursor,
    redisReply **ids, long long *scanned)
{
	*cursor = NULL;
	*ids = NULL;
	if (rep->type == REDIS_REPLY_ERROR)
		return recerr_online(r, rep, "SSCAN (scan script)");
	if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 4 ||
	    rep->element[0]->type != REDIS_REPLY_STRING ||
	    rep->element[1]->type != REDIS_REPLY_INTEGER ||
	    rep->element[2]->type != REDIS_REPLY_ARRAY ||
	    rep->element[3]->type != REDIS_REPLY_ARRAY ||
	    rep->element[2]->elements != rep->element[3]->elements)
		return recerr_malformed(r, "scan script", "malformed reply");
	/*
	 * The script returns -2, -1 or a TTL under the horizon; a larger one
	 * (tests/fuzz: LLONG_MAX) would overflow the calendar's due time.
	 */
	for (size_t i = 0; i < rep->element[3]->elements; i++)
		if (rep->element[3]->element[i]->type != REDIS_REPLY_INTEGER ||
		    rep->element[3]->element[i]->integer < -2 ||
		    rep->element[3]->element[i]->integer >= r->horizon)
			return recerr_malformed(r, "scan script", "malformed reply");
	*cursor = rep->element[0]->str;
	*ids = rep->element[2];
	*scanned = rep->element[1]->integer;
	return recerr_members(r, *ids, "SSCAN");
}

int
track_scan_judge(struct reconcile *r, const redisReply *rep, struct batchbuf_idx *cand,
    struct reconcile_stats *st)
{
	const redisReply *ids = rep->element[2], *ttls = rep->element[3];
	int64_t now = mono_ms();
	int rc = 0;

	cand->n = 0;
	for (size_t i = 0; i < ids->elements && rc == 0; i++) {
		long long ttl = ttls->element[i]->integer;
		const redisReply *m = ids->element[i];

		if (ttl < 0)
			rc = screen_judge_ttl(r, ttl, m, i, cand, st);
		else if (calendar_add(&r->cal, m->str, m->len, now + ttl + 1,
		    now + r->horizon) < 0)
			rc = recerr_oom(r, "tracking expiry");
	}
	return rc;
}

/* Take up to max due entries into its[]; returns how many. */
static size_t
take_due(struct reconcile *r, int64_t now, struct cal_item *its, size_t max, int *oom)
{
	size_t n = 0;
	int got;

	while (n < max && (got = calendar_pop(&r->cal, now, &its[n])) == 1)
		n++;
	*oom = n < max && got < 0;
	return n;
}

/* Queue PTTL for each item's socket key. */
static int
pttl_due(struct reconcile *r, struct rconn *c, const struct cal_item *its, size_t n,
    const char **ids, size_t *lens)
{
	for (size_t i = 0; i < n; i++) {
		ids[i] = its[i].id;
		lens[i] = its[i].len;
	}
	if (batchbuf_keys(&r->calkeys, &r->keys, ids, lens, n, 0, n) < 0)
		return recerr_oom(r, "building a batch");
	return screen_pttl_send(r, c, &r->calkeys, n);
}

/* One answer: gone goes to ids[*ngone], still there may go back in. */
static int
judge_due(struct reconcile *r, long long ttl, const struct cal_item *it, int64_t now,
    const char **ids, size_t *lens, size_t *ngone, struct track_round *tr)
{
	if (ttl == -2) {
		ids[*ngone] = it->id;
		lens[(*ngone)++] = it->len;
	} else if (ttl >= 0 && now + ttl + 1 < it->seen_by) {
		if (calendar_add(&r->cal, it->id, it->len, now + ttl + 1, it->seen_by) < 0)
			return recerr_oom(r, "tracking expiry");
		tr->kept++;
	}
	return 0;
}

/* Read the n PTTL answers (all of them, even after an error); the gone into ids. */
static int
read_due(struct reconcile *r, struct rconn *c, const struct cal_item *its, size_t n,
    const char **ids, size_t *lens, size_t *ngone, struct track_round *tr)
{
	int64_t now = mono_ms();
	int rc = 0;

	*ngone = 0;
	for (size_t i = 0; i < n; i++) {
		redisReply *rep;

		if (rconn_get_reply(c, &rep) < 0)
			return recerr_conn(r, c);
		if (rep->type != REDIS_REPLY_INTEGER && rc == 0)
			rc = recerr_socket(r, rep, "PTTL");
		else if (rc == 0) {
			tr->checked++;
			rc = judge_due(r, rep->integer, &its[i], now, ids, lens, ngone, tr);
		}
		freeReplyObject(rep);
	}
	return rc;
}

/* The gone: printed once in a dry run, else reaped through the guard. */
static int
reap_gone(struct reconcile *r, struct rconn *c, const char **ids, size_t *lens, size_t n,
    struct track_round *tr)
{
	struct reconcile_stats st;
	int rc;

	tr->gone += n;
	if (r->dry_run) {
		for (size_t i = 0; i < n; i++)
			fprintf(r->out, "%s\n", recerr_escaped(r, ids[i], lens[i]));
		fflush(r->out);
		return 0;
	}
	rc = reapcall_ids(r, c, ids, lens, n, "expiry calendar", &st);
	tr->removed += st.removed;
	return rc;
}

int
track_check(struct reconcile *r, struct rconn *c, int64_t now, struct track_round *tr)
{
	size_t max = (size_t)r->cfg->batch_size, n, ngone = 0;
	struct cal_item *its = calloc(max, sizeof(*its));
	const char **ids = calloc(max, sizeof(*ids));
	size_t *lens = calloc(max, sizeof(*lens));
	int oom = 0, rc;

	memset(tr, 0, sizeof(*tr));
	r->err[0] = '\0';
	r->err_class = RERR_NONE;
	if (its == NULL || ids == NULL || lens == NULL)
		rc = recerr_oom(r, "tracking expiry");
	else if ((n = take_due(r, now, its, max, &oom)) == 0)
		rc = oom ? recerr_oom(r, "tracking expiry") : 0;
	else if ((rc = pttl_due(r, c, its, n, ids, lens)) == 0 &&
	    (rc = read_due(r, c, its, n, ids, lens, &ngone, tr)) == 0 && ngone > 0)
		rc = reap_gone(r, c, ids, lens, ngone, tr);
	for (size_t i = 0; its && i < max; i++)
		free(its[i].id);
	free(its);
	free(ids);
	free(lens);
	return rc;
}
