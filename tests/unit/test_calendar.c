#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"
#include "calendar.h"
#include "reconcile.h"
#include "settings.h"
#include "track.h"

/* Pop every entry due at now; the IDs in order, comma-separated, into out. */
static int
drain(struct calendar *c, int64_t now, char *out, size_t outsz)
{
	struct cal_item it;
	int n = 0;

	out[0] = '\0';
	while (calendar_pop(c, now, &it) == 1) {
		size_t at = strlen(out);

		snprintf(out + at, outsz - at, "%s%.*s", n ? "," : "", (int)it.len, it.id);
		free(it.id);
		n++;
	}
	return n;
}

START_TEST(entries_come_out_by_due_time_and_only_when_due)
{
	struct calendar c;
	char out[256];

	calendar_init(&c, 100);
	ck_assert_int_eq(calendar_next_due(&c), INT64_MAX);
	ck_assert_int_eq(calendar_add(&c, "c", 1, 300, 1000), 1);
	ck_assert_int_eq(calendar_add(&c, "a", 1, 100, 1000), 1);
	ck_assert_int_eq(calendar_add(&c, "d", 1, 400, 1000), 1);
	ck_assert_int_eq(calendar_add(&c, "b", 1, 200, 1000), 1);
	ck_assert_int_eq(calendar_next_due(&c), 100);
	ck_assert_int_eq(drain(&c, 99, out, sizeof(out)), 0);
	ck_assert_int_eq(drain(&c, 250, out, sizeof(out)), 2);
	ck_assert_str_eq(out, "a,b");
	ck_assert_int_eq(calendar_next_due(&c), 300);
	ck_assert_int_eq(drain(&c, 1000, out, sizeof(out)), 2);
	ck_assert_str_eq(out, "c,d");
	ck_assert_uint_eq(c.n, 0);
	calendar_free(&c);
}
END_TEST

START_TEST(an_entry_keeps_its_id_bytes_and_seen_by)
{
	struct calendar c;
	struct cal_item it;
	const char id[] = { 'x', '\0', '\n', (char)0xff };

	calendar_init(&c, 10);
	ck_assert_int_eq(calendar_add(&c, id, sizeof(id), 5000, 7500), 1);
	ck_assert_int_eq(calendar_add(&c, "", 0, 6000, 9000), 1);
	ck_assert_int_eq(calendar_pop(&c, 6000, &it), 1);
	ck_assert_uint_eq(it.len, sizeof(id));
	ck_assert_mem_eq(it.id, id, sizeof(id));
	ck_assert_int_eq(it.due, 5000);
	ck_assert_int_eq(it.seen_by, 7500);
	free(it.id);
	ck_assert_int_eq(calendar_pop(&c, 6000, &it), 1);
	ck_assert_uint_eq(it.len, 0);
	ck_assert_int_eq(it.seen_by, 9000);
	free(it.id);
	calendar_free(&c);
}
END_TEST

START_TEST(the_cap_refuses_and_counts_and_a_pop_makes_room)
{
	struct calendar c;
	struct cal_item it;

	calendar_init(&c, 2);
	ck_assert_int_eq(calendar_add(&c, "a", 1, 10, 100), 1);
	ck_assert_int_eq(calendar_add(&c, "b", 1, 20, 100), 1);
	ck_assert_int_eq(calendar_add(&c, "c", 1, 5, 100), 0);
	ck_assert_int_eq(calendar_add(&c, "d", 1, 5, 100), 0);
	ck_assert_uint_eq(c.refused, 2);
	ck_assert_int_eq(calendar_next_due(&c), 10);
	ck_assert_int_eq(calendar_pop(&c, 10, &it), 1);
	free(it.id);
	ck_assert_int_eq(calendar_add(&c, "c", 1, 5, 100), 1);
	ck_assert_uint_eq(c.refused, 2);
	calendar_free(&c);
}
END_TEST

START_TEST(what_the_next_pass_sees_first_is_not_tracked)
{
	struct calendar c;

	calendar_init(&c, 10);
	ck_assert_int_eq(calendar_add(&c, "a", 1, 100, 100), 0);
	ck_assert_int_eq(calendar_add(&c, "a", 1, 100, 50), 0);
	ck_assert_uint_eq(c.n, 0);
	ck_assert_uint_eq(c.refused, 0);
	calendar_free(&c);
}
END_TEST

