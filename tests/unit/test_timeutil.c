#include <check.h>
#include <stdlib.h>

#include "unit.h"
#include "timeutil.h"

START_TEST(backoff_ceiling_doubles_then_caps)
{
	struct backoff b;

	backoff_init(&b, 100, 5000, 50);
	/* r = UINT64_MAX-ish picks the top of each range: the ceiling itself. */
	ck_assert_int_eq(backoff_next(&b, 100 - 50), 100);
	ck_assert_int_eq(backoff_next(&b, 200 - 50), 200);
	ck_assert_int_eq(backoff_next(&b, 400 - 50), 400);
	for (int i = 0; i < 20; i++)
		ck_assert_int_le(backoff_next(&b, rnd_u64()), 5000);
	ck_assert_int_eq(backoff_next(&b, 5000 - 50), 5000);
}
END_TEST

START_TEST(backoff_never_below_floor)
{
	struct backoff b;

	backoff_init(&b, 100, 5000, 50);
	for (int i = 0; i < 1000; i++) {
		int64_t d = backoff_next(&b, rnd_u64());

		ck_assert_int_ge(d, 50);
		ck_assert_int_le(d, 5000);
	}
	/* r = 0 gives the floor: full jitter may wait very little, never zero. */
	backoff_reset(&b);
	ck_assert_int_eq(backoff_next(&b, 0), 50);
}
END_TEST

START_TEST(backoff_reset_starts_over)
{
	struct backoff b;

	backoff_init(&b, 100, 5000, 50);
	for (int i = 0; i < 10; i++)
		backoff_next(&b, 0);
	backoff_reset(&b);
	ck_assert_int_eq(backoff_next(&b, 1000000), 50 + 1000000 % 51);
}
END_TEST

START_TEST(jitter_stays_in_band)
{
	for (int i = 0; i < 1000; i++) {
		int64_t d = jitter_ms(30000, 0.05, rnd_u64());

		ck_assert_int_ge(d, 28500);
		ck_assert_int_le(d, 31500);
	}
	ck_assert_int_eq(jitter_ms(1000, 0.0, rnd_u64()), 1000);
}
END_TEST

START_TEST(mono_clock_moves_forward)
{
	int64_t a = mono_ms(), b = mono_ms();

	ck_assert_int_ge(b, a);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("timeutil");
	TCase *tc = tcase_create("backoff");

	rnd_seed();
	tcase_add_test(tc, backoff_ceiling_doubles_then_caps);
	tcase_add_test(tc, backoff_never_below_floor);
	tcase_add_test(tc, backoff_reset_starts_over);
	tcase_add_test(tc, jitter_stays_in_band);
	tcase_add_test(tc, mono_clock_moves_forward);
	suite_add_tcase(s, tc);
	return unit_run(s);
}
