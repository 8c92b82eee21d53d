#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"
#include "sentinel.h"

static char what[512];

static int
parse(const char *msg, const char *service)
{
	what[0] = '\0';
	return sentinel_switch_parse(msg, strlen(msg), service, what, sizeof(what));
}

START_TEST(switch_of_our_service)
{
	ck_assert_int_eq(parse("mymaster 127.0.0.1 6379 10.0.0.2 6380", "mymaster"), 0);
	ck_assert_str_eq(what, "127.0.0.1:6379 -> 10.0.0.2:6380");
	ck_assert_int_eq(parse("m ::1 1 fe80::2 2", "m"), 0);
	ck_assert_str_eq(what, "[::1]:1 -> [fe80::2]:2");
}
END_TEST

START_TEST(other_services_and_malformed_messages_are_not_ours)
{
	ck_assert_int_eq(parse("other 127.0.0.1 6379 10.0.0.2 6380", "mymaster"), -1);
	ck_assert_int_eq(parse("mymaster2 127.0.0.1 6379 10.0.0.2 6380", "mymaster"), -1);
	ck_assert_int_eq(parse("mymaster 127.0.0.1 6379 10.0.0.2", "mymaster"), -1);
	ck_assert_int_eq(parse("mymaster 127.0.0.1 6379 10.0.0.2 6380 extra", "mymaster"), -1);
	ck_assert_int_eq(parse("", "mymaster"), -1);
}
END_TEST

START_TEST(announced_addresses_are_escaped)
{
	const char msg[] = "m 1.2.3.4\nx 1 5.6.7.8\x1b[0m 2";

	ck_assert_int_eq(sentinel_switch_parse(msg, sizeof(msg) - 1, "m", what, sizeof(what)), 0);
	ck_assert_ptr_null(strchr(what, '\n'));
	ck_assert_ptr_null(strchr(what, '\x1b'));
	ck_assert_ptr_nonnull(strstr(what, "1.2.3.4\\nx:1 -> 5.6.7.8\\x1b[0m:2"));
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("sentinel");
	TCase *tc = tcase_create("switch-master");

	tcase_add_test(tc, switch_of_our_service);
	tcase_add_test(tc, other_services_and_malformed_messages_are_not_ours);
	tcase_add_test(tc, announced_addresses_are_escaped);
	suite_add_tcase(s, tc);
	return unit_run(s);
}
