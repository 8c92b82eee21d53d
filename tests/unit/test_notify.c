/*
 * notify: the datagrams a real $NOTIFY_SOCKET receives, and silence
 * without one. The socket is a real AF_UNIX datagram socket in a temporary
 * folder, the way systemd provides it.
 */
#include "unit.h"
#include "build-config.h"

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "notify.h"

static char dir[64];
static char path[sizeof(dir) + 16];
static int sock = -1;

static void
setup(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = 2 };

	snprintf(dir, sizeof(dir), "/tmp/test_notify.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/notify", dir);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	sock = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(sock, 0);
	ck_assert_int_eq(bind(sock, (struct sockaddr *)&sa, sizeof(sa)), 0);
	/* A missing datagram fails the test instead of hanging it. */
	ck_assert_int_eq(setsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
	ck_assert_int_eq(setenv("NOTIFY_SOCKET", path, 1), 0);
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
}

static void
teardown(void)
{
	unsetenv("NOTIFY_SOCKET");
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
	if (sock >= 0)
		close(sock);
	sock = -1;
	unlink(path);
	rmdir(dir);
}

/* Nothing is waiting on the socket. */
static void
assert_nothing_sent(void)
{
	char buf[64];

	errno = 0;
	ck_assert_int_eq(recv(sock, buf, sizeof(buf), MSG_DONTWAIT), -1);
	ck_assert(errno == EAGAIN || errno == EWOULDBLOCK);
}

START_TEST(without_notify_socket_nothing_is_sent)
{
	unsetenv("NOTIFY_SOCKET");
	ck_assert_int_eq(notify_ready(), 0);
	ck_assert_int_eq(notify_status("cycle done: scanned=%d", 3), 0);
	ck_assert_int_eq(notify_reloading(), 0);
	ck_assert_int_eq(notify_watchdog(), 0);
	ck_assert_int_eq(notify_stopping(), 0);
	assert_nothing_sent();
}
END_TEST

START_TEST(no_watchdog_without_watchdog_usec)
{
	ck_assert_int_eq(notify_watchdog_interval_ms(), 0);
	setenv("WATCHDOG_USEC", "not-a-number", 1);
	ck_assert_int_eq(notify_watchdog_interval_ms(), 0);
}
END_TEST

#ifdef HAVE_LIBSYSTEMD

/* Receive one datagram as a string. */
static const char *
received(void)
{
	static char buf[512];
	ssize_t n = recv(sock, buf, sizeof(buf) - 1, 0);

	ck_assert_msg(n >= 0, "no datagram: %s", strerror(errno));
	buf[n] = '\0';
	return buf;
}

START_TEST(ready)
{
	ck_assert_int_eq(notify_ready(), 1);
	ck_assert_str_eq(received(), "READY=1");
}
END_TEST

START_TEST(status_is_formatted)
{
	ck_assert_int_eq(notify_status("cycle done: scanned=%d stale=%d removed=%d", 10, 2, 1), 1);
	ck_assert_str_eq(received(), "STATUS=cycle done: scanned=10 stale=2 removed=1");
}
END_TEST

START_TEST(status_newline_cannot_inject_an_assignment)
{
	ck_assert_int_eq(notify_status("bad\nREADY=1%s", "\nx"), 1);
	ck_assert_str_eq(received(), "STATUS=bad READY=1 x");
}
END_TEST

START_TEST(status_is_cut_not_overflowed)
{
	char big[1024];

	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	ck_assert_int_eq(notify_status("%s", big), 1);
	ck_assert_uint_eq(strlen(received()), strlen("STATUS=") + 255);
}
END_TEST

START_TEST(stopping)
{
	ck_assert_int_eq(notify_stopping(), 1);
	ck_assert_str_eq(received(), "STOPPING=1");
}
END_TEST

START_TEST(reloading)
{
	ck_assert_int_eq(notify_reloading(), 1);
	ck_assert_str_eq(received(), "RELOADING=1");
}
END_TEST

