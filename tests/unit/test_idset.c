#include <check.h>
#include <stdio.h>
#include <stdlib.h>

#include "unit.h"
#include "idset.h"

START_TEST(idset_add_reports_duplicates)
{
	struct idset s;

	idset_init(&s);
	ck_assert_int_eq(idset_add(&s, "u1", 2), 1);
	ck_assert_int_eq(idset_add(&s, "u2", 2), 1);
	ck_assert_int_eq(idset_add(&s, "u1", 2), 0);
	ck_assert_int_eq(idset_add(&s, "u1x", 2), 0);	/* only len bytes count */
	ck_assert_uint_eq(s.count, 2);
	idset_clear(&s);
}
END_TEST

START_TEST(idset_binary_ids)
{
	struct idset s;

	idset_init(&s);
	ck_assert_int_eq(idset_add(&s, "", 0), 1);
	ck_assert_int_eq(idset_add(&s, "", 0), 0);
	ck_assert_int_eq(idset_add(&s, "\0", 1), 1);		/* not the empty id */
	ck_assert_int_eq(idset_add(&s, "\0\0", 2), 1);
	ck_assert_int_eq(idset_add(&s, "a", 1), 1);
	ck_assert_int_eq(idset_add(&s, "a\0b", 3), 1);	/* not "a" */
	ck_assert_int_eq(idset_add(&s, "a\0c", 3), 1);
	ck_assert_int_eq(idset_add(&s, "a\0b", 3), 0);
	ck_assert_int_eq(idset_add(&s, "\n\xff", 2), 1);
	ck_assert_int_eq(idset_add(&s, "\n\xff", 2), 0);
	ck_assert_int_eq(idset_add(&s, "\0", 1), 0);
	ck_assert_uint_eq(s.count, 7);
	idset_clear(&s);
}
END_TEST

START_TEST(idset_holds_10000_distinct_ids)
{
	struct idset s;
	char id[32];

	idset_init(&s);
	for (int i = 0; i < 10000; i++) {
		int n = snprintf(id, sizeof(id), "user-%d", i);

		ck_assert_int_eq(idset_add(&s, id, (size_t)n), 1);
	}
	ck_assert_uint_eq(s.count, 10000);
	for (int i = 0; i < 10000; i++) {
		int n = snprintf(id, sizeof(id), "user-%d", i);

		ck_assert_int_eq(idset_add(&s, id, (size_t)n), 0);
	}
	ck_assert_uint_eq(s.count, 10000);
	ck_assert_int_eq(idset_add(&s, "user-10000", 10), 1);
	idset_clear(&s);
}
END_TEST

START_TEST(idset_clear_empties_and_is_reusable)
{
	struct idset s;

	idset_init(&s);
	idset_clear(&s);			/* clearing an empty set is fine */
	for (int i = 0; i < 200; i++) {
		char id[4] = { 'x', (char)i, '\0', (char)(i >> 8) };

		ck_assert_int_eq(idset_add(&s, id, sizeof(id)), 1);
	}
	idset_clear(&s);
	ck_assert_uint_eq(s.count, 0);
	ck_assert_ptr_null(s.slots);
	ck_assert_int_eq(idset_add(&s, "x\0\0\0", 4), 1);	/* gone after the clear */
	ck_assert_int_eq(idset_add(&s, "x\0\0\0", 4), 0);
	ck_assert_uint_eq(s.count, 1);
	idset_clear(&s);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("idset");
	TCase *tc = tcase_create("idset");

	tcase_add_test(tc, idset_add_reports_duplicates);
	tcase_add_test(tc, idset_binary_ids);
	tcase_add_test(tc, idset_holds_10000_distinct_ids);
	tcase_add_test(tc, idset_clear_empties_and_is_reusable);
	suite_add_tcase(s, tc);
	return unit_run(s);
}
