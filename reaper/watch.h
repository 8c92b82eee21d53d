/*
 * watch: event-driven reaping. The leader subscribes to the server's
 * key-expiry events (__keyevent@<db>__:expired) on a second connection,
 * keeps the socket-set keys of the configured prefix/suffix, and queues
 * their users to be reaped through the same atomic fenced script, briefly
 * batched. Pub/sub loses events on disconnect, so the periodic pass stays
 * as the safety net.
 *
 * Bounded, so an event flood (a realtime fleet going down expires every
 * socket set at once) cannot starve the loop or grow memory: each read
 * takes at most WATCH_READ_MAX messages, and the queue holds at most
 * the larger of WATCH_QUEUE_MIN and 4 batches; events beyond it are dropped (counted) and left to the
 * pass, which finds those users anyway.
 */
#ifndef PR_WATCH_H
#define PR_WATCH_H

#include <stddef.h>
#include <stdint.h>

#include "settings.h"
#include "idset.h"
#include "keys.h"
#include "rconn.h"
#include "rerr.h"

#define WATCH_FLUSH_MS 100	/* how long an event may wait for company */
#define WATCH_READ_MAX 1000	/* messages read per loop turn */
#define WATCH_QUEUE_MIN 10000	/* queue bound: the larger of this and 4 batches */

/* The subscription and its queue; private to watch.c. */
struct watch;

/* An empty watch, not subscribed, for batches of batch users. NULL: out of memory. */
struct watch *watch_new(size_t batch);

/* Unsubscribe and free (w may be NULL). */
void watch_free(struct watch *w);

/* Unsubscribe, empty the queue, and size it for batches of batch users. */
void watch_reset(struct watch *w, size_t batch);

/* watch_server_ready(): this user may not run CONFIG GET (NOPERM). */
#define WATCH_NOT_ALLOWED -2

/*
 * Is the server publishing expiry events (notify-keyspace-events holds E
 * and x, or E and A)? 1 yes, 0 no (the current value in flags), -1 could
 * not tell (err), WATCH_NOT_ALLOWED when CONFIG GET is not allowed to this
 * user (err), as with the ACL line of acl.h.
 */
int watch_server_ready(struct rconn *c, char *flags, size_t flagsz, char *err, size_t errlen);

/* Add "Ex" to the server's notify-keyspace-events. 0 or -1 (err). */
int watch_server_enable(struct rconn *c, const char *flags, char *err, size_t errlen);

/* Open the subscriber connection and SUBSCRIBE. 0 or -1 (watch_err()). */
int watch_subscribe(struct watch *w, const struct rconn_opts *o, int db);
void watch_unsubscribe(struct watch *w);

/* The subscriber connection's fd to poll, or -1 while not subscribed. */
int watch_fd(const struct watch *w);

/*
 * The channel subscribed to; why the last subscribe or read failed, and
 * the class of the error reply when SUBSCRIBE was refused (else RERR_NONE).
 */
const char *watch_channel(const struct watch *w);
const char *watch_err(const struct watch *w);
enum rerr_class watch_err_class(const struct watch *w);

/*
 * Read the messages that are already there, at most WATCH_READ_MAX (then
 * watch_next_ms() says now: call again soon); queue the users of matching
 * keys. 0, or -1 when the subscriber connection broke (it is closed).
 */
int watch_read(struct watch *w, const struct keyfmt *k);

/* Queued users should be reaped now: enough of them, or waited long enough. */
int watch_due(const struct watch *w, int64_t now, size_t batch);

/*
 * The flush rule behind watch_due: n queued users, the oldest queued at
 * first_ms, are due at now when they fill a batch or have waited
 * WATCH_FLUSH_MS.
 */
int watch_flush_due(size_t n, int64_t first_ms, int64_t now, size_t batch);

/*
 * The user of one pub/sub message: ["message", channel, key] whose key is
 * a socket set of k (prefix + ID + suffix). 0 with *id pointing into the
 * message, or -1 for anything else (subscribe confirmations, other keys).
 */
int watch_message_user(const redisReply *r, const struct keyfmt *k, const char **id,
    size_t *idlen);

/*
 * When the watch next wants a turn (mono ms): now when there is more to
 * read or a batch is due, when the oldest queued event has waited
 * WATCH_FLUSH_MS, or INT64_MAX when nothing is queued.
 */
int64_t watch_next_ms(const struct watch *w, int64_t now, size_t batch);

/*
 * The oldest queued users, at most max of them: their IDs and lengths in
 * *ids and *lens, valid until the queue changes. Returns how many.
 */
size_t watch_take(const struct watch *w, size_t max, const char *const **ids,
    const size_t **lens);

/* Forget the first n queued users (they were reaped, or refused). */
void watch_consume(struct watch *w, size_t n);

/* Forget the whole queue. */
void watch_clear(struct watch *w);

/* Matching expiry events, and those dropped with the queue full, since the last call. */
void watch_counts(struct watch *w, unsigned long long *events, unsigned long long *dropped);

#endif
