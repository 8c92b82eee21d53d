/*
 * presence-reaper: removes users whose socket sets expired from the Redis
 * online-users set. main.c owns the command line, signals, the loop and
 * every exit status; the modules below it only report.
 */
#define _GNU_SOURCE	/* pipe2 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "build-config.h"
#include "cli.h"
#include "errlog.h"
#include "escape.h"
#include "leader.h"
#include "log.h"
#include "metrics.h"
#include "notify.h"
#include "rconn.h"
#include "reconcile.h"
#include "rerr.h"
#include "settings.h"
#include "timeutil.h"
#include "watch.h"

#define BACKOFF_BASE_MS		100
#define BACKOFF_CAP_MS		5000
#define BACKOFF_FLOOR_MS	50
#define INTERVAL_JITTER		0.05
/* --once: the step in hand may go on, or waits out a LOADING or BUSY reply. */
#define ONCE_GO			-1
#define ONCE_WAIT		-2

/*
 * The error-reply policy (DESIGN §7; presence-reaper(8), ERROR REPLIES).
 * The loop never exits on an error reply: it logs it once at its level
 * (then only counts it, see errlog.h) and retries, with backoff for the
 * classes below RERR_OTHER, at the next interval for errors of the data.
 * --once exits with once_exit, after waiting out LOADING and BUSY for up
 * to redis.command_timeout.
 */
static const struct policy {
	enum log_level level;
	int once_exit;
	const char *hint;	/* appended to the message; NULL: none */
} policies[RERR_NCLASSES] = {
	[RERR_NONE] = { LOG_LVL_ERROR, EX_DATAERR, NULL },
	[RERR_READONLY] = { LOG_LVL_WARN, EX_UNAVAILABLE, NULL },
	[RERR_LOADING] = { LOG_LVL_WARN, EX_UNAVAILABLE, NULL },
	[RERR_BUSY] = { LOG_LVL_WARN, EX_UNAVAILABLE, NULL },
	[RERR_OOM] = { LOG_LVL_WARN, EX_TEMPFAIL,
	    "redis is out of memory (maxmemory) and refused it: nothing removed" },
	[RERR_NOPERM] = { LOG_LVL_ERROR, EX_CONFIG,
	    "the reaper's ACL user needs this command on this key" },
	[RERR_UNKNOWN_COMMAND] = { LOG_LVL_ERROR, EX_CONFIG, NULL },
	[RERR_OTHER] = { LOG_LVL_ERROR, EX_DATAERR, NULL },
};

static int wake_fd = -1;		/* the expiry subscription, when there is one */
static int64_t watchdog_ms;	/* systemd watchdog period / 2; 0 = off */
static int64_t watchdog_last;
static volatile sig_atomic_t stop_signal;
static volatile sig_atomic_t reload_requested;
static int wake_pipe[2] = { -1, -1 };

struct daemon {
	struct cli cli;
	struct cfg cfg;
	struct leader leader;
	struct reconcile rec;
	struct rconn *conn;
	struct backoff backoff;
	int is_leader;
	int conn_failures;	/* consecutive, for "log once" */
	int ready_sent;		/* READY=1 went to systemd */
	char holder[LEADER_TOKEN_MAX];	/* last lock holder seen as standby */
	int64_t next_cycle;
	int64_t renew_due;
	struct watch watch;
	int64_t watch_retry_at;
	int watch_warned;	/* said once that the server sends no expiry events */
	unsigned long long event_removed;	/* since the last pass's summary */
	unsigned long long events_refused;	/* event batches the guard refused in a row */
	struct errlog errlog;	/* the error reply being repeated; zeroed: none */
};

static void
set_leader(struct daemon *d, int is_leader)
{
	d->is_leader = is_leader;
	metrics_leader(is_leader);
}

/* Liveness: how long the loop may go without a tick before /healthz fails. */
static int64_t
health_window_ms(const struct cfg *c)
{
	double longest = c->interval > c->renew ? c->interval : c->renew;

	/* A slow or absent Redis delays ticks by at most these timeouts. */
	return (int64_t)((3 * longest + c->connect_timeout + c->command_timeout) * 1000);
}

/* Waits between attempts never exceed the loop's own period. */
static int64_t
retry_delay_ms(struct daemon *d)
{
	double longest = d->cfg.interval > d->cfg.renew ? d->cfg.interval : d->cfg.renew;
	int64_t delay = backoff_next(&d->backoff, rnd_u64());
	int64_t cap = (int64_t)(longest * 1000);

	return delay < cap ? delay : (cap > BACKOFF_FLOOR_MS ? cap : BACKOFF_FLOOR_MS);
}

/* Error replies of these classes are retried with backoff, not at the next interval. */
static int
retried_with_backoff(enum rerr_class cls)
{
	return cls != RERR_NONE && cls != RERR_OTHER;
}

