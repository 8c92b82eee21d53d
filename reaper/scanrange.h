/*
 * scanrange: a pass's SSCAN cut into ranges of the cursor space, each
 * walked by a cursor of its own, so that a link with a long round trip
 * keeps several SSCANs in flight instead of one.
 *
 * SSCAN visits a set's hash table in the order of the bucket index with
 * its bits reversed, and its cursor is the next index in that order. Read
 * reversed, the cursor only grows, from 0 up to 2^64 where it wraps to 0,
 * whatever the table does between two calls (it grows or shrinks in
 * between). A range is an interval [start, end) of reversed cursors: its
 * walk starts at the cursor whose reversal is start and is done when the
 * cursor returned reverses to end or beyond, or wraps. The ranges tile
 * the interval, so each member present for the whole pass comes back from
 * one of them at least; a bucket that straddles two ranges comes back
 * from both (a duplicate, as SSCAN itself allows after a resize).
 *
 * Only a hash table answers with a cursor other than 0 (a small set comes
 * back whole from one SSCAN, whatever the cursor), so the pass starts one
 * walk at 0 and cuts what its first reply left into ranges.
 */
#ifndef PR_SCANRANGE_H
#define PR_SCANRANGE_H

#include <stdint.h>

#define SCANRANGE_MAX 64

struct scanrange {
	uint64_t end;	/* reversed cursor where the range ends */
	int last;	/* runs to 2^64 (end unused) */
	char next[24];	/* the cursor to send next; "" = none waiting */
	char sent[24];	/* the cursor of the SSCAN in flight */
	int rescans;	/* its scan script came back NOSCRIPT, in a row */
};

/* v with its 64 bits in reverse order. */
uint64_t scanrange_rev(uint64_t v);

/* Parse an SSCAN cursor (decimal, 0..2^64-1): 0, or -1 when it is not one. */
int scanrange_parse(const char *s, uint64_t *v);

/*
 * How many ranges to cut the rest of a walk into after its first reply:
 * the walk reached reversed cursor at (> 0) having read `seen` members;
 * at most `max`, and no more than the batches of `count` members the rest
 * is likely to hold, so that a set of a few batches is not cut into
 * dozens of nearly empty walks.
 */
int scanrange_count(uint64_t at, unsigned long long seen, int count, int max);

/*
 * Cut [at, 2^64) into n ranges of equal width (n in 1..SCANRANGE_MAX,
 * one when the interval is narrower than n * n): rg[i].next is the cursor
 * that starts range i. Returns the number of ranges.
 */
int scanrange_split(struct scanrange *rg, int n, uint64_t at);

/*
 * The COUNT for range rg's next SSCAN (rg->sent): about the members left
 * in the range, from density (members per unit of reversed cursor, as the
 * first reply found it), so that its last SSCAN does not run far into the
 * next range (SSCAN stops once it has COUNT members, wherever that is).
 * At most max; max when density is 0 (not known).
 */
int scanrange_count_left(const struct scanrange *rg, double density, int max);

/*
 * A range's SSCAN returned cursor: 1 = the range goes on (rg->next is
 * set), 0 = the range is done, -1 = not a cursor.
 */
int scanrange_step(struct scanrange *rg, const char *cursor);

#endif
