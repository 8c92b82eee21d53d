#include "daemon.h"

#include <stdio.h>
#include <string.h>

#include "errpolicy.h"
#include "events.h"
#include "expiry.h"
#include "failover.h"
#include "fleet.h"
#include "log.h"
#include "metrics.h"
#include "notify.h"
#include "reload.h"
#include "scripts.h"
#include "wait.h"

#define BACKOFF_BASE_MS		100
#define BACKOFF_CAP_MS		5000
#define BACKOFF_FLOOR_MS	50
#define INTERVAL_JITTER		0.05

static const char *const role_names[] = {
	[ROLE_DISCONNECTED] = "disconnected",
	[ROLE_STANDBY] = "standby",
	[ROLE_LEADER] = "leader",
	[ROLE_SHADOW] = "shadow",
};

void
daemon_set_role(struct daemon *d, enum role role)
{
	enum role was = d->role;

	if (role == was)
		return;
	d->role = role;
	log_debug("role: %s -> %s", role_names[was], role_names[role]);
	if (role == ROLE_LEADER)
		log_info("became leader (token %s)", d->leader.token);
	else if (was == ROLE_LEADER && role == ROLE_DISCONNECTED)
		log_info("leadership suspended until redis is reachable again");
	if (d->seat)
		fleet_seat_role(d->seat, was, role);
	metrics_leader(role == ROLE_LEADER);
	metrics_redis_up(role != ROLE_DISCONNECTED);
	if (role == ROLE_LEADER)
		events_start(d, mono_ms());
	else
		events_stop(d);
	if (role != ROLE_LEADER && role != ROLE_SHADOW)
		expiry_clear(d);
}

void
daemon_connected(struct daemon *d)
{
	daemon_set_role(d, d->cli.dry_run ? ROLE_SHADOW : ROLE_STANDBY);
}

void
daemon_disconnect(struct daemon *d)
{
	rconn_close(d->conn);
	d->conn = NULL;
	daemon_set_role(d, ROLE_DISCONNECTED);
}

/* Liveness: how long the loop may go without a tick before /healthz fails. */
int64_t
daemon_health_window_ms(const struct cfg *c)
{
	double longest = c->interval > c->renew ? c->interval : c->renew;

	/* A slow or absent Redis delays ticks by at most these timeouts. */
	return (int64_t)((3 * longest + c->connect_timeout + c->command_timeout) * 1000);
}

/* Waits between attempts never exceed the loop's own period. */
int64_t
daemon_retry_ms(struct daemon *d)
{
	double longest = d->cfg.interval > d->cfg.renew ? d->cfg.interval : d->cfg.renew;
	int64_t delay = backoff_next(&d->backoff, rnd_u64());
	int64_t cap = (int64_t)(longest * 1000);

	return delay < cap ? delay : (cap > BACKOFF_FLOOR_MS ? cap : BACKOFF_FLOOR_MS);
}

void
daemon_drop_conn(struct daemon *d, const char *why)
{
	if (d->role == ROLE_DISCONNECTED)
		return;
	log_warnx("redis connection lost: %s", why);
	metrics_redis_error();
	daemon_disconnect(d);
}

void
daemon_endpoint(const struct cfg *c, char *out, size_t outsz)
{
	rurl_format_redacted(&c->url, out, outsz);
}

void
daemon_conn_opts(struct daemon *d, struct rconn_opts *o, char *name, size_t namesz)
{
	leader_client_name(d->cfg.identity, name, namesz);
	o->url = failover_url(d);
	o->connect_timeout_ms = (int)(d->cfg.connect_timeout * 1000);
	o->command_timeout_ms = (int)(d->cfg.command_timeout * 1000);
	o->client_name = name;
	o->tls = tlsctx_for_connect(&d->tls, &d->cfg);
}

/* Connect once. Returns 0, or the rconn_err kind with a message in err. */
int
daemon_connect(struct daemon *d, char *err, size_t errlen)
{
	struct rconn_opts o;
	enum rconn_err kind;
	char name[300];

	daemon_conn_opts(d, &o, name, sizeof(name));
	d->conn = failover_connect(d, &o, &kind, err, errlen);
	if (d->conn)
		tlsctx_connected(&d->cfg);
	return d->conn ? 0 : (int)kind;
}

/*
 * Loop mode: connect when disconnected. 0 when connected, -1 when this
 * attempt failed (logged once a spell); the caller waits daemon_retry_ms(),
 * capped exponential backoff with full jitter, before the next.
 */
