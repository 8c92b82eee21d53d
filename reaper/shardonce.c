#include "shardonce.h"

#include <stdio.h>
#include <string.h>
#include <sysexits.h>

#include "fleet.h"
#include "log.h"
#include "metrics_shard.h"
#include "oneshot.h"
#include "shardcfg.h"
#include "wait.h"

int
shardonce_run(struct daemon *d)
{
	struct shardset set;
	int rc = EX_OK;

	if (shardset_init(&set, &d->cfg) < 0 ||
	    metrics_shards_init(set.n, (const char (*)[65])set.names) < 0) {
		log_warn("starting");
		shardset_free(&set);
		return EX_OSERR;
	}
	for (size_t i = 0; i < set.n && !wait_stopping(); i++) {
		static struct daemon s;
		int one;

		if (fleet_shard_daemon(&s, d, set.names[i]) < 0) {
			rc = rc ? rc : EX_CONFIG;
			continue;
		}
		log_set_thread_shard(set.names[i]);
		metrics_set_thread_shard((int)i);
		one = oneshot_run(&s);
		metrics_set_thread_shard(-1);
		log_set_thread_shard(NULL);
		if (one != EX_OK && rc == EX_OK)
			rc = one;
		daemon_free(&s);
		cfg_free(&s.cfg);
	}
	shardset_free(&set);
	return rc;
}

/* The lock's value, escaped, or "free" / why it could not be read. */
static void
holder_of(struct daemon *s, char *out, size_t outsz)
{
	char err[512];
	int rc = leader_holder(&s->leader, s->conn, out, outsz, err, sizeof(err));

	if (rc == LEADER_FREE)
		snprintf(out, outsz, "free");
	else if (rc < 0 && rconn_broken(s->conn))
		snprintf(out, outsz, "unknown (%s)", err);
	else if (rc < 0)
		snprintf(out, outsz, "%s", err);	/* the error reply, escaped */
}

static long long
online_of(struct daemon *s)
{
	redisReply *r = rconn_calll(s->conn, "SCARD", s->cfg.online_set, NULL);
	long long n = r && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;

	if (r)
		freeReplyObject(r);
	return n;
}

/* -t: one shard's line. */
static void
check_one(struct daemon *s, const char *name)
{
	char err[512], holder[LEADER_TOKEN_MAX * 4], where[400];

	if (s->cfg.url.is_cluster)
		snprintf(where, sizeof(where), "slot %u, ", s->cfg.cluster_slot);
	else
		where[0] = '\0';
	if (daemon_connect(s, err, sizeof(err)) != 0) {
		printf("# shard %s: %s%s: %s\n", name, where, s->cfg.online_set, err);
		return;
	}
	holder_of(s, holder, sizeof(holder));
	printf("# shard %s: %snode %s, online set %s: %lld members, lock %s: %s\n", name,
	    where, s->endpoint, s->cfg.online_set, online_of(s), s->cfg.leader_key, holder);
}

int
shardonce_check(struct daemon *d)
{
	struct shardset set;

	if (shardset_init(&set, &d->cfg) < 0)
		return EX_OSERR;
	printf("# shards: %zu; replicas share them through %s\n", set.n, d->cfg.members_key);
	for (size_t i = 0; i < set.n; i++) {
		static struct daemon s;

		if (fleet_shard_daemon(&s, d, set.names[i]) < 0) {
			printf("# shard %s: cannot be set up (see the log)\n", set.names[i]);
			continue;
		}
		check_one(&s, set.names[i]);
		daemon_free(&s);
		cfg_free(&s.cfg);
	}
	shardset_free(&set);
	return EX_OK;
}
