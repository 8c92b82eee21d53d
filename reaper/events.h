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

/* One turn of the watch at now (mono ms): (un)subscribe, read, reap when due. */
void events_step(struct daemon *d, int64_t now);

#endif