static int
ensure_conn(struct daemon *d)
{
	char err[512], ep[1200], how[128];
	int kind;

	if (d->role != ROLE_DISCONNECTED)
		return 0;
	daemon_endpoint(&d->cfg, ep, sizeof(ep));
	if ((kind = daemon_connect(d, err, sizeof(err))) == 0) {
		tlsctx_describe(d->conn, how, sizeof(how));
		if (d->conn_failures)
			log_info("connected to %s%s after %d failed attempts", ep, how,
			    d->conn_failures);
		else
			log_info("connected to %s%s", ep, how);
		if (!d->ready_sent) {
			notify_ready();
			d->ready_sent = 1;
		}
		d->conn_failures = 0;
		backoff_reset(&d->backoff);
		daemon_connected(d);
		return 0;
	}
	metrics_redis_error();
	/* Say it once at warn (error for credentials), then only at debug. */
	if (d->conn_failures++ == 0) {
		if (kind == RCONN_EAUTH)
			log_error("%s; retrying with backoff", err);
		else
			log_warnx("redis %s (%s): %s; retrying with backoff",
			    kind == RCONN_EBUSY ? "not ready" : "unreachable", ep, err);
	} else {
		log_debug("connect attempt %d failed: %s", d->conn_failures, err);
	}
	return -1;
}

static int64_t
interval_ms(const struct cfg *c)
{
	return jitter_ms((int64_t)(c->interval * 1000), INTERVAL_JITTER, rnd_u64());
}

int64_t
daemon_renew_ms(const struct cfg *c)
{
	return (int64_t)(c->renew * 1000);
}

/*
 * Renew the lease when due. Returns 0 while we lead, -1 when the lease is
 * lost or could not be renewed (back to standby; a broken connection is
 * left for the caller to drop, so nothing frees it under a running pass).
 */
int
daemon_renew_lease(struct daemon *d)
{
	char err[512];
	int rc;

	if (d->role != ROLE_LEADER)
		return -1;
	if (mono_ms() < d->renew_due)
		return 0;
	rc = failover_lock(d, LOCK_RENEW, NULL, 0, err, sizeof(err));
	if (rc == 1) {
		d->renew_due = mono_ms() + daemon_renew_ms(&d->cfg);
		return 0;
	}
	if (rc == 0) {
		log_warnx("lost leadership: lock %s is no longer ours", d->cfg.leader_key);
	} else if (rconn_broken(d->conn)) {
		log_warnx("lease renewal failed: %s", err);
	} else {
		char msg[600];

		snprintf(msg, sizeof(msg), "lease renewal failed: %s", err);
		report_refusal(d, d->leader.err_class, msg);
	}
	daemon_set_role(d, ROLE_STANDBY);
	return -1;
}

/*
 * reaper.max_rate pacing: sleep until deadline, renewing the lease when it
 * falls due (a slow rate may pace for longer than the lease). Returns
 * early on a stop signal or a lost lease; tick() then says which.
 */
static void
pace_sleep(void *arg, int64_t deadline)
{
	struct daemon *d = arg;
	int keep = d->role == ROLE_LEADER;

	while (!wait_stopping() && mono_ms() < deadline && !failover_pending(d)) {
		int fd = failover_fd(d);

		wait_until(keep && d->renew_due < deadline ? d->renew_due : deadline, 0, &fd, 1);
		if (keep && daemon_renew_lease(d) < 0)
			return;
	}
}

/* Does tick want to run (shutdown, renewal or calendar due)? Cheap; keeps us alive. */
static int
tick_due(void *arg)
{
	struct daemon *d = arg;
	int64_t now = mono_ms();

	wait_keepalive();
	return wait_stopping() || failover_pending(d) || (d->role != ROLE_SHADOW &&
	    now >= d->renew_due) || expiry_next_ms(d) <= now;
}

/* Between batches: the calendar's due checks; a failure the pass must see stops it. */
static enum tick
expiry_tick(struct daemon *d)
{
	enum reconcile_result res = expiry_step(d, mono_ms());

	if (res == RECONCILE_OK)
		return TICK_GO;
	if (res == RECONCILE_CONN)
		return TICK_STOP;	/* daemon_pass() finds the connection broken */
	daemon_step_failed(d, res);
	if (d->role == ROLE_SHADOW)
		return TICK_GO;
	if (d->role != ROLE_LEADER)
		return TICK_LEASE_LOST;	/* not leader: the pass stops too */
	return d->rediscover ? TICK_STOP : TICK_GO;
}

