#include "pass.h"

#include <stdio.h>
#include <string.h>

#include "guard.h"
#include "recerr.h"
#include "track.h"

/* A batch's script is lost to NOSCRIPT this many times before it waits for the next pass. */
#define NOSCRIPT_RETRIES 3

/* The scan script came back NOSCRIPT: load it again, ahead of the same cursor. */
static int
rescan(struct reconcile *r, struct rconn *c, struct pass_state *p, int range)
{
	if (++p->rg[range].rescans > NOSCRIPT_RETRIES) {
		snprintf(r->err, sizeof(r->err), "the script cache was flushed again and again "
		    "during the pass; the scan script stopped it");
		return RECONCILE_DATA;
	}
	if (rconn_appendl(c, "SCRIPT", "LOAD", r->scan_script.src, NULL) < 0)
		return recerr_conn(r, c);
	pass_expect(p, EXP_LOAD, LOAD_SCAN, 0);
	r->reloads++;
	return pass_scan_append(r, c, p, range);
}

/* A scan script's reply (reaper.track_expiry): its batch comes screened. */
int
pass_on_scan_script(struct reconcile *r, struct rconn *c, struct pass_state *p, int slot,
    int hold, struct reconcile_stats *st)
{
	struct batch *b = &r->slots[slot];
	unsigned long long stale = st->stale;
	const char *cursor;
	long long n;
	int rc;

	if (script_is_noscript(b->reply)) {
		pass_batch_release(b);
		return rescan(r, c, p, b->range);
	}
	p->rg[b->range].rescans = 0;
	if ((rc = track_scan_parse(r, b->reply, &cursor, &b->members, &n)) != 0)
		return rc;
	st->scanned += (unsigned long long)n;
	st->batches += n > 0;
	if ((rc = pass_next_cursor(r, c, p, b->range, cursor, (unsigned long long)n,
	    hold)) != 0)
		return rc;
	if (n <= 0) {
		pass_batch_release(b);
		return 0;
	}
	if ((rc = track_scan_judge(r, b->reply, &b->cand, st)) != 0 ||
	    (rc = guard_batch_checked(r, st, (size_t)n, st->stale - stale)) != 0)
		return rc;
	return pass_reap_batch(r, c, p, slot);
}

/*
 * A batch's script came back NOSCRIPT: the script cache was flushed while
 * the pass ran. The script's SHA cannot change, so a SCRIPT LOAD queued
 * ahead of the batch's EVALSHA, sent again, lets the pass carry on. A
 * batch that keeps meeting flushes is left for the next pass (deferred).
 */
int
pass_requeue_reap(struct reconcile *r, struct rconn *c, struct pass_state *p, int slot)
{
	struct batch *b = &r->slots[slot];
	size_t argc;
	int rc;

	if (++b->noscript > NOSCRIPT_RETRIES) {
		r->deferred++;
		pass_batch_release(b);
		return 0;
	}
	if (rconn_appendl(c, "SCRIPT", "LOAD", r->reap_script.src, NULL) < 0)
		return recerr_conn(r, c);
	pass_expect(p, EXP_LOAD, LOAD_REAP, 0);
	r->reloads++;
	if ((rc = pass_reap_append(r, c, b, &argc)) != 0)
		return rc;
	pass_expect(p, EXP_REAP, slot, argc);
	return 0;
}

/* The reply of a SCRIPT LOAD queued after a NOSCRIPT (rescan, requeue): the same SHA again. */
int
pass_on_load(struct reconcile *r, struct rconn *c, const struct expect *e)
{
	const struct script *s = e->slot == LOAD_SCAN ? &r->scan_script : &r->reap_script;
	redisReply *rep;
	int rc = 0;

	if (rconn_get_reply(c, &rep) < 0)
		return recerr_conn(r, c);
	if (rep->type != REDIS_REPLY_STRING || rep->len != 40 ||
	    memcmp(rep->str, s->sha, 40) != 0)
		rc = recerr_reply(r, rep, e->slot == LOAD_SCAN ? "SCRIPT LOAD scan" :
		    "SCRIPT LOAD reap");
	freeReplyObject(rep);
	return rc;
}
