/*
 * daemon: the running reaper's state and the loop that drives it:
 * connection upkeep, leader election and lease, the periodic pass, and
 * SIGHUP reloads. It never exits; main.c turns what it returns into an
 * exit status.
 */
#ifndef PR_DAEMON_H
#define PR_DAEMON_H

#include <stddef.h>
#include <stdint.h>

#include "cli.h"
#include "cluster.h"
#include "errlog.h"
#include "leader.h"
#include "rconn.h"
#include "reconcile.h"
#include "sentinel.h"
#include "settings.h"
#include "timeutil.h"
#include "tlsctx.h"
#include "watch.h"

/* What this instance is doing; set only by daemon_set_role(). */
enum role {
	ROLE_DISCONNECTED,	/* no usable connection: connecting with backoff */
	ROLE_STANDBY,		/* connected; another instance holds the lock, or none yet */
	ROLE_LEADER,		/* holds the lock: runs the pass, watches key expiry */
	ROLE_SHADOW,		/* --dry-run: connected, reports the stale, removes nothing */
};

struct daemon {
	struct cli cli;
	struct cfg cfg;
	struct leader leader;
	struct reconcile rec;
	struct rconn *conn;
	struct tlsctx tls;	/* TLS context, reloaded before each connection */
	struct backoff backoff;
	enum role role;		/* DISCONNECTED exactly while conn is NULL */
	int conn_failures;	/* consecutive, for "log once" */
	int ready_sent;		/* READY=1 went to systemd */
	char holder[LEADER_TOKEN_MAX];	/* last lock holder seen as standby */
	int64_t next_cycle;
	int64_t renew_due;
	struct watch *watch;	/* key-expiry events; see events.h */
	int64_t watch_retry_at;
	int watch_warned;	/* said once that the server sends no expiry events */
	unsigned long long event_removed;	/* since the last pass's summary */
	unsigned long long events_refused;	/* event batches the guard refused in a row */
	/* reaper.track_expiry: the calendar's turns (expiry.h). */
	int64_t cal_last;	/* mono ms of the last round of due checks */
	long long cal_reported;	/* entries the metrics were told of */
	unsigned long long cal_refused_seen, cal_refused_logged;	/* adds refused at the cap */
	int cal_full;		/* said that the calendar is full */
	unsigned long long cal_refusals;	/* rounds the guard refused in a row */
	unsigned long long cal_removed, cal_checked;	/* since the last pass's line */
	struct errlog errlog;	/* the error reply being repeated; zeroed: none */
	/* Which node, and following it when it moves: see failover.h. */
	struct sentinel *sentinel;	/* redis+sentinel://: made on first connect */
	struct cluster *cluster;	/* redis+cluster://: made on first connect */
	int cluster_retries;	/* ASK, TRYAGAIN, CLUSTERDOWN in a row */
	struct rurl node;	/* the primary the Sentinels or the slot map named last */
	char endpoint[300];	/* "host:port" connected to last, escaped; "" none yet */
	int rediscover;		/* the primary moved: drop the connection, ask again */
	int64_t sentinel_retry_at;	/* next +switch-master subscription attempt */
	int sub_failures;	/* subscription attempts failed in a row */
	struct errlog watch_errlog;	/* why subscribing keeps failing; zeroed: none */
	/* The last pass's summary for --status (lastpass.h). */
	struct script status_script;
	int status_warned;	/* said that writing it failed; cleared by a success */
	/* keys.shards: this daemon runs one shard in a thread of its own (fleet.h). */
	struct fleet_seat *seat;	/* NULL: the one online set, or the main thread */
};

struct fleet_seat;

/* Liveness: how long the loop may go without a tick before /healthz fails. */
int64_t daemon_health_window_ms(const struct cfg *c);

/* After cli and cfg are set: the lock, the pass, the backoff, the watch. 0, or -1 (ENOMEM). */
int daemon_init(struct daemon *d);

/* Free what daemon_init() and the run built (the connection too); not cfg. */
void daemon_free(struct daemon *d);

/* (Re)build the pass for d's configuration, calling back between batches and to pace. */
void daemon_pass_init(struct daemon *d);

/* The daemon: never ends because of Redis; only a signal ends it. */
void daemon_run(struct daemon *d);

/* Connect once. Returns 0, or the rconn_err kind with a message in err. */
int daemon_connect(struct daemon *d, char *err, size_t errlen);

/* The Redis URL without its password, for messages. */
void daemon_endpoint(const struct cfg *c, char *out, size_t outsz);

/*
 * Connection options for d's configuration; name holds the client name.
 * With TLS, the certificate files are read again first (tlsctx.h).
 */
void daemon_conn_opts(struct daemon *d, struct rconn_opts *o, char *name, size_t namesz);

/* A backoff delay for the next attempt; never above the loop's own period. */
int64_t daemon_retry_ms(struct daemon *d);
int64_t daemon_renew_ms(const struct cfg *c);

/*
 * Become role: log the transition, set the leader and redis-up metrics,
 * and start or stop watching key expiry (the leader watches, in the loop).
 * Nothing else writes d->role.
 */
void daemon_set_role(struct daemon *d, enum role role);

/* The new connection in d->conn is usable: standby, or shadow for --dry-run. */
void daemon_connected(struct daemon *d);

/* Close the connection (it is broken, or a reload needs a new one). */
void daemon_disconnect(struct daemon *d);

/* Discard a broken connection (logged as lost: why); leadership is suspended. */
void daemon_drop_conn(struct daemon *d, const char *why);

/*
 * What a failed reconcile step (the pass, or a batch of key-expiry events)
 * means for the daemon, decided in one place: not leader goes to standby,
 * an error reply goes to the error policy, a transport error drops the
 * connection, anything else is logged. Nothing for OK and STOPPED.
 */
void daemon_step_failed(struct daemon *d, enum reconcile_result res);

/*
 * Renew the lease when due. Returns 0 while we lead, -1 when the lease is
 * lost or could not be renewed (leadership dropped; a broken connection is
 * left for the caller to drop, so nothing frees it under a running pass).
 */
int daemon_renew_lease(struct daemon *d);

/* Another instance holds the lock (holder escaped): said once per holder. */
void daemon_note_holder(struct daemon *d, const char *holder);

/* Release the lock when we hold it (graceful shutdown, reconnecting reload). */
void daemon_release_lock(struct daemon *d);

/* Run one pass and log it. Returns the reconcile result. */
enum reconcile_result daemon_pass(struct daemon *d);

#endif
