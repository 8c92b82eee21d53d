/*
 * reapcall: one call of the fenced reap script (reaper/lua/reap.lua): its
 * KEYS/ARGV layout, the argument vector built for a batch of users, the
 * reply judged, NOSCRIPT met by loading the script again; and the
 * read-only TYPE check of the keys it writes. Errors as recerr.h.
 */
#ifndef PR_REAPCALL_H
#define PR_REAPCALL_H

#include <stddef.h>
#include <hiredis/hiredis.h>

#include "batchbuf.h"
#include "rconn.h"

struct reconcile;
struct reconcile_stats;

/*
 * The script's layout, the one place C names it; reap.lua's header
 * documents the same slots 1-based (KEYS[k + 1], ARGV[a + 1]), and
 * tests/unit/test_reapcall.c checks that the two agree.
 */
enum reap_key {
	REAP_KEY_ONLINE,	/* the online set */
	REAP_KEY_LOCK,		/* the leader lock */
	REAP_KEY_STREAM,	/* the event stream: declared always, written in stream mode */
	REAP_KEY_SOCKETS,	/* first of the users' socket sets, in the order of the IDs */
};

enum reap_arg {
	REAP_ARG_TOKEN,		/* our leader token (fencing) */
	REAP_ARG_MODE,		/* events.mode */
	REAP_ARG_CHANNEL,	/* events.channel */
	REAP_ARG_MAXLEN,	/* events.stream_maxlen, "0" = no trimming */
	REAP_ARG_REPAIR,	/* TTL in ms for socket sets without one, "0" = report only */
	REAP_ARG_IDS,		/* first of the user IDs */
};

/* The reply: { status, stale, nremoved, removed_id..., ghost_id... }. */
enum reap_reply {
	REAP_REPLY_STATUS,	/* 0 = not leader, nothing touched; 1 = done */
	REAP_REPLY_STALE,
	REAP_REPLY_NREMOVED,
	REAP_REPLY_REMOVED,	/* first removed ID */
};

/* EVALSHA sha numkeys: the arguments ahead of KEYS. */
#define REAP_ARGV_KEYS 3

/* The argument vector of the last call, kept for a NOSCRIPT retry. */
struct reapcall_args {
	struct batchbuf b;
	char numkeys[16];
	char maxlen[16];
	char repair[24];
};

enum reapcall_verdict {
	REAPCALL_DONE,
	REAPCALL_NOT_LEADER,
	REAPCALL_REFUSED,	/* an error reply */
	REAPCALL_MALFORMED,
};

/*
 * Judge a reply. With DONE, removed[0..nremoved) are the IDs the script
 * removed, each a string reply; with MALFORMED, those of them that came
 * before the fault (they were removed all the same). Pure.
 */
enum reapcall_verdict reapcall_parse(const redisReply *rep, redisReply *const **removed,
    size_t *nremoved);

/* Queue the script for users ids[0..n) (argc of the call in *argc). */
int reapcall_append(struct reconcile *r, struct rconn *c, const char *const *ids,
    const size_t *lens, size_t n, size_t *argc);

/*
 * Judge the reply to a call and count what it removed in st->removed (stale
 * users and ghosts were counted by the screening). 0, RECONCILE_NOT_LEADER,
 * or RECONCILE_DATA.
 */
int reapcall_result(struct reconcile *r, const redisReply *rep, struct reconcile_stats *st);

/*
 * Read a call's reply into *rep (the caller frees it). 0, or
 * RECONCILE_CONN; *rep is NULL when Redis no longer has the script
 * (NOSCRIPT: restarted, or SCRIPT FLUSH), for the caller to load it again.
 */
int reapcall_get(struct reconcile *r, struct rconn *c, redisReply **rep);

/*
 * The paths outside the pass (what names one for the guard's message:
 * key-expiry events, the expiry calendar): run the atomic fenced reap
 * script on at most cfg->batch_size users, each removed only if its
 * socket set is still gone. The stale-ratio guard is asked first, with the users removed
 * within its window (gwin.h); it samples again when 1 % of the online set
 * went since its last sample, and refuses (RECONCILE_GUARD, nothing
 * removed) when the batch would take the fraction over max_stale_ratio.
 * Counts removals in st->removed. Needs an empty pipeline; on NOSCRIPT the
 * script is loaded and the call made again.
 */
int reapcall_ids(struct reconcile *r, struct rconn *c, const char *const *ids,
    const size_t *lens, size_t n, const char *what, struct reconcile_stats *st);

/*
 * TYPE of the keys the script writes: the online set must be a set and,
 * with events.mode "stream", the stream a stream; either may be absent.
 * Then, unless r is a dry run, the script itself with no users, which
 * checks the rest (the ACL permissions of every write the leader makes)
 * and changes nothing.
 */
int reapcall_check_keys(struct reconcile *r, struct rconn *c);

#endif
