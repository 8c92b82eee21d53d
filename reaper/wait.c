#define _GNU_SOURCE	/* pipe2 */
#include "wait.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "metrics.h"
#include "notify.h"
#include "timeutil.h"

/* Lock-free atomics: set in the handler, read by every shard's thread too. */
_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "the signal flags must be lock-free");
static _Atomic int stop_signal;
static _Atomic int reload_requested;
static int wake_pipe[2] = { -1, -1 };
static int64_t watchdog_ms;	/* systemd watchdog period / 2; 0 = off */
static int64_t watchdog_last;
static _Atomic int shutdown_said;
/* A shard's thread waits on its own fd (wait_set_thread_fd), the main thread on the pipe. */
static _Thread_local int thread_fd = -1;

static void
on_signal(int sig)
{
	int saved = errno;

	if (sig == SIGHUP) {
		reload_requested = 1;
	} else {
		if (stop_signal)
			_exit(128 + sig);	/* second signal: no more waiting */
		stop_signal = sig;
	}
	if (wake_pipe[1] >= 0 && write(wake_pipe[1], "x", 1) < 0) {
		/* pipe full: a wake-up is already pending */
	}
	errno = saved;
}

int
wait_setup(void)
{
	struct sigaction sa;

	if (pipe2(wake_pipe, O_NONBLOCK | O_CLOEXEC) < 0)
		return -1;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	return 0;
}

void
wait_watchdog_start(void)
{
	watchdog_ms = notify_watchdog_interval_ms();
	watchdog_last = mono_ms();
}

int
wait_stopping(void)
{
	return (int)stop_signal;
}

int
wait_reload_pending(void)
{
	return reload_requested != 0;
}

void
wait_reload_taken(void)
{
	reload_requested = 0;
}

void
wait_set_thread_fd(int fd)
{
	thread_fd = fd;
}

void
wait_keepalive(void)
{
	metrics_tick();
	if (thread_fd < 0 && watchdog_ms > 0 && mono_ms() - watchdog_last >= watchdog_ms) {
		notify_watchdog();
		watchdog_last = mono_ms();
	}
}

void
wait_until(int64_t deadline, int on_reload, const int *fds, int nfds)
{
	struct pollfd p[1 + WAIT_FDS_MAX];
	char buf[64];
	int n = 1;

	int wake = thread_fd >= 0 ? thread_fd : wake_pipe[0];

	p[0] = (struct pollfd){ .fd = wake, .events = POLLIN };
	for (int i = 0; i < nfds && i < WAIT_FDS_MAX; i++)
		if (fds[i] >= 0)
			p[n++] = (struct pollfd){ .fd = fds[i], .events = POLLIN };
	for (;;) {
		int64_t left = deadline - mono_ms();

		wait_keepalive();
		if (stop_signal || (on_reload && reload_requested) || left <= 0)
			return;
		if (watchdog_ms > 0 && left > watchdog_ms)
			left = watchdog_ms;
		if (poll(p, (nfds_t)n, left > 60000 ? 60000 : (int)left) > 0) {
			while (read(wake, buf, sizeof(buf)) > 0)
				;
			if (thread_fd >= 0 && p[0].revents)
				return;	/* a shard's thread: told to look again */
			for (int i = 1; i < n; i++)
				if (p[i].revents)
					return;	/* events or a message to read */
		}
	}
}

void
wait_note_shutdown(void)
{
	if (stop_signal && atomic_exchange(&shutdown_said, 1) == 0) {
		notify_stopping();
		log_info("shutting down (signal %d)", (int)stop_signal);
	}
}
