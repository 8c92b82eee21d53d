#include "errlog.h"

#include <stdio.h>
#include <string.h>

void
errlog_init(struct errlog *e)
{
	e->last[0] = '\0';
	e->repeats = 0;
}

static void
log_at(enum log_level level, const char *msg)
{
	switch (level) {
	case LOG_LVL_ERROR:
		log_error("%s", msg);
		break;
	case LOG_LVL_WARN:
		log_warnx("%s", msg);
		break;
	case LOG_LVL_INFO:
		log_info("%s", msg);
		break;
	case LOG_LVL_DEBUG:
		log_debug("%s", msg);
		break;
	}
}

/* Close the active error: its count, if it repeated, then forget it. */
static void
close_active(struct errlog *e, const char *how)
{
	if (e->last[0] != '\0' && e->repeats > 0)
		log_info("%s (repeated %llu time%s%s)", e->last, e->repeats,
		    e->repeats == 1 ? "" : "s", how);
	errlog_init(e);
}

int
errlog_report(struct errlog *e, enum log_level level, const char *msg)
{
	/* Compare what would be kept, so a message longer than the buffer still repeats. */
	if (e->last[0] != '\0' && strncmp(e->last, msg, sizeof(e->last) - 1) == 0) {
		e->repeats++;
		log_debug("%s (repeated %llu time%s)", e->last, e->repeats,
		    e->repeats == 1 ? "" : "s");
		return 0;
	}
	close_active(e, "");
	snprintf(e->last, sizeof(e->last), "%s", msg);
	log_at(level, msg);
	return 1;
}

void
errlog_clear(struct errlog *e)
{
	close_active(e, "; now cleared");
}

int
errlog_active(const struct errlog *e)
{
	return e->last[0] != '\0';
}
