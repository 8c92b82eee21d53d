/*
 * lastpass: the leader's last pass, kept in a small hash next to the lock
 * (lua/status.lua, fenced by the lock like every other write, living three
 * intervals), for presence-reaper --status to read (status.c).
 */
#ifndef PR_LASTPASS_H
#define PR_LASTPASS_H

#include <stddef.h>
#include <hiredis/hiredis.h>

#include "leader.h"
#include "rconn.h"
#include "reconcile.h"
#include "script.h"

#define LASTPASS_SUFFIX ":status"

/*
 * The status hash's name for a lock key: the lock's name and ":status",
 * in the lock's hash slot (the script writes both keys): a name with a
 * hash tag keeps it; a name without braces becomes the tag,
 * "{presence:reaper:leader}:status".
 */
void lastpass_key(const char *leader_key, char *out, size_t outsz);

/* One pass's summary as the leader writes it. */
struct lastpass {
	const char *result;	/* "ok", "guard", "error", "interrupted" */
	const struct reconcile_stats *st;
	double interval;	/* reaper.interval, s */
	double sample_stale;	/* the guard's sample: stale fraction */
	int guard_applies;	/* the guard could trip this pass */
};

/*
 * Write it (status.lua, loaded on first use): 1 written, 0 the lock is no
 * longer ours, -1 error (err names the script and key; s->err_class).
 */
int lastpass_write(struct rconn *c, struct script *s, const struct leader *l,
    const char *key, const struct lastpass *lp, char *err, size_t errlen);

/* The hash as --status reads it; fields missing or malformed read as 0 / "". */
struct lastpass_view {
	int present;
	long long finished_ms;	/* Redis's clock */
	char result[16];
	char by[LEADER_TOKEN_MAX * 4];	/* the token that wrote it, escaped */
	unsigned long long scanned, stale, removed, ghosts;
	long long online;
	double seconds, interval, sample_stale;
};

/* Read an HGETALL reply into v. 0, or -1 when it is not a flat array of strings. */
int lastpass_parse(const redisReply *rep, struct lastpass_view *v);

#endif