/*
 * Log an error reply (msg names the command and key) by the policy of
 * its class: once at the class's level while it repeats, with what it
 * means and what happens next. An unknown command is shown with the
 * server's version, asked for on d->conn (which must be usable).
 */
static void
report_refusal(struct daemon *d, enum rerr_class cls, const char *msg)
{
	const struct policy *p = &policies[cls];
	char line[ERRLOG_MAX], version[64];
	redisReply *info;
	int n;

	if (cls != RERR_NONE)
		metrics_redis_error();
	if (cls == RERR_UNKNOWN_COMMAND) {
		info = rconn_calll(d->conn, "INFO", "server", NULL);
		rerr_server_version(info, version, sizeof(version));
		if (info != NULL)
			freeReplyObject(info);
		n = snprintf(line, sizeof(line), "%s; the server (redis_version %s) does not "
		    "know this command: renamed or disabled (rename-command), or missing in "
		    "this version", msg, version);
	} else {
		n = snprintf(line, sizeof(line), "%s%s%s", msg, p->hint ? "; " : "",
		    p->hint ? p->hint : "");
	}
	if (n < 0 || (size_t)n >= sizeof(line))
		n = (int)strlen(line);
	if (d->cli.once && rerr_transient(cls))
		snprintf(line + n, sizeof(line) - (size_t)n, "; waiting up to %g s "
		    "(redis.command_timeout)", d->cfg.command_timeout);
	else if (!d->cli.once && retried_with_backoff(cls))
		snprintf(line + n, sizeof(line) - (size_t)n, "; retrying with backoff");
	errlog_report(&d->errlog, p->level, line);
}

/* A step Redis had refused went through: close the repeated error, retry promptly next time. */
static void
refusal_cleared(struct daemon *d)
{
	errlog_clear(&d->errlog);
	backoff_reset(&d->backoff);
}

static void
on_signal(int sig)
{
	int saved = errno;

	if (sig == SIGHUP) {
		reload_requested = 1;
	} else {
		if (stop_signal)
			_exit(128 + sig);	/* second signal: no more waiting */
		stop_signal = sig;
	}
	if (wake_pipe[1] >= 0 && write(wake_pipe[1], "x", 1) < 0) {
		/* pipe full: a wake-up is already pending */
	}
	errno = saved;
}

static int
setup_signals(void)
{
	struct sigaction sa;

	if (pipe2(wake_pipe, O_NONBLOCK | O_CLOEXEC) < 0)
		return -1;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	return 0;
}

/* The loop is alive: for /healthz and for systemd's watchdog. */
static void
keepalive(void)
{
	metrics_tick();
	if (watchdog_ms > 0 && mono_ms() - watchdog_last >= watchdog_ms) {
		notify_watchdog();
		watchdog_last = mono_ms();
	}
}

/*
 * Sleep until deadline (mono ms) or until a signal arrives, staying alive.
 * SIGHUP ends the sleep only when on_reload is set: pacing inside a pass
 * sleeps on, and the reload waits for the pass to end.
 */
static void
sleep_wait(int64_t deadline, int on_reload)
{
	struct pollfd p[2] = {
		{ .fd = wake_pipe[0], .events = POLLIN },
		{ .fd = wake_fd, .events = POLLIN },
	};
	char buf[64];

	for (;;) {
		int64_t left = deadline - mono_ms();

		keepalive();
		if (stop_signal || (on_reload && reload_requested) || left <= 0)
			return;
		if (watchdog_ms > 0 && left > watchdog_ms)
			left = watchdog_ms;
		if (poll(p, wake_fd >= 0 ? 2 : 1, left > 60000 ? 60000 : (int)left) > 0) {
			while (read(wake_pipe[0], buf, sizeof(buf)) > 0)
				;
			if (wake_fd >= 0 && p[1].revents)
				return;	/* expiry events to read */
		}
	}
}

static void
sleep_until(int64_t deadline)
{
	sleep_wait(deadline, 1);
}

/* Say once that shutdown has begun; may run while a Redis reply is awaited. */
static void
note_shutdown(void)
{
	static int said;

	if (stop_signal && !said) {
		said = 1;
		notify_stopping();
		log_info("shutting down (signal %d)", (int)stop_signal);
	}
}


static void
print_errors(const char *errs)
{
	const char *p = errs;

	while (*p) {
		const char *nl = strchr(p, '\n');
		int len = nl ? (int)(nl - p) : (int)strlen(p);

		log_error("%.*s", len, p);
		p += len + (nl ? 1 : 0);
	}
}

/*
 * Build a configuration: defaults < file < environment < command line.
 * Returns 0, or -1 with the errors in err.
 */
static int
load_config(const struct cli *cli, struct cfg *c, char *err, size_t errlen)
{
	cfg_defaults(c);
	if (cfg_load(c, cli->config_path, !cli->config_given, err, errlen) < 0)
		return -1;
	cfg_apply_env(c);
	if (cli->redis_url)
		cfg_set_url_option(c, cli->redis_url);
	return cfg_finalize(c, err, errlen);
}

