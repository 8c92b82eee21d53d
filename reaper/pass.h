/*
 * pass: the pieces of a pass that reconcile.c (the loop over the replies)
 * and passscript.c (the scan script's batches, NOSCRIPT met mid-pass)
 * share. Private to the two.
 */
#ifndef PR_PASS_H
#define PR_PASS_H

#include <stddef.h>
#include <hiredis/hiredis.h>

#include "reconcile.h"
#include "scanrange.h"

/*
 * Batches in flight: a batch holds its slot from its SSCAN's reply through
 * its screening (EXISTS, PTTL) to its script, three round trips, while
 * the SSCANs of its range go on; so four a range (reaper.scan_ranges), and
 * never fewer than eight.
 */
#define SLOTS_PER_RANGE 4
#define SLOTS_MIN 8
#define RECONCILE_SLOTS (SLOTS_PER_RANGE * SCANRANGE_MAX)

/* One SSCAN batch and the members the screening found worth a script. */
struct batch {
	redisReply *reply;	/* the SSCAN (or scan script) reply that owns the members */
	redisReply *members;	/* its members: all of SSCAN's, the script's few */
	size_t group;		/* members per EXISTS group; 0 = PTTL for each */
	struct batchbuf_idx chk;	/* members to PTTL one by one */
	struct batchbuf_idx cand;	/* candidates for the reap script */
	size_t sent;		/* candidates before the chunk in flight */
	int noscript;		/* times its script came back NOSCRIPT */
	int range;		/* the SSCAN range it came from */
};

/*
 * The replies a pass expects, in order: one entry per SSCAN, EXISTS or
 * PTTL group, script, or SCRIPT LOAD queued after a NOSCRIPT.
 */
enum expect_kind { EXP_SSCAN, EXP_EXISTS, EXP_PTTL, EXP_REAP, EXP_LOAD };

/* Which script an EXP_LOAD loads, in its slot. */
enum { LOAD_REAP = -1, LOAD_SCAN = -2 };

struct expect {
	enum expect_kind kind;
	int slot;	/* the batch; for EXP_SSCAN the range */
	size_t n;	/* replies in the group; reap script argc */
};

/* Two entries a batch at most (SCRIPT LOAD and its script), two a range. */
#define MAX_EXPECT (2 * RECONCILE_SLOTS + 2 * SCANRANGE_MAX + 8)

struct pass_state {
	struct expect q[MAX_EXPECT];
	int head, len;
	struct scanrange rg[SCANRANGE_MAX];	/* next[] waits to be sent */
	int nranges;		/* ranges in use: 1 until the first reply cuts the rest */
	double density;		/* members per reversed cursor unit; 0 = not cut */
	int cut;		/* the first reply was read (and the rest cut) */
	int nslots;		/* batches this pass may hold at once */
	int scans;		/* SSCANs in flight, each with a slot to come */
	int hold;		/* SSCANs wait for an empty pipeline (tick, rate) */
};

/* Queue what a reply will answer. */
void pass_expect(struct pass_state *p, enum expect_kind kind, int slot, size_t n);

/* Send the SSCANs of the ranges that wait, as far as slots and the queue allow. */
int pass_send_ranges(struct reconcile *r, struct rconn *c, struct pass_state *p);

void pass_batch_release(struct batch *b);

/* Queue the fenced reap script for the chunk of batch b's candidates at b->sent. */
int pass_reap_append(struct reconcile *r, struct rconn *c, const struct batch *b, size_t *argc);

/* Queue the SSCAN (or the scan script) of range i at its cursor rg[i].sent. */
int pass_scan_append(struct reconcile *r, struct rconn *c, struct pass_state *p, int i);

/*
 * Range i's SSCAN returned cursor after `seen` members: keep where the
 * range goes on (the first reply cuts the rest into ranges) and, unless
 * it must wait, send what waits at once.
 */
int pass_next_cursor(struct reconcile *r, struct rconn *c, struct pass_state *p, int i,
    const char *cursor, unsigned long long seen, int hold);

/* A batch screened: queue the fenced script for its candidates, if any. */
int pass_reap_batch(struct reconcile *r, struct rconn *c, struct pass_state *p, int slot);

/* A scan script's reply (reaper.track_expiry): its batch comes screened. */
int pass_on_scan_script(struct reconcile *r, struct rconn *c, struct pass_state *p, int slot,
    int hold, struct reconcile_stats *st);

/* A batch's reap script came back NOSCRIPT: load it again and resend, a few times. */
int pass_requeue_reap(struct reconcile *r, struct rconn *c, struct pass_state *p, int slot);

/* The reply of a SCRIPT LOAD queued after a NOSCRIPT: the same SHA again. */
int pass_on_load(struct reconcile *r, struct rconn *c, const struct expect *e);

#endif
