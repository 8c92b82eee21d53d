#include "acl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lastpass.h"
#include "shardcfg.h"

/* When a command rule applies: one bit each, from the configuration. */
enum {
	W_ANY = 1 << 0,		/* every run, --dry-run included */
	W_DB = 1 << 1,		/* redis.db (or the URL's) is not 0: SELECT */
	W_LEADER = 1 << 2,	/* runs that may remove: the lock, the scripts */
	W_EVENTS = 1 << 3,	/* events.mode is publish or stream: TIME for "ts" */
	W_PUBLISH = 1 << 4,
	W_STREAM = 1 << 5,
	W_WATCH = 1 << 6,	/* reaper.watch_expiry */
	W_SENTINEL = 1 << 7,	/* a redis+sentinel:// URL: ROLE confirms the primary */
	W_CLUSTER = 1 << 8,	/* a redis+cluster:// URL: the slot map, ASK followed */
	W_SHARDS = 1 << 9,	/* keys.shards, in the loop: members.lua */
	W_SHARD_LOCKS = 1 << 10,	/* keys.shards: -t reads each shard's lock holder */
	W_READER = 1 << 11,	/* the read-only user: --status reads the lock and summary */
};

/*
 * Every command the reaper sends, and the scripts' own calls, with the
 * paths that send them (the scripts are in reaper/lua/; common/rconn.c
 * sends the first three). AUTH needs no rule: any user may run it. INFO (asked only to name
 * the server's version when a command is unknown) and CONFIG are left out.
 */
static const struct {
	const char *rule;
	unsigned when;
} rules[] = {
	{ "+ping", W_ANY },		/* every connection */
	{ "+client|setname", W_ANY },	/* every connection; a refusal is ignored */
	{ "+select", W_DB },
	{ "+type", W_ANY },		/* key types: -t, --once, becoming leader, reap.lua */
	{ "+scard", W_ANY },		/* the guard */
	{ "+srandmember", W_ANY },	/* the guard's sample */
	{ "+sscan", W_ANY },		/* the pass */
	{ "+exists", W_ANY },		/* the screening, by groups */
	{ "+pttl", W_ANY },		/* the screening; probe.lua, reap.lua */
	{ "+role", W_SENTINEL },	/* every connection to the node Sentinel names */
	{ "+cluster|slots", W_CLUSTER },	/* the slot map, from the seeds and the nodes */
	{ "+asking", W_CLUSTER },	/* the lock and key checks follow ASK */
	{ "+set", W_LEADER },		/* taking the lock */
	{ "+get", W_LEADER | W_SHARD_LOCKS | W_READER },	/* the lock's holder; the fences */
	{ "+evalsha", W_LEADER },
	{ "+script|load", W_LEADER },
	{ "+pexpire", W_LEADER },	/* renew.lua; reap.lua's ghost repair */
	{ "+del", W_LEADER },		/* release.lua */
	{ "+srem", W_LEADER },		/* reap.lua */
	{ "+hset", W_LEADER },		/* status.lua: the last pass's summary */
	{ "+time", W_EVENTS | W_LEADER | W_READER },	/* reap.lua "ts"; members, status */
	{ "+hgetall", W_READER },	/* --status: the last pass's summary */
	{ "+publish", W_PUBLISH },	/* reap.lua */
	{ "+xadd", W_STREAM },		/* reap.lua */
	{ "+subscribe", W_WATCH },	/* the key-expiry subscription */
	{ "+zremrangebyscore", W_SHARDS },	/* members.lua: the replicas' membership */
	{ "+zadd", W_SHARDS },
	{ "+zrem", W_SHARDS },
	{ "+zcard", W_SHARDS },
};

/* The rule bits that apply to c in variant v. */
static unsigned
applies(const struct cfg *c, enum acl_variant v)
{
	unsigned w = W_ANY;

	if (c->url.db > 0)
		w |= W_DB;
	if (c->url.is_sentinel)
		w |= W_SENTINEL;
	if (c->url.is_cluster)
		w |= W_CLUSTER;
	if (strcmp(c->shards, "0") != 0)
		w |= W_SHARD_LOCKS;
	if (v == ACL_DRY_RUN)
		return w | W_READER;
	w |= W_LEADER;
	if (strcmp(c->events_mode, "publish") == 0)
		w |= W_EVENTS | W_PUBLISH;
	if (strcmp(c->events_mode, "stream") == 0)
		w |= W_EVENTS | W_STREAM;
	if (c->watch_expiry)
		w |= W_WATCH;
	if (strcmp(c->shards, "0") != 0)
		w |= W_SHARDS | W_EVENTS;	/* members.lua reads TIME too */
	return w;
}