START_TEST(watchdog)
{
	ck_assert_int_eq(notify_watchdog(), 1);
	ck_assert_str_eq(received(), "WATCHDOG=1");
}
END_TEST

START_TEST(watchdog_interval_is_half_of_watchdog_usec)
{
	char pid[32];

	snprintf(pid, sizeof(pid), "%ld", (long)getpid());
	setenv("WATCHDOG_USEC", "2000000", 1);
	setenv("WATCHDOG_PID", pid, 1);
	ck_assert_int_eq(notify_watchdog_interval_ms(), 1000);
	unsetenv("WATCHDOG_PID");	/* no PID: meant for whoever reads it */
	ck_assert_int_eq(notify_watchdog_interval_ms(), 1000);
	setenv("WATCHDOG_USEC", "1", 1);	/* never 0 while enabled */
	ck_assert_int_eq(notify_watchdog_interval_ms(), 1);
}
END_TEST

START_TEST(watchdog_for_another_process_is_not_ours)
{
	char pid[32];

	snprintf(pid, sizeof(pid), "%ld", (long)getpid() + 1);
	setenv("WATCHDOG_USEC", "2000000", 1);
	setenv("WATCHDOG_PID", pid, 1);
	ck_assert_int_eq(notify_watchdog_interval_ms(), 0);
}
END_TEST

START_TEST(environment_is_kept_for_later_calls)
{
	ck_assert_int_eq(notify_ready(), 1);
	ck_assert_str_eq(received(), "READY=1");
	ck_assert_str_eq(getenv("NOTIFY_SOCKET"), path);
	ck_assert_int_eq(notify_stopping(), 1);
	ck_assert_str_eq(received(), "STOPPING=1");
}
END_TEST

START_TEST(unreachable_socket_is_an_error_not_a_crash)
{
	setenv("NOTIFY_SOCKET", "/nonexistent/notify", 1);
	errno = 0;
	ck_assert_int_eq(notify_ready(), -1);
	ck_assert_int_ne(errno, 0);
}
END_TEST

#else /* !HAVE_LIBSYSTEMD */

START_TEST(without_libsystemd_calls_are_no_ops)
{
	setenv("WATCHDOG_USEC", "2000000", 1);
	ck_assert_int_eq(notify_ready(), 0);
	ck_assert_int_eq(notify_status("x=%d", 1), 0);
	ck_assert_int_eq(notify_reloading(), 0);
	ck_assert_int_eq(notify_watchdog(), 0);
	ck_assert_int_eq(notify_stopping(), 0);
	ck_assert_int_eq(notify_watchdog_interval_ms(), 0);
	assert_nothing_sent();
}
END_TEST

#endif

int
main(void)
{
	Suite *s = suite_create("notify");
	TCase *tc = tcase_create("notify");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, without_notify_socket_nothing_is_sent);
	tcase_add_test(tc, no_watchdog_without_watchdog_usec);
#ifdef HAVE_LIBSYSTEMD
	tcase_add_test(tc, ready);
	tcase_add_test(tc, status_is_formatted);
	tcase_add_test(tc, status_newline_cannot_inject_an_assignment);
	tcase_add_test(tc, status_is_cut_not_overflowed);
	tcase_add_test(tc, stopping);
	tcase_add_test(tc, reloading);
	tcase_add_test(tc, watchdog);
	tcase_add_test(tc, watchdog_interval_is_half_of_watchdog_usec);
	tcase_add_test(tc, watchdog_for_another_process_is_not_ours);
	tcase_add_test(tc, environment_is_kept_for_later_calls);
	tcase_add_test(tc, unreachable_socket_is_an_error_not_a_crash);
#else
	fprintf(stderr, "notify: SKIP datagram tests (READY=1, STATUS=, STOPPING=1, "
	    "RELOADING=1, WATCHDOG=1, watchdog interval): built without libsystemd "
	    "(-Dsystemd=disabled or libsystemd-dev missing); checking the no-op "
	    "build instead\n");
	tcase_add_test(tc, without_libsystemd_calls_are_no_ops);
#endif
	suite_add_tcase(s, tc);
	return unit_run(s);
}
