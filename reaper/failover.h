/*
 * failover: which Redis node the daemon talks to, and following it when
 * it moves. For a redis+sentinel:// URL the Sentinels name the primary
 * (common/sentinel.c); a connection error, a READONLY or MASTERDOWN reply,
 * or a +switch-master message (every instance in the loop listens on one
 * Sentinel) drops the connection so that the next turn discovers the
 * primary again. Leadership is then taken again with the usual SET NX:
 * the lock lives in the data, and the fenced scripts keep an ex-leader
 * still on the old primary from removing anything on the new one.
 *
 * For a redis+cluster:// URL the slot map (common/cluster.c) names the
 * primary that serves the one hash slot of every key; a connection error
 * or a MOVED reply drops the connection so that the next turn loads the
 * map again and follows the slot; ASK, TRYAGAIN (a migration of the slot)
 * and CLUSTERDOWN are retried with backoff a few times first.
 *
 * For every URL: the endpoint_info metric names the node in use, and one
 * info line says when it changes.
 */
#ifndef PR_FAILOVER_H
#define PR_FAILOVER_H

#include <stdint.h>
#include <stdio.h>

#include "daemon.h"
#include "rerr.h"

/* The configured endpoint into the metrics (a redis:// or unix:// URL). */
void failover_init(struct daemon *d);

/*
 * Connect to the configured node or, for a Sentinel URL, to the primary the
 * Sentinels name, confirmed by ROLE. As rconn_connect().
 */
struct rconn *failover_connect(struct daemon *d, const struct rconn_opts *o,
    enum rconn_err *kind, char *err, size_t errlen);

/* The URL of the node d->conn is connected to (for a second connection to it). */
const struct rurl *failover_url(const struct daemon *d);

/*
 * -t: each Sentinel's answer, and whether they agree, or each Cluster
 * seed's slot map and the keys' slot, as "# " lines on out.
 */
void failover_survey(struct daemon *d, FILE *out);

/* -t, once connected: the Cluster primary that serves the keys' slot ("# " line). */
void failover_node_report(const struct daemon *d, FILE *out);

/*
 * Loop turn: drop the connection when the primary moved; keep the
 * +switch-master subscription (moving to another Sentinel when its own
 * breaks) and read it.
 */
void failover_step(struct daemon *d, int64_t now);

/* The subscription's fd for the loop's one wait, or -1. */
int failover_fd(const struct daemon *d);

/* Between batches: read the subscription without waiting; 1 when the primary moved. */
int failover_pending(struct daemon *d);

/*
 * An error reply of class cls: with Sentinel, READONLY and MASTERDOWN mean
 * the node is no longer the primary, so the loop discovers it again.
 * Returns 1 when that is what happens.
 */
int failover_refused(struct daemon *d, enum rerr_class cls);

enum failover_lock_op { LOCK_ACQUIRE, LOCK_RENEW, LOCK_RELEASE };

/*
 * leader_acquire, leader_renew or leader_release on d->conn; with a Cluster
 * whose lock is on its way to another node (an ASK reply), the same again
 * there after ASKING, the slot map kept. As those functions (holder only
 * for LOCK_ACQUIRE).
 */
int failover_lock(struct daemon *d, enum failover_lock_op op, char *holder, size_t holdersz,
    char *err, size_t errlen);

/* reconcile_check_keys on d->conn, following an ASK as failover_lock does. */
int failover_check_keys(struct daemon *d);

/* Forget the Sentinels and the endpoint (a reload that reconnects, exit). */
void failover_reset(struct daemon *d);

#endif
