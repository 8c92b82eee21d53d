#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "unit.h"
#include "log.h"

/* What the log wrote to stderr between capture_begin() and capture_end(). */
static char captured[65536];
static FILE *capture_file;
static int saved_stderr = -1;

static void
capture_begin(enum log_format format)
{
	log_init(LOG_LVL_DEBUG, format);
	fflush(stderr);
	capture_file = tmpfile();
	ck_assert_ptr_nonnull(capture_file);
	saved_stderr = dup(STDERR_FILENO);
	ck_assert_int_ge(saved_stderr, 0);
	ck_assert_int_ge(dup2(fileno(capture_file), STDERR_FILENO), 0);
}

static const char *
capture_end(void)
{
	size_t n;

	fflush(stderr);
	dup2(saved_stderr, STDERR_FILENO);
	close(saved_stderr);
	rewind(capture_file);
	n = fread(captured, 1, sizeof(captured) - 1, capture_file);
	captured[n] = '\0';
	fclose(capture_file);
	return captured;
}

/* The output is exactly one line: one newline, at the end. */
static void
assert_one_line(const char *out)
{
	const char *nl = strchr(out, '\n');

	ck_assert_ptr_nonnull(nl);
	ck_assert_msg(nl[1] == '\0', "more than one line: \"%s\"", out);
}

/* The text of a text-format line after "<ts> <level>: ". */
static const char *
text_msg(const char *out, const char *level)
{
	const char *p = strstr(out, level);

	ck_assert_ptr_nonnull(p);
	return p + strlen(level) + 2;
}

START_TEST(text_newline_cannot_forge_a_line)
{
	const char *out;

	capture_begin(LOG_FMT_TEXT);
	log_info("standby: lock held by %s",
	    "x\ninfo: cycle done: scanned=1 stale=1 removed=1 batches=1 duration=0.001s");
	out = capture_end();
	assert_one_line(out);
	ck_assert_str_eq(text_msg(out, "info"), "standby: lock held by x\\ninfo: cycle done: "
	    "scanned=1 stale=1 removed=1 batches=1 duration=0.001s\n");
}
END_TEST

START_TEST(text_other_control_bytes_are_escaped)
{
	const char *out;

	capture_begin(LOG_FMT_TEXT);
	log_warnx("a\rb\x1b[2Kc\x7f" "d\te\x01");
	out = capture_end();
	assert_one_line(out);
	ck_assert_str_eq(text_msg(out, "warn"), "a\\rb\\x1b[2Kc\\x7fd\\te\\x01\n");
}
END_TEST

START_TEST(text_keeps_backslashes_and_utf8)
{
	const char *out;

	capture_begin(LOG_FMT_TEXT);
	log_error("already escaped \\n stays, caf\xc3\xa9 too");
	out = capture_end();
	ck_assert_str_eq(text_msg(out, "error"), "already escaped \\n stays, caf\xc3\xa9 too\n");
}
END_TEST

START_TEST(text_message_of_newlines_is_escaped_whole)
{
	static char msg[4000];
	const char *out, *m;

	memset(msg, '\n', sizeof(msg) - 1);
	capture_begin(LOG_FMT_TEXT);
	log_debug("%s", msg);
	out = capture_end();
	assert_one_line(out);
	m = text_msg(out, "debug");
	ck_assert_uint_eq(strlen(m), 2 * (sizeof(msg) - 1) + 1);
}
END_TEST

START_TEST(json_is_one_object_per_line)
{
	const char *out;

	capture_begin(LOG_FMT_JSON);
	log_info("a\nb\"c\x1b\rd\\");
	out = capture_end();
	assert_one_line(out);
	ck_assert_ptr_nonnull(strstr(out, ",\"level\":\"info\",\"msg\":\"a\\nb\\\"c\\u001b\\u000dd\\\\\"}\n"));
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("log");
	TCase *tc = tcase_create("format");

	tcase_add_test(tc, text_newline_cannot_forge_a_line);
	tcase_add_test(tc, text_other_control_bytes_are_escaped);
	tcase_add_test(tc, text_keeps_backslashes_and_utf8);
	tcase_add_test(tc, text_message_of_newlines_is_escaped_whole);
	tcase_add_test(tc, json_is_one_object_per_line);
	suite_add_tcase(s, tc);
	return unit_run(s);
}
