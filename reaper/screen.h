/*
 * screen: the read-only screening of an SSCAN batch, before any script
 * runs. Group testing with multi-key EXISTS over the members' socket keys,
 * then PTTL for each member of a group that came back short (or for every
 * member, when each TTL must be seen). PTTL tells the stale (no socket set)
 * from the ghosts (a socket set without a TTL). Errors as recerr.h.
 */
#ifndef PR_SCREEN_H
#define PR_SCREEN_H

#include <stddef.h>
#include <hiredis/hiredis.h>

#include "batchbuf.h"
#include "rconn.h"

struct reconcile;
struct reconcile_stats;

/* PTTL answers: no such key, or a key without a TTL. */
#define SCREEN_PTTL_MISSING -2
#define SCREEN_PTTL_PERSISTENT -1

/*
 * Queue the SSCAN of the online set at cursor, COUNT count (at most
 * reaper.batch_size); in the loop with reaper.track_expiry, the scan
 * script instead (track.h).
 */
int screen_sscan_append(struct reconcile *r, struct rconn *c, const char *cursor, int count);

/* Split an SSCAN reply into cursor and members; RECONCILE_DATA on a bad shape. */
int screen_sscan_parse(struct reconcile *r, redisReply *rep, const char **cursor,
    redisReply **members);

/* Smallest EXISTS group worth sending; below it each member gets its PTTL. */
#define SCREEN_MIN_GROUP 3

/*
 * Members per EXISTS group for a batch of n, or 0 for one PTTL per member
 * (always when each_ttl, as ghost repair must see every TTL). The stale
 * fraction p is the larger of prior (the guard's sample) and stale/scanned
 * (this pass so far); one EXISTS over g keys costs about 1/g + 1 - (1-p)^g
 * commands per member, least near g = 1/sqrt(p). Pure.
 */
size_t screen_group_size(double prior, unsigned long long scanned, unsigned long long stale,
    size_t n, int each_ttl);

/* Queue one EXISTS per group of `group` socket keys of members[0..n). */
int screen_exists_append(struct reconcile *r, struct rconn *c, redisReply *const *members,
    size_t n, size_t group);

/*
 * Read the EXISTS replies queued for n members in groups of `group`; the
 * members of each short group go to chk. Every reply is read even after an
 * error, so the pipeline stays in step.
 */
int screen_exists_read(struct reconcile *r, struct rconn *c, size_t n, size_t group,
    struct batchbuf_idx *chk);

/* Queue PTTL for each key in keys->argv[0..n). */
int screen_pttl_send(struct reconcile *r, struct rconn *c, const struct batchbuf *keys, size_t n);

/* Queue PTTL for the socket keys of members[idx[i]] (members[i] when idx is NULL). */
int screen_pttl_append(struct reconcile *r, struct rconn *c, redisReply *const *members,
    const size_t *idx, size_t n);

/*
 * Read the PTTL replies for members[chk]. Stale members become candidates
 * (cand) for the reap script, or in dry-run are printed once to r->out;
 * ghosts are counted, and are candidates when they are to be repaired.
 * Every reply is read even after an error.
 */
int screen_pttl_read(struct reconcile *r, struct rconn *c, redisReply *const *members,
    const struct batchbuf_idx *chk, struct batchbuf_idx *cand, struct reconcile_stats *st);

/*
 * One PTTL answer for member m (index i): stale (a candidate, or printed
 * once in a dry run), ghost (counted; a candidate when repaired), or fine.
 */
int screen_judge_ttl(struct reconcile *r, long long ttl, const redisReply *m, size_t i,
    struct batchbuf_idx *cand, struct reconcile_stats *st);

/*
 * Count a ghost once per cycle, though the guard's sample and the pass may
 * both see it, and keep a few of their IDs for the log. st NULL: no count.
 */
void screen_note_ghost(struct reconcile *r, const redisReply *id, struct reconcile_stats *st);

#endif
