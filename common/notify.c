#include "build-config.h"

#include "notify.h"

#ifdef HAVE_LIBSYSTEMD
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <systemd/sd-daemon.h>

/* sd_notify() returns >0 sent, 0 no socket, or -errno; map to 1/0/-1. */
static int
sent(int r)
{
	if (r < 0) {
		errno = -r;
		return -1;
	}
	return r > 0;
}

static int
send_state(const char *state)
{
	return sent(sd_notify(0, state));
}

int
notify_status(const char *fmt, ...)
{
	char text[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	for (char *p = strchr(text, '\n'); p != NULL; p = strchr(p, '\n'))
		*p = ' ';
	return sent(sd_notifyf(0, "STATUS=%s", text));
}

int64_t
notify_watchdog_interval_ms(void)
{
	uint64_t usec = 0;

	if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0)
		return 0;
	if (usec / 2000 == 0)
		return 1;
	return (int64_t)(usec / 2000);
}

#else /* !HAVE_LIBSYSTEMD: every call is a no-op */

static int
send_state(const char *state)
{
	(void)state;
	return 0;
}

int
notify_status(const char *fmt, ...)
{
	(void)fmt;
	return 0;
}

int64_t
notify_watchdog_interval_ms(void)
{
	return 0;
}

#endif

int
notify_ready(void)
{
	return send_state("READY=1");
}

int
notify_stopping(void)
{
	return send_state("STOPPING=1");
}

int
notify_reloading(void)
{
	return send_state("RELOADING=1");
}

int
notify_watchdog(void)
{
	return send_state("WATCHDOG=1");
}
