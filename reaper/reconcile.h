/*
 * reconcile: one pass over the online set (DESIGN §2) and the stale-ratio
 * guard that runs before anything is removed.
 */
#ifndef PR_RECONCILE_H
#define PR_RECONCILE_H

#include <stdio.h>

#include "config.h"
#include "idset.h"
#include "keys.h"
#include "leader.h"
#include "rconn.h"
#include "rerr.h"

enum reconcile_result {
	RECONCILE_OK,
	RECONCILE_NOT_LEADER,	/* the script found another token: we stopped */
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
	unsigned long long ghosts;	/* socket sets without a TTL */
	char ghost_sample[400];		/* a few of their IDs, escaped and quoted */
	long long online;		/* SCARD at the start, -1 unknown */
	double seconds;
};

struct guard_probe {
	long long online;	/* SCARD */
	int sampled;
	int stale;
	int ghosts;		/* sampled socket sets without a TTL */
	int applies;		/* online >= guard_min_users and ratio < 1 */
	int tripped;
};

/* Argument vectors reused from batch to batch, so memory stays flat. */
struct batchbuf {
	const char **argv;
	size_t *argvlen;
	size_t nargs;		/* capacity of argv / argvlen */
	char *arena;		/* socket key bytes */
	size_t arenasz;
	char numkeys[16];
	char maxlen[16];
	char repair[24];
};

#define RECONCILE_SLOTS 8

/* One SSCAN batch and the members the screening pass found worth a script. */
struct batch {
	redisReply *reply;	/* the SSCAN reply that owns the member strings */
	size_t group;		/* members per EXISTS group; 0 = PTTL for each */
	size_t *chk;		/* indexes of the members to PTTL one by one */
	size_t nchk, chkcap;
	size_t *cand;		/* indexes of candidates in the member array */
	size_t ncand, candcap;
};

struct reconcile {
	const struct cfg *cfg;
	struct keyfmt keys;
	struct leader *leader;	/* NULL in dry-run */
	int dry_run;
	FILE *out;		/* dry-run: stale IDs, one per line, escaped */
	/*
	 * Called between batches with nothing in flight; non-zero stops the
	 * pass (shutdown, lost lease). tick_due says whether tick wants to run,
	 * so the pipeline can drain first.
	 */
	int (*tick)(void *arg);
	int (*tick_due)(void *arg);
	/* Sleep until a CLOCK_MONOTONIC deadline in ms (reaper.max_rate pacing). */
	void (*sleep_until)(void *arg, int64_t deadline);
	void *tick_arg;
	struct script reap_script;
	struct script probe_script;	/* the guard's sample, read-only */
	struct batchbuf scan;	/* socket keys of the batch being screened */
	struct batchbuf grp;	/* one EXISTS group's argument vector */
	double stale_prior;	/* stale fraction the guard saw in its sample */
	struct batchbuf reap;	/* reap script arguments of the previous batch */
	struct batch slots[RECONCILE_SLOTS];	/* batches with replies in flight */
	unsigned long long deferred;	/* batches left for the next pass (NOSCRIPT) */
	char *esc;		/* escaped ID for printing */
	size_t escsz;
	const char **ids;	/* the users of the script being built */
	size_t *lens;
	size_t idscap;
	struct idset printed;	/* dry-run: IDs printed this cycle */
	struct idset ghosts;	/* ghosts counted this cycle */
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
 * One full pass: the guard, then for each SSCAN batch a read-only screening
 * pass (multi-key EXISTS over groups of socket keys, travelling with the
 * next SSCAN; PTTL for each member of a group that came back short) and,
 * for the candidates only, the atomic fenced reap script. Message in
 * r->err unless OK.
 */
enum reconcile_result reconcile_cycle(struct reconcile *r, struct rconn *c,
    struct reconcile_stats *st);

/*
 * Run the atomic fenced reap script on the given users (key-expiry
 * events): each is removed only if its socket set is still gone. Counts
 * removals in st->removed. Needs an empty pipeline.
 */
enum reconcile_result reconcile_reap_ids(struct reconcile *r, struct rconn *c,
    const char *const *ids, const size_t *lens, size_t n, struct reconcile_stats *st);

#endif
