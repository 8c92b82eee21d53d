#include <check.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "unit.h"
#include "conftab.h"

/*
 * The loader on a table of its own, far from presence: a web server with
 * a listen address, a worker count, a timeout and a switch.
 */
struct web {
	char *listen;
	char *mode;
	char *token;
	int workers;
	double timeout;
	int gzip;
	char *zones;
};

static const struct conftab_row rows[] = {
	{ "http", "listen", CONFTAB_STRING, offsetof(struct web, listen), ":80", 0, 0, 0,
	  CONFTAB_NONEMPTY, NULL, CONFTAB_RESTART },
	{ "http", "mode", CONFTAB_STRING, offsetof(struct web, mode), "fast", 0, 0, 0, 0,
	  "fast|safe", CONFTAB_LIVE },
	{ "http", "token", CONFTAB_STRING, offsetof(struct web, token), "", 0, 0, 0,
	  CONFTAB_SECRET, NULL, CONFTAB_RECONNECT },
	{ "pool", "workers", CONFTAB_INT, offsetof(struct web, workers), NULL, 4, 1, 64, 0,
	  NULL, CONFTAB_LIVE },
	{ "pool", "timeout", CONFTAB_NUMBER, offsetof(struct web, timeout), NULL, 2.5, 0, 60,
	  CONFTAB_POSITIVE, NULL, CONFTAB_LIVE },
	{ "pool", "gzip", CONFTAB_BOOL, offsetof(struct web, gzip), NULL, 1, 0, 1, 0, NULL,
	  CONFTAB_LIVE },
	{ "pool", "zones", CONFTAB_NAMES, offsetof(struct web, zones), "0", 0, 0, 4, 0, NULL,
	  CONFTAB_RESTART },
};
#define NROWS (sizeof(rows) / sizeof(rows[0]))

static const struct conftab table = { rows, NROWS, "keep it private" };

static struct web web;
static char *where[NROWS];
static char err[4096];
static char path[PATH_MAX];
static char dir[64];

static void
setup(void)
{
	strcpy(dir, "/tmp/test_conftab.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/web.conf", dir);
	memset(&web, 0, sizeof(web));
	conftab_defaults(&table, &web);
	err[0] = '\0';
}

static void
teardown(void)
{
	conftab_free(&table, &web);
	for (size_t i = 0; i < NROWS; i++) {
		free(where[i]);
		where[i] = NULL;
	}
	unlink(path);
	rmdir(dir);
}

static int
load(const char *text)
{
	FILE *f = fopen(path, "w");

	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	ck_assert_int_eq(fclose(f), 0);
	return conftab_load(&table, &web, where, path, 0, err, sizeof(err));
}

#define ck_assert_err(line, text) do { \
	char want_[PATH_MAX + 256]; \
	snprintf(want_, sizeof(want_), "%s:%d: %s", path, line, text); \
	ck_assert_msg(strstr(err, want_) != NULL, "expected \"%s\" in:\n%s", want_, err); \
} while (0)

START_TEST(defaults_fill_every_type)
{
	ck_assert_str_eq(web.listen, ":80");
	ck_assert_str_eq(web.token, "");
	ck_assert_int_eq(web.workers, 4);
	ck_assert_double_eq(web.timeout, 2.5);
	ck_assert_int_eq(web.gzip, 1);
}
END_TEST

START_TEST(valid_file_sets_values_and_where)
{
	ck_assert_int_eq(load("http = {\n  listen = \":8080\";\n  mode = \"safe\";\n};\n"
	    "pool = { workers = 8; timeout = 1; gzip = false; };\n"), 0);
	ck_assert_str_eq(web.listen, ":8080");
	ck_assert_str_eq(web.mode, "safe");
	ck_assert_int_eq(web.workers, 8);
	ck_assert_double_eq(web.timeout, 1);
	ck_assert_int_eq(web.gzip, 0);
	ck_assert_ptr_nonnull(where[0]);
	ck_assert_str_eq(strrchr(where[0], ':'), ":2");
	ck_assert_ptr_null(where[2]);	/* http.token kept its default */
	ck_assert_str_eq(err, "");
}
END_TEST

START_TEST(every_error_is_reported_then_the_load_fails)
{
	ck_assert_int_eq(load("http = {\n  listen = \"\";\n  mode = \"slow\";\n  port = 1;\n};\n"
	    "pool = {\n  workers = 0;\n  timeout = 0;\n  gzip = 1;\n  workers2 = \"x\";\n};\n"
	    "cache = { size = 1; };\nlog = 3;\n"), -1);
	ck_assert_err(2, "http.listen: must not be empty");
	ck_assert_err(3, "http.mode: invalid value \"slow\" (one of fast|safe)");
	ck_assert_err(4, "http.port: unknown setting");
	ck_assert_err(7, "pool.workers: 0 is out of range (1..64)");
	ck_assert_err(8, "pool.timeout: 0 must be greater than 0");
	ck_assert_err(9, "pool.gzip: wrong type (expected true or false)");
	ck_assert_err(10, "pool.workers2: unknown setting");
	ck_assert_err(12, "cache: unknown setting");
	ck_assert_err(13, "log: unknown setting");
}
END_TEST

