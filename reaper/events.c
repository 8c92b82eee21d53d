#include "events.h"

#include "errpolicy.h"
#include "log.h"
#include "metrics.h"

/*
 * Say what the server's notify-keyspace-events means for watching, once;
 * enable on request. A user without CONFIG (the ACL line of acl.h has
 * none) cannot tell: that is the expected case, said at info.
 */
static void
check_notifications(struct daemon *d)
{
	char flags[64], err[256];
	int ready;

	if (d->watch_warned)
		return;
	if ((ready = watch_server_ready(d->conn, flags, sizeof(flags), err, sizeof(err))) == 1)
		return;
	d->watch_warned = 1;
	if (ready == WATCH_NOT_ALLOWED && !d->cfg.enable_notifications) {
		log_info("reaper.watch_expiry: this user may not read notify-keyspace-events "
		    "(%s), as the ACL line of presence-reaper.conf(5) has it; subscribing "
		    "anyway: the server must have E and x in it", err);
	} else if (ready < 0) {
		log_warnx("reaper.watch_expiry: cannot read notify-keyspace-events (%s); "
		    "subscribing anyway", err);
	} else if (d->cfg.enable_notifications) {
		if (watch_server_enable(d->conn, flags, err, sizeof(err)) == 0)
			log_warnx("reaper.watch_expiry: set the server's notify-keyspace-events "
			    "from \"%s\" to include Ex (reaper.enable_notifications)", flags);
		else
			log_warnx("reaper.watch_expiry: %s", err);
	} else {
		log_warnx("reaper.watch_expiry: the server's notify-keyspace-events is \"%s\", "
		    "without E and x: no key-expiry events will arrive and only the periodic "
		    "pass reaps. Set it (CONFIG SET notify-keyspace-events Ex) or "
		    "reaper.enable_notifications = true", flags);
	}
}

void
events_guard_refused(struct daemon *d, unsigned long long *spell, const char *what,
    const char *units)
{
	if ((*spell)++ == 0) {
		log_error("%s", d->rec.err);
		metrics_event_guard();
	} else {
		log_debug("%s: the guard still refuses (%llu %s)", what, *spell, units);
	}
}

void
events_guard_cleared(unsigned long long *spell, const char *what, const char *units)
{
	if (*spell == 0)
		return;
	log_info("%s: the stale-ratio guard allows removal again (it refused %llu %s)", what,
	    *spell, units);
	*spell = 0;
}

/*
 * Reap the oldest reaper.batch_size users whose socket sets expired,
 * through the guard and the fenced script; the rest wait for the next turn.
 */
static void
reap_events(struct daemon *d)
{
	const char *const *ids;
	const size_t *lens;
	size_t n = watch_take(d->watch, (size_t)d->cfg.batch_size, &ids, &lens);
	struct reconcile_stats st;
	enum reconcile_result res;

	res = (enum reconcile_result)reapcall_ids(&d->rec, d->conn, ids, lens, n,
	    "key-expiry events", &st);
	if (res == RECONCILE_GUARD) {
		/* The queue goes: the pass and its own guard judge those users. */
		watch_clear(d->watch);
		events_guard_refused(d, &d->events_refused, "key-expiry events", "batches");
		return;
	}
	log_debug("expiry events: checked %zu users, removed %llu", n, st.removed);
	watch_consume(d->watch, n);
	if (res == RECONCILE_OK) {
		events_guard_cleared(&d->events_refused, "key-expiry events", "batches");
		d->event_removed += st.removed;
		metrics_event_removals(st.removed);
	} else {
		daemon_step_failed(d, res);
	}
}

/*
 * The subscription could not be made: said once while the same reason
 * repeats (errlog.h). A refused SUBSCRIBE goes by its class's level, a
 * missing channel permission being an error for the operator.
 */
static void
subscribe_failed(struct daemon *d)
{
	enum rerr_class cls = watch_err_class(d->watch);
	char msg[600];

	metrics_redis_error();
	snprintf(msg, sizeof(msg), "cannot watch key expiry: %s%s; the periodic pass still "
	    "reaps; retrying with backoff", watch_err(d->watch), cls == RERR_NOPERM ?
	    "; the reaper's ACL user needs this command on this channel" : "");
	errlog_report(&d->watch_errlog, cls == RERR_NOPERM || cls == RERR_UNKNOWN_COMMAND ?
	    LOG_LVL_ERROR : LOG_LVL_WARN, msg);
}

void
events_start(struct daemon *d, int64_t now)
{
	char name[300];
	struct rconn_opts o;

	if (!d->cfg.watch_expiry || d->cli.once || d->role != ROLE_LEADER ||
	    watch_fd(d->watch) >= 0 || now < d->watch_retry_at)
		return;
	check_notifications(d);
	daemon_conn_opts(d, &o, name, sizeof(name));
	if (watch_subscribe(d->watch, &o, d->cfg.url.db) == 0) {
		tlsctx_connected(&d->cfg);
		errlog_clear(&d->watch_errlog);
		log_info("watching key expiry on %s", watch_channel(d->watch));
	} else {
		subscribe_failed(d);
		d->watch_retry_at = now + daemon_retry_ms(d);
	}
}

void
events_stop(struct daemon *d)
{
	if (watch_fd(d->watch) >= 0) {
		watch_unsubscribe(d->watch);
		log_info("stopped watching key expiry (not leader)");
	}
	watch_clear(d->watch);
}

void
events_step(struct daemon *d, int64_t now)
{
	if (d->role != ROLE_LEADER) {
		events_stop(d);
		return;
	}
	events_start(d, now);	/* when not subscribed yet, or again */
	if (watch_fd(d->watch) >= 0 && watch_read(d->watch, &d->rec.keys) < 0) {
		log_warnx("key-expiry subscription lost: %s; the periodic pass still reaps",
		    watch_err(d->watch));
		metrics_redis_error();
		d->watch_retry_at = now + daemon_retry_ms(d);
	}
	if (watch_due(d->watch, now, (size_t)d->cfg.batch_size))
		reap_events(d);
}
