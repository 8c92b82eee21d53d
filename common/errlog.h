/*
 * errlog: say an error once. The first report of a message is logged at
 * its level; the same message again is only counted, at debug. When a
 * different message comes, or the error clears, one info line says how
 * often the last one repeated. For a loop that retries every few seconds
 * and would otherwise write the same line for as long as an outage lasts.
 */
#ifndef PR_ERRLOG_H
#define PR_ERRLOG_H

#include "log.h"

#define ERRLOG_MAX 2048

struct errlog {
	char last[ERRLOG_MAX];		/* "" when no error is active */
	unsigned long long repeats;	/* reports of last after the first */
};

void errlog_init(struct errlog *e);

/*
 * Report msg: logged at level when it differs from the active error
 * (closing that one's count), else counted and logged at debug as
 * "msg (repeated N times)". Returns 1 when it was logged at level.
 */
int errlog_report(struct errlog *e, enum log_level level, const char *msg);

/* The error went away: "msg (repeated N times; now cleared)" at info if it repeated. */
void errlog_clear(struct errlog *e);

/* 1 while an error is active (reported and not cleared). */
int errlog_active(const struct errlog *e);

#endif