START_TEST(wrong_types_name_the_expected_one)
{
	ck_assert_int_eq(load("http = { listen = 80; };\npool = { workers = 1.5; "
	    "timeout = \"x\"; };\n"), -1);
	ck_assert_err(1, "http.listen: wrong type (expected a string)");
	ck_assert_err(2, "pool.workers: wrong type (expected an integer)");
	ck_assert_err(2, "pool.timeout: wrong type (expected a number)");
}
END_TEST

START_TEST(a_known_group_given_as_a_scalar)
{
	ck_assert_int_eq(load("pool = 3;\n"), -1);
	ck_assert_err(1, "pool: wrong type (expected a group)");
}
END_TEST

START_TEST(syntax_error_names_file_and_line)
{
	ck_assert_int_eq(load("pool = {\n  workers = ;\n};\n"), -1);
	ck_assert_err(2, "syntax error");
}
END_TEST

START_TEST(missing_file_is_an_error_unless_optional)
{
	snprintf(path, sizeof(path), "%s/absent.conf", dir);
	ck_assert_int_eq(conftab_load(&table, &web, where, path, 1, err, sizeof(err)), 1);
	ck_assert_str_eq(err, "");
	ck_assert_int_eq(conftab_load(&table, &web, where, path, 0, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "cannot open"));
	ck_assert_str_eq(web.listen, ":80");
}
END_TEST

START_TEST(find_same_and_copy_work_per_row)
{
	struct web other;

	memset(&other, 0, sizeof(other));
	conftab_defaults(&table, &other);
	ck_assert_int_eq(conftab_find(&table, "pool", "timeout"), 4);
	ck_assert_int_eq(conftab_find(&table, "pool", NULL), 3);
	ck_assert_int_eq(conftab_find(&table, "pool", "size"), -1);
	for (size_t i = 0; i < NROWS; i++)
		ck_assert(conftab_same(&rows[i], &web, &other));
	conftab_set_string(&other.listen, ":81");
	other.workers = 9;
	other.timeout = 3;
	other.gzip = 0;
	ck_assert(!conftab_same(&rows[0], &web, &other));
	ck_assert(conftab_same(&rows[1], &web, &other));
	ck_assert(!conftab_same(&rows[3], &web, &other));
	ck_assert(!conftab_same(&rows[4], &web, &other));
	ck_assert(!conftab_same(&rows[5], &web, &other));
	for (size_t i = 0; i < NROWS; i++)
		conftab_copy(&rows[i], &web, &other);
	for (size_t i = 0; i < NROWS; i++)
		ck_assert(conftab_same(&rows[i], &web, &other));
	ck_assert_ptr_ne(web.listen, other.listen);	/* a copy, not a shared string */
	conftab_free(&table, &other);
	ck_assert_ptr_null(other.listen);
}
END_TEST

START_TEST(names_a_count_or_a_list_of_the_longest_names)
{
	char text[512], want[512], name[4][CONFTAB_NAME_MAX + 1];

	ck_assert_str_eq(web.zones, "0");
	ck_assert_int_eq(load("pool = { zones = 4; };\n"), 0);
	ck_assert_str_eq(web.zones, "4");
	/* Names of the longest length fill the list: each keeps its comma. */
	for (int i = 0; i < 4; i++)
		snprintf(name[i], sizeof(name[i]), "%0*d", CONFTAB_NAME_MAX, i);
	snprintf(text, sizeof(text), "pool = { zones = [ \"%s\", \"%s\", \"%s\", \"%s\" ]; };\n",
	    name[0], name[1], name[2], name[3]);
	snprintf(want, sizeof(want), "%s,%s,%s,%s,", name[0], name[1], name[2], name[3]);
	ck_assert_int_eq(load(text), 0);
	ck_assert_str_eq(web.zones, want);
	ck_assert_int_eq(load("pool = { zones = [ \"a\", \"b c\" ]; };\n"), -1);
	ck_assert_err(1, "pool.zones: element 2: a name is 1 to 64 of A-Z a-z 0-9 _ . -");
	ck_assert_int_eq(load("pool = { zones = 5; };\n"), -1);
	ck_assert_err(1, "pool.zones: 5 is out of range (0..4)");
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("conftab");
	TCase *tc = tcase_create("load");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, defaults_fill_every_type);
	tcase_add_test(tc, valid_file_sets_values_and_where);
	tcase_add_test(tc, every_error_is_reported_then_the_load_fails);
	tcase_add_test(tc, wrong_types_name_the_expected_one);
	tcase_add_test(tc, a_known_group_given_as_a_scalar);
	tcase_add_test(tc, syntax_error_names_file_and_line);
	tcase_add_test(tc, missing_file_is_an_error_unless_optional);
	tcase_add_test(tc, find_same_and_copy_work_per_row);
	tcase_add_test(tc, names_a_count_or_a_list_of_the_longest_names);
	suite_add_tcase(s, tc);
	return unit_run(s);
}
