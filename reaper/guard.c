#include "guard.h"

#include <stdio.h>
#include <string.h>

#include "recerr.h"
#include "reconcile.h"
#include "screen.h"
#include "timeutil.h"

#define GUARD_SAMPLE 1000	/* members sampled: 10 x 100, or 40 x 25 */
#define GUARD_ROUNDS_MAX 40
#define GUARD_BIG 2000000	/* from here on, pieces of 25 */

/* Read the n PTTL replies for the guard's sample members[0..n). */
static int
probe_read(struct reconcile *r, struct rconn *c, redisReply *const *members, size_t n,
    struct guard_probe *g, struct reconcile_stats *st)
{
	int rc = 0;

	for (size_t i = 0; i < n; i++) {
		redisReply *t;

		if (rconn_get_reply(c, &t) < 0)
			return recerr_conn(r, c);
		if (t->type == REDIS_REPLY_INTEGER) {
			g->sampled++;
			g->stale += t->integer == SCREEN_PTTL_MISSING;
			if (t->integer == SCREEN_PTTL_PERSISTENT) {
				g->ghosts++;
				screen_note_ghost(r, members[i], st);
			}
		} else if (rc == 0) {
			rc = recerr_socket(r, t, "PTTL");
		}
		freeReplyObject(t);
	}
	return rc;
}

int
guard_probe_reply_ok(const redisReply *rep, size_t n)
{
	for (size_t i = 1; i < rep->elements; i++)
		if (rep->element[i]->type != REDIS_REPLY_INTEGER ||
		    rep->element[i]->integer < 1 || (size_t)rep->element[i]->integer > n)
			return 0;
	return 1;
}

/* The probe script's reply for a sample of n members: count them. */
static int
probe_parse(struct reconcile *r, const redisReply *rep, redisReply *const *members, size_t n,
    struct guard_probe *g, struct reconcile_stats *st)
{
	if (rep->type != REDIS_REPLY_ARRAY || rep->elements < 1 ||
	    rep->element[0]->type != REDIS_REPLY_INTEGER)
		return recerr_socket(r, rep, "EVALSHA probe script");
	if (!guard_probe_reply_ok(rep, n)) {
		snprintf(r->err, sizeof(r->err), "probe script: malformed reply");
		return RECONCILE_DATA;
	}
	g->sampled += (int)n;
	g->stale += (int)rep->element[0]->integer;
	for (size_t i = 1; i < rep->elements; i++) {
		g->ghosts++;
		screen_note_ghost(r, members[rep->element[i]->integer - 1], st);
	}
	return 0;
}

/*
 * The probe script's arguments for a sample of n members, in r->scan; its
 * numkeys is written in numkeys, which must outlive the call's append.
 */
static int
probe_args(struct reconcile *r, redisReply *const *members, size_t n, char numkeys[16])
{
	struct batchbuf *b = &r->scan;

	if (batchbuf_gather(&r->ids, members, NULL, n) < 0)
		return recerr_oom(r, NULL);
	if (batchbuf_keys(b, &r->keys, r->ids.ids, r->ids.lens, n, 3, n + 3) < 0)
		return recerr_oom(r, "building a batch");
	snprintf(numkeys, 16, "%zu", n);
	batchbuf_set(b, 2, numkeys, strlen(numkeys));
	return 0;
}

/*
 * One sample's probe script on its own, loading the script again when the
 * server answers NOSCRIPT (the cache was flushed since it was loaded).
 */
static int
probe_script(struct reconcile *r, struct rconn *c, redisReply *const *members, size_t n,
    struct guard_probe *g, struct reconcile_stats *st)
{
	char numkeys[16];
	redisReply *rep;
	int rc;

	if ((rc = probe_args(r, members, n, numkeys)) != 0)
		return rc;
	rep = script_call(c, &r->probe_script, (int)n + 3, r->scan.argv, r->scan.argvlen,
	    r->err, sizeof(r->err));
	if (rep == NULL)
		return recerr_script(r, c, &r->probe_script);
	rc = probe_parse(r, rep, members, n, g, st);
	freeReplyObject(rep);
	return rc;
}

