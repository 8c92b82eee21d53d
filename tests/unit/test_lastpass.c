#include <check.h>
#include <string.h>

#include "unit.h"
#include "lastpass.h"

static const char *
key_of(const char *lock)
{
	static char out[600];

	lastpass_key(lock, out, sizeof(out));
	return out;
}

START_TEST(the_key_shares_the_locks_hash_slot)
{
	/* No braces: the whole name becomes the tag. */
	ck_assert_str_eq(key_of("presence:reaper:leader"), "{presence:reaper:leader}:status");
	/* A hash tag is kept. */
	ck_assert_str_eq(key_of("presence:{3}:reaper-lock"), "presence:{3}:reaper-lock:status");
	ck_assert_str_eq(key_of("{a}b{c}"), "{a}b{c}:status");
	/* Braces that make no tag ("{}" is empty): left alone, not wrapped in more. */
	ck_assert_str_eq(key_of("a{}b"), "a{}b:status");
	ck_assert_str_eq(key_of("a}b"), "a}b:status");
	ck_assert_str_eq(key_of("<shard>:lock"), "{<shard>:lock}:status");
}
END_TEST

START_TEST(parse_reads_the_fields_and_escapes_what_came_from_redis)
{
	static const char resp[] = "*10\r\n$11\r\nfinished_ms\r\n$13\r\n1796055135262\r\n"
	    "$6\r\nresult\r\n$2\r\nok\r\n$7\r\nremoved\r\n$2\r\n12\r\n"
	    "$2\r\nby\r\n$7\r\na\nb\x01:1:\r\n$7\r\nunknown\r\n$1\r\nx\r\n";
	redisReply *r = unit_reply(resp, sizeof(resp) - 1);
	struct lastpass_view v;

	ck_assert_int_eq(lastpass_parse(r, &v), 0);
	ck_assert_int_eq(v.present, 1);
	ck_assert_int_eq(v.finished_ms, 1796055135262LL);
	ck_assert_str_eq(v.result, "ok");
	ck_assert_uint_eq(v.removed, 12);
	ck_assert_ptr_null(strchr(v.by, '\n'));
	ck_assert_ptr_null(strchr(v.by, '\x01'));
	ck_assert_uint_eq(v.scanned, 0);	/* missing: 0 */
	freeReplyObject(r);
}
END_TEST

START_TEST(parse_refuses_what_is_not_a_flat_array_of_strings)
{
	static const char *bad[] = { ":1\r\n", "*1\r\n$1\r\na\r\n", "*2\r\n$1\r\na\r\n:1\r\n",
	    "-WRONGTYPE x\r\n" };
	struct lastpass_view v;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		redisReply *r = unit_reply(bad[i], strlen(bad[i]));

		ck_assert_int_eq(lastpass_parse(r, &v), -1);
		freeReplyObject(r);
	}
	{
		redisReply *r = unit_reply("*0\r\n", 4);

		ck_assert_int_eq(lastpass_parse(r, &v), 0);
		ck_assert_int_eq(v.present, 0);	/* HGETALL of a missing key */
		freeReplyObject(r);
	}
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("lastpass");
	TCase *tc = tcase_create("lastpass");

	tcase_add_test(tc, the_key_shares_the_locks_hash_slot);
	tcase_add_test(tc, parse_reads_the_fields_and_escapes_what_came_from_redis);
	tcase_add_test(tc, parse_refuses_what_is_not_a_flat_array_of_strings);
	suite_add_tcase(s, tc);
	return unit_run(s);
}
