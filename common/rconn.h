/*
 * rconn: our own small Redis connection. Commands are encoded with hiredis's
 * redisFormatCommandArgv and replies decoded with its redisReader; the
 * socket, timeouts and pipelining are ours, so the same code runs on the
 * hiredis 0.14 of Debian 12. TLS (rtls.h) sits behind the same interface:
 * with rconn_opts.tls set, the handshake runs within the connect timeout
 * and everything else is unchanged for callers.
 *
 * Contract: after any transport error (I/O, timeout, protocol) the
 * connection is marked broken and every later call fails; the caller must
 * rconn_close() it and connect again. Error *replies* (REDIS_REPLY_ERROR)
 * are ordinary replies and leave the connection usable.
 */
#ifndef PR_RCONN_H
#define PR_RCONN_H

#include <stddef.h>
#include <hiredis/hiredis.h>

#include "rtls.h"
#include "rurl.h"

enum rconn_err {
	RCONN_OK = 0,
	RCONN_EIO,		/* unreachable, reset, closed, timed out */
	RCONN_EAUTH,		/* AUTH refused, the server wants AUTH, or NOPERM for SELECT or PING */
	RCONN_EPROTO,		/* bad reply, SELECT refused, ... */
	RCONN_EBUSY,		/* LOADING or BUSY: the server answers again soon */
};

struct rconn_opts {
	const struct rurl *url;		/* endpoint, credentials, db */
	int connect_timeout_ms;
	int command_timeout_ms;
	const char *client_name;	/* CLIENT SETNAME value, or NULL */
	const struct rtls *tls;		/* TLS with this context, or NULL: plain */
};

struct rconn;

/*
 * Connect, then AUTH / SELECT / CLIENT SETNAME / PING in one round trip.
 * Returns the connection, or NULL with *kind and a message in err (the
 * message never contains the password). A refused CLIENT SETNAME (e.g. a
 * read-only ACL user) is not an error.
 */
struct rconn *rconn_connect(const struct rconn_opts *o, enum rconn_err *kind,
    char *err, size_t errlen);

void rconn_close(struct rconn *c);

/* Queue one command (binary-safe argv). Returns 0, or -1 when broken. */
int rconn_append(struct rconn *c, int argc, const char **argv, const size_t *argvlen);

/* Queue a command of NUL-terminated strings, the list ended by NULL. */
int rconn_appendl(struct rconn *c, const char *arg0, ...);

/*
 * Send what is queued, then read the next reply, waiting at most the
 * command timeout. On success *reply is owned by the caller (freeReplyObject)
 * and 0 is returned; on a transport error -1 and the connection is broken.
 */
int rconn_get_reply(struct rconn *c, redisReply **reply);

/* Append + get_reply. NULL on a transport error. */
redisReply *rconn_call(struct rconn *c, int argc, const char **argv, const size_t *argvlen);
redisReply *rconn_calll(struct rconn *c, const char *arg0, ...);

/*
 * Pub/sub: send what is queued, then return a reply (or pushed message)
 * only if one can be had without waiting. 1 with *reply set, 0 when
 * nothing is there yet, -1 on a transport error (connection broken).
 */
int rconn_poll_reply(struct rconn *c, redisReply **reply);

/*
 * Redis Cluster, a slot being migrated: from now on every command is sent
 * after an ASKING of its own, whose reply rconn_get_reply() reads and
 * drops, so the node the slot is migrating to serves it. rconn_pending()
 * counts both. For single commands (not pipelines, not pub/sub).
 */
void rconn_set_asking(struct rconn *c);

/* The socket, for poll(2) by a caller that waits on several things. */
int rconn_fd(const struct rconn *c);

/* Replies still expected for queued commands. */
int rconn_pending(const struct rconn *c);

/* Read and drop every reply still expected, so the connection is in step: 0, or -1 broken. */
int rconn_drain(struct rconn *c);
int rconn_broken(const struct rconn *c);
const char *rconn_errstr(const struct rconn *c);

/*
 * Called (in normal context, not in a signal handler) each time a wait on
 * Redis is interrupted by a signal, so the program can react to it, e.g.
 * say that shutdown has begun, while a slow reply is still awaited.
 */
void rconn_set_interrupt_hook(void (*hook)(void));

/* Is the connection TLS? */
int rconn_is_tls(const struct rconn *c);

/* The TLS session's protocol, cipher and server certificate; -1 when plain. */
int rconn_tls_peer(const struct rconn *c, struct rtls_peer *p);

/* Commands sent on this connection since it was opened (for tests/metrics). */
unsigned long long rconn_commands_sent(const struct rconn *c);

#endif