/* Read and drop n replies queued before a failure, keeping the connection in step. */
static int
skip_replies(struct reconcile *r, struct rconn *c, int n, int rc)
{
	for (int i = 0; i < n; i++) {
		redisReply *t;

		if (rconn_get_reply(c, &t) < 0)
			return recerr_conn(r, c);
		freeReplyObject(t);
	}
	return rc;
}

/*
 * Check the samples' socket sets with the probe script, one call for each
 * SRANDMEMBER reply, all in flight at once: one round trip for the lot,
 * not one each, on a far link. A call that meets NOSCRIPT runs again on
 * its own. Read-only, but a script, which a read-only ACL user may not
 * run: dry runs send PTTLs instead (probe_pttl).
 */
static int
probe_scripts(struct reconcile *r, struct rconn *c, redisReply *const *rep, int rounds,
    struct guard_probe *g, struct reconcile_stats *st)
{
	redisReply *t[GUARD_ROUNDS_MAX] = { NULL };
	char numkeys[16];
	int sent = 0, rc = 0;

	if (r->probe_script.sha[0] == '\0' &&
	    script_load(c, &r->probe_script, r->err, sizeof(r->err)) < 0)
		return recerr_script(r, c, &r->probe_script);
	for (int i = 0; i < rounds; i++) {
		size_t n = rep[i]->elements;

		if (n == 0)
			continue;
		if ((rc = probe_args(r, rep[i]->element, n, numkeys)) == 0 &&
		    script_append(c, &r->probe_script, (int)n + 3, r->scan.argv,
		    r->scan.argvlen, r->err, sizeof(r->err)) < 0)
			rc = recerr_script(r, c, &r->probe_script);
		if (rc != 0)
			return skip_replies(r, c, sent, rc);
		sent++;
	}
	for (int i = 0; i < rounds && rc == 0; i++)
		if (rep[i]->elements > 0 && rconn_get_reply(c, &t[i]) < 0)
			rc = recerr_conn(r, c);
	for (int i = 0; i < rounds && rc == 0; i++) {
		size_t n = rep[i]->elements;

		if (t[i] != NULL)
			rc = script_is_noscript(t[i]) ? probe_script(r, c, rep[i]->element, n, g, st) :
			    probe_parse(r, t[i], rep[i]->element, n, g, st);
	}
	for (int i = 0; i < rounds; i++)
		if (t[i] != NULL)
			freeReplyObject(t[i]);
	return rc;
}

/* The dry run's probe: a PTTL for each member of each sample, all in flight at once. */
static int
probe_pttl(struct reconcile *r, struct rconn *c, redisReply *const *rep, int rounds,
    struct guard_probe *g, struct reconcile_stats *st)
{
	int rc = 0, err, queued = 0;

	for (int i = 0; i < rounds; i++) {
		if ((err = screen_pttl_append(r, c, rep[i]->element, NULL, rep[i]->elements)) != 0)
			return skip_replies(r, c, queued, err);
		queued += (int)rep[i]->elements;
	}
	for (int i = 0; i < rounds; i++)
		if ((err = probe_read(r, c, rep[i]->element, rep[i]->elements, g, st)) != 0 &&
		    (rc == 0 || err == RECONCILE_CONN))
			rc = err;
	return rc;
}

/* Each SRANDMEMBER reply must be an array of strings. */
static int
sample_check(struct reconcile *r, redisReply *const *rep, int rounds)
{
	int rc = 0;

	for (int i = 0; i < rounds && rc == 0; i++)
		rc = rep[i]->type != REDIS_REPLY_ARRAY ? recerr_online(r, rep[i], "SRANDMEMBER") :
		    recerr_members(r, rep[i], "SRANDMEMBER");
	return rc;
}