/* One argument, as redis-cli splits a line: bare when it can be, else in double quotes. */
static void
put_arg(FILE *f, const char *s)
{
	const unsigned char *p;
	int bare = *s != '\0';

	for (p = (const unsigned char *)s; *p; p++)
		if (*p <= ' ' || *p >= 0x7f || *p == '"' || *p == '\'' || *p == '\\')
			bare = 0;
	fputc(' ', f);
	if (bare) {
		fputs(s, f);
		return;
	}
	fputc('"', f);
	for (p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(f, "\\%c", *p);
		else if (*p < ' ' || *p >= 0x7f)
			fprintf(f, "\\x%02x", *p);
		else
			fputc(*p, f);
	}
	fputc('"', f);
}

/*
 * Append s to dst as a Redis glob matching it: metacharacters escaped.
 * Redis refuses white space in an ACL rule, so each white-space byte
 * becomes "?", which matches it (and any other byte there). A shard's
 * name, SHARD_PLACEHOLDER, becomes "*": one rule covers every shard.
 * Returns the new end.
 */
static char *
glob_escape(char *dst, const char *s)
{
	for (; *s; s++) {
		if (strncmp(s, SHARD_PLACEHOLDER, strlen(SHARD_PLACEHOLDER)) == 0) {
			*dst++ = '*';
			s += strlen(SHARD_PLACEHOLDER) - 1;
			continue;
		}
		if (strchr(" \t\n\v\f\r", *s) != NULL) {
			*dst++ = '?';
			continue;
		}
		if (strchr("*?[]\\", *s) != NULL)
			*dst++ = '\\';
		*dst++ = *s;
	}
	*dst = '\0';
	return dst;
}

/*
 * One key or channel rule: sigil, then a as a literal and, when b is not
 * NULL, "*" and b as a literal (a pattern for every key between them).
 */
static int
put_pattern(FILE *f, const char *sigil, const char *a, const char *b)
{
	size_t n = strlen(sigil) + 2 * strlen(a) + (b ? 2 * strlen(b) + 1 : 0) + 1;
	char *buf = malloc(n), *end;

	if (buf == NULL)
		return -1;
	end = glob_escape(buf + strlen(sigil), a);
	memcpy(buf, sigil, strlen(sigil));
	if (b != NULL) {
		*end++ = '*';
		glob_escape(end, b);
	}
	put_arg(f, buf);
	free(buf);
	return 0;
}

/* Keys and channels: exact names, and one pattern for the socket sets. */
static int
put_keys(FILE *f, const struct cfg *c, enum acl_variant v)
{
	const char *key = v == ACL_DRY_RUN ? "%R~" : "~";
	char channel[64], status[600];
	unsigned w = applies(c, v);
	int rc = 0;

	lastpass_key(c->leader_key, status, sizeof(status));
	rc |= put_pattern(f, key, c->online_set, NULL);
	rc |= put_pattern(f, key, c->leader_key, NULL);
	rc |= put_pattern(f, key, status, NULL);
	if (v == ACL_LEADER) {
		/* Declared to the reap script in stream mode only (reapcall.c). */
		if (w & W_STREAM)
			rc |= put_pattern(f, "~", c->events_stream, NULL);
		if (w & W_SHARDS)
			rc |= put_pattern(f, "~", c->members_key, NULL);
	}
	rc |= put_pattern(f, key, c->socket_prefix, c->socket_suffix);
	if (w & W_PUBLISH)
		rc |= put_pattern(f, "&", c->events_channel, NULL);
	if (w & W_WATCH) {
		snprintf(channel, sizeof(channel), "__keyevent@%d__:expired", c->url.db);
		rc |= put_pattern(f, "&", channel, NULL);
	}
	return rc;
}

char *
acl_setuser(const struct cfg *c, enum acl_variant v)
{
	unsigned w = applies(c, v);
	char *line = NULL;
	size_t len;
	FILE *f = open_memstream(&line, &len);

	if (f == NULL)
		return NULL;
	fputs("ACL SETUSER", f);
	put_arg(f, c->url.user[0] ? c->url.user : ACL_USER_PLACEHOLDER);
	fputs(" reset on >" ACL_PASSWORD_PLACEHOLDER " resetchannels", f);
	for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++)
		if (rules[i].when & w)
			fprintf(f, " %s", rules[i].rule);
	if (put_keys(f, c, v) < 0 || ferror(f)) {
		fclose(f);
		free(line);
		return NULL;
	}
	if (fclose(f) != 0) {
		free(line);
		return NULL;
	}
	return line;
}
