#include "reconcile.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "recerr.h"
#include "screen.h"
#include "scripts.h"
#include "timeutil.h"
#include "pass.h"
#include "scanrange.h"
#include "track.h"

void
reconcile_init(struct reconcile *r, const struct cfg *cfg, struct leader *leader,
    int dry_run, FILE *out)
{
	memset(r, 0, sizeof(*r));
	r->cfg = cfg;
	keys_init(&r->keys, cfg->socket_prefix, cfg->socket_suffix);
	r->leader = leader;
	r->dry_run = dry_run;
	r->out = out;
	r->reap_script = (struct script){ "reap", script_reap, "", RERR_NONE };
	r->probe_script = (struct script){ "probe", script_probe, "", RERR_NONE };
	r->scan_script = (struct script){ "scan", script_scan, "", RERR_NONE };
	calendar_init(&r->cal, (size_t)cfg->track_max);
	idset_init(&r->printed);
	idset_init(&r->ghosts);
	gwin_init(&r->win, cfg->interval);
}

void
pass_batch_release(struct batch *b)
{
	if (b->reply)
		freeReplyObject(b->reply);
	b->reply = NULL;
	b->cand.n = 0;
}

void
reconcile_free(struct reconcile *r)
{
	batchbuf_free(&r->scan);
	batchbuf_free(&r->grp);
	batchbuf_free(&r->reap.b);
	batchbuf_free(&r->calkeys);
	calendar_free(&r->cal);
	for (int i = 0; r->slots && i < RECONCILE_SLOTS; i++) {
		pass_batch_release(&r->slots[i]);
		batchbuf_idx_free(&r->slots[i].cand);
		batchbuf_idx_free(&r->slots[i].chk);
	}
	free(r->slots);
	r->slots = NULL;
	free(r->esc);
	r->esc = NULL;
	r->escsz = 0;
	batchbuf_ids_free(&r->ids);
	idset_clear(&r->printed);
	idset_clear(&r->ghosts);
}

int
reconcile_probe(struct reconcile *r, struct rconn *c, struct guard_probe *g)
{
	r->err_class = RERR_NONE;
	return guard_probe(r, c, g, NULL);
}

int
reconcile_check_keys(struct reconcile *r, struct rconn *c)
{
	return reapcall_check_keys(r, c);
}

/*
 * Candidates in the chunk of batch b that starts at b->sent: at most
 * reaper.batch_size. SSCAN's COUNT is only a hint (a small integer set
 * comes back whole, whatever COUNT says), so one batch may need several
 * scripts; each waits for the one before.
 */
static size_t
chunk_len(const struct reconcile *r, const struct batch *b)
{
	size_t left = b->cand.n - b->sent, max = (size_t)r->cfg->batch_size;

	return left < max ? left : max;
}

/* Queue the fenced reap script for the chunk of batch b's candidates at b->sent. */
int
pass_reap_append(struct reconcile *r, struct rconn *c, const struct batch *b, size_t *argc)
{
	size_t n = chunk_len(r, b);

	if (batchbuf_gather(&r->ids, b->members->element, b->cand.v + b->sent, n) < 0)
		return recerr_oom(r, NULL);
	return reapcall_append(r, c, r->ids.ids, r->ids.lens, n, argc);
}

/* True when reaper.max_rate says the pass is ahead of its budget. */
static int
ahead_of_rate(struct reconcile *r, int64_t start, unsigned long long scanned, int64_t *due)
{
	if (r->cfg->max_rate <= 0 || r->sleep_until == NULL)
		return 0;
	*due = start + (int64_t)((double)scanned * 1000.0 / r->cfg->max_rate);
	return *due > mono_ms();
}

void
pass_expect(struct pass_state *p, enum expect_kind kind, int slot, size_t n)
{
	p->q[(p->head + p->len++) % MAX_EXPECT] = (struct expect){ kind, slot, n };
}

static int
free_slot(struct reconcile *r, const struct pass_state *p)
{
	for (int i = 0; i < p->nslots; i++)
		if (r->slots[i].reply == NULL)
			return i;
	return -1;
}

