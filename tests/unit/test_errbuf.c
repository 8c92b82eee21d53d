#include <check.h>
#include <string.h>

#include "unit.h"
#include "errbuf.h"

START_TEST(reasons_are_separated_by_semicolons)
{
	char err[64] = "";

	errbuf_add(err, sizeof(err), "%s: %s", "a:1", "refused");
	ck_assert_str_eq(err, "a:1: refused");
	errbuf_add(err, sizeof(err), "b:%d: timed out", 2);
	ck_assert_str_eq(err, "a:1: refused; b:2: timed out");
}
END_TEST

START_TEST(a_full_buffer_is_cut_never_overrun)
{
	char buf[16 + 4];
	char *err = buf + 2;

	memset(buf, 'X', sizeof(buf));
	err[0] = '\0';
	errbuf_add(err, 16, "%s", "0123456789");
	errbuf_add(err, 16, "%s", "abcdefghij");
	ck_assert_str_eq(err, "0123456789; abc");
	errbuf_add(err, 16, "%s", "more");
	ck_assert_str_eq(err, "0123456789; abc");
	ck_assert_int_eq(buf[0], 'X');
	ck_assert_int_eq(buf[18], 'X');
	ck_assert_int_eq(buf[19], 'X');
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("errbuf");
	TCase *tc = tcase_create("errbuf");

	tcase_add_test(tc, reasons_are_separated_by_semicolons);
	tcase_add_test(tc, a_full_buffer_is_cut_never_overrun);
	suite_add_tcase(s, tc);
	return unit_run(s);
}
