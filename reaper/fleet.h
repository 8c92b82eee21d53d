/*
 * fleet: sharded presence in the loop (keys.shards; DESIGN §7b). Each
 * shard runs in a thread of its own as a whole struct daemon (a seat) on
 * the shard's configuration (shardcfg.h): its own connection to the node
 * that serves the shard, its own fenced lock, its own passes, so a slow
 * shard never delays another's lease. The main thread keeps this
 * replica's membership (leader.members_key, members.lua), derives the
 * fair share (share.h) from the live replicas, handles signals and
 * reloads, and wakes the seats when the share changes or the daemon
 * stops. A seat takes its shard's lock only while the share has room,
 * gives it back after its pass when above the share, and holds no
 * connection while it has nothing to do.
 */
#ifndef PR_FLEET_H
#define PR_FLEET_H

#include <pthread.h>

#include "daemon.h"
#include "share.h"

struct fleet_seat {
	struct daemon d;	/* the shard's own daemon; d.seat points back here */
	struct share_gate *gate;	/* the replica's, shared by its seats */
	int index;
	const char *name;
	int wake_fd;		/* eventfd: look again (stop, a new share) */
	int releasing;		/* gave its shard back; already counted out */
	_Atomic int quit;	/* leave the loop after the pass (a reload) */
	int64_t full_since;	/* mono ms since the share was found full; 0: room */
	pthread_t thread;
	int started;
};

/*
 * The loop with keys.shards: the seats' threads and the membership, until
 * a signal ends it; every seat gives its lock back and the replica leaves
 * the membership before it returns. 0, or -1 when it could not start
 * (logged).
 */
int fleet_run(struct daemon *d);

/*
 * s = a daemon for shard name of d's configuration (shardcfg_make), its
 * TLS files read and daemon_init done: not connected. 0, or -1 (logged;
 * what was made is freed by daemon_free and cfg_free).
 */
int fleet_shard_daemon(struct daemon *s, const struct daemon *d, const char *name);

/* daemon.c: the seat's role moved from was to now (a shard held or lost). */
void fleet_seat_role(struct fleet_seat *s, enum role was, enum role now);

/*
 * daemon.c, a seat not leading: 0 when it may try for its shard, else when
 * to look again (mono ms), its connection closed meanwhile.
 */
int64_t fleet_seat_idle(struct daemon *d);

/*
 * daemon.c, a seat before it tries for its shard: 1 when another holds
 * the lock (GET; said once per holder, as a standby says it), else 0 (free,
 * or it could not tell: the attempt itself will).
 */
int fleet_seat_lock_taken(struct daemon *d);

/* daemon.c, a seat leading between passes: above the share, give it back (1). */
int fleet_seat_give_back(struct daemon *d);

#endif
