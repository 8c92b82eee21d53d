#include <check.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"
#include "cli.h"

#define MAXARGS 16

static struct cli o;
static char err[256];

/*
 * Run cli_parse on "presence-reaper" followed by the NULL-terminated
 * arguments. getopt may permute argv and o points into it, so the
 * arguments live in static storage until the next call.
 */
static int
parse(const char *arg, ...)
{
	static char store[MAXARGS][128];
	static char *argv[MAXARGS + 1];
	int argc = 0;
	va_list ap;

	strcpy(store[argc], "presence-reaper");
	argv[argc] = store[argc];
	argc++;
	va_start(ap, arg);
	for (; arg != NULL; arg = va_arg(ap, const char *)) {
		ck_assert_int_lt(argc, MAXARGS);
		ck_assert_uint_lt(strlen(arg), sizeof(store[0]));
		strcpy(store[argc], arg);
		argv[argc] = store[argc];
		argc++;
	}
	va_end(ap);
	argv[argc] = NULL;
	err[0] = '\0';
	return cli_parse(argc, argv, &o, err, sizeof(err));
}

static void
parse_ok_1(const char *arg)
{
	ck_assert_msg(parse(arg, NULL) == 0, "%s: %s", arg, err);
}

START_TEST(defaults)
{
	ck_assert_int_eq(parse(NULL), 0);
	ck_assert_str_eq(o.config_path, "/etc/presence-reaper.conf");
	ck_assert_str_eq(o.config_path, CLI_DEFAULT_CONFIG);
	ck_assert_int_eq(o.config_given, 0);
	ck_assert_int_eq(o.check_config, 0);
	ck_assert_int_eq(o.once, 0);
	ck_assert_int_eq(o.dry_run, 0);
	ck_assert_ptr_null(o.redis_url);
	ck_assert_int_eq(o.verbose, 0);
	ck_assert_int_eq(o.quiet, 0);
	ck_assert_ptr_null(o.log_format);
	ck_assert_int_eq(o.version, 0);
	ck_assert_int_eq(o.help, 0);
}
END_TEST

START_TEST(config_short_and_long)
{
	ck_assert_int_eq(parse("-c", "/tmp/a.conf", NULL), 0);
	ck_assert_str_eq(o.config_path, "/tmp/a.conf");
	ck_assert_int_eq(o.config_given, 1);

	ck_assert_int_eq(parse("--config", "/tmp/b.conf", NULL), 0);
	ck_assert_str_eq(o.config_path, "/tmp/b.conf");
	ck_assert_int_eq(o.config_given, 1);

	ck_assert_int_eq(parse("--config=/tmp/c.conf", NULL), 0);
	ck_assert_str_eq(o.config_path, "/tmp/c.conf");

	ck_assert_int_eq(parse("-c/tmp/d.conf", NULL), 0);
	ck_assert_str_eq(o.config_path, "/tmp/d.conf");
	ck_assert_int_eq(o.config_given, 1);
}
END_TEST

START_TEST(naming_the_default_file_still_counts_as_given)
{
	ck_assert_int_eq(parse("-c", CLI_DEFAULT_CONFIG, NULL), 0);
	ck_assert_int_eq(o.config_given, 1);
}
END_TEST

START_TEST(check_config_short_and_long)
{
	parse_ok_1("-t");
	ck_assert_int_eq(o.check_config, 1);
	parse_ok_1("--check-config");
	ck_assert_int_eq(o.check_config, 1);
	ck_assert_int_eq(o.dry_run, 0);
}
END_TEST

START_TEST(dry_run_short_and_long)
{
	parse_ok_1("-n");
	ck_assert_int_eq(o.dry_run, 1);
	parse_ok_1("--dry-run");
	ck_assert_int_eq(o.dry_run, 1);
	ck_assert_int_eq(o.check_config, 0);
}
END_TEST

START_TEST(status_short_and_long_with_its_format)
{
	parse_ok_1("-s");
	ck_assert_int_eq(o.status, 1);
	ck_assert_ptr_null(o.format);
	ck_assert_int_eq(parse("--status", "--format", "json", NULL), 0);
	ck_assert_int_eq(o.status, 1);
	ck_assert_str_eq(o.format, "json");
	ck_assert_int_eq(parse("-s", "--format", "text", NULL), 0);
	ck_assert_str_eq(o.format, "text");
}
END_TEST

