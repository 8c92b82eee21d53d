/*
 * share: the fair-share rule of sharded presence (DESIGN §7b). A replica
 * takes shard locks up to ceil(shards / live replicas) and gives back
 * what it holds above that after the shard's current pass. The gate
 * counts, for one replica, the shards it holds or is trying to take,
 * so that its shards' threads never take more than the share between
 * them. Thread-safe (one mutex).
 */
#ifndef PR_SHARE_H
#define PR_SHARE_H

#include <pthread.h>

struct share_gate {
	pthread_mutex_t mu;
	int held;		/* shards held, and being taken */
	int share;		/* most it may hold; 0 until the replicas are known */
	int unlimited;		/* --dry-run: no locks, every shard */
};

/* ceil(shards / live); live below 1 counts as 1 (this replica). */
int share_fair(int shards, int live);

void share_gate_init(struct share_gate *g, int unlimited);
void share_gate_destroy(struct share_gate *g);

/* A new share; returns 1 when it is lower than before (holders may give back). */
int share_set(struct share_gate *g, int share);

/* Is there room for one more shard? */
int share_room(struct share_gate *g);

/* Count one more shard about to be taken: 1, or 0 when there is no room. */
int share_reserve(struct share_gate *g);

/* One shard fewer: the take failed, or a held shard was lost or given back. */
void share_drop(struct share_gate *g);

/*
 * Held above the share: 1 when the caller should give its shard back
 * (already counted out: do not share_drop it again), else 0.
 */
int share_claim_release(struct share_gate *g);

#endif
