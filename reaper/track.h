/*
 * track: reaper.track_expiry's two halves. In the loop's pass, each SSCAN
 * batch is screened by one read-only script (lua/scan.lua) that reads
 * every TTL and returns only the sets that are gone, have no TTL, or
 * expire within the horizon; those close to expiry go into the calendar
 * (calendar.h). Between batches and passes, the calendar's due entries
 * are checked (PTTL) and those gone reaped through reapcall_ids(): the
 * stale-ratio guard and reaper.batch_size, as every removal. Errors as
 * recerr.h.
 */
#ifndef PR_TRACK_H
#define PR_TRACK_H

#include <stdint.h>
#include <hiredis/hiredis.h>

#include "batchbuf.h"
#include "rconn.h"
#include "settings.h"

struct reconcile;
struct reconcile_stats;

/*
 * The horizon, ms: the longest the next pass may take to see a member
 * again after this pass saw it. The next pass starts next_gap ms after
 * this one (the loop drew it from reaper.interval and its jitter; 0:
 * unknown, the interval and its 5 %), or when this one ends if later; a
 * member's place in the next pass moves with that pass's duration,
 * allowed a quarter of the last one's; and half a second to spare.
 * last_seconds 0: no pass yet.
 */
int64_t track_horizon(const struct cfg *c, double last_seconds, int64_t next_gap);

/* Queue the scan script for the SSCAN cursor, COUNT n (at most 250); the script is loaded. */
int track_scan_append(struct reconcile *r, struct rconn *c, const char *cursor, int n);

/*
 * Split the script's reply { cursor, scanned, {id...}, {pttl...} }:
 * RECONCILE_DATA on an error reply (NOSCRIPT too: the caller looks
 * first), a bad shape, or a PTTL the script cannot return: below -2, or
 * not under r->horizon.
 */
int track_scan_parse(struct reconcile *r, const redisReply *rep, const char **cursor,
    redisReply **ids, long long *scanned);

/*
 * Judge the members the script returned: stale and ghosts as the PTTL
 * screening does (screen.h); the rest expire within the horizon and go
 * into the calendar, due when they expire, kept until the next pass
 * must have seen them (now + horizon).
 */
int track_scan_judge(struct reconcile *r, const redisReply *rep, struct batchbuf_idx *cand,
    struct reconcile_stats *st);

/* What one round of due checks did. */
struct track_round {
	unsigned long long checked;	/* PTTL answers read */
	unsigned long long gone;	/* sets found gone: reaped, or printed in a dry run */
	unsigned long long removed;	/* users the script removed */
	unsigned long long kept;	/* refreshed, still due before the next pass sees them */
};

/*
 * Check the calendar's entries due at now, at most reaper.batch_size: a
 * PTTL each, pipelined. A set still there goes back in when it now
 * expires before its seen_by, and leaves otherwise (the pass sees it
 * first); one without a TTL is left to the pass; the gone are reaped
 * (reapcall_ids), or printed once in a dry run. Needs an empty pipeline.
 * RECONCILE_OK, or an error with r->err; the entries taken are gone
 * either way (the pass judges those users).
 */
int track_check(struct reconcile *r, struct rconn *c, int64_t now, struct track_round *tr);

#endif
