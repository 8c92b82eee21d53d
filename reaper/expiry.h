/*
 * expiry: the calendar's turn in the loop (reaper.track_expiry, track.h).
 * When its earliest entry falls due, the leader (or a dry run) checks what
 * is due and reaps what is gone, through the guard and the fenced script;
 * between batches of a pass too, so a long pass does not hold it back.
 * Also what the calendar did, in the log and the metrics: its size, its
 * checks and removals, and the cap (reaper.track_max) when it is reached.
 */
#ifndef PR_EXPIRY_H
#define PR_EXPIRY_H

#include <stdint.h>

#include "daemon.h"

/* Due checks wait this long for company after the last round: fewer, larger rounds. */
#define EXPIRY_ROUND_MS 50

/* When the calendar next wants a turn (mono ms); INT64_MAX when it has nothing. */
int64_t expiry_next_ms(const struct daemon *d);

/*
 * Check what is due (a few rounds of at most reaper.batch_size). Returns
 * RECONCILE_OK or what failed (r->err says why), for the caller to act on:
 * in the loop daemon_step_failed(), between batches the pass stops.
 */
enum reconcile_result expiry_step(struct daemon *d, int64_t now);

/* A pass ended: its line about the calendar, and the cap said once when reached. */
void expiry_pass_done(struct daemon *d, const struct reconcile_stats *st);

/* Leadership went: the calendar goes with it (a new leader's first pass builds its own). */
void expiry_clear(struct daemon *d);

#endif