START_TEST(status_goes_alone_and_format_with_it)
{
	static const char *other[] = { "--once", "-n", "-t" };

	ck_assert_int_eq(parse("--format", "json", NULL), -1);
	ck_assert_str_eq(err, "--format goes with --status");
	ck_assert_int_eq(parse("-s", "--format", "xml", NULL), -1);
	ck_assert_str_eq(err, "--format must be text or json, not \"xml\"");
	ck_assert_int_eq(parse("-s", "--format", NULL), -1);
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(parse("-s", other[i], NULL), -1);
		ck_assert_str_eq(err, "--status goes alone: not with --once, --dry-run or -t");
	}
	ck_assert_int_eq(parse("--log-format", "xml", NULL), -1);
	ck_assert_str_eq(err, "--log-format must be text or json, not \"xml\"");
}
END_TEST

START_TEST(once_is_long_only)
{
	parse_ok_1("--once");
	ck_assert_int_eq(o.once, 1);
	ck_assert_int_eq(o.dry_run, 0);
}
END_TEST

START_TEST(redis_url_long_only)
{
	ck_assert_int_eq(parse("--redis-url", "redis://:pw@cache:6380/1", NULL), 0);
	ck_assert_str_eq(o.redis_url, "redis://:pw@cache:6380/1");
	ck_assert_int_eq(parse("--redis-url=unix:///run/r.sock", NULL), 0);
	ck_assert_str_eq(o.redis_url, "unix:///run/r.sock");
}
END_TEST

START_TEST(verbose_and_quiet_short_and_long)
{
	parse_ok_1("-v");
	ck_assert_int_eq(o.verbose, 1);
	ck_assert_int_eq(o.quiet, 0);
	parse_ok_1("--verbose");
	ck_assert_int_eq(o.verbose, 1);
	parse_ok_1("-q");
	ck_assert_int_eq(o.quiet, 1);
	ck_assert_int_eq(o.verbose, 0);
	parse_ok_1("--quiet");
	ck_assert_int_eq(o.quiet, 1);
}
END_TEST

START_TEST(last_of_verbose_and_quiet_wins)
{
	ck_assert_int_eq(parse("-v", "-q", NULL), 0);
	ck_assert_int_eq(o.quiet, 1);
	ck_assert_int_eq(o.verbose, 0);
	ck_assert_int_eq(parse("--quiet", "--verbose", NULL), 0);
	ck_assert_int_eq(o.quiet, 0);
	ck_assert_int_eq(o.verbose, 1);
}
END_TEST

START_TEST(version_and_help_short_and_long)
{
	parse_ok_1("-V");
	ck_assert_int_eq(o.version, 1);
	ck_assert_int_eq(o.help, 0);
	parse_ok_1("--version");
	ck_assert_int_eq(o.version, 1);
	parse_ok_1("-h");
	ck_assert_int_eq(o.help, 1);
	ck_assert_int_eq(o.version, 0);
	parse_ok_1("--help");
	ck_assert_int_eq(o.help, 1);
}
END_TEST

START_TEST(grouped_short_options)
{
	ck_assert_int_eq(parse("-tnv", "-c", "x.conf", NULL), 0);
	ck_assert_int_eq(o.check_config, 1);
	ck_assert_int_eq(o.dry_run, 1);
	ck_assert_int_eq(o.verbose, 1);
	ck_assert_str_eq(o.config_path, "x.conf");
}
END_TEST

START_TEST(log_format_text_and_json)
{
	ck_assert_int_eq(parse("--log-format", "json", NULL), 0);
	ck_assert_str_eq(o.log_format, "json");
	ck_assert_int_eq(parse("--log-format=text", NULL), 0);
	ck_assert_str_eq(o.log_format, "text");
}
END_TEST

START_TEST(log_format_bad_value)
{
	ck_assert_int_eq(parse("--log-format", "xml", NULL), -1);
	ck_assert_ptr_nonnull(strstr(err, "--log-format"));
	ck_assert_ptr_nonnull(strstr(err, "xml"));
	ck_assert_int_eq(parse("--log-format=JSON", NULL), -1);
	ck_assert_ptr_nonnull(strstr(err, "JSON"));
}
END_TEST

START_TEST(unknown_short_option)
{
	ck_assert_int_eq(parse("-x", NULL), -1);
	ck_assert_str_eq(err, "unknown option -x");
	ck_assert_int_eq(parse("-tz", NULL), -1);
	ck_assert_str_eq(err, "unknown option -z");
}
END_TEST

START_TEST(unknown_long_option)
{
	ck_assert_int_eq(parse("--bogus", NULL), -1);
	ck_assert_str_eq(err, "unknown option --bogus");
	ck_assert_int_eq(parse("-t", "--frobnicate", NULL), -1);
	ck_assert_ptr_nonnull(strstr(err, "--frobnicate"));
}
END_TEST

