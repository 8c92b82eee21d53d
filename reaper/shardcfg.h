/*
 * shardcfg: sharded presence in the configuration (DESIGN §7b). With
 * keys.shards set, the key templates name a shard by SHARD_PLACEHOLDER,
 * which each shard replaces by its name: keys.shards = N names the shards
 * "0".."N-1", a list names them itself. Every shard is a whole presence
 * layout of its own (online set, socket sets, lock, event stream), run by
 * a struct daemon of its own on a configuration made by shardcfg_make().
 *
 * Realtime servers put a user in shard CRC-32(ID bytes) mod count (zlib's
 * CRC); the reaper never needs that rule: it reaps each shard's set.
 */
#ifndef PR_SHARDCFG_H
#define PR_SHARDCFG_H

#include <stddef.h>

#include "conftab.h"
#include "settings.h"

#define SHARD_PLACEHOLDER "<shard>"

struct shardset {
	size_t n;		/* 0: presence is not sharded */
	char (*names)[CONFTAB_NAME_MAX + 1];
};

/* Parse c->shards into s. 0, or -1 (out of memory). */
int shardset_init(struct shardset *s, const struct cfg *c);
void shardset_free(struct shardset *s);

/*
 * After cfg_finalize: the templates name the shard exactly where they
 * must (keys.online_set, leader.key, events.stream in stream mode; never
 * leader.members_key), and nowhere without keys.shards; on a Cluster each
 * shard's keys share one hash slot (keyslot.h). Fills leader.members_key
 * when it is "" and, on a Cluster, c->cluster_slot with its slot (the
 * main connection's). 0, or -1 with the errors in err.
 */
int shardcfg_check(struct cfg *c, char *err, size_t errlen);

/* tmpl with every SHARD_PLACEHOLDER replaced by name, as a heap string (NULL: ENOMEM). */
char *shardcfg_expand(const char *tmpl, const char *name);

/*
 * out = a copy of c for one shard: its keys expanded and, on a Cluster,
 * out->cluster_slot their slot. 0, or -1 (out of memory; out freed).
 */
int shardcfg_make(const struct cfg *c, const char *name, struct cfg *out);

#endif
