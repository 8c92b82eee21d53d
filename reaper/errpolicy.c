#include "errpolicy.h"

#include <stdio.h>
#include <string.h>
#include <sysexits.h>

#include "failover.h"
#include "log.h"
#include "metrics.h"

/* ASK, TRYAGAIN: Redis refuses a script whose keys are split by a migration before it runs. */
#define MIGRATING "the keys' hash slot is being migrated to another node: the command did not run"

static const struct policy {
	enum log_level level;
	int once_exit;
	const char *hint;	/* appended to the message; NULL: none */
} policies[RERR_NCLASSES] = {
	[RERR_NONE] = { LOG_LVL_ERROR, EX_DATAERR, NULL },
	[RERR_READONLY] = { LOG_LVL_WARN, EX_UNAVAILABLE, NULL },
	[RERR_LOADING] = { LOG_LVL_WARN, EX_UNAVAILABLE, NULL },
	[RERR_BUSY] = { LOG_LVL_WARN, EX_UNAVAILABLE, NULL },
	[RERR_OOM] = { LOG_LVL_WARN, EX_TEMPFAIL,
	    "redis is out of memory (maxmemory) and refused it: nothing removed" },
	[RERR_NOPERM] = { LOG_LVL_ERROR, EX_CONFIG,
	    "the reaper's ACL user needs this command on this key" },
	[RERR_UNKNOWN_COMMAND] = { LOG_LVL_ERROR, EX_CONFIG, NULL },
	[RERR_MOVED] = { LOG_LVL_WARN, EX_UNAVAILABLE, NULL },
	[RERR_ASK] = { LOG_LVL_WARN, EX_UNAVAILABLE, MIGRATING },
	[RERR_TRYAGAIN] = { LOG_LVL_WARN, EX_UNAVAILABLE, MIGRATING },
	[RERR_CLUSTERDOWN] = { LOG_LVL_WARN, EX_UNAVAILABLE, NULL },
	[RERR_OTHER] = { LOG_LVL_ERROR, EX_DATAERR, NULL },
};

int
retried_with_backoff(enum rerr_class cls)
{
	return cls != RERR_NONE && cls != RERR_OTHER;
}

int
refusal_exit_status(enum rerr_class cls)
{
	return policies[cls].once_exit;
}

void
report_refusal(struct daemon *d, enum rerr_class cls, const char *msg)
{
	const struct policy *p = &policies[cls];
	char line[ERRLOG_MAX], version[64];
	redisReply *info;
	int n, refused;

	if (cls != RERR_NONE)
		metrics_redis_error();
	if (cls == RERR_UNKNOWN_COMMAND) {
		info = rconn_calll(d->conn, "INFO", "server", NULL);
		rerr_server_version(info, version, sizeof(version));
		if (info != NULL)
			freeReplyObject(info);
		n = snprintf(line, sizeof(line), "%s; the server (redis_version %s) does not "
		    "know this command: renamed or disabled (rename-command), or missing in "
		    "this version", msg, version);
	} else {
		n = snprintf(line, sizeof(line), "%s%s%s", msg, p->hint ? "; " : "",
		    p->hint ? p->hint : "");
	}
	if (n < 0 || (size_t)n >= sizeof(line))
		n = (int)strlen(line);
	refused = failover_refused(d, cls);
	if (d->cli.once && rerr_transient(cls))
		snprintf(line + n, sizeof(line) - (size_t)n, "; %swaiting up to %g s "
		    "(redis.command_timeout)", refused ? "loading the cluster's slot map "
		    "again, " : "", d->cfg.command_timeout);
	else if (d->cfg.url.is_cluster && rerr_cluster(cls) && cls != RERR_MOVED)
		/* One text whether this try loads the map again, so it is logged once. */
		snprintf(line + n, sizeof(line) - (size_t)n, "; retrying with backoff, and "
		    "loading the cluster's slot map again every few tries");
	else if (refused)
		snprintf(line + n, sizeof(line) - (size_t)n, "; %s", d->cfg.url.is_cluster ?
		    "loading the cluster's slot map again" :
		    "asking the sentinels for the primary again");
	else if (!d->cli.once && retried_with_backoff(cls))
		snprintf(line + n, sizeof(line) - (size_t)n, "; retrying with backoff");
	errlog_report(&d->errlog, p->level, line);
}

void
refusal_cleared(struct daemon *d)
{
	errlog_clear(&d->errlog);
	backoff_reset(&d->backoff);
}
