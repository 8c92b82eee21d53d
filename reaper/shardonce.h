/*
 * shardonce: --once and -t with keys.shards. --once runs one pass for
 * every shard whose lock is free, one shard after another (a CronJob is
 * one replica: the fair share does not apply); -t lists the shards with
 * their slot, node, lock holder and online set. Each shard runs on a
 * struct daemon of its own (fleet_shard_daemon), its lines named by it.
 */
#ifndef PR_SHARDONCE_H
#define PR_SHARDONCE_H

#include "daemon.h"

/* --once over the shards: the exit status of the first shard that failed, else 0. */
int shardonce_run(struct daemon *d);

/* -t: one line per shard, after the configuration; always EX_OK unless out of memory. */
int shardonce_check(struct daemon *d);

#endif