START_TEST(missing_argument)
{
	ck_assert_int_eq(parse("-c", NULL), -1);
	ck_assert_ptr_nonnull(strstr(err, "-c"));
	ck_assert_ptr_nonnull(strstr(err, "argument"));
	ck_assert_int_eq(parse("--config", NULL), -1);
	ck_assert_ptr_nonnull(strstr(err, "--config"));
	ck_assert_int_eq(parse("--redis-url", NULL), -1);
	ck_assert_ptr_nonnull(strstr(err, "--redis-url"));
	ck_assert_int_eq(parse("-t", "--log-format", NULL), -1);
	ck_assert_ptr_nonnull(strstr(err, "--log-format"));
}
END_TEST

START_TEST(argument_to_a_flag_is_an_error)
{
	ck_assert_int_eq(parse("--once=yes", NULL), -1);
	ck_assert_ptr_nonnull(strstr(err, "--once"));
}
END_TEST

START_TEST(stray_positional_argument)
{
	ck_assert_int_eq(parse("extra", NULL), -1);
	ck_assert_ptr_nonnull(strstr(err, "\"extra\""));
	ck_assert_int_eq(parse("-t", "/etc/presence-reaper.conf", NULL), -1);
	ck_assert_ptr_nonnull(strstr(err, "/etc/presence-reaper.conf"));
	ck_assert_int_eq(parse("extra", "-n", NULL), -1);	/* before the options too */
	ck_assert_ptr_nonnull(strstr(err, "\"extra\""));
}
END_TEST

START_TEST(parsing_again_starts_over)
{
	/* Fail in the middle of a short-option group, then parse afresh. */
	ck_assert_int_eq(parse("-txn", NULL), -1);
	ck_assert_int_eq(parse("-n", NULL), 0);
	ck_assert_int_eq(o.dry_run, 1);
	ck_assert_int_eq(o.check_config, 0);
	ck_assert_str_eq(o.config_path, CLI_DEFAULT_CONFIG);

	ck_assert_int_eq(parse("-c", "a.conf", "--once", NULL), 0);
	ck_assert_str_eq(o.config_path, "a.conf");
	ck_assert_int_eq(parse("--once", NULL), 0);
	ck_assert_int_eq(o.once, 1);
	ck_assert_int_eq(o.config_given, 0);
	ck_assert_str_eq(o.config_path, CLI_DEFAULT_CONFIG);
}
END_TEST

START_TEST(usage_mentions_every_long_option)
{
	static const char *const opts[] = {
		"--config", "--check-config", "--once", "--dry-run", "--redis-url",
		"--verbose", "--quiet", "--log-format", "--version", "--help",
	};
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	ck_assert_ptr_nonnull(f);
	cli_usage(f);
	ck_assert_int_eq(fclose(f), 0);
	ck_assert_ptr_nonnull(strstr(buf, "usage: presence-reaper"));
	for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++)
		ck_assert_msg(strstr(buf, opts[i]) != NULL, "usage lacks %s", opts[i]);
	free(buf);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("cli");
	TCase *ok = tcase_create("options");
	TCase *bad = tcase_create("usage_errors");

	tcase_add_test(ok, defaults);
	tcase_add_test(ok, config_short_and_long);
	tcase_add_test(ok, naming_the_default_file_still_counts_as_given);
	tcase_add_test(ok, check_config_short_and_long);
	tcase_add_test(ok, dry_run_short_and_long);
	tcase_add_test(ok, status_short_and_long_with_its_format);
	tcase_add_test(ok, status_goes_alone_and_format_with_it);
	tcase_add_test(ok, once_is_long_only);
	tcase_add_test(ok, redis_url_long_only);
	tcase_add_test(ok, verbose_and_quiet_short_and_long);
	tcase_add_test(ok, last_of_verbose_and_quiet_wins);
	tcase_add_test(ok, version_and_help_short_and_long);
	tcase_add_test(ok, grouped_short_options);
	tcase_add_test(ok, log_format_text_and_json);
	tcase_add_test(ok, parsing_again_starts_over);
	tcase_add_test(ok, usage_mentions_every_long_option);
	suite_add_tcase(s, ok);

	tcase_add_test(bad, log_format_bad_value);
	tcase_add_test(bad, unknown_short_option);
	tcase_add_test(bad, unknown_long_option);
	tcase_add_test(bad, missing_argument);
	tcase_add_test(bad, argument_to_a_flag_is_an_error);
	tcase_add_test(bad, stray_positional_argument);
	suite_add_tcase(s, bad);

	return unit_run(s);
}
