/*
 * acl: the least-privilege Redis ACL user for a configuration, as the
 * ACL SETUSER line an operator runs (presence-reaper.conf(5), ACL).
 *
 * Derived from the settings alone: the commands the reaper sends on the
 * paths this configuration takes, the commands its scripts call (Redis
 * checks each of them against the caller's ACL too), the keys it touches
 * (exact names, and prefix*suffix for the socket sets, with glob
 * metacharacters of the configured names escaped) and the channels it
 * publishes or subscribes to. CONFIG is never granted: CONFIG GET would
 * hand the user the server's passwords, CONFIG SET any setting.
 *
 * The line starts with "reset" and "resetchannels", so running it again
 * after a configuration change leaves exactly the new permissions. The user
 * is the configured one (URL, then redis.username), else the placeholder
 * ACL_USER_PLACEHOLDER; the password is always the placeholder
 * ">" ACL_PASSWORD_PLACEHOLDER, never the configured one. Arguments are
 * quoted the way redis-cli splits a line.
 */
#ifndef PR_ACL_H
#define PR_ACL_H

#include "settings.h"

#define ACL_USER_PLACEHOLDER "presence-reaper"
#define ACL_PASSWORD_PLACEHOLDER "PASSWORD"

enum acl_variant {
	ACL_LEADER,	/* everything: the loop, --once, events, key-expiry events */
	ACL_DRY_RUN,	/* read-only: --dry-run and -t, on keys it may only read */
};

/*
 * The ACL SETUSER line for c (finalized), without a newline, in a string
 * the caller frees. NULL when out of memory.
 */
char *acl_setuser(const struct cfg *c, enum acl_variant v);

#endif
