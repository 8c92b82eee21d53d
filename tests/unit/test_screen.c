#include <check.h>
#include <stdlib.h>

#include "unit.h"
#include "screen.h"

START_TEST(each_ttl_means_no_groups)
{
	ck_assert_uint_eq(screen_group_size(0.0, 0, 0, 1000, 1), 0);
}
END_TEST

START_TEST(nobody_stale_means_one_group_for_the_batch)
{
	ck_assert_uint_eq(screen_group_size(0.0, 0, 0, 1000, 0), 1000);
	ck_assert_uint_eq(screen_group_size(0.0, 5000, 0, 1000, 0), 1000);
}
END_TEST

START_TEST(group_is_near_one_over_root_p)
{
	ck_assert_uint_eq(screen_group_size(0.01, 0, 0, 1000, 0), 10);
	ck_assert_uint_eq(screen_group_size(0.0001, 0, 0, 1000, 0), 100);
}
END_TEST

START_TEST(small_batch_is_one_group)
{
	ck_assert_uint_eq(screen_group_size(0.01, 0, 0, 5, 0), 5);
}
END_TEST

START_TEST(staler_than_the_smallest_group_means_pttl_each)
{
	ck_assert_uint_eq(screen_group_size(0.2, 0, 0, 1000, 0), 0);
	/* 3 x 3 x 1/9 is not over 1: still the smallest group. */
	ck_assert_uint_eq(screen_group_size(1.0 / 9.0, 0, 0, 1000, 0), SCREEN_MIN_GROUP);
}
END_TEST

START_TEST(the_pass_so_far_counts_when_staler_than_the_sample)
{
	ck_assert_uint_eq(screen_group_size(0.0, 100, 1, 1000, 0), 10);
	ck_assert_uint_eq(screen_group_size(0.0, 100, 50, 1000, 0), 0);
	/* A pass fresher than the sample does not lower it. */
	ck_assert_uint_eq(screen_group_size(0.01, 100000, 0, 1000, 0), 10);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("screen");
	TCase *tc = tcase_create("group_size");

	tcase_add_test(tc, each_ttl_means_no_groups);
	tcase_add_test(tc, nobody_stale_means_one_group_for_the_batch);
	tcase_add_test(tc, group_is_near_one_over_root_p);
	tcase_add_test(tc, small_batch_is_one_group);
	tcase_add_test(tc, staler_than_the_smallest_group_means_pttl_each);
	tcase_add_test(tc, the_pass_so_far_counts_when_staler_than_the_sample);
	suite_add_tcase(s, tc);
	return unit_run(s);
}