static void
apply_logging(const struct cli *cli, const struct cfg *c)
{
	enum log_level lvl = LOG_LVL_INFO;
	enum log_format fmt = LOG_FMT_TEXT;

	if (c->log_level)
		log_level_parse(c->log_level, &lvl);
	if (c->log_format)
		log_format_parse(c->log_format, &fmt);
	if (cli->verbose)
		lvl = LOG_LVL_DEBUG;
	if (cli->quiet)
		lvl = LOG_LVL_ERROR;
	if (cli->log_format)
		log_format_parse(cli->log_format, &fmt);
	log_init(lvl, fmt);
}

static void
drop_conn(struct daemon *d, const char *why)
{
	if (d->conn == NULL)
		return;
	log_warnx("redis connection lost: %s", why);
	rconn_close(d->conn);
	d->conn = NULL;
	metrics_redis_up(0);
	metrics_redis_error();
	if (d->is_leader)
		log_info("leadership suspended until redis is reachable again");
	set_leader(d, 0);
}

static void
endpoint(const struct cfg *c, char *out, size_t outsz)
{
	rurl_format_redacted(&c->url, out, outsz);
}

static void
conn_opts(const struct daemon *d, struct rconn_opts *o, char *name, size_t namesz)
{
	leader_client_name(d->cfg.identity, name, namesz);
	o->url = &d->cfg.url;
	o->connect_timeout_ms = (int)(d->cfg.connect_timeout * 1000);
	o->command_timeout_ms = (int)(d->cfg.command_timeout * 1000);
	o->client_name = name;
}

/* Connect once. Returns 0, or the rconn_err kind with a message in err. */
static int
try_connect(struct daemon *d, char *err, size_t errlen)
{
	struct rconn_opts o;
	enum rconn_err kind;
	char name[300];

	conn_opts(d, &o, name, sizeof(name));
	d->conn = rconn_connect(&o, &kind, err, errlen);
	return d->conn ? 0 : (int)kind;
}

/* Loop mode: connect with capped exponential backoff and full jitter. */
static int
ensure_conn(struct daemon *d)
{
	char err[512], ep[1200];
	int kind;

	if (d->conn)
		return 0;
	endpoint(&d->cfg, ep, sizeof(ep));
	if ((kind = try_connect(d, err, sizeof(err))) == 0) {
		if (d->conn_failures)
			log_info("connected to %s after %d failed attempts", ep,
			    d->conn_failures);
		else
			log_info("connected to %s", ep);
		if (!d->ready_sent) {
			notify_ready();
			d->ready_sent = 1;
		}
		d->conn_failures = 0;
		backoff_reset(&d->backoff);
		metrics_redis_up(1);
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
	sleep_until(mono_ms() + retry_delay_ms(d));
	return -1;
}

static int64_t
interval_ms(const struct cfg *c)
{
	return jitter_ms((int64_t)(c->interval * 1000), INTERVAL_JITTER, rnd_u64());
}

static int64_t
renew_ms(const struct cfg *c)
{
	return (int64_t)(c->renew * 1000);
}

/*
 * Renew the lease when due. Returns 0 while we lead, -1 when the lease is
 * lost or could not be renewed (is_leader cleared; a broken connection is
 * left for the caller to drop, so nothing frees it under a running pass).
 */
static int
renew_lease(struct daemon *d)
{
	char err[512];
	int rc;

	if (!d->is_leader)
		return -1;
	if (mono_ms() < d->renew_due)
		return 0;
	rc = leader_renew(&d->leader, d->conn, err, sizeof(err));
	if (rc == 1) {
		d->renew_due = mono_ms() + renew_ms(&d->cfg);
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
	set_leader(d, 0);
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
	int keep = d->is_leader && !d->cli.dry_run;

	while (!stop_signal && mono_ms() < deadline) {
		sleep_wait(keep && d->renew_due < deadline ? d->renew_due : deadline, 0);
		if (keep && renew_lease(d) < 0)
			return;
	}
}

/* Does tick want to run (shutdown, lease renewal due)? Cheap; keeps us alive. */
static int
tick_due(void *arg)
{
	struct daemon *d = arg;

	keepalive();
	return stop_signal || (!d->cli.dry_run && mono_ms() >= d->renew_due);
}

/* Between batches: stop when asked to, or when the lease is lost. */
static int
tick(void *arg)
{
	struct daemon *d = arg;

	keepalive();
	if (stop_signal)
		return TICK_STOP;
	if (d->cli.dry_run)
		return 0;
	return renew_lease(d) < 0 ? TICK_LOST : 0;
}

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

/* Run one pass and log it. Returns the reconcile result. */
static enum reconcile_result
run_cycle(struct daemon *d)
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
		log_info("since the last pass: %llu removed by the pass, %llu on key-expiry "
		    "events (%llu events, %llu dropped with the queue full)", st.removed,
		    d->event_removed, d->watch.events, d->watch.dropped);
		d->event_removed = 0;
		d->watch.events = 0;
		d->watch.dropped = 0;
	}
	switch (res) {
	case RECONCILE_OK:
		refusal_cleared(d);
		log_cycle(d, &st);
		break;
	case RECONCILE_STOPPED:
		log_info("pass interrupted after %llu batches: scanned=%llu removed=%llu",
		    st.batches, st.scanned, st.removed);
		break;
	case RECONCILE_NOT_LEADER:
		log_warnx("%s", d->rec.err);
		set_leader(d, 0);
		break;
	case RECONCILE_DATA:
		report_refusal(d, d->rec.err_class, d->rec.err);
		break;
	case RECONCILE_GUARD:
	case RECONCILE_INTERNAL:
		log_error("%s", d->rec.err);
		break;
	case RECONCILE_CONN:
		drop_conn(d, d->rec.err[0] ? d->rec.err : rconn_errstr(d->conn));
		break;
	}
	return res;
}

