/*
 * oneshot: the runs that end by themselves. --once takes the lock, runs
 * one pass, releases, and says how it went as an exit status cron can act
 * on (and in node_exporter's textfile); -t shows the effective
 * configuration and what Redis looks like, read-only. main.c returns the
 * statuses these compute.
 */
#ifndef PR_ONESHOT_H
#define PR_ONESHOT_H

#include "daemon.h"

/* --once: one pass; LOADING and BUSY are waited out for up to redis.command_timeout. */
int oneshot_run(struct daemon *d);

/*
 * --once, however it ended with status rc: leave the metrics and how the
 * run ended for node_exporter's textfile collector, so a failed run never
 * looks like the last good one.
 */
void oneshot_write_textfile(const struct daemon *d, int rc);

/* -t: the effective configuration, then what Redis looks like, read-only. */
int oneshot_check_config(struct daemon *d);

#endif
