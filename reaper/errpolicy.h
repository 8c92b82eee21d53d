/*
 * errpolicy: what an error reply means (DESIGN §7; presence-reaper(8),
 * ERROR REPLIES). The loop never exits on an error reply: it logs it once
 * at its level (then only counts it, see errlog.h) and retries, with
 * backoff for the classes below RERR_OTHER, at the next interval for
 * errors of the data. --once exits with the class's status, after waiting
 * out LOADING and BUSY for up to redis.command_timeout.
 */
#ifndef PR_ERRPOLICY_H
#define PR_ERRPOLICY_H

#include "daemon.h"
#include "rerr.h"

/*
 * Log an error reply (msg names the command and key) by the policy of
 * its class: once at the class's level while it repeats, with what it
 * means and what happens next. An unknown command is shown with the
 * server's version, asked for on d->conn (which must be usable).
 */
void report_refusal(struct daemon *d, enum rerr_class cls, const char *msg);

/* A step Redis had refused went through: close the repeated error, retry promptly next time. */
void refusal_cleared(struct daemon *d);

/* Error replies of these classes are retried with backoff, not at the next interval. */
int retried_with_backoff(enum rerr_class cls);

/* --once: the exit status for an error reply of class cls. */
int refusal_exit_status(enum rerr_class cls);

#endif