/* The loop's pass: one refused by Redis is tried again with backoff, not an interval later. */
static void
loop_cycle(struct daemon *d)
{
	if (run_cycle(d) == RECONCILE_DATA && retried_with_backoff(d->rec.err_class))
		d->next_cycle = mono_ms() + retry_delay_ms(d);
}

static void
release_lock(struct daemon *d)
{
	char err[512];
	int rc;

	if (!d->is_leader || d->conn == NULL)
		return;
	rc = leader_release(&d->leader, d->conn, err, sizeof(err));
	if (rc == 1)
		log_info("lock released");
	else if (rc == 0)
		log_warnx("lock %s was no longer ours at release", d->cfg.leader_key);
	else
		log_warnx("lock release failed: %s (it expires with its lease)", err);
	set_leader(d, 0);
}

/* Standby or leader: take the lock if free. -1 on a connection problem. */
static int
try_lead(struct daemon *d)
{
	char err[512], holder[LEADER_TOKEN_MAX];
	int rc;

	rc = leader_acquire(&d->leader, d->conn, holder, sizeof(holder), err, sizeof(err));
	if (rc >= 0)
		refusal_cleared(d);
	if (rc == 1) {
		log_info("became leader (token %s)", d->leader.token);
		if (reconcile_check_keys(&d->rec, d->conn) == RECONCILE_DATA)
			log_error("%s", d->rec.err);
		set_leader(d, 1);
		d->holder[0] = '\0';
		d->renew_due = mono_ms() + renew_ms(&d->cfg);
		if (d->next_cycle == 0 || d->next_cycle > mono_ms())
			d->next_cycle = mono_ms();
		return 0;
	}
	if (rc == 0) {
		if (strcmp(holder, d->holder) != 0)
			log_info("standby: lock held by %s", holder);
		snprintf(d->holder, sizeof(d->holder), "%s", holder);
		return 0;
	}
	if (rconn_broken(d->conn)) {
		drop_conn(d, err);
	} else {
		char msg[600];

		snprintf(msg, sizeof(msg), "cannot take the lock: %s", err);
		report_refusal(d, d->leader.err_class, msg);
	}
	return -1;
}

/*
 * SIGHUP: move the metrics listener when metrics.listen changed. Returns 0,
 * or -1 with a message in err when the new address cannot be served (the
 * old listener serves on).
 */
static int
move_listener(const char *from, const char *to, char *err, size_t errlen)
{
	if (strcmp(from, to) == 0)
		return 0;
	if (to[0] == '\0') {
		metrics_http_stop();
		log_info("metrics listener on %s stopped", from);
		return 0;
	}
	if (metrics_http_start(to, err, errlen) < 0)
		return -1;
	log_info("metrics listener on %s", to);
	return 0;
}

/* Make next the running configuration; what depends on it is rebuilt. */
static void
adopt_config(struct daemon *d, struct cfg *next)
{
	char token[LEADER_TOKEN_MAX];
	struct gwin window;

	watch_free(&d->watch);
	watch_init(&d->watch, (size_t)next->batch_size);
	window = d->rec.win;
	reconcile_free(&d->rec);
	cfg_free(&d->cfg);
	d->cfg = *next;
	/* The token keeps its identity: it names this process until it exits. */
	snprintf(token, sizeof(token), "%s", d->leader.token);
	leader_init(&d->leader, d->cfg.leader_key, d->cfg.lease, "", 0);
	snprintf(d->leader.token, sizeof(d->leader.token), "%s", token);
	reconcile_init(&d->rec, &d->cfg, d->cli.dry_run ? NULL : &d->leader,
	    d->cli.dry_run, stdout);
	d->rec.win = window;	/* the guard remembers recent removals across a reload */
	d->rec.tick = tick;
	d->rec.tick_due = tick_due;
	d->rec.sleep_until = pace_sleep;
	d->rec.tick_arg = d;
	apply_logging(&d->cli, &d->cfg);
	metrics_set_health_window(health_window_ms(&d->cfg));
	d->next_cycle = mono_ms();
}