/*
 * Whether an SSCAN may go out with replies in flight: not when SSCANs wait
 * for an empty pipeline, nor without a slot for its batch that the SSCANs
 * in flight have not claimed, or room in the queue for what that batch
 * will expect.
 */
static int
sscan_may_go(struct reconcile *r, const struct pass_state *p)
{
	int unclaimed = -p->scans;

	for (int i = 0; i < p->nslots && unclaimed < 1; i++)
		unclaimed += r->slots[i].reply == NULL;
	return !p->hold && unclaimed >= 1 && p->len < MAX_EXPECT - 4;
}

int
pass_scan_append(struct reconcile *r, struct rconn *c, struct pass_state *p, int i)
{
	int rc;

	if ((rc = screen_sscan_append(r, c, p->rg[i].sent,
	    scanrange_count_left(&p->rg[i], p->density, r->cfg->batch_size))) != 0)
		return rc;
	pass_expect(p, EXP_SSCAN, i, 0);
	p->scans++;
	return 0;
}

int
pass_send_ranges(struct reconcile *r, struct rconn *c, struct pass_state *p)
{
	int rc;

	for (int i = 0; i < p->nranges; i++) {
		struct scanrange *g = &p->rg[i];

		/* The slot count only for a range with a cursor waiting: every reply comes here. */
		if (g->next[0] == '\0')
			continue;
		if (!sscan_may_go(r, p))
			break;
		memcpy(g->sent, g->next, sizeof(g->sent));
		g->next[0] = '\0';
		if ((rc = pass_scan_append(r, c, p, i)) != 0)
			return rc;
	}
	return 0;
}

/* Whether a range has a cursor waiting to be sent. */
static int
ranges_waiting(const struct pass_state *p)
{
	for (int i = 0; i < p->nranges; i++)
		if (p->rg[i].next[0] != '\0')
			return 1;
	return 0;
}

/* Queue PTTL for the members listed in the batch's chk. */
static int
pttl_append(struct reconcile *r, struct rconn *c, struct pass_state *p, int slot)
{
	struct batch *b = &r->slots[slot];
	int rc;

	if ((rc = screen_pttl_append(r, c, b->members->element, b->chk.v,
	    b->chk.n)) != 0)
		return rc;
	pass_expect(p, EXP_PTTL, slot, b->chk.n);
	return 0;
}

/* Queue the screening of a batch of n members: EXISTS groups, or PTTL for each. */
static int
screen_batch(struct reconcile *r, struct rconn *c, struct pass_state *p, int slot,
    const struct reconcile_stats *st)
{
	struct batch *b = &r->slots[slot];
	redisReply *members = b->members;
	size_t n = members->elements;
	int rc;

	b->group = screen_group_size(r->stale_prior, st->scanned, st->stale, n,
	    !r->dry_run && r->cfg->repair_missing_ttl > 0);
	b->chk.n = 0;
	if (b->group == 0) {
		for (size_t i = 0; i < n; i++)
			if (batchbuf_push(&b->chk, i) < 0)
				return recerr_oom(r, NULL);
		return pttl_append(r, c, p, slot);
	}
	if ((rc = screen_exists_append(r, c, members->element, n, b->group)) != 0)
		return rc;
	pass_expect(p, EXP_EXISTS, slot, n);
	return 0;
}

int
pass_next_cursor(struct reconcile *r, struct rconn *c, struct pass_state *p, int i,
    const char *cursor, unsigned long long seen, int hold)
{
	int more = scanrange_step(&p->rg[i], cursor), n;
	uint64_t at;

	if (more < 0)
		return recerr_malformed(r, "SSCAN", "the cursor is not a number");
	if (!p->cut) {
		/* The first reply: a hash table (the cursor goes on) is cut into ranges. */
		p->cut = 1;
		if (more && r->cfg->scan_ranges > 1 && scanrange_parse(cursor, &at) == 0) {
			at = scanrange_rev(at);
			n = scanrange_count(at, seen, r->cfg->batch_size, r->cfg->scan_ranges);
			p->nranges = scanrange_split(p->rg, n, at);
			p->density = (double)seen / (double)at;
		}
	}
	p->hold |= hold;
	/* Ahead of this batch's screening, so Redis scans while we wait. */
	return pass_send_ranges(r, c, p);
}