/*
 * Sample GUARD_SAMPLE random members and count those whose socket set is
 * gone, and the ghosts among them. Several small SRANDMEMBER calls rather
 * than one of 1000, and smaller still on a large set: there a random
 * member costs Redis 5 to 20 us (cache misses; 100 a call took 2.5 ms at
 * 10M members, 25 a call 0.6 ms), and no single call may block it for
 * long. A member drawn twice counts twice, which does not bias the
 * fraction.
 */
static int
guard_sample(struct reconcile *r, struct rconn *c, struct guard_probe *g,
    struct reconcile_stats *st)
{
	redisReply *rep[GUARD_ROUNDS_MAX] = { NULL };
	/* A set of up to 1000 is cheap to return whole, and then seen exactly. */
	int small = g->online <= GUARD_SAMPLE;
	int rounds = small ? 1 : g->online >= GUARD_BIG ? GUARD_ROUNDS_MAX : 10;
	char count[16];
	int rc = 0;

	snprintf(count, sizeof(count), "%d", small ? GUARD_SAMPLE : GUARD_SAMPLE / rounds);
	for (int i = 0; i < rounds; i++)
		if (rconn_appendl(c, "SRANDMEMBER", r->cfg->online_set, count, NULL) < 0)
			return recerr_conn(r, c);
	for (int i = 0; i < rounds; i++)
		if (rconn_get_reply(c, &rep[i]) < 0) {
			rc = recerr_conn(r, c);
			goto out;
		}
	if ((rc = sample_check(r, rep, rounds)) == 0)
		rc = r->dry_run ? probe_pttl(r, c, rep, rounds, g, st) :
		    probe_scripts(r, c, rep, rounds, g, st);
out:
	for (int i = 0; i < GUARD_ROUNDS_MAX; i++)
		if (rep[i])
			freeReplyObject(rep[i]);
	return rc;
}

/*
 * Would removing `pending` more users now take the guard's stale fraction
 * (gwin.h: the last sample plus the window's removals) over
 * max_stale_ratio? Never while the online set, counted before the
 * window's removals, is below guard_min_users. The fraction goes to *frac.
 */
static int
guard_trips(const struct reconcile *r, unsigned long long pending, double *frac)
{
	int64_t now = mono_ms();
	double f;

	if (r->cfg->max_stale_ratio >= 1.0 ||
	    gwin_population(&r->win, now) < (long long)r->cfg->guard_min_users ||
	    gwin_population(&r->win, now) <= 0)
		return 0;
	f = gwin_fraction(&r->win, pending, now);
	if (frac)
		*frac = f;
	return f > r->cfg->max_stale_ratio;
}

int
guard_probe(struct reconcile *r, struct rconn *c, struct guard_probe *g,
    struct reconcile_stats *st)
{
	const struct cfg *cfg = r->cfg;
	redisReply *rep;
	int rc;

	memset(g, 0, sizeof(*g));
	if ((rep = rconn_calll(c, "SCARD", cfg->online_set, NULL)) == NULL)
		return recerr_conn(r, c);
	if (rep->type != REDIS_REPLY_INTEGER) {
		rc = recerr_online(r, rep, "SCARD");
		freeReplyObject(rep);
		return rc;
	}
	g->online = rep->integer;
	freeReplyObject(rep);
	g->applies = cfg->max_stale_ratio < 1.0 && g->online >= cfg->guard_min_users &&
	    g->online > 0;
	if (g->online == 0)
		return 0;

	rc = guard_sample(r, c, g, st);
	if (rc == 0)
		gwin_sample(&r->win, g->online, g->sampled, g->stale);
	g->tripped = rc == 0 && g->sampled > 0 && guard_trips(r, 0, NULL);
	return rc;
}

