#include "oneshot.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "acl.h"
#include "conf.h"
#include "errpolicy.h"
#include "escape.h"
#include "failover.h"
#include "log.h"
#include "metrics.h"
#include "shardonce.h"
#include "wait.h"

/* The step in hand may go on, or waits out a LOADING or BUSY reply. */
#define ONCE_GO			-1
#define ONCE_WAIT		-2

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
		return refusal_exit_status(cls);
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
void
oneshot_write_textfile(const struct daemon *d, int rc)
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

	if ((kind = daemon_connect(d, err, sizeof(err))) == 0) {
		daemon_connected(d);
		return ONCE_GO;
	}
	daemon_endpoint(&d->cfg, ep, sizeof(ep));
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

	rc = failover_lock(d, LOCK_ACQUIRE, holder, sizeof(holder), err, sizeof(err));
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
		return rerr_transient(cls) ? ONCE_WAIT : refusal_exit_status(cls);
	}
	daemon_set_role(d, ROLE_LEADER);
	d->renew_due = mono_ms() + daemon_renew_ms(&d->cfg);
	return ONCE_GO;
}

/*
 * --once: before taking the lock, the keys' types and the ACL permissions
 * of every write (reconcile_check_keys), so a user that could not finish
 * the pass never starts it. ONCE_GO, ONCE_WAIT, or an exit status.
 */
static int
once_check(struct daemon *d, char *msg, size_t msglen)
{
	enum reconcile_result res;
	enum rerr_class cls;

	if ((res = (enum reconcile_result)failover_check_keys(d)) == 0)
		return ONCE_GO;
	cls = d->rec.err_class;
	if (res != RECONCILE_DATA) {
		log_error("%s", d->rec.err);
		return exit_for(res, cls);
	}
	report_refusal(d, cls, d->rec.err);
	if (!rerr_transient(cls))
		return refusal_exit_status(cls);
	snprintf(msg, msglen, "%s", d->rec.err);
	return ONCE_WAIT;
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

	if (d->role == ROLE_DISCONNECTED && (rc = once_connect(d, msg, msglen)) != ONCE_GO)
		return rc;
	if (d->role == ROLE_LEADER)
		daemon_renew_lease(d);		/* after a wait; a lease lost is taken again below */
	if (d->role == ROLE_STANDBY && (rc = once_check(d, msg, msglen)) != ONCE_GO)
		return rc;
	if (d->role == ROLE_STANDBY && (rc = once_lock(d, msg, msglen)) != ONCE_GO)
		return rc;
	res = daemon_pass(d);
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
int
oneshot_run(struct daemon *d)
{
	int64_t wait_ms = (int64_t)(d->cfg.command_timeout * 1000), deadline = 0;
	char msg[1024];
	int rc;

	while ((rc = once_attempt(d, msg, sizeof(msg))) == ONCE_WAIT) {
		int64_t now = mono_ms(), wake = now + daemon_retry_ms(d);

		if (deadline == 0)
			deadline = now + wait_ms;
		failover_step(d, now);	/* a Cluster slot that moved: load the map again */
		if (wait_stopping()) {
			rc = EX_OK;
			break;
		}
		if (now >= deadline) {
			log_error("%s; not cleared within %g s (redis.command_timeout)", msg,
			    d->cfg.command_timeout);
			rc = EX_UNAVAILABLE;
			break;
		}
		wait_until(wake < deadline ? wake : deadline, 1, NULL, 0);
	}
	wait_note_shutdown();
	daemon_release_lock(d);
	return rc;
}

/* s escaped for stdout: -t prints Redis's own words (error texts, CONFIG values). */
static const char *
printable(const char *s, char *buf, size_t bufsz)
{
	escape_id(buf, bufsz, s, strlen(s));
	return buf;
}

/*
 * -t: the least-privilege ACL users for this configuration, as comments
 * (presence-reaper.conf(5), ACL): "# acl: " and "# acl-dry-run: " then
 * the line to run.
 */
static void
print_acl(const struct cfg *c)
{
	static const struct {
		enum acl_variant v;
		const char *label;
	} lines[] = { { ACL_LEADER, "acl" }, { ACL_DRY_RUN, "acl-dry-run" } };

	printf("# Redis ACL user, least privilege (presence-reaper.conf(5), ACL); replace "
	    "PASSWORD. acl: for this configuration; acl-dry-run: read-only, for --dry-run, "
	    "--status and -t\n");
	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
		char *line = acl_setuser(c, lines[i].v);

		printf("# %s: %s\n", lines[i].label, line ? line : "(out of memory)");
		free(line);
	}
	if (c->watch_expiry && c->enable_notifications)
		printf("# the acl line leaves out CONFIG GET and CONFIG SET, which "
		    "reaper.enable_notifications needs: they would give this user the server's "
		    "passwords and every setting. Set notify-keyspace-events on the server "
		    "instead\n");
}

/* -t with reaper.watch_expiry: what the server's notify-keyspace-events means. */
static void
print_watch(struct daemon *d)
{
	char flags[64], werr[256], shown[4 * sizeof(flags) + 1];
	int ready = watch_server_ready(d->conn, flags, sizeof(flags), werr, sizeof(werr));

	if (ready == WATCH_NOT_ALLOWED)
		printf("# key-expiry events: cannot tell (%s), as with the acl line: the "
		    "server must have E and x in notify-keyspace-events\n", werr);
	else if (ready < 0)
		printf("# key-expiry events: cannot tell (%s)\n", werr);	/* escaped */
	else
		printf("# key-expiry events: notify-keyspace-events is \"%s\": %s\n",
		    printable(flags, shown, sizeof(shown)),
		    ready ? "ok" : d->cfg.enable_notifications ?
		    "missing E and x; the leader will add them" :
		    "missing E and x; only the periodic pass will reap");
}

/* -t: the effective configuration, then what Redis looks like, read-only. */
int
oneshot_check_config(struct daemon *d)
{
	struct guard_probe g;
	char err[512], ep[1200];
	int kind, rc;

	cfg_dump(&d->cfg, conf_print_line, stdout);
	print_acl(&d->cfg);
	if (tlsctx_load(&d->tls, &d->cfg, err, sizeof(err)) < 0) {
		printf("# %s\n", err);
		log_error("%s", err);
		return EX_CONFIG;
	}
	signal(SIGPIPE, SIG_IGN);	/* a TLS write to a reset connection */
	if (strcmp(d->cfg.shards, "0") != 0)
		return shardonce_check(d);
	failover_survey(d, stdout);
	daemon_endpoint(&d->cfg, ep, sizeof(ep));
	if ((kind = daemon_connect(d, err, sizeof(err))) != 0) {
		printf("# redis %s: %s\n", ep, err);	/* rconn escapes what Redis said */
		return kind == RCONN_EAUTH ? EX_CONFIG : EX_OK;
	}
	printf("# redis %s: reachable\n", ep);
	failover_node_report(d, stdout);
	tlsctx_report(d->conn, stdout);
	if (d->cfg.watch_expiry)
		print_watch(d);
	reconcile_init(&d->rec, &d->cfg, NULL, 1, NULL);
	if (failover_check_keys(d) != 0)
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
