#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"
#include "scanrange.h"

START_TEST(rev_reverses_the_bits)
{
	ck_assert_uint_eq(scanrange_rev(0), 0);
	ck_assert_uint_eq(scanrange_rev(1), 1ULL << 63);
	ck_assert_uint_eq(scanrange_rev(1ULL << 63), 1);
	ck_assert_uint_eq(scanrange_rev(0x00000000000000F0ULL), 0x0F00000000000000ULL);
	ck_assert_uint_eq(scanrange_rev(UINT64_MAX), UINT64_MAX);
	for (uint64_t v = 12345; v < 12345 + 1000; v += 7)
		ck_assert_uint_eq(scanrange_rev(scanrange_rev(v * 0x9E3779B97F4A7C15ULL)),
		    v * 0x9E3779B97F4A7C15ULL);
}
END_TEST

START_TEST(parse_takes_decimal_cursors_only)
{
	uint64_t v = 7;

	ck_assert_int_eq(scanrange_parse("0", &v), 0);
	ck_assert_uint_eq(v, 0);
	ck_assert_int_eq(scanrange_parse("18446744073709551615", &v), 0);
	ck_assert_uint_eq(v, UINT64_MAX);
	ck_assert_int_eq(scanrange_parse("18446744073709551616", &v), -1);
	ck_assert_int_eq(scanrange_parse("", &v), -1);
	ck_assert_int_eq(scanrange_parse("-1", &v), -1);
	ck_assert_int_eq(scanrange_parse(" 1", &v), -1);
	ck_assert_int_eq(scanrange_parse("+1", &v), -1);
	ck_assert_int_eq(scanrange_parse("12a", &v), -1);
	ck_assert_int_eq(scanrange_parse("0x10", &v), -1);
	ck_assert_uint_eq(v, UINT64_MAX);	/* untouched by the refusals */
}
END_TEST

/* The ranges tile [at, 2^64): each starts where the one before ends. */
START_TEST(split_tiles_the_rest_of_the_cursor_space)
{
	static const int counts[] = { 1, 2, 3, 7, 64 };
	static const uint64_t ats[] = { 1, 1ULL << 40, 0x8000000000000000ULL,
	    UINT64_MAX - 100, UINT64_MAX };
	struct scanrange rg[SCANRANGE_MAX];

	for (size_t a = 0; a < sizeof(ats) / sizeof(ats[0]); a++)
		for (size_t k = 0; k < sizeof(counts) / sizeof(counts[0]); k++) {
			int n = scanrange_split(rg, counts[k], ats[a]);
			uint64_t start, v;

			ck_assert_int_ge(n, 1);
			ck_assert_int_le(n, counts[k]);
			start = ats[a];
			for (int i = 0; i < n; i++) {
				ck_assert_int_eq(scanrange_parse(rg[i].next, &v), 0);
				ck_assert_uint_eq(scanrange_rev(v), start);
				ck_assert_str_eq(rg[i].sent, "");
				ck_assert_int_eq(rg[i].last, i == n - 1);
				if (i < n - 1) {
					ck_assert_uint_gt(rg[i].end, start);
					start = rg[i].end;
				}
			}
		}
	/* Narrower than the ranges asked for: one range. */
	ck_assert_int_eq(scanrange_split(rg, 64, UINT64_MAX - 3), 1);
	ck_assert_int_eq(rg[0].last, 1);
}
END_TEST

START_TEST(step_ends_a_range_at_its_end_or_at_zero)
{
	struct scanrange rg[2];
	char c[24];

	scanrange_split(rg, 2, 1ULL << 62);
	/* A cursor reversing to just short of range 0's end: go on. */
	snprintf(c, sizeof(c), "%llu", (unsigned long long)scanrange_rev(rg[0].end - 1));
	ck_assert_int_eq(scanrange_step(&rg[0], c), 1);
	ck_assert_str_eq(rg[0].next, c);
	/* Reversing to its end exactly, or past it: done. */
	snprintf(c, sizeof(c), "%llu", (unsigned long long)scanrange_rev(rg[0].end));
	ck_assert_int_eq(scanrange_step(&rg[0], c), 0);
	ck_assert_str_eq(rg[0].next, "");
	snprintf(c, sizeof(c), "%llu", (unsigned long long)scanrange_rev(UINT64_MAX));
	ck_assert_int_eq(scanrange_step(&rg[0], c), 0);
	/* The last range runs to the wrap, and 0 ends any range. */
	ck_assert_int_eq(scanrange_step(&rg[1], c), 1);
	ck_assert_int_eq(scanrange_step(&rg[1], "0"), 0);
	ck_assert_int_eq(scanrange_step(&rg[0], "0"), 0);
	ck_assert_int_eq(scanrange_step(&rg[1], "nope"), -1);
	ck_assert_str_eq(rg[1].next, "");
}
END_TEST

START_TEST(count_follows_what_the_rest_holds)
{
	/* The first reply read a quarter of the table: 500 seen, 1500 left, 3 batches and 1. */
	ck_assert_int_eq(scanrange_count(1ULL << 62, 500, 500, 64), 4);
	ck_assert_int_eq(scanrange_count(1ULL << 62, 500, 500, 2), 2);
	/* Read nearly all of it: one range. */
	ck_assert_int_eq(scanrange_count(UINT64_MAX, 500, 500, 64), 1);
	/* A 1/1024 of a big set: as many as allowed, never more than SCANRANGE_MAX. */
	ck_assert_int_eq(scanrange_count(1ULL << 54, 500, 500, 64), 64);
	ck_assert_int_eq(scanrange_count(1ULL << 54, 500, 500, 1000), SCANRANGE_MAX);
	ck_assert_int_eq(scanrange_count(1ULL << 54, 500, 500, 0), 1);
}
END_TEST