/* Why the guard refused: what it judged, and the likely causes. */
static int
refuse(struct reconcile *r, const char *what, double frac)
{
	int64_t now = mono_ms();
	unsigned long long recent = gwin_recent(&r->win, now);
	char window[160] = "";

	if (recent > 0)
		snprintf(window, sizeof(window), ", %llu users removed in the last %lld s",
		    recent, (long long)(r->win.span_ms / 1000));
	snprintf(r->err, sizeof(r->err),
	    "stale-ratio guard: %s: %.0f%% of the online set stale (sample %.0f%% of %lld "
	    "users%s), above reaper.max_stale_ratio %.2f; removing nothing. Likely causes: "
	    "wrong keys.socket_prefix/socket_suffix (%s<id>%s), or the realtime servers are "
	    "not refreshing their socket sets", what, 100.0 * frac,
	    100.0 * r->win.stale_frac, r->win.online, window, r->cfg->max_stale_ratio,
	    r->cfg->socket_prefix, r->cfg->socket_suffix);
	return RECONCILE_GUARD;
}

int
guard_before_pass(struct reconcile *r, struct rconn *c, struct reconcile_stats *st)
{
	struct guard_probe g;
	double frac = 0;
	int rc;

	if ((rc = guard_probe(r, c, &g, st)) != 0)
		return rc;
	st->online = g.online;
	r->stale_prior = g.sampled > 0 ? (double)g.stale / (double)g.sampled : 0.0;
	r->guard_applies = g.applies;
	if (!g.tripped)
		return 0;
	guard_trips(r, 0, &frac);
	return refuse(r, "the pass's sample", frac);
}

int
guard_events(struct reconcile *r, struct rconn *c, size_t n, const char *what)
{
	struct guard_probe g;
	double frac = 0;
	int rc;

	if (r->cfg->max_stale_ratio >= 1.0)
		return 0;	/* the guard is off: no sample to take */
	if (gwin_needs_sample(&r->win) && (rc = guard_probe(r, c, &g, NULL)) != 0)
		return rc;
	if (!guard_trips(r, n, &frac))
		return 0;
	return refuse(r, what, frac);
}

static void
runwin_push(struct runwin *w, size_t checked, unsigned long long stale)
{
	int i = (w->head + w->n) % RUNWIN_BATCHES;

	if (w->n == RUNWIN_BATCHES)
		w->head = (w->head + 1) % RUNWIN_BATCHES;
	else
		w->n++;
	w->checked[i] = (unsigned)checked;
	w->stale[i] = (unsigned)stale;
}

/*
 * The running guard (DESIGN §7a): once the pass has checked
 * guard_min_users, the stale fraction of its newest batches, back to at
 * least guard_min_users users, may not exceed max_stale_ratio. Realtime
 * servers that stop refreshing in the middle of a long pass stop it here,
 * before the batch that shows it is reaped.
 */
int
guard_batch_checked(struct reconcile *r, struct reconcile_stats *st, size_t n,
    unsigned long long stale)
{
	unsigned long long want = (unsigned long long)r->cfg->guard_min_users;
	const struct runwin *w = &r->run;
	unsigned long long checked = 0, bad = 0;

	st->checked += n;
	runwin_push(&r->run, n, stale);
	if (!r->guard_applies || st->checked < want)
		return 0;
	for (int k = w->n - 1; k >= 0 && (checked == 0 || checked < want); k--) {
		int i = (w->head + k) % RUNWIN_BATCHES;

		checked += w->checked[i];
		bad += w->stale[i];
	}
	if (checked == 0 || (double)bad / (double)checked <= r->cfg->max_stale_ratio)
		return 0;
	snprintf(r->err, sizeof(r->err),
	    "stale-ratio guard: %llu of the last %llu users this pass checked (%.0f%%) have "
	    "no socket set, above reaper.max_stale_ratio %.2f; stopping the pass after %llu "
	    "users. Likely cause: the realtime servers stopped refreshing their socket sets",
	    bad, checked, 100.0 * (double)bad / (double)checked, r->cfg->max_stale_ratio,
	    st->checked);
	return RECONCILE_GUARD;
}
