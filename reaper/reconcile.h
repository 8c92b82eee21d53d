/*
 * reconcile: one pass over the online set (DESIGN §2), pipelined. The
 * pass's steps live in guard.c (before and during it), screen.c (EXISTS /
 * PTTL), track.c (the scan script and the expiry calendar's checks, with
 * reaper.track_expiry), passscript.c (scripts met mid-pass) and reapcall.c
 * (the fenced script, which also reaps the users named by key-expiry
 * events and the calendar: reapcall_ids); they share struct reconcile, its
 * scratch buffers and its error report (recerr.h).
 */
#ifndef PR_RECONCILE_H
#define PR_RECONCILE_H

#include <stdio.h>

#include "batchbuf.h"
#include "calendar.h"
#include "guard.h"
#include "settings.h"
#include "gwin.h"
#include "idset.h"
#include "keys.h"
#include "leader.h"
#include "rconn.h"
#include "reapcall.h"
#include "rerr.h"
#include "script.h"

enum reconcile_result {
	RECONCILE_OK,
	RECONCILE_NOT_LEADER,	/* the script found another token, or tick() lost the lease */
	RECONCILE_GUARD,	/* the guard refused: nothing removed */
	RECONCILE_DATA,		/* an error reply (err_class says which; WRONGTYPE ...)
				   or a reply we cannot use: that batch removed nothing */
	RECONCILE_CONN,		/* transport error: drop the connection */
	RECONCILE_STOPPED,	/* tick() asked to stop between batches */
	RECONCILE_INTERNAL,	/* out of memory */
};

struct reconcile_stats {
	unsigned long long scanned;	/* members returned by SSCAN (may repeat) */
	unsigned long long stale;	/* members found without a socket set */
	unsigned long long removed;	/* SREM that returned 1 */
	unsigned long long batches;
	unsigned long long checked;	/* members whose screening was read */
	unsigned long long ghosts;	/* socket sets without a TTL */
	char ghost_sample[400];		/* a few of their IDs, escaped and quoted */
	long long online;		/* SCARD at the start, -1 unknown */
	double seconds;
};

/* What the between-batches callback says about the pass. */
enum tick {
	TICK_GO,		/* go on */
	TICK_STOP,		/* stop the pass: shutdown, or the primary moved */
	TICK_LEASE_LOST,	/* stop it as not leader: the lease could not be renewed */
};

/* Batches with replies in flight, private to the pass (pass.h). */
struct batch;

struct reconcile {
	const struct cfg *cfg;
	struct keyfmt keys;
	struct leader *leader;	/* NULL in dry-run */
	int dry_run;
	FILE *out;		/* dry-run: stale IDs, one per line, escaped */
	/*
	 * Called between batches with nothing in flight (see enum tick).
	 * tick_due says whether tick wants to run, so the pipeline can
	 * drain first.
	 */
	enum tick (*tick)(void *arg);
	int (*tick_due)(void *arg);
	/*
	 * Sleep until a CLOCK_MONOTONIC deadline in ms (reaper.max_rate
	 * pacing), keeping the lease; tick() follows and says if it was lost.
	 */
	void (*sleep_until)(void *arg, int64_t deadline);
	void *tick_arg;
	struct script reap_script;
	struct script probe_script;	/* the guard's sample, read-only */
	struct batchbuf scan;	/* socket keys of the batch being screened */
	struct batchbuf grp;	/* one EXISTS group's argument vector */
	double stale_prior;	/* stale fraction the guard saw in its sample */
	int guard_applies;	/* this pass: online >= guard_min_users, ratio < 1 */
	struct runwin run;	/* this pass's running stale fraction */
	struct gwin win;	/* the guard's memory across passes and events */
	struct reapcall_args reap;	/* reap script arguments of the previous batch */
	struct batch *slots;	/* batches with replies in flight; NULL until a pass */
	unsigned long long deferred;	/* batches left for the next pass (NOSCRIPT) */
	unsigned long long reloads;	/* SCRIPT LOADs queued after NOSCRIPT this pass */
	char *esc;		/* escaped ID for printing */
	size_t escsz;
	struct batchbuf_ids ids;	/* the users of the command being built */
	struct idset printed;	/* dry-run: IDs printed this cycle */
	struct idset ghosts;	/* ghosts counted this cycle */
	/* reaper.track_expiry in the loop (track.h): each TTL read, the near kept. */
	int tracking;
	struct script scan_script;	/* SSCAN + PTTL in one read-only call */
	struct calendar cal;
	int64_t horizon;	/* ms, this pass's: sets expiring sooner are tracked */
	int64_t next_gap;	/* ms from this pass's start to the next's; 0 unknown */
	double last_seconds;	/* the last pass's duration, for the next horizon */
	struct batchbuf calkeys;	/* socket keys of the calendar's due checks */
	char err[512];		/* names the command and key that failed */
	enum rerr_class err_class;	/* with RECONCILE_DATA: RERR_NONE unless an error reply */
};

void reconcile_init(struct reconcile *r, const struct cfg *cfg, struct leader *leader,
    int dry_run, FILE *out);

void reconcile_free(struct reconcile *r);

/*
 * Sample up to 1000 members with SRANDMEMBER and check their socket sets
 * (read-only). Returns 0 (result in *g), or RECONCILE_DATA / RECONCILE_CONN
 * with a message in r->err.
 */
int reconcile_probe(struct reconcile *r, struct rconn *c, struct guard_probe *g);

/*
 * The keys the reap script writes, checked read-only (TYPE): the online
 * set must be a set and, with events.mode "stream", the events stream a
 * stream; either may be absent. Unless r is a dry run (or has no leader),
 * then the reap script with no users, which removes nobody and refuses
 * (NOPERM, naming the command) when the ACL user lacks a permission any
 * of the leader's writes needs. 0, or RECONCILE_DATA / RECONCILE_CONN
 * with a message in r->err.
 */
int reconcile_check_keys(struct reconcile *r, struct rconn *c);

/*
 * One full pass: the guard, then for each SSCAN batch a read-only screening
 * pass (multi-key EXISTS over groups of socket keys, travelling with the
 * next SSCAN; PTTL for each member of a group that came back short) and,
 * for the candidates only, the atomic fenced reap script. Message in
 * r->err unless OK.
 */
enum reconcile_result reconcile_cycle(struct reconcile *r, struct rconn *c,
    struct reconcile_stats *st);

#endif
