/*
 * metrics_shard: the per-shard series of sharded presence (keys.shards),
 * each with a shard="NAME" label, and the replica's place among the
 * others: live replicas, fair share, shards held. A shard's thread names
 * its shard once (metrics_set_thread_shard); metrics.c then passes what
 * that thread reports on here too. Thread-safe (one mutex, never held
 * across I/O). Without shards nothing is rendered.
 */
#ifndef PR_METRICS_SHARD_H
#define PR_METRICS_SHARD_H

#include <stddef.h>

#include "metrics.h"

/*
 * Room each shard takes in the exposition text: ten lines, none longer than
 * the longest family name, a 64-byte shard name, the result label and a
 * 20-digit value with their punctuation (176 bytes).
 */
#define METRICS_SHARD_RENDER (10 * 176)

/* n shards named names[i] (copied); 0, or -1 (ENOMEM). Called before any thread starts. */
int metrics_shards_init(size_t n, const char (*names)[65]);
void metrics_shards_free(void);

/* Shards set up by metrics_shards_init; 0 without keys.shards. */
size_t metrics_shards_count(void);

/* The calling thread reports for shard index from now on; -1: for none. */
void metrics_set_thread_shard(int index);
int metrics_thread_shard(void);

/* Shard index's holder is (1) or is not (0) this replica; returns how many it holds. */
int metrics_shard_leader(int index, int is_leader);

void metrics_shard_cycle(int index, enum metrics_cycle_result res, unsigned long long removed,
    long long online, double seconds);

/* The replica among the others: live replicas (0 unknown) and its fair share. */
void metrics_shard_fleet(int live, int share);

/* Append the shards' families to buf (bufsz bytes left); returns the bytes written. */
size_t metrics_shard_render(char *buf, size_t bufsz);

#endif