/* One line for what was applied, a warning for what waits for a restart. */
static void
log_reload(const struct cfg_changes *ch)
{
	if (!ch->live[0] && !ch->reconnect[0] && !ch->restart[0]) {
		log_info("configuration reloaded: no setting changed");
		return;
	}
	log_info("configuration reloaded: applied live: %s; reconnecting for: %s",
	    ch->live[0] ? ch->live : "none", ch->reconnect[0] ? ch->reconnect : "none");
	if (ch->restart[0])
		log_warnx("configuration reloaded: %s changed but applies only after a "
		    "restart; the running value stays in force", ch->restart);
}

static void
reload(struct daemon *d)
{
	char err[CFG_ERR_MAX];
	struct cfg_changes ch;
	struct cfg next;
	int reconnect;

	reload_requested = 0;
	notify_reloading();
	log_info("SIGHUP: reloading %s", d->cli.config_path);
	if (load_config(&d->cli, &next, err, sizeof(err)) < 0 ||
	    move_listener(d->cfg.metrics_listen, next.metrics_listen, err, sizeof(err)) < 0) {
		print_errors(err);
		log_error("reload failed, keeping the old configuration");
		cfg_free(&next);
		notify_ready();
		return;
	}
	reconnect = cfg_changes(&d->cfg, &next, &ch);
	cfg_keep_restart_settings(&next, &d->cfg);
	if (reconnect) {
		release_lock(d);
		if (d->conn)
			rconn_close(d->conn);
		d->conn = NULL;
	}
	adopt_config(d, &next);
	log_reload(&ch);
	notify_ready();
}