/* A batch screened: queue the fenced script for its candidates, if any. */
int
pass_reap_batch(struct reconcile *r, struct rconn *c, struct pass_state *p, int slot)
{
	struct batch *b = &r->slots[slot];
	size_t argc;
	int rc;

	if (r->dry_run || b->cand.n == 0) {
		pass_batch_release(b);
		return 0;
	}
	b->sent = 0;
	if ((rc = pass_reap_append(r, c, b, &argc)) != 0)
		return rc;
	pass_expect(p, EXP_REAP, slot, argc);
	return 0;
}

/* An SSCAN reply: keep its batch, ask for the next one, queue its screening. */
static int
on_sscan(struct reconcile *r, struct rconn *c, struct pass_state *p, int range, int hold,
    struct reconcile_stats *st)
{
	int slot = free_slot(r, p), rc;
	const char *cursor;
	redisReply *members;
	struct batch *b;

	if (slot < 0) {
		snprintf(r->err, sizeof(r->err), "internal error: no free batch slot");
		return RECONCILE_INTERNAL;
	}
	b = &r->slots[slot];
	b->noscript = 0;
	b->range = range;
	if (rconn_get_reply(c, &b->reply) < 0)
		return recerr_conn(r, c);
	if (r->tracking)
		return pass_on_scan_script(r, c, p, slot, hold, st);
	if ((rc = screen_sscan_parse(r, b->reply, &cursor, &b->members)) != 0)
		return rc;
	members = b->members;
	st->scanned += members->elements;
	st->batches += members->elements > 0;
	if ((rc = pass_next_cursor(r, c, p, range, cursor, members->elements, hold)) != 0)
		return rc;
	if (members->elements == 0) {
		pass_batch_release(b);
		return 0;
	}
	return screen_batch(r, c, p, slot, st);
}

/*
 * A batch's EXISTS replies, one per group: a group whose count is short of
 * its size holds a missing socket set, so each of its members gets a PTTL.
 */
static int
on_exists(struct reconcile *r, struct rconn *c, struct pass_state *p, const struct expect *e,
    struct reconcile_stats *st)
{
	struct batch *b = &r->slots[e->slot];
	int rc;

	if ((rc = screen_exists_read(r, c, e->n, b->group, &b->chk)) != 0)
		return rc;
	if (b->chk.n == 0) {
		pass_batch_release(b);
		return guard_batch_checked(r, st, e->n, 0);
	}
	return pttl_append(r, c, p, e->slot);
}

/* A batch's PTTL replies: then its script. */
static int
on_pttl(struct reconcile *r, struct rconn *c, struct pass_state *p, const struct expect *e,
    struct reconcile_stats *st)
{
	struct batch *b = &r->slots[e->slot];
	unsigned long long stale = st->stale;
	int rc;

	rc = screen_pttl_read(r, c, b->members->element, &b->chk, &b->cand, st);
	if (rc == 0)
		rc = guard_batch_checked(r, st, b->members->elements,
		    st->stale - stale);
	return rc != 0 ? rc : pass_reap_batch(r, c, p, e->slot);
}

/* A chunk's script was read: send the batch's next chunk, or let the batch go. */
static int
next_chunk(struct reconcile *r, struct rconn *c, struct pass_state *p, int slot)
{
	struct batch *b = &r->slots[slot];
	size_t argc;
	int rc;

	b->sent += chunk_len(r, b);
	b->noscript = 0;
	if (b->sent >= b->cand.n) {
		pass_batch_release(b);
		return 0;
	}
	if ((rc = pass_reap_append(r, c, b, &argc)) != 0)
		return rc;
	pass_expect(p, EXP_REAP, slot, argc);
	return 0;
}

