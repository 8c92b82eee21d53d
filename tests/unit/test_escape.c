#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"
#include "escape.h"

static const char *
esc(const char *s, size_t len)
{
	static char out[256];

	escape_id(out, sizeof(out), s, len);
	return out;
}

START_TEST(plain_ids_pass_through)
{
	ck_assert_str_eq(esc("user-42", 7), "user-42");
	ck_assert_str_eq(esc("with space {*} \"q\" 'q'", 22), "with space {*} \"q\" 'q'");
}
END_TEST

START_TEST(control_and_high_bytes_are_escaped)
{
	ck_assert_str_eq(esc("a\nb", 3), "a\\nb");
	ck_assert_str_eq(esc("\r\t", 2), "\\r\\t");
	ck_assert_str_eq(esc("nul\0x", 5), "nul\\x00x");
	ck_assert_str_eq(esc("\xff\xfe\x80", 3), "\\xff\\xfe\\x80");
	ck_assert_str_eq(esc("\x7f", 1), "\\x7f");
	ck_assert_str_eq(esc("back\\slash", 10), "back\\\\slash");
}
END_TEST

START_TEST(empty_id_is_empty)
{
	ck_assert_str_eq(esc("", 0), "");
}
END_TEST

START_TEST(truncation_never_splits_an_escape)
{
	char out[6];
	size_t need = escape_id(out, sizeof(out), "ab\xff\xff", 4);

	ck_assert_uint_eq(need, 10);
	ck_assert_str_eq(out, "ab");	/* "\xff" would not fit whole */
}
END_TEST

START_TEST(worst_case_fits_four_per_byte)
{
	char in[64], out[4 * 64 + 1];

	memset(in, 0x01, sizeof(in));
	ck_assert_uint_eq(escape_id(out, sizeof(out), in, sizeof(in)), 4 * 64);
	ck_assert_uint_eq(strlen(out), 4 * 64);
}
END_TEST

START_TEST(ctl_escapes_only_control_bytes)
{
	char out[128];
	const char in[] = "a\nb\rc\td\x1b[2Ke\x7f\x01 back\\slash caf\xc3\xa9 \xff";

	ck_assert_uint_eq(escape_ctl(out, sizeof(out), in, sizeof(in) - 1), strlen(out));
	ck_assert_str_eq(out, "a\\nb\\rc\\td\\x1b[2Ke\\x7f\\x01 back\\slash caf\xc3\xa9 \xff");
}
END_TEST

START_TEST(ctl_truncation_never_splits_an_escape)
{
	char out[5];

	ck_assert_uint_eq(escape_ctl(out, sizeof(out), "ab\x1b", 3), 6);
	ck_assert_str_eq(out, "ab");
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("escape");
	TCase *tc = tcase_create("escape_id");

	tcase_add_test(tc, plain_ids_pass_through);
	tcase_add_test(tc, control_and_high_bytes_are_escaped);
	tcase_add_test(tc, empty_id_is_empty);
	tcase_add_test(tc, truncation_never_splits_an_escape);
	tcase_add_test(tc, worst_case_fits_four_per_byte);
	tcase_add_test(tc, ctl_escapes_only_control_bytes);
	tcase_add_test(tc, ctl_truncation_never_splits_an_escape);
	suite_add_tcase(s, tc);
	return unit_run(s);
}
