#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "unit.h"
#include "errlog.h"

static FILE *captured;
static int saved_stderr = -1;

/* Send stderr (where log.c writes) to a temporary file. */
static void
capture(void)
{
	captured = tmpfile();
	ck_assert_ptr_nonnull(captured);
	fflush(stderr);
	saved_stderr = dup(STDERR_FILENO);
	ck_assert_int_ge(saved_stderr, 0);
	ck_assert_int_ge(dup2(fileno(captured), STDERR_FILENO), 0);
}

/* Restore stderr; return what was logged (static buffer). */
static const char *
captured_text(void)
{
	static char buf[8192];
	size_t n;

	fflush(stderr);
	dup2(saved_stderr, STDERR_FILENO);
	close(saved_stderr);
	rewind(captured);
	n = fread(buf, 1, sizeof(buf) - 1, captured);
	buf[n] = '\0';
	fclose(captured);
	return buf;
}

static int
count(const char *text, const char *needle)
{
	int n = 0;

	for (const char *p = text; (p = strstr(p, needle)) != NULL; p += strlen(needle))
		n++;
	return n;
}

START_TEST(same_error_logged_once_then_counted_at_debug)
{
	struct errlog e;
	const char *out;

	log_init(LOG_LVL_INFO, LOG_FMT_TEXT);
	errlog_init(&e);
	capture();
	ck_assert_int_eq(errlog_report(&e, LOG_LVL_WARN, "SET lock NX: READONLY"), 1);
	for (int i = 0; i < 11; i++)
		ck_assert_int_eq(errlog_report(&e, LOG_LVL_WARN, "SET lock NX: READONLY"), 0);
	ck_assert(errlog_active(&e));
	errlog_clear(&e);
	ck_assert(!errlog_active(&e));
	out = captured_text();
	ck_assert_int_eq(count(out, "warn: SET lock NX: READONLY\n"), 1);
	ck_assert_int_eq(count(out, "info: SET lock NX: READONLY (repeated 11 times; "
	    "now cleared)\n"), 1);
	ck_assert_int_eq(count(out, "\n"), 2);	/* the repeats went to debug */
}
END_TEST

START_TEST(repeats_show_their_count_at_debug)
{
	struct errlog e;
	const char *out;

	log_init(LOG_LVL_DEBUG, LOG_FMT_TEXT);
	errlog_init(&e);
	capture();
	errlog_report(&e, LOG_LVL_ERROR, "NOPERM");
	errlog_report(&e, LOG_LVL_ERROR, "NOPERM");
	errlog_report(&e, LOG_LVL_ERROR, "NOPERM");
	out = captured_text();
	ck_assert_int_eq(count(out, "error: NOPERM\n"), 1);
	ck_assert_int_eq(count(out, "debug: NOPERM (repeated 1 time)\n"), 1);
	ck_assert_int_eq(count(out, "debug: NOPERM (repeated 2 times)\n"), 1);
}
END_TEST

START_TEST(a_different_error_closes_the_count_and_is_logged)
{
	struct errlog e;
	const char *out;

	log_init(LOG_LVL_INFO, LOG_FMT_TEXT);
	errlog_init(&e);
	capture();
	errlog_report(&e, LOG_LVL_WARN, "OOM");
	errlog_report(&e, LOG_LVL_WARN, "OOM");
	errlog_report(&e, LOG_LVL_ERROR, "NOPERM");
	errlog_report(&e, LOG_LVL_WARN, "OOM");
	out = captured_text();
	ck_assert_int_eq(count(out, "warn: OOM\n"), 2);
	ck_assert_int_eq(count(out, "info: OOM (repeated 1 time)\n"), 1);
	ck_assert_int_eq(count(out, "error: NOPERM\n"), 1);
}
END_TEST

START_TEST(clearing_without_repeats_says_nothing)
{
	struct errlog e;
	const char *out;

	log_init(LOG_LVL_DEBUG, LOG_FMT_TEXT);
	errlog_init(&e);
	capture();
	errlog_clear(&e);
	errlog_report(&e, LOG_LVL_WARN, "LOADING");
	errlog_clear(&e);
	errlog_clear(&e);
	out = captured_text();
	ck_assert_int_eq(count(out, "warn: LOADING\n"), 1);
	ck_assert_int_eq(count(out, "\n"), 1);
}
END_TEST

START_TEST(long_messages_still_repeat)
{
	static char msg[ERRLOG_MAX + 100];
	struct errlog e;
	const char *out;

	memset(msg, 'x', sizeof(msg) - 1);
	log_init(LOG_LVL_INFO, LOG_FMT_TEXT);
	errlog_init(&e);
	capture();
	ck_assert_int_eq(errlog_report(&e, LOG_LVL_WARN, msg), 1);
	ck_assert_int_eq(errlog_report(&e, LOG_LVL_WARN, msg), 0);
	out = captured_text();
	ck_assert_int_eq(count(out, "warn: "), 1);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("errlog");
	TCase *tc = tcase_create("errlog");

	tcase_add_test(tc, same_error_logged_once_then_counted_at_debug);
	tcase_add_test(tc, repeats_show_their_count_at_debug);
	tcase_add_test(tc, a_different_error_closes_the_count_and_is_logged);
	tcase_add_test(tc, clearing_without_repeats_says_nothing);
	tcase_add_test(tc, long_messages_still_repeat);
	suite_add_tcase(s, tc);
	return unit_run(s);
}
