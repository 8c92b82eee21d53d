/*
 * rerr: the classes of Redis error replies that call for a policy of their
 * own (DESIGN §7), and their text made fit for a log line. It knows nothing
 * of presence: callers name the command and key, and decide what a class
 * means for them (reaper/main.c's policy table).
 * It parses replies and never talks to the server, so rconn may use it.
 */
#ifndef PR_RERR_H
#define PR_RERR_H

#include <stddef.h>
#include <hiredis/hiredis.h>

enum rerr_class {
	RERR_NONE,		/* no error reply: a transport error, a malformed reply */
	RERR_READONLY,		/* READONLY, MASTERDOWN: not a writable primary */
	RERR_LOADING,		/* LOADING: the server is loading its data set */
	RERR_BUSY,		/* BUSY: a script or function runs past its time limit */
	RERR_OOM,		/* OOM: maxmemory reached, writes refused */
	RERR_NOPERM,		/* NOPERM, or a script's ACL refusal */
	RERR_UNKNOWN_COMMAND,	/* renamed, disabled, or missing in this version */
	RERR_MOVED,		/* Cluster: the slot is served by another node now */
	RERR_ASK,		/* Cluster: the slot is being migrated; ask there this once */
	RERR_TRYAGAIN,		/* Cluster: a multi-key command during a slot migration */
	RERR_CLUSTERDOWN,	/* Cluster: the slot (or the Cluster) is not served */
	RERR_OTHER,		/* anything else: WRONGTYPE, ERR ... */
	RERR_NCLASSES
};

/*
 * The class of an error reply's text (what a REDIS_REPLY_ERROR holds, e.g.
 * "READONLY You can't write ..."). Matches whole error codes only: BUSYKEY
 * and BUSYGROUP are RERR_OTHER. Errors raised inside a script keep their
 * code (Redis 7), and a script's own ACL and unknown-command errors are
 * recognised too.
 */
enum rerr_class rerr_classify(const char *text, size_t len);

/* rerr_classify() of a reply; RERR_NONE when it is not an error reply. */
enum rerr_class rerr_of(const redisReply *r);

/*
 * LOADING, BUSY and the Cluster's redirections: the server (or the node
 * the slot moved to) will answer again soon; worth a short wait.
 */
int rerr_transient(enum rerr_class cls);

/* MOVED, ASK, TRYAGAIN, CLUSTERDOWN: the Cluster's slot is elsewhere or moving. */
int rerr_cluster(enum rerr_class cls);

/*
 * Write "<what>: <text>" to out, the reply's text escaped (escape_id) and,
 * for an unknown command, cut before ", with args beginning with:" (the
 * arguments may hold user data, and they differ from call to call, which
 * would defeat logging a repeated error once). When r is not an error
 * reply, "<what>: unexpected reply". Returns rerr_of(r).
 */
enum rerr_class rerr_format(char *out, size_t outsz, const char *what, const redisReply *r);

/*
 * The server's redis_version from the reply to INFO server (info may be
 * NULL, or an error reply), escaped into out; "unknown" when the reply
 * lacks it. Returns 0, or -1 for "unknown". The caller frees info.
 */
int rerr_server_version(const redisReply *info, char *out, size_t outsz);

#endif
