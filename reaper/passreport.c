#include "daemon.h"

#include <stdio.h>

#include "errpolicy.h"
#include "expiry.h"
#include "lastpass.h"
#include "log.h"
#include "metrics.h"
#include "notify.h"

/* One pass's log line: with keys.shards, the thread's shard names it (log.h). */
static void
log_cycle(const struct daemon *d, const struct reconcile_stats *st)
{
	notify_status("%s: scanned=%llu stale=%llu removed=%llu batches=%llu duration=%.3fs",
	    d->cli.dry_run ? "dry-run" : "cycle done", st->scanned, st->stale, st->removed,
	    st->batches, st->seconds);
	if (d->cli.dry_run) {
		log_info("dry-run: scanned=%llu stale=%llu (nothing removed)", st->scanned,
		    st->stale);
		log_debug("dry-run: batches=%llu duration=%.3fs", st->batches, st->seconds);
	} else
		log_info("cycle done: scanned=%llu stale=%llu removed=%llu batches=%llu "
		    "duration=%.3fs", st->scanned, st->stale, st->removed, st->batches,
		    st->seconds);
}

static enum metrics_cycle_result
cycle_metric(enum reconcile_result res)
{
	switch (res) {
	case RECONCILE_OK:
		return MC_OK;
	case RECONCILE_GUARD:
		return MC_GUARD;
	case RECONCILE_NOT_LEADER:
		return MC_NOT_LEADER;
	case RECONCILE_STOPPED:
		return MC_INTERRUPTED;
	case RECONCILE_DATA:
	case RECONCILE_CONN:
	case RECONCILE_INTERNAL:
		break;
	}
	return MC_ERROR;
}

/* Socket sets without a TTL never expire: their users stay online for ever. */
static void
log_ghosts(const struct daemon *d, const struct reconcile_stats *st)
{
	if (d->cfg.repair_missing_ttl > 0 && !d->cli.dry_run)
		log_warnx("ghosts: %llu socket sets had no TTL (e.g. %s); gave them %g s "
		    "(reaper.repair_missing_ttl)", st->ghosts, st->ghost_sample,
		    d->cfg.repair_missing_ttl);
	else
		log_warnx("ghosts: %llu socket sets have no TTL and never expire (e.g. %s); "
		    "set reaper.repair_missing_ttl to give them one", st->ghosts,
		    st->ghost_sample);
}

/*
 * Keep the pass's summary next to the lock for --status (lastpass.h). A
 * failure is said once, until a write succeeds again; it never stops the
 * reaping.
 */
static void
record_pass(struct daemon *d, enum reconcile_result res, const struct reconcile_stats *st)
{
	struct lastpass lp = { "error", st, d->cfg.interval, d->rec.stale_prior,
		d->rec.guard_applies };
	char err[512], key[600];
	int rc;

	if (d->cli.dry_run || res == RECONCILE_CONN || res == RECONCILE_NOT_LEADER ||
	    d->conn == NULL || rconn_broken(d->conn))
		return;
	lp.result = res == RECONCILE_OK ? "ok" : res == RECONCILE_GUARD ? "guard" :
	    res == RECONCILE_STOPPED ? "interrupted" : "error";
	lastpass_key(d->leader.key, key, sizeof(key));
	rc = lastpass_write(d->conn, &d->status_script, &d->leader, key, &lp, err, sizeof(err));
	if (rc < 0 && !d->status_warned)
		log_warnx("the pass's summary for --status was not kept in %s: %s (reaping goes "
		    "on)", key, err);
	d->status_warned = rc < 0;
}

/* Run one pass and log it. Returns the reconcile result. */
enum reconcile_result
daemon_pass(struct daemon *d)
{
	struct reconcile_stats st;
	enum reconcile_result res;

	res = reconcile_cycle(&d->rec, d->conn, &st);
	if (res == RECONCILE_STOPPED && rconn_broken(d->conn))
		res = RECONCILE_CONN;	/* the lease renewal between batches broke it */
	metrics_cycle(cycle_metric(res), st.scanned, st.removed, st.ghosts, st.online,
	    st.seconds);
	if (st.ghosts)
		log_ghosts(d, &st);
	if (d->cfg.watch_expiry && !d->cli.dry_run) {
		unsigned long long events, dropped;

		watch_counts(d->watch, &events, &dropped);
		log_info("since the last pass: %llu removed by the pass, %llu on key-expiry "
		    "events (%llu events, %llu dropped with the queue full)", st.removed,
		    d->event_removed, events, dropped);
		d->event_removed = 0;
	}
	if (d->rec.tracking)
		expiry_pass_done(d, &st);
	record_pass(d, res, &st);
	if (res == RECONCILE_OK) {
		refusal_cleared(d);
		log_cycle(d, &st);
	} else if (res == RECONCILE_STOPPED) {
		log_info("pass interrupted after %llu batches: scanned=%llu removed=%llu",
		    st.batches, st.scanned, st.removed);
	} else {
		daemon_step_failed(d, res);
	}
	return res;
}

