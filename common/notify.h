/*
 * notify: tell a supervising systemd what the daemon is doing (sd_notify(3)).
 *
 * Contract, for every function below:
 * - returns 1 when a message was sent to $NOTIFY_SOCKET, 0 when there is
 *   nothing to send to (NOTIFY_SOCKET unset, or built without libsystemd),
 *   and -1 with errno set when sending failed;
 * - a failure is never fatal: the caller may log it and carry on;
 * - nothing is logged here, nothing is allocated, no state is kept, and
 *   NOTIFY_SOCKET stays in the environment so that later calls still work;
 * - not async-signal-safe: call from the main loop, never from a handler.
 */
#ifndef PR_NOTIFY_H
#define PR_NOTIFY_H

#include <stdint.h>

#define NOTIFY_PRINTF(a, b) __attribute__((format(printf, a, b)))

/* "READY=1": startup finished (first successful Redis connection), or a
 * reload announced with notify_reloading() finished. */
int notify_ready(void);

/*
 * "STATUS=<text>": one line shown by `systemctl status`. The text is cut at
 * 255 bytes and newlines become spaces (a newline would start a new
 * assignment in the datagram).
 */
int notify_status(const char *fmt, ...) NOTIFY_PRINTF(1, 2);

/* "STOPPING=1": shutdown has begun. */
int notify_stopping(void);

/* "RELOADING=1": a reload has begun; send notify_ready() when it is done,
 * whether the new configuration was applied or rejected. */
int notify_reloading(void);

/* "WATCHDOG=1": the main loop is alive. */
int notify_watchdog(void);

/*
 * How often to call notify_watchdog(), in milliseconds: half of
 * $WATCHDOG_USEC (at least 1), so one late tick is not fatal. 0 when the
 * watchdog is not enabled for this process (WATCHDOG_USEC unset or invalid,
 * WATCHDOG_PID naming another process) or when built without libsystemd.
 */
int64_t notify_watchdog_interval_ms(void);

#endif
