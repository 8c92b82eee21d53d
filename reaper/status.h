/*
 * status: presence-reaper --status, read-only. For the one online set, or
 * for each shard: who holds the lock and for how long, the leader's last
 * pass (lastpass.h), the online set's size, the guard's sample now, and
 * the keyspace-notification setting when reaper.watch_expiry needs it.
 * Text or JSON on stdout; the exit status follows the Nagios plugin
 * convention, so that it serves as a monitoring check and as an exec probe.
 */
#ifndef PR_STATUS_H
#define PR_STATUS_H

#include "daemon.h"
#include "guard.h"
#include "lastpass.h"

enum status_code {
	STATUS_OK = 0,
	STATUS_WARNING = 1,	/* no pass for 2 intervals, the last did not finish, ghosts */
	STATUS_CRITICAL = 2,	/* no leader, no pass for 3 intervals, the guard tripped */
	STATUS_UNKNOWN = 3,	/* Redis unreachable, or it refused what --status reads */
};

#define STATUS_REASONS_MAX 8

/* What --status found for one set (the one online set, or a shard). */
struct status_view {
	char shard[65];		/* "" without keys.shards */
	const struct cfg *cfg;	/* the settings every shard shares */
	enum status_code code;
	char why[1024];		/* the reasons, "; " between them; "" when OK */
	enum status_code levels[STATUS_REASONS_MAX];	/* each reason's level */
	char reasons[STATUS_REASONS_MAX][400];		/* and its words */
	int nreasons;
	char err[512];		/* what kept it from being read (UNKNOWN); "" none */
	char endpoint[300];	/* the node it was read from, escaped */
	char lock_key[300], online_set[300], status_key[600];
	int held;		/* the lock has a holder */
	char holder[LEADER_TOKEN_MAX * 4];	/* its value, escaped */
	long long lease_ms;	/* PTTL of the lock */
	long long now_ms;	/* Redis's clock */
	struct lastpass_view lp;
	struct guard_probe g;	/* the guard's sample, now */
	int notify_known;	/* with reaper.watch_expiry: notify-keyspace-events read */
	char notify[200];	/* its value, escaped, or why it could not be read */
};

/* "OK", "WARNING", "CRITICAL", "UNKNOWN". */
const char *status_name(enum status_code c);

/* Run --status for d (configured, not connected). Returns the exit status. */
int status_run(struct daemon *d);

/* The worse of two codes: CRITICAL, then UNKNOWN, then WARNING, then OK. */
enum status_code status_worse(enum status_code a, enum status_code b);

#endif