START_TEST(count_left_is_about_the_members_left_in_the_range)
{
	struct scanrange rg[4];
	double density = 1000.0 / 18446744073709551616.0;	/* 1000 in the whole space */

	scanrange_split(rg, 4, 1ULL << 62);	/* 4 ranges of 3/16 of the space */
	memcpy(rg[0].sent, rg[0].next, sizeof(rg[0].sent));
	/* 1000 * 3/16 = 187.5, a tenth more and 4: 210. */
	ck_assert_int_eq(scanrange_count_left(&rg[0], density, 500), 210);
	ck_assert_int_eq(scanrange_count_left(&rg[0], density, 100), 100);
	ck_assert_int_eq(scanrange_count_left(&rg[0], 0, 500), 500);	/* not known */
	memcpy(rg[3].sent, rg[3].next, sizeof(rg[3].sent));
	ck_assert_int_eq(scanrange_count_left(&rg[3], density, 500), 210);
	rg[1].sent[0] = '\0';
	ck_assert_int_eq(scanrange_count_left(&rg[1], density, 500), 500);
}
END_TEST

/*
 * Redis's SSCAN over one hash table of 2^bits buckets, a member per hash:
 * from cursor, visit buckets in reversed-bit order until at least count
 * members were returned or the cursor wraps; each member seen is marked.
 */
static uint64_t
sim_sscan(const uint64_t *hash, size_t n, unsigned char *seen, int bits, uint64_t v,
    size_t count, size_t *returned)
{
	uint64_t mask = (1ULL << bits) - 1;
	size_t got = 0;

	do {
		for (size_t i = 0; i < n; i++)
			if ((hash[i] & mask) == (v & mask)) {
				seen[i]++;
				got++;
			}
		v |= ~mask;
		v = scanrange_rev(scanrange_rev(v) + 1);
	} while (v != 0 && got < count);
	*returned += got;
	return v;
}

/*
 * The whole pass, as reconcile.c runs it: one walk from 0, its first reply
 * cut into `ranges` ranges, then the ranges in turn, the table growing or
 * shrinking between calls. Every member is returned at least once.
 */
static void
sim_pass(const uint64_t *hash, size_t n, int ranges, int resize, size_t *returned)
{
	struct scanrange rg[SCANRANGE_MAX];
	unsigned char *seen = calloc(n, 1);
	int bits = 12, live, nr, calls = 0;
	double density;
	uint64_t v;
	char c[24];

	ck_assert_ptr_nonnull(seen);
	v = sim_sscan(hash, n, seen, bits, 0, 50, returned);
	ck_assert_uint_ne(v, 0);
	nr = scanrange_split(rg, scanrange_count(scanrange_rev(v), *returned, 50, ranges),
	    scanrange_rev(v));
	density = (double)*returned / (double)scanrange_rev(v);
	snprintf(c, sizeof(c), "%llu", (unsigned long long)v);
	memcpy(rg[0].next, c, sizeof(c));
	do {
		live = 0;
		for (int i = 0; i < nr; i++) {
			uint64_t at;

			if (rg[i].next[0] == '\0')
				continue;
			memcpy(rg[i].sent, rg[i].next, sizeof(rg[i].sent));
			ck_assert_int_eq(scanrange_parse(rg[i].sent, &at), 0);
			if (resize && ++calls % 3 == 0)
				bits = 9 + (int)(hash[calls % n] % 7);	/* 2^9 .. 2^15 buckets */
			v = sim_sscan(hash, n, seen, bits, at,
			    (size_t)scanrange_count_left(&rg[i], density, 50), returned);
			snprintf(c, sizeof(c), "%llu", (unsigned long long)v);
			live += scanrange_step(&rg[i], c) == 1;
		}
	} while (live > 0);
	for (size_t i = 0; i < n; i++)
		ck_assert_msg(seen[i] > 0, "member %zu (hash %llx) missed with %d ranges", i,
		    (unsigned long long)hash[i], ranges);
	free(seen);
}

START_TEST(ranges_return_every_member_however_the_table_resizes)
{
	static const int ranges[] = { 1, 2, 3, 8, 64 };
	uint64_t hash[3000], x = 88172645463325252ULL;

	for (size_t i = 0; i < sizeof(hash) / sizeof(hash[0]); i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		hash[i] = x;
	}
	for (int resize = 0; resize < 2; resize++)
		for (size_t k = 0; k < sizeof(ranges) / sizeof(ranges[0]); k++) {
			size_t returned = 0;

			sim_pass(hash, 3000, ranges[k], resize, &returned);
			ck_assert_uint_ge(returned, 3000);
			/*
			 * A steady table: each member once, but for the bucket at
			 * each cut and what count_left's margin (a tenth, and 4)
			 * reads past a range's end: 1%, and at 64 ranges of ~50 9%.
			 */
			if (!resize)
				ck_assert_uint_le(returned, 3000 + 30 + 3000 * (size_t)ranges[k] / 600);
		}
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("scanrange");
	TCase *tc = tcase_create("scanrange");

	tcase_add_test(tc, rev_reverses_the_bits);
	tcase_add_test(tc, parse_takes_decimal_cursors_only);
	tcase_add_test(tc, split_tiles_the_rest_of_the_cursor_space);
	tcase_add_test(tc, step_ends_a_range_at_its_end_or_at_zero);
	tcase_add_test(tc, count_follows_what_the_rest_holds);
	tcase_add_test(tc, count_left_is_about_the_members_left_in_the_range);
	tcase_add_test(tc, ranges_return_every_member_however_the_table_resizes);
	suite_add_tcase(s, tc);
	return unit_run(s);
}
