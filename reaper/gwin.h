/*
 * gwin: what the stale-ratio guard remembers between calls, so every path
 * that removes users (the pass, key-expiry events, anything later) answers
 * to the same guard (DESIGN §7a).
 *
 * The guard's question is "what fraction of the online set went stale?".
 * A pass asks it of a sample taken when it starts. Users removed a moment
 * ago were stale a moment ago, so they count too: removals of the last
 * GWIN span (a running window) are added to what the last sample saw,
 * against the online set as it was before them:
 *
 *     (removed in window + pending + sample stale fraction x online now)
 *     / (online now + removed in window)
 *
 * A realtime fleet that stopped refreshing makes every socket set expire
 * within one TTL; reaped as the events arrive, the sample never sees them
 * stale, but the window does, and stops removal at max_stale_ratio.
 *
 * Pure bookkeeping: no I/O, times are CLOCK_MONOTONIC ms passed in.
 */
#ifndef PR_GWIN_H
#define PR_GWIN_H

#include <stdint.h>

#define GWIN_BUCKETS 32
#define GWIN_MIN_SPAN_MS 60000	/* at least one socket-set TTL of the reference design */

struct gwin {
	int64_t span_ms;
	int64_t bucket_ms;
	int64_t slot_at[GWIN_BUCKETS];	/* start of each bucket's time slice */
	unsigned long long removed[GWIN_BUCKETS];
	long long online;		/* SCARD at the last sample; -1 none yet */
	double stale_frac;		/* stale fraction of the last sample */
	unsigned long long since_sample;	/* removals since the last sample */
};

/* Window of max(2 x interval, GWIN_MIN_SPAN_MS); no sample yet. */
void gwin_init(struct gwin *w, double interval_s);

/* A guard sample: SCARD, members checked, of which without a socket set. */
void gwin_sample(struct gwin *w, long long online, int sampled, int stale);

/* n users removed at now (ms). */
void gwin_removed(struct gwin *w, unsigned long long n, int64_t now);

/* Users removed within the window ending at now. */
unsigned long long gwin_recent(const struct gwin *w, int64_t now);

/* The online set before the window's removals: the guard's denominator. */
long long gwin_population(const struct gwin *w, int64_t now);

/*
 * The stale fraction the guard judges if `pending` more users were removed
 * now (formula above). 0 before the first sample.
 */
double gwin_fraction(const struct gwin *w, unsigned long long pending, int64_t now);

/*
 * Whether a path removing users without a pass (events) must sample again
 * first: no sample yet, or 1 % of the online set (at least one user)
 * removed since the last one.
 */
int gwin_needs_sample(const struct gwin *w);

#endif