/* Between batches: stop when asked to, or when the lease is lost. */
static enum tick
tick(void *arg)
{
	struct daemon *d = arg;

	wait_keepalive();
	if (wait_stopping() || d->rediscover)
		return TICK_STOP;	/* shutting down, or the primary moved */
	if (d->role != ROLE_SHADOW && daemon_renew_lease(d) < 0)
		return TICK_LEASE_LOST;
	return expiry_tick(d);
}

void
daemon_pass_init(struct daemon *d)
{
	reconcile_init(&d->rec, &d->cfg, d->cli.dry_run ? NULL : &d->leader,
	    d->cli.dry_run, stdout);
	d->rec.tracking = d->cfg.track_expiry && !d->cli.once;
	d->cal_refused_seen = d->cal_refused_logged = 0;	/* a new calendar counts from 0 */
	d->rec.tick = tick;
	d->rec.tick_due = tick_due;
	d->rec.sleep_until = pace_sleep;
	d->rec.tick_arg = d;
}

int
daemon_init(struct daemon *d)
{
	leader_init(&d->leader, d->cfg.leader_key, d->cfg.lease, d->cfg.identity, rnd_u64());
	d->status_script = (struct script){ "status", script_status, "", RERR_NONE };
	daemon_pass_init(d);
	backoff_init(&d->backoff, BACKOFF_BASE_MS, BACKOFF_CAP_MS, BACKOFF_FLOOR_MS);
	failover_init(d);
	d->watch = watch_new((size_t)d->cfg.batch_size);
	return d->watch ? 0 : -1;
}

void
daemon_free(struct daemon *d)
{
	watch_free(d->watch);
	d->watch = NULL;
	expiry_clear(d);
	rconn_close(d->conn);
	d->conn = NULL;
	failover_reset(d);
	reconcile_free(&d->rec);
	tlsctx_free(&d->tls);
}

void
daemon_step_failed(struct daemon *d, enum reconcile_result res)
{
	switch (res) {
	case RECONCILE_NOT_LEADER:
		log_warnx("%s", d->rec.err);
		daemon_set_role(d, ROLE_STANDBY);
		break;
	case RECONCILE_DATA:
		report_refusal(d, d->rec.err_class, d->rec.err);
		break;
	case RECONCILE_GUARD:
	case RECONCILE_INTERNAL:
		log_error("%s", d->rec.err);
		break;
	case RECONCILE_CONN:
		daemon_drop_conn(d, d->rec.err[0] ? d->rec.err : rconn_errstr(d->conn));
		break;
	case RECONCILE_OK:
	case RECONCILE_STOPPED:
		break;
	}
}

/* The loop's pass: one refused by Redis is tried again with backoff, not an interval later. */
static void
loop_cycle(struct daemon *d)
{
	if (daemon_pass(d) == RECONCILE_DATA && retried_with_backoff(d->rec.err_class))
		d->next_cycle = mono_ms() + daemon_retry_ms(d);
}

void
daemon_release_lock(struct daemon *d)
{
	char err[512];
	int rc;

	if (d->role != ROLE_LEADER)
		return;
	rc = failover_lock(d, LOCK_RELEASE, NULL, 0, err, sizeof(err));
	if (rc == 1)
		log_info("lock released");
	else if (rc == 0)
		log_warnx("lock %s was no longer ours at release", d->cfg.leader_key);
	else
		log_warnx("lock release failed: %s (it expires with its lease)", err);
	daemon_set_role(d, ROLE_STANDBY);
}

void
daemon_note_holder(struct daemon *d, const char *holder)
{
	if (strcmp(holder, d->holder) != 0)
		log_info("standby: lock held by %s", holder);
	snprintf(d->holder, sizeof(d->holder), "%s", holder);
}

/* Standby or leader: take the lock if free. -1 on a connection problem. */
static int
try_lead(struct daemon *d)
{
	char err[512], holder[LEADER_TOKEN_MAX];
	int rc;

	rc = failover_lock(d, LOCK_ACQUIRE, holder, sizeof(holder), err, sizeof(err));
	if (rc >= 0)
		refusal_cleared(d);
	if (rc == 1) {
		daemon_set_role(d, ROLE_LEADER);
		if (failover_check_keys(d) == RECONCILE_DATA)
			log_error("%s", d->rec.err);
		d->holder[0] = '\0';
		d->renew_due = mono_ms() + daemon_renew_ms(&d->cfg);
		if (d->next_cycle == 0 || d->next_cycle > mono_ms())
			d->next_cycle = mono_ms();
		return 0;
	}
	if (rc == 0) {
		daemon_note_holder(d, holder);
		return 0;
	}
	if (rconn_broken(d->conn)) {
		daemon_drop_conn(d, err);
	} else {
		char msg[600];

		snprintf(msg, sizeof(msg), "cannot take the lock: %s", err);
		report_refusal(d, d->leader.err_class, msg);
	}
	return -1;
}