/* A batch's script reply: count what it removed, in the guard's window too. */
static int
on_reap(struct reconcile *r, struct rconn *c, struct pass_state *p, const struct expect *e,
    struct reconcile_stats *st)
{
	unsigned long long removed = st->removed;
	redisReply *rep;
	int rc;

	if ((rc = reapcall_get(r, c, &rep)) != 0)
		return rc;
	if (rep == NULL)
		return pass_requeue_reap(r, c, p, e->slot);
	rc = reapcall_result(r, rep, st);
	freeReplyObject(rep);
	gwin_removed(&r->win, st->removed - removed, mono_ms());
	return rc != 0 ? rc : next_chunk(r, c, p, e->slot);
}

/* tick() could not renew the lease: the pass stops and did not finish. */
static int
lost_lease(struct reconcile *r, const struct reconcile_stats *st)
{
	snprintf(r->err, sizeof(r->err), "lost the lease on %s during the pass; stopped "
	    "after checking %llu users, the pass did not finish", r->leader ? r->leader->key :
	    "the lock", st->checked);
	return RECONCILE_NOT_LEADER;
}

/* How many replies an entry of the queue stands for. */
static size_t
replies_of(const struct reconcile *r, const struct expect *e)
{
	size_t g;

	if (e->kind == EXP_PTTL)
		return e->n;
	if (e->kind != EXP_EXISTS)
		return 1;
	g = r->slots[e->slot].group;
	return (e->n + g - 1) / g;
}

/*
 * The pass stopped (an error reply, the running guard) with replies still
 * in flight: read them all, so the connection stays in step, queue nothing
 * new, and count what the scripts already sent removed: they ran, and
 * their removals are real. Keeps r->err. 0, or RECONCILE_CONN.
 */
static int
settle(struct reconcile *r, struct rconn *c, struct pass_state *p, struct reconcile_stats *st)
{
	char err[sizeof(r->err)];

	memcpy(err, r->err, sizeof(err));
	for (; p->len > 0; p->len--, p->head = (p->head + 1) % MAX_EXPECT) {
		const struct expect *e = &p->q[p->head];
		size_t n = replies_of(r, e);

		for (size_t i = 0; i < n; i++) {
			unsigned long long removed = st->removed;
			redisReply *rep;

			if (rconn_get_reply(c, &rep) < 0)
				return recerr_conn(r, c);
			if (e->kind == EXP_REAP && !script_is_noscript(rep))
				(void)reapcall_result(r, rep, st);
			gwin_removed(&r->win, st->removed - removed, mono_ms());
			freeReplyObject(rep);
		}
	}
	memcpy(r->err, err, sizeof(err));
	return 0;
}

/* Read the reply (or group of replies) at the head of the queue and act on it. */
static int
step(struct reconcile *r, struct rconn *c, struct pass_state *p, struct reconcile_stats *st,
    int64_t start)
{
	struct expect e = p->q[p->head];
	int64_t due;

	p->head = (p->head + 1) % MAX_EXPECT;
	p->len--;
	switch (e.kind) {
	case EXP_SSCAN:
		p->scans--;
		return on_sscan(r, c, p, e.slot, (r->tick_due && r->tick_due(r->tick_arg)) ||
		    ahead_of_rate(r, start, st->scanned, &due), st);
	case EXP_EXISTS:
		return on_exists(r, c, p, &e, st);
	case EXP_PTTL:
		return on_pttl(r, c, p, &e, st);
	case EXP_REAP:
		return on_reap(r, c, p, &e, st);
	case EXP_LOAD:
		break;
	}
	return pass_on_load(r, c, &e);
}

/*
 * The pass, pipelined: replies are read in order, and whatever a reply
 * makes possible is queued at once, so Redis always has the next SSCAN and
 * PTTL batch waiting while this side parses. A batch's fenced script goes
 * out as soon as its screening is read. Lease renewal, shutdown and rate
 * pacing need an empty pipeline: when one is due the next SSCAN is held
 * back until the replies in flight are read.
 */
