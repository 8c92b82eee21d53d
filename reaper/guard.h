/*
 * guard: the stale-ratio guard (DESIGN §2, §7a). Before a pass it samples
 * the online set (SCARD, SRANDMEMBER rounds, the read-only probe script or
 * one PTTL each) and refuses when too much of it looks stale; during a pass
 * it watches the stale fraction of the newest batches; for key-expiry
 * events it asks its window (gwin.h) about the users to be removed. A
 * refusal is RECONCILE_GUARD with the reason in r->err; other errors as
 * recerr.h.
 */
#ifndef PR_GUARD_H
#define PR_GUARD_H

#include <stddef.h>

#include "rconn.h"

struct reconcile;
struct reconcile_stats;

struct guard_probe {
	long long online;	/* SCARD */
	int sampled;
	int stale;
	int ghosts;		/* sampled socket sets without a TTL */
	int applies;		/* online >= guard_min_users and ratio < 1 */
	int tripped;
};

#define RUNWIN_BATCHES 128

/*
 * The running stale fraction of a pass: screened batches, newest last, so
 * the pass judges its most recent guard_min_users users (at least one
 * batch), not all it has seen: a fleet outage in the middle of a pass over
 * 10M users would hardly move the whole-pass fraction.
 */
struct runwin {
	unsigned checked[RUNWIN_BATCHES];
	unsigned stale[RUNWIN_BATCHES];
	int head, n;
};

/*
 * SCARD, then sample up to 1000 members and check their socket sets
 * (read-only); the sample goes into r->win. Ghosts seen are counted in st
 * (NULL: not counted). 0 with the result in *g, or an error.
 */
int guard_probe(struct reconcile *r, struct rconn *c, struct guard_probe *g,
    struct reconcile_stats *st);

/*
 * The guard before a pass: probe, set st->online, r->stale_prior and
 * r->guard_applies, and refuse (RECONCILE_GUARD) when the sample trips it.
 */
int guard_before_pass(struct reconcile *r, struct rconn *c, struct reconcile_stats *st);

/*
 * A batch's screening is complete, n members checked, stale of them
 * stale: count it, then RECONCILE_GUARD when the newest batches, back to
 * guard_min_users users, are staler than max_stale_ratio.
 */
int guard_batch_checked(struct reconcile *r, struct reconcile_stats *st, size_t n,
    unsigned long long stale);

/*
 * Removals outside the pass (what: "key-expiry events", "expiry
 * calendar"): sample again when due, then RECONCILE_GUARD when removing
 * n more users would take the fraction over max_stale_ratio.
 */
int guard_events(struct reconcile *r, struct rconn *c, size_t n, const char *what);

/*
 * The probe script's reply for a sample of n, { missing, ghost_index... },
 * already known to be an array led by an integer: are its ghost indexes
 * all integers in 1..n? Pure (tests/fuzz).
 */
int guard_probe_reply_ok(const redisReply *rep, size_t n);

#endif