/* Say what the server's notify-keyspace-events means for watching; enable on request. */
static void
check_notifications(struct daemon *d)
{
	char flags[64], err[256];
	int ready = watch_server_ready(d->conn, flags, sizeof(flags), err, sizeof(err));

	if (ready == 1 || d->watch_warned)
		return;
	d->watch_warned = 1;
	if (ready < 0) {
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

/*
 * The guard refused key-expiry events: the queue goes (the pass and its
 * own guard judge those users). Said and counted once a refusal spell.
 */
static void
events_refused(struct daemon *d)
{
	watch_clear(&d->watch);
	if (d->events_refused++ == 0) {
		log_error("%s", d->rec.err);
		metrics_event_guard();
	} else {
		log_debug("key-expiry events: the guard still refuses (%llu batches)",
		    d->events_refused);
	}
}

/*
 * Reap the oldest reaper.batch_size users whose socket sets expired,
 * through the guard and the fenced script; the rest wait for the next turn.
 */
static void
reap_events(struct daemon *d)
{
	size_t n = d->watch.n < (size_t)d->cfg.batch_size ? d->watch.n :
	    (size_t)d->cfg.batch_size;
	struct reconcile_stats st;
	enum reconcile_result res;

	res = reconcile_reap_ids(&d->rec, d->conn, (const char *const *)d->watch.ids,
	    d->watch.lens, n, &st);
	if (res == RECONCILE_GUARD) {
		events_refused(d);
		return;
	}
	log_debug("expiry events: checked %zu users, removed %llu", n, st.removed);
	watch_consume(&d->watch, n);
	if (res == RECONCILE_OK && d->events_refused) {
		log_info("key-expiry events: the stale-ratio guard allows removal again "
		    "(it refused %llu batches)", d->events_refused);
		d->events_refused = 0;
	}
	if (res == RECONCILE_OK) {
		d->event_removed += st.removed;
		metrics_event_removals(st.removed);
	} else if (res == RECONCILE_NOT_LEADER) {
		log_warnx("%s", d->rec.err);
		set_leader(d, 0);
	} else if (res == RECONCILE_CONN) {
		drop_conn(d, d->rec.err);
	} else if (res == RECONCILE_DATA) {
		report_refusal(d, d->rec.err_class, d->rec.err);
	} else {
		log_error("%s", d->rec.err);
	}
}

/*
 * Event-driven reaping, leader only: subscribe, read what arrived, and reap
 * when a small batch is due. Losing the subscription is logged; the
 * periodic pass still reaps and the subscription is retried.
 */
static void
watch_step(struct daemon *d, int64_t now)
{
	char name[300];
	struct rconn_opts o;

	if (!d->is_leader || d->conn == NULL) {
		if (d->watch.sub) {
			watch_unsubscribe(&d->watch);
			log_info("stopped watching key expiry (not leader)");
		}
		watch_clear(&d->watch);
		return;
	}
	if (d->watch.sub == NULL && now >= d->watch_retry_at) {
		check_notifications(d);
		conn_opts(d, &o, name, sizeof(name));
		if (watch_subscribe(&d->watch, &o, d->cfg.url.db) == 0) {
			log_info("watching key expiry on %s", d->watch.channel);
		} else {
			log_warnx("cannot watch key expiry: %s; retrying", d->watch.err);
			d->watch_retry_at = now + retry_delay_ms(d);
		}
	}
	if (d->watch.sub && watch_read(&d->watch, &d->rec.keys) < 0) {
		log_warnx("key-expiry subscription lost: %s; the periodic pass still reaps",
		    d->watch.err);
		metrics_redis_error();
		d->watch_retry_at = now + retry_delay_ms(d);
	}
	if (watch_due(&d->watch, now, (size_t)d->cfg.batch_size))
		reap_events(d);
}

/* The daemon: never exits because of Redis; only a signal ends it. */
static int
run_loop(struct daemon *d)
{
	while (!stop_signal) {
		int64_t now, wake;

		keepalive();
		if (reload_requested)
			reload(d);
		if (ensure_conn(d) < 0)
			continue;
		now = mono_ms();
		if (!d->is_leader && d->watch.sub)
			watch_step(d, now);	/* a standby does not subscribe */
		if (!d->cli.dry_run && !d->is_leader) {
			if (try_lead(d) < 0) {
				sleep_until(now + retry_delay_ms(d));
				continue;
			}
			if (!d->is_leader) {
				sleep_until(now + jitter_ms(renew_ms(&d->cfg), INTERVAL_JITTER,
				    rnd_u64()));
				continue;
			}
		}
		if (d->is_leader && renew_lease(d) < 0) {
			if (rconn_broken(d->conn))
				drop_conn(d, rconn_errstr(d->conn));
			continue;
		}
		if (d->cfg.watch_expiry && !d->cli.dry_run) {
			watch_step(d, now);
			if (d->conn == NULL)
				continue;
		}
		if (now >= d->next_cycle) {
			d->next_cycle = now + interval_ms(&d->cfg);
			/*
			 * Confirm the lease first: a pass with nothing stale runs no
			 * fenced script, so this is where a lost lock shows.
			 */
			if (d->is_leader) {
				d->renew_due = now;
				if (renew_lease(d) < 0) {
					if (rconn_broken(d->conn))
						drop_conn(d, rconn_errstr(d->conn));
					continue;
				}
			}
			loop_cycle(d);
			continue;
		}
		wake = d->next_cycle;
		if (d->is_leader && d->renew_due < wake)
			wake = d->renew_due;
		if (d->watch.n > 0 && d->watch.first_ms + WATCH_FLUSH_MS < wake)
			wake = d->watch.first_ms + WATCH_FLUSH_MS;
		if (d->watch.more || watch_due(&d->watch, now, (size_t)d->cfg.batch_size))
			wake = now;	/* more events to read, or a batch to reap */
		wake_fd = d->watch.sub ? rconn_fd(d->watch.sub) : -1;
		sleep_until(wake);
		wake_fd = -1;
	}
	note_shutdown();
	watch_free(&d->watch);
	release_lock(d);
	return EX_OK;
}

/* --once: the exit status of a pass; an error reply's comes from its policy. */
static int
exit_for(enum reconcile_result res, enum rerr_class cls)
{
	switch (res) {
	case RECONCILE_OK:
	case RECONCILE_STOPPED:
		return EX_OK;
	case RECONCILE_NOT_LEADER:	/* lost the lock mid-pass: it did not finish */
	case RECONCILE_GUARD:
		return EX_TEMPFAIL;
	case RECONCILE_DATA:
		return policies[cls].once_exit;
	case RECONCILE_CONN:
		return EX_UNAVAILABLE;
	case RECONCILE_INTERNAL:
		break;
	}
	return EX_SOFTWARE;
}

static int
exit_for_connect(int kind)
{
	return kind == RCONN_EAUTH ? EX_CONFIG : EX_UNAVAILABLE;
}

/* --once: how the run ended, from its exit status and from its pass, if one ran. */
static enum metrics_once_result
once_result(int rc)
{
	enum metrics_cycle_result cycle;
	int cycled = metrics_last_cycle(&cycle) == 0;

	if (rc == EX_OK && !cycled)	/* no pass: another instance holds the lock */
		return MO_NOT_LEADER;
	if (rc == EX_OK)
		return cycle == MC_OK ? MO_OK : cycle == MC_INTERRUPTED ? MO_INTERRUPTED :
		    MO_NOT_LEADER;
	if (cycled && cycle == MC_GUARD)
		return MO_GUARD;
	if (cycled && cycle == MC_NOT_LEADER)	/* lost the lease mid-pass */
		return MO_NOT_LEADER;
	return rc == EX_UNAVAILABLE ? MO_UNREACHABLE : MO_ERROR;
}

/*
 * --once, however it ends: leave the metrics and how the run ended for
 * node_exporter's textfile collector, so a failed run never looks like the
 * last good one.
 */
static void
write_textfile(const struct daemon *d, int rc)
{
	char err[512];

	if (d->cfg.metrics_textfile[0] == '\0')
		return;
	metrics_once_end(once_result(rc), rc);
	if (metrics_write_textfile(d->cfg.metrics_textfile, err, sizeof(err)) < 0)
		log_error("%s", err);
}

/* --once: connect. ONCE_GO, ONCE_WAIT (LOADING or BUSY, msg says so), or an exit status. */
static int
once_connect(struct daemon *d, char *msg, size_t msglen)
{
	char err[512], ep[1200];
	int kind;

	if ((kind = try_connect(d, err, sizeof(err))) == 0)
		return ONCE_GO;
	endpoint(&d->cfg, ep, sizeof(ep));
	if (kind == RCONN_EBUSY) {
		snprintf(msg, msglen, "redis not ready (%s): %s", ep, err);
		report_refusal(d, RERR_BUSY, msg);	/* LOADING or BUSY: one policy */
		return ONCE_WAIT;
	}
	if (kind == RCONN_EAUTH)
		log_error("%s (%s)", err, ep);
	else
		log_error("redis unreachable (%s): %s", ep, err);
	return exit_for_connect(kind);
}

/* --once: take the lock. ONCE_GO when we lead, ONCE_WAIT, or an exit status. */
static int
once_lock(struct daemon *d, char *msg, size_t msglen)
{
	char err[512], holder[LEADER_TOKEN_MAX];
	enum rerr_class cls;
	int rc;

	rc = leader_acquire(&d->leader, d->conn, holder, sizeof(holder), err, sizeof(err));
	if (rc == 0) {
		log_info("another instance holds the lock %s (holder %s); nothing to do",
		    d->cfg.leader_key, holder);
		return EX_OK;
	}
	if (rc < 0 && rconn_broken(d->conn)) {
		log_error("cannot take the lock: %s", err);
		return EX_UNAVAILABLE;
	}
	if (rc < 0) {
		cls = d->leader.err_class;
		snprintf(msg, msglen, "cannot take the lock: %s", err);
		report_refusal(d, cls, msg);
		return rerr_transient(cls) ? ONCE_WAIT : policies[cls].once_exit;
	}
	set_leader(d, 1);
	d->renew_due = mono_ms() + renew_ms(&d->cfg);
	return ONCE_GO;
}

/*
 * --once, one attempt: connect, take the lock, run the pass, each step
 * only when not done yet. An exit status, or ONCE_WAIT when Redis answered
 * LOADING or BUSY (logged; msg says what). A pass is safe to run again.
 */
static int
once_attempt(struct daemon *d, char *msg, size_t msglen)
{
	enum reconcile_result res;
	int rc;

	if (d->conn == NULL && (rc = once_connect(d, msg, msglen)) != ONCE_GO)
		return rc;
	if (d->is_leader)
		renew_lease(d);		/* after a wait; a lease lost is taken again below */
	if (!d->cli.dry_run && !d->is_leader &&
	    (res = (enum reconcile_result)reconcile_check_keys(&d->rec, d->conn)) != 0) {
		log_error("%s", d->rec.err);
		return exit_for(res, d->rec.err_class);
	}
	if (!d->cli.dry_run && !d->is_leader && (rc = once_lock(d, msg, msglen)) != ONCE_GO)
		return rc;
	res = run_cycle(d);
	if (res == RECONCILE_DATA && rerr_transient(d->rec.err_class)) {
		snprintf(msg, msglen, "%s", d->rec.err);
		return ONCE_WAIT;
	}
	return exit_for(res, d->rec.err_class);
}

/*
 * --once: one pass, release, exit with a status cron can act on. LOADING
 * and BUSY are waited out, with backoff, for up to redis.command_timeout.
 */
static int
run_once(struct daemon *d)
{
	int64_t wait_ms = (int64_t)(d->cfg.command_timeout * 1000), deadline = 0;
	char msg[1024];
	int rc;

	while ((rc = once_attempt(d, msg, sizeof(msg))) == ONCE_WAIT) {
		int64_t now = mono_ms(), wake = now + retry_delay_ms(d);

		if (deadline == 0)
			deadline = now + wait_ms;
		if (stop_signal) {
			rc = EX_OK;
			break;
		}
		if (now >= deadline) {
			log_error("%s; not cleared within %g s (redis.command_timeout)", msg,
			    d->cfg.command_timeout);
			rc = EX_UNAVAILABLE;
			break;
		}
		sleep_until(wake < deadline ? wake : deadline);
	}
	note_shutdown();
	release_lock(d);
	return rc;
}

static void
print_line(void *ctx, const char *line)
{
	fprintf(ctx, "%s\n", line);
}

/* s escaped for stdout: -t prints Redis's own words (error texts, CONFIG values). */
static const char *
printable(const char *s, char *buf, size_t bufsz)
{
	escape_id(buf, bufsz, s, strlen(s));
	return buf;
}

/* -t: the effective configuration, then what Redis looks like, read-only. */
static int
check_config(struct daemon *d)
{
	struct guard_probe g;
	char err[512], ep[1200], shown[4 * sizeof(err) + 1];
	int kind, rc;

	cfg_dump(&d->cfg, print_line, stdout);
	endpoint(&d->cfg, ep, sizeof(ep));
	if ((kind = try_connect(d, err, sizeof(err))) != 0) {
		printf("# redis %s: %s\n", ep, err);	/* rconn escapes what Redis said */
		return kind == RCONN_EAUTH ? EX_CONFIG : EX_OK;
	}
	printf("# redis %s: reachable\n", ep);
	if (d->cfg.watch_expiry) {
		char flags[64], werr[256];
		int ready = watch_server_ready(d->conn, flags, sizeof(flags), werr, sizeof(werr));

		if (ready < 0)
			printf("# key-expiry events: cannot tell (%s)\n", werr);	/* escaped */
		else
			printf("# key-expiry events: notify-keyspace-events is \"%s\": %s\n",
			    printable(flags, shown, sizeof(shown)),
			    ready ? "ok" : d->cfg.enable_notifications ?
			    "missing E and x; the leader will add them" :
			    "missing E and x; only the periodic pass will reap");
	}
	reconcile_init(&d->rec, &d->cfg, NULL, 1, NULL);
	if (reconcile_check_keys(&d->rec, d->conn) != 0)
		printf("# keys: %s\n", d->rec.err);	/* Redis's words escaped at the source */
	if ((rc = reconcile_probe(&d->rec, d->conn, &g)) != 0) {
		printf("# guard probe: %s\n", d->rec.err);
		return EX_OK;
	}
	printf("# guard probe: online set %s has %lld members; sampled %d, %d without "
	    "a socket set (%.1f%%)\n", d->cfg.online_set, g.online, g.sampled, g.stale,
	    g.sampled ? 100.0 * g.stale / g.sampled : 0.0);
	if (!g.applies)
		printf("# guard probe: the guard does not apply (fewer than %d members, "
		    "or max_stale_ratio is 1)\n", d->cfg.guard_min_users);
	else if (g.tripped)
		printf("# guard probe: TRIPPED: a cycle would remove nothing; check "
		    "keys.socket_prefix and keys.socket_suffix\n");
	else
		printf("# guard probe: ok\n");
	return EX_OK;
}

int
main(int argc, char **argv)
{
	static struct daemon d;
	char err[CFG_ERR_MAX];
	int rc;

	if (cli_parse(argc, argv, &d.cli, err, sizeof(err)) < 0) {
		fprintf(stderr, "presence-reaper: %s\n", err);
		cli_usage(stderr);
		return EX_USAGE;
	}
	if (d.cli.help) {
		cli_usage(stdout);
		printf("\nSettings (presence-reaper.conf(5); durations in seconds):\n");
		cfg_help(print_line, stdout);
		return EX_OK;
	}
	if (d.cli.version) {
		printf("presence-reaper %s\n", PACKAGE_VERSION);
		return EX_OK;
	}
	apply_logging(&d.cli, &d.cfg);	/* until the file says otherwise */
	if (load_config(&d.cli, &d.cfg, err, sizeof(err)) < 0) {
		print_errors(err);
		log_error("configuration invalid; exiting");
		return EX_CONFIG;
	}
	apply_logging(&d.cli, &d.cfg);
	rnd_seed();
	if (d.cli.check_config) {
		rc = check_config(&d);
		goto out;
	}
	if (setup_signals() < 0) {
		log_warn("pipe");
		return EX_OSERR;
	}
	rconn_set_interrupt_hook(note_shutdown);
	metrics_init(d.cli.dry_run, health_window_ms(&d.cfg));
	if (!d.cli.once) {
		watchdog_ms = notify_watchdog_interval_ms();
		watchdog_last = mono_ms();
	}
	if (d.cfg.metrics_listen[0] &&
	    metrics_http_start(d.cfg.metrics_listen, err, sizeof(err)) < 0) {
		log_error("%s", err);
		rc = EX_CONFIG;
		goto stop;
	}
	leader_init(&d.leader, d.cfg.leader_key, d.cfg.lease, d.cfg.identity, rnd_u64());
	reconcile_init(&d.rec, &d.cfg, d.cli.dry_run ? NULL : &d.leader, d.cli.dry_run,
	    stdout);
	d.rec.tick = tick;
	d.rec.tick_due = tick_due;
	d.rec.sleep_until = pace_sleep;
	d.rec.tick_arg = &d;
	backoff_init(&d.backoff, BACKOFF_BASE_MS, BACKOFF_CAP_MS, BACKOFF_FLOOR_MS);
	watch_init(&d.watch, (size_t)d.cfg.batch_size);
	rc = d.cli.once ? run_once(&d) : run_loop(&d);
stop:
	metrics_http_stop();
	if (d.cli.once)
		write_textfile(&d, rc);
out:
	rconn_close(d.conn);
	reconcile_free(&d.rec);
	cfg_free(&d.cfg);
	return rc;
}