/* Pop the earliest: its ID names its due time, later than *last. */
static void
pop_in_order(struct calendar *c, int64_t *last)
{
	struct cal_item it;
	char id[64];

	ck_assert_int_eq(calendar_pop(c, INT64_MAX, &it), 1);
	snprintf(id, sizeof(id), "user-%lld-%0*lld", (long long)it.due, 20, (long long)it.due);
	ck_assert_str_eq(it.id, id);
	ck_assert_int_gt(it.due, *last);
	*last = it.due;
	free(it.id);
}

/* Many adds and pops: the arena is compacted on the way, and nothing is lost or mixed up. */
START_TEST(compaction_keeps_every_live_id)
{
	struct calendar c;
	char id[64];
	int64_t last = -1;
	int popped = 0;

	calendar_init(&c, 1000000);
	for (int i = 0; i < 60000; i++) {
		int n = snprintf(id, sizeof(id), "user-%d-%0*d", i, 20, i);

		ck_assert_int_eq(calendar_add(&c, id, (size_t)n, i, INT64_MAX / 2), 1);
		if (i % 3 == 0)
			continue;	/* two of three go: over half the arena is garbage */
		pop_in_order(&c, &last);
		popped++;
	}
	ck_assert_uint_eq(c.n, 60000 - (size_t)popped);
	ck_assert_uint_le(2 * c.garbage, c.used + 2 * 64 * 1024);	/* compacted on the way */
	while (c.n > 0)
		pop_in_order(&c, &last);
	ck_assert_int_eq(last, 59999);
	calendar_free(&c);
}
END_TEST

START_TEST(clear_forgets_everything_and_the_calendar_works_again)
{
	struct calendar c;
	struct cal_item it;

	calendar_init(&c, 10);
	calendar_add(&c, "a", 1, 10, 100);
	calendar_clear(&c);
	ck_assert_uint_eq(c.n, 0);
	ck_assert_uint_eq(calendar_bytes(&c), 0);
	ck_assert_int_eq(calendar_pop(&c, INT64_MAX, &it), 0);
	ck_assert_int_eq(calendar_add(&c, "b", 1, 10, 100), 1);
	ck_assert_int_eq(calendar_pop(&c, 10, &it), 1);
	ck_assert_str_eq(it.id, "b");
	free(it.id);
	calendar_free(&c);
}
END_TEST

START_TEST(long_ids_and_far_due_times_come_back_whole)
{
	const int64_t day = 86400000, t0 = 1000;
	struct calendar c;
	struct cal_item it;
	char big[300];

	memset(big, 'x', sizeof(big));
	big[254] = '\0';
	calendar_init(&c, 10);
	/* 255 bytes and more take the long length form. */
	ck_assert_int_eq(calendar_add(&c, big, 255, t0, t0 + 10), 1);
	ck_assert_int_eq(calendar_add(&c, big, 254, t0 + 1, t0 + 10), 1);
	ck_assert_int_eq(calendar_pop(&c, t0 + 1, &it), 1);
	ck_assert_uint_eq(it.len, 255);
	ck_assert_mem_eq(it.id, big, 255);
	free(it.id);
	ck_assert_int_eq(calendar_pop(&c, t0 + 1, &it), 1);
	ck_assert_uint_eq(it.len, 254);
	free(it.id);
	/* Never empty for 60 days: the base moves up with the entries. */
	ck_assert_int_eq(calendar_add(&c, "a", 1, t0, t0 + 5), 1);
	ck_assert_int_eq(calendar_add(&c, "b", 1, t0 + 30 * day, t0 + 30 * day + 5), 1);
	ck_assert_int_eq(calendar_pop(&c, t0, &it), 1);
	free(it.id);
	ck_assert_int_eq(calendar_add(&c, "c", 1, t0 + 60 * day, t0 + 60 * day + 7), 1);
	/* Due more than 12 days before every entry: refused, left to the pass. */
	ck_assert_int_eq(calendar_add(&c, "past", 4, t0, t0 + 5), 0);
	ck_assert_int_eq(calendar_next_due(&c), t0 + 30 * day);
	ck_assert_int_eq(calendar_pop(&c, t0 + 30 * day, &it), 1);
	ck_assert_str_eq(it.id, "b");
	free(it.id);
	ck_assert_int_eq(calendar_pop(&c, t0 + 60 * day, &it), 1);
	ck_assert_str_eq(it.id, "c");
	ck_assert_int_eq(it.due, t0 + 60 * day);
	ck_assert_int_eq(it.seen_by, t0 + 60 * day + 7);
	free(it.id);
	calendar_free(&c);
}
END_TEST

