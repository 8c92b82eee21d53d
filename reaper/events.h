/*
 * events: the leader's key-expiry watch policy. Subscribe while leading,
 * unsubscribe otherwise; reap the users of expired socket sets in small
 * batches through the guard and the fenced script; say a guard refusal
 * once a spell. Losing the subscription is logged and retried: the
 * periodic pass still reaps.
 */
#ifndef PR_EVENTS_H
#define PR_EVENTS_H

#include <stdint.h>

#include "daemon.h"

/*
 * Subscribe, when leading in the loop with reaper.watch_expiry set and not
 * subscribed (nor waiting to retry since a failure). now: mono ms.
 */
void events_start(struct daemon *d, int64_t now);

/* Unsubscribe (said when there was a subscription); the queue goes. */
void events_stop(struct daemon *d);

/*
 * A removal path outside the pass (what: "key-expiry events", "expiry
 * calendar") met the stale-ratio guard; *spell counts its refusals in a
 * row, in units ("batches", "rounds"). The first is said at error (the
 * message in d->rec.err) and counted in guard_tripped_total, the rest at
 * debug.
 */
void events_guard_refused(struct daemon *d, unsigned long long *spell, const char *what,
    const char *units);

/* The guard let that path remove again: said once, and the spell ends. */
void events_guard_cleared(unsigned long long *spell, const char *what, const char *units);

/* One turn of the watch at now (mono ms): subscribe again, read, reap when due. */
void events_step(struct daemon *d, int64_t now);

#endif