static int
pass(struct reconcile *r, struct rconn *c, struct reconcile_stats *st, int64_t start)
{
	struct pass_state p = { .head = 0, .len = 0, .nranges = 1, .cut = 0, .hold = 0 };
	enum tick t;
	int rc = 0;

	p.nslots = SLOTS_PER_RANGE * r->cfg->scan_ranges;
	if (p.nslots < SLOTS_MIN)
		p.nslots = SLOTS_MIN;
	/* Load the script now: it cannot be loaded later with replies in flight. */
	if (!r->dry_run && r->reap_script.sha[0] == '\0' &&
	    script_load(c, &r->reap_script, r->err, sizeof(r->err)) < 0)
		return recerr_script(r, c, &r->reap_script);
	if (r->tracking && r->scan_script.sha[0] == '\0' &&
	    script_load(c, &r->scan_script, r->err, sizeof(r->err)) < 0)
		return recerr_script(r, c, &r->scan_script);
	r->horizon = track_horizon(r->cfg, r->last_seconds, r->next_gap);
	p.rg[0] = (struct scanrange){ .last = 1, .sent = "0" };
	if ((rc = pass_scan_append(r, c, &p, 0)) != 0)
		return rc;
	while (p.len > 0) {
		int64_t due;

		if ((rc = step(r, c, &p, st, start)) != 0)
			return rc == RECONCILE_CONN || settle(r, c, &p, st) != 0 ?
			    RECONCILE_CONN : rc;
		if (p.len > 0) {
			/* A slot may have come free for a range that waited. */
			if ((rc = pass_send_ranges(r, c, &p)) != 0)
				return rc;
			continue;
		}
		if (!ranges_waiting(&p))
			break;
		/* Drained with more to scan: pace, renew, maybe stop, then go on. */
		if (ahead_of_rate(r, start, st->scanned, &due))
			r->sleep_until(r->tick_arg, due);
		if (r->tick && (t = r->tick(r->tick_arg)) != TICK_GO)
			return t == TICK_LEASE_LOST ? lost_lease(r, st) : RECONCILE_STOPPED;
		p.hold = 0;
		if ((rc = pass_send_ranges(r, c, &p)) != 0)
			return rc;
	}
	if (r->reloads)
		log_info("the script cache was flushed during the pass; loaded the %s script "
		    "again %llu times", r->tracking ? "scan and reap" : "reap", r->reloads);
	if (r->deferred)
		log_warnx("the script cache was flushed again and again during the pass; %llu "
		    "batches are left for the next pass", r->deferred);
	return 0;
}

enum reconcile_result
reconcile_cycle(struct reconcile *r, struct rconn *c, struct reconcile_stats *st)
{
	int64_t start = mono_ms();
	int rc;

	memset(st, 0, sizeof(*st));
	st->online = -1;
	r->err[0] = '\0';
	r->err_class = RERR_NONE;
	r->deferred = 0;
	r->reloads = 0;
	memset(&r->run, 0, sizeof(r->run));
	idset_clear(&r->printed);
	idset_clear(&r->ghosts);
	if (r->slots == NULL &&
	    (r->slots = calloc(RECONCILE_SLOTS, sizeof(*r->slots))) == NULL)
		return (enum reconcile_result)recerr_oom(r, NULL);
	if ((rc = guard_before_pass(r, c, st)) == 0)
		rc = pass(r, c, st, start);
	/* Whatever stopped the pass early, leave the connection in step or broken. */
	if (rc != 0 && rc != RECONCILE_CONN && rc != RECONCILE_STOPPED && !rconn_broken(c) &&
	    rconn_drain(c) < 0)
		rc = recerr_conn(r, c);
	for (int i = 0; i < RECONCILE_SLOTS; i++)
		pass_batch_release(&r->slots[i]);
	if (r->out)
		fflush(r->out);
	st->seconds = (double)(mono_ms() - start) / 1000.0;
	if (rc == 0)
		r->last_seconds = st->seconds;
	return (enum reconcile_result)rc;
}
