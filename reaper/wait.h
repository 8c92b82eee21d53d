/*
 * wait: signals, the self-pipe they write to, systemd's watchdog
 * keepalive, and the one function the daemon waits in. The handlers only
 * set sig_atomic_t flags and wake the pipe; the loop acts on the flags.
 */
#ifndef PR_WAIT_H
#define PR_WAIT_H

#include <stdint.h>

/* Catch SIGTERM, SIGINT and SIGHUP, ignore SIGPIPE. 0, or -1 (errno) without the pipe. */
int wait_setup(void);

/* Keep systemd's watchdog fed from now on, when the unit asks for it. */
void wait_watchdog_start(void);

/* The signal that asked us to stop, or 0. */
int wait_stopping(void);

/* SIGHUP arrived since the last wait_reload_taken(). */
int wait_reload_pending(void);
void wait_reload_taken(void);

/*
 * The calling thread (a shard's, fleet.h) waits on fd, non-blocking and
 * readable when the thread must look again (stop, a new fair share),
 * instead of the signals' pipe, and leaves systemd's watchdog to the main
 * thread. -1 goes back to the pipe.
 */
void wait_set_thread_fd(int fd);

/* The loop is alive: for /healthz and for systemd's watchdog. */
void wait_keepalive(void);

#define WAIT_FDS_MAX 4

/*
 * Sleep until deadline (mono ms), staying alive, or less: a stop signal
 * ends the wait, SIGHUP only when on_reload is set (pacing inside a pass
 * sleeps on, and the reload waits for the pass to end), and so does any
 * of the nfds fds becoming readable (those below 0 are left out).
 */
void wait_until(int64_t deadline, int on_reload, const int *fds, int nfds);

/* Say once that shutdown has begun; may run while a Redis reply is awaited. */
void wait_note_shutdown(void);

#endif
