#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"
#include "slot.h"

static unsigned
slot_s(const char *key)
{
	return slot_of(key, strlen(key));
}

/* The Cluster specification's check value for CRC16-XMODEM. */
START_TEST(crc16_matches_the_specification)
{
	ck_assert_uint_eq(slot_crc16("123456789", 9), 0x31C3);
	ck_assert_uint_eq(slot_crc16("", 0), 0);
}
END_TEST

/* Slots as CLUSTER KEYSLOT gives them on Redis 7.0.15. */
START_TEST(slots_as_redis_computes_them)
{
	ck_assert_uint_eq(slot_s("foo"), 12182);
	ck_assert_uint_eq(slot_s("bar"), 5061);
	ck_assert_uint_eq(slot_s("123456789"), 12739);
	ck_assert_uint_eq(slot_s("presence:online-users"), 13418);
	ck_assert_uint_eq(slot_s("{user1000}.following"), 3443);
	ck_assert_uint_eq(slot_s("foo{}{bar}"), 8363);
	ck_assert_uint_eq(slot_s("foo{{bar}}zap"), 4015);
	ck_assert_uint_eq(slot_s("foo{bar}{zap}"), 5061);
	ck_assert_uint_lt(slot_s("\xff\xfe"), SLOT_COUNT);
}
END_TEST

START_TEST(a_hash_tag_decides_the_slot)
{
	ck_assert_uint_eq(slot_s("{user1000}.following"), slot_s("{user1000}.followers"));
	ck_assert_uint_eq(slot_s("{user1000}.following"), slot_s("user1000"));
	ck_assert_uint_eq(slot_s("{presence}:online-users"), slot_s("presence"));
	ck_assert_uint_eq(slot_s("{presence}:user:42:sockets"), slot_s("presence"));
}
END_TEST

/* The specification's own examples of what is and is not a tag. */
START_TEST(the_first_brace_pair_with_content_is_the_tag)
{
	const char *tag;
	size_t n;

	/* "{}" is no tag: the whole key is hashed. */
	n = slot_hashed_part("foo{}{bar}", 10, &tag);
	ck_assert_uint_eq(n, 10);
	ck_assert_uint_eq(slot_s("foo{}{bar}"), slot_crc16("foo{}{bar}", 10) & 16383);
	/* "{{bar}}": the tag is "{bar", up to the first '}' after the first '{'. */
	n = slot_hashed_part("foo{{bar}}zap", 13, &tag);
	ck_assert_uint_eq(n, 4);
	ck_assert(memcmp(tag, "{bar", 4) == 0);
	/* Only the first tag counts. */
	n = slot_hashed_part("foo{bar}{zap}", 13, &tag);
	ck_assert_uint_eq(n, 3);
	ck_assert(memcmp(tag, "bar", 3) == 0);
	/* An open brace without a close: no tag. */
	ck_assert_uint_eq(slot_hashed_part("foo{bar", 7, &tag), 7);
	ck_assert_uint_eq(slot_s("foo{bar"), slot_crc16("foo{bar", 7) & 16383);
}
END_TEST

/* Binary keys: a NUL inside is hashed like any byte, the length decides. */
START_TEST(keys_are_binary_safe)
{
	const char k1[] = { 'a', '\0', 'b' }, k2[] = { 'a', '\0', 'c' };
	const char t[] = { 'x', '{', '\0', '}', 'y' };
	const char *tag;

	ck_assert_uint_ne(slot_of(k1, 3), slot_of(k2, 3));
	ck_assert_uint_eq(slot_hashed_part(t, 5, &tag), 1);
	ck_assert_uint_eq(slot_of(t, 5), slot_crc16("", 1) & 16383);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("slot");
	TCase *tc = tcase_create("slot");

	tcase_add_test(tc, crc16_matches_the_specification);
	tcase_add_test(tc, slots_as_redis_computes_them);
	tcase_add_test(tc, a_hash_tag_decides_the_slot);
	tcase_add_test(tc, the_first_brace_pair_with_content_is_the_tag);
	tcase_add_test(tc, keys_are_binary_safe);
	suite_add_tcase(s, tc);
	return unit_run(s);
}