START_TEST(the_horizon_covers_the_jitter_and_the_pass)
{
	struct cfg c = { .interval = 30 };

	/* Next start unknown: the interval, its 5 % jitter and half a second. */
	ck_assert_int_eq(track_horizon(&c, 0, 0), 32000);
	/* Known: the jitter drawn. A 2 s pass moves a member by a quarter of it at most. */
	ck_assert_int_eq(track_horizon(&c, 0, 28600), 29100);
	ck_assert_int_eq(track_horizon(&c, 2, 28600), 28600 + 500 + 500);
	/* A pass longer than the gap: the next starts when it ends. */
	ck_assert_int_eq(track_horizon(&c, 40, 30000), 40000 + 10000 + 500);
}
END_TEST

/* The scan script's reply for one member whose PTTL is ttl; track_scan_parse's verdict. */
static int
scan_reply_with_ttl(const char *ttl)
{
	struct cfg cfg;
	struct reconcile r;
	char resp[128];
	const char *cursor;
	redisReply *rep, *ids;
	long long scanned;
	int n, rc;

	cfg_defaults(&cfg);
	memset(&r, 0, sizeof(r));
	r.cfg = &cfg;
	r.horizon = 32000;
	n = snprintf(resp, sizeof(resp),
	    "*4\r\n$1\r\n0\r\n:1\r\n*1\r\n$1\r\nu\r\n*1\r\n:%s\r\n", ttl);
	rep = unit_reply(resp, (size_t)n);
	rc = track_scan_parse(&r, rep, &cursor, &ids, &scanned);
	freeReplyObject(rep);
	cfg_free(&cfg);
	return rc;
}

/*
 * tests/fuzz found it: a PTTL of LLONG_MAX went into the calendar as
 * now + ttl + 1, a signed overflow. The script returns -2, -1 or a TTL
 * under the horizon; anything else is a malformed reply.
 */
START_TEST(a_pttl_the_scan_script_cannot_return_is_malformed)
{
	ck_assert_int_eq(scan_reply_with_ttl("-2"), 0);
	ck_assert_int_eq(scan_reply_with_ttl("-1"), 0);
	ck_assert_int_eq(scan_reply_with_ttl("31999"), 0);
	ck_assert_int_eq(scan_reply_with_ttl("32000"), RECONCILE_DATA);
	ck_assert_int_eq(scan_reply_with_ttl("9223372036854775807"), RECONCILE_DATA);
	ck_assert_int_eq(scan_reply_with_ttl("-3"), RECONCILE_DATA);
}
END_TEST

static Suite *
calendar_suite(void)
{
	Suite *s = suite_create("calendar");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, entries_come_out_by_due_time_and_only_when_due);
	tcase_add_test(tc, an_entry_keeps_its_id_bytes_and_seen_by);
	tcase_add_test(tc, the_cap_refuses_and_counts_and_a_pop_makes_room);
	tcase_add_test(tc, what_the_next_pass_sees_first_is_not_tracked);
	tcase_add_test(tc, compaction_keeps_every_live_id);
	tcase_add_test(tc, clear_forgets_everything_and_the_calendar_works_again);
	tcase_add_test(tc, long_ids_and_far_due_times_come_back_whole);
	tcase_add_test(tc, the_horizon_covers_the_jitter_and_the_pass);
	tcase_add_test(tc, a_pttl_the_scan_script_cannot_return_is_malformed);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return unit_run(calendar_suite());
}