/* A lease check failed: a broken connection goes, leadership already went. */
static void
lease_failed(struct daemon *d)
{
	if (rconn_broken(d->conn))
		daemon_drop_conn(d, rconn_errstr(d->conn));
}

/*
 * Not leading: take the lock if free. Returns 0 when we now lead, else
 * when to try again (mono ms).
 */
static int64_t
standby_step(struct daemon *d, int64_t now)
{
	int64_t renew = now + jitter_ms(daemon_renew_ms(&d->cfg), INTERVAL_JITTER, rnd_u64());
	int64_t next = 0;

	/* A seat reserves room in the fair share only for a lock that looks free. */
	if (d->seat && (fleet_seat_lock_taken(d) || !share_reserve(d->seat->gate)))
		return renew;
	if (try_lead(d) < 0)
		next = now + daemon_retry_ms(d);
	else if (d->role != ROLE_LEADER)
		next = renew;
	if (d->seat && d->role != ROLE_LEADER)
		share_drop(d->seat->gate);
	return next;
}

/* When the loop must next run: a pass, a renewal, or a batch of events. */
static int64_t
next_wake(const struct daemon *d, int64_t now)
{
	int64_t wake = d->next_cycle, events;

	if (d->role == ROLE_LEADER && d->renew_due < wake)
		wake = d->renew_due;
	events = watch_next_ms(d->watch, now, (size_t)d->cfg.batch_size);
	if (events < wake)
		wake = events;
	events = expiry_next_ms(d);
	return events < wake ? events : wake;
}

/* Run the pass when due; 1 when it ran (or its lease check failed). */
static int
pass_step(struct daemon *d, int64_t now)
{
	if (now < d->next_cycle)
		return 0;
	d->next_cycle = now + interval_ms(&d->cfg);
	d->rec.next_gap = d->next_cycle - now;	/* the horizon of track_expiry */
	/*
	 * Confirm the lease first: a pass with nothing stale runs no
	 * fenced script, so this is where a lost lock shows.
	 */
	if (d->role == ROLE_LEADER) {
		d->renew_due = now;
		if (daemon_renew_lease(d) < 0) {
			lease_failed(d);
			return 1;
		}
	}
	loop_cycle(d);
	return 1;
}

/*
 * One turn of the loop: reload when asked, keep the connection, lead or
 * stand by, watch, run the pass when due. Returns when the next turn is
 * due (mono ms); now, when there is more to do at once.
 */
static int64_t
turn(struct daemon *d)
{
	enum reconcile_result res;
	int64_t now, wake;

	if (!d->seat && wait_reload_pending())
		daemon_reload(d);
	if (d->seat && d->role != ROLE_LEADER && (wake = fleet_seat_idle(d)) != 0)
		return wake;
	failover_step(d, mono_ms());
	if (ensure_conn(d) < 0)
		return mono_ms() + daemon_retry_ms(d);
	now = mono_ms();
	if (d->role == ROLE_STANDBY && (wake = standby_step(d, now)) != 0)
		return wake;
	if (d->role == ROLE_LEADER && daemon_renew_lease(d) < 0) {
		lease_failed(d);
		return now;
	}
	if (d->seat && d->role == ROLE_LEADER && fleet_seat_give_back(d))
		return now;
	if (d->role == ROLE_LEADER && d->cfg.watch_expiry) {
		events_step(d, now);
		if (d->role == ROLE_DISCONNECTED)
			return now;
	}
	if ((res = expiry_step(d, now)) != RECONCILE_OK) {
		daemon_step_failed(d, res);
		return now;
	}
	if (pass_step(d, now))
		return now;
	return next_wake(d, now);
}

/*
 * The one place the loop waits: the self-pipe, and the subscriptions
 * (key expiry, +switch-master) when there are. A primary that moved is
 * followed at once.
 */
void
daemon_run(struct daemon *d)
{
	while (!wait_stopping() && !(d->seat && d->seat->quit)) {
		int64_t wake = turn(d);
		int fds[] = { watch_fd(d->watch), failover_fd(d) };

		if (!d->rediscover)
			wait_until(wake, !d->seat, fds, 2);	/* a shard's thread leaves SIGHUP to fleet.c */
	}
	wait_note_shutdown();
	watch_unsubscribe(d->watch);	/* quietly: we are leaving */
	daemon_release_lock(d);
}
