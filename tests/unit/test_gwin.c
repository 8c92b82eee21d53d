#include <check.h>
#include <stdlib.h>

#include "unit.h"
#include "gwin.h"

/* Times in ms; any origin will do, the window only compares them. */
#define T0 1000000

START_TEST(window_is_two_intervals_or_a_minute)
{
	struct gwin w;

	gwin_init(&w, 30);
	ck_assert_int_eq(w.span_ms, 60000);
	gwin_init(&w, 0.5);
	ck_assert_int_eq(w.span_ms, GWIN_MIN_SPAN_MS);
	gwin_init(&w, 300);
	ck_assert_int_eq(w.span_ms, 600000);
}
END_TEST

START_TEST(no_sample_means_no_fraction_and_a_sample_is_due)
{
	struct gwin w;

	gwin_init(&w, 30);
	ck_assert_int_eq(gwin_needs_sample(&w), 1);
	ck_assert_int_eq(gwin_population(&w, T0), 0);
	ck_assert(gwin_fraction(&w, 10, T0) == 0.0);
}
END_TEST

START_TEST(fraction_is_the_sample_alone_without_removals)
{
	struct gwin w;

	gwin_init(&w, 30);
	gwin_sample(&w, 2000, 1000, 250);
	ck_assert_int_eq(gwin_population(&w, T0), 2000);
	ck_assert_double_eq_tol(gwin_fraction(&w, 0, T0), 0.25, 1e-9);
	ck_assert_int_eq(gwin_needs_sample(&w), 0);
}
END_TEST

START_TEST(recent_removals_count_as_stale)
{
	struct gwin w;

	/* 2000 online, healthy sample, then 1800 reaped on events. */
	gwin_init(&w, 30);
	gwin_sample(&w, 2000, 1000, 0);
	gwin_removed(&w, 1800, T0);
	ck_assert_int_eq(gwin_recent(&w, T0 + 1), 1800);
	ck_assert_int_eq(gwin_population(&w, T0 + 1), 2000);
	ck_assert_double_eq_tol(gwin_fraction(&w, 0, T0 + 1), 0.9, 1e-9);
	/* The next batch of 10 would take it over 0.9. */
	ck_assert(gwin_fraction(&w, 10, T0 + 1) > 0.9);
}
END_TEST

START_TEST(removals_leave_the_window)
{
	struct gwin w;

	gwin_init(&w, 30);
	gwin_sample(&w, 2000, 1000, 0);
	gwin_removed(&w, 500, T0);
	gwin_removed(&w, 100, T0 + 40000);
	ck_assert_int_eq(gwin_recent(&w, T0 + 50000), 600);
	ck_assert_int_eq(gwin_recent(&w, T0 + 61000), 100);
	ck_assert_int_eq(gwin_recent(&w, T0 + 101000), 0);
	/* A bucket reused for a later slice starts empty. */
	gwin_removed(&w, 7, T0 + 120000);
	ck_assert_int_eq(gwin_recent(&w, T0 + 120001), 7);
}
END_TEST

START_TEST(a_fresh_sample_is_due_after_one_percent)
{
	struct gwin w;

	gwin_init(&w, 30);
	gwin_sample(&w, 100000, 1000, 10);
	gwin_removed(&w, 999, T0);
	ck_assert_int_eq(gwin_needs_sample(&w), 0);
	gwin_removed(&w, 1, T0);
	ck_assert_int_eq(gwin_needs_sample(&w), 1);
	/* The sample after removals sees a smaller set; the window keeps them. */
	gwin_sample(&w, 99000, 1000, 10);
	ck_assert_int_eq(gwin_needs_sample(&w), 0);
	ck_assert_int_eq(gwin_population(&w, T0 + 1), 100000);
	/* Tiny sets sample before every removal. */
	gwin_sample(&w, 50, 50, 0);
	gwin_removed(&w, 1, T0 + 2);
	ck_assert_int_eq(gwin_needs_sample(&w), 1);
}
END_TEST

START_TEST(removed_more_than_the_sample_saw_never_goes_negative)
{
	struct gwin w;

	gwin_init(&w, 30);
	gwin_sample(&w, 10, 10, 0);
	gwin_removed(&w, 25, T0);
	ck_assert_int_eq(gwin_population(&w, T0), 25);
	ck_assert_double_eq_tol(gwin_fraction(&w, 0, T0), 1.0, 1e-9);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("gwin");
	TCase *tc = tcase_create("window");

	tcase_add_test(tc, window_is_two_intervals_or_a_minute);
	tcase_add_test(tc, no_sample_means_no_fraction_and_a_sample_is_due);
	tcase_add_test(tc, fraction_is_the_sample_alone_without_removals);
	tcase_add_test(tc, recent_removals_count_as_stale);
	tcase_add_test(tc, removals_leave_the_window);
	tcase_add_test(tc, a_fresh_sample_is_due_after_one_percent);
	tcase_add_test(tc, removed_more_than_the_sample_saw_never_goes_negative);
	suite_add_tcase(s, tc);
	return unit_run(s);
}
