/*
 * recerr: how a step of a pass reports failure. Every function leaves the
 * message in r->err and, for an error reply, its class in r->err_class, and
 * returns the reconcile_result to pass up. main.c decides what a class
 * means; these only name the command and the keys it touched.
 */
#ifndef PR_RECERR_H
#define PR_RECERR_H

#include <stddef.h>
#include <hiredis/hiredis.h>

#include "rconn.h"
#include "script.h"

struct reconcile;

/* The transport failed: RECONCILE_CONN, the connection's error in r->err. */
int recerr_conn(struct reconcile *r, struct rconn *c);

/* RECONCILE_CONN when the connection broke, else RECONCILE_DATA. */
int recerr_conn_or_data(const struct rconn *c);

/*
 * An error reply (or one we cannot use) to what, a command and the keys it
 * touched. Always RECONCILE_DATA.
 */
int recerr_reply(struct reconcile *r, const redisReply *rep, const char *what);

/* An error reply to cmd on the online set: WRONGTYPE and friends. */
int recerr_online(struct reconcile *r, const redisReply *rep, const char *cmd);

/* An error reply to cmd on socket sets, named by their pattern as an ACL grants them. */
int recerr_socket(struct reconcile *r, const redisReply *rep, const char *cmd);

/* A script that did not run: the connection broke, or Redis refused to load it. */
int recerr_script(struct reconcile *r, const struct rconn *c, const struct script *s);

/* Out of memory while doing what: RECONCILE_INTERNAL. */
int recerr_oom(struct reconcile *r, const char *what);

/* "<cmd> <online set>: <what>": RECONCILE_DATA. */
int recerr_malformed(struct reconcile *r, const char *cmd, const char *what);

/* Every element of a member list must be a string: 0, or RECONCILE_DATA. */
int recerr_members(struct reconcile *r, const redisReply *arr, const char *cmd);

/* s escaped for a log line, in r's scratch: valid until the next call. */
const char *recerr_escaped(struct reconcile *r, const char *s, size_t len);

#endif
