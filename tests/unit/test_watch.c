#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "unit.h"
#include "keys.h"
#include "watch.h"

/* The pushed message for an expired key: ["message", channel, key]. */
static redisReply *
message(const char *kind, const char *key, size_t keylen)
{
	static const char channel[] = "__keyevent@0__:expired";
	char buf[512];
	int n;

	n = snprintf(buf, sizeof(buf), "*3\r\n$%zu\r\n%s\r\n$%zu\r\n%s\r\n$%zu\r\n",
	    strlen(kind), kind, sizeof(channel) - 1, channel, keylen);
	ck_assert(n > 0 && (size_t)n + keylen + 2 < sizeof(buf));
	memcpy(buf + n, key, keylen);
	memcpy(buf + n + keylen, "\r\n", 2);
	return unit_reply(buf, (size_t)n + keylen + 2);
}

static struct keyfmt k;

static void
setup(void)
{
	keys_init(&k, "presence:user:", ":sockets");
}

START_TEST(expired_socket_set_names_its_user)
{
	static const char key[] = "presence:user:u-42:sockets";
	redisReply *r = message("message", key, sizeof(key) - 1);
	const char *id;
	size_t len;

	ck_assert_int_eq(watch_message_user(r, &k, &id, &len), 0);
	ck_assert_uint_eq(len, 4);
	ck_assert_int_eq(memcmp(id, "u-42", 4), 0);
	freeReplyObject(r);
}
END_TEST

START_TEST(binary_and_empty_ids_come_whole)
{
	static const char bin[] = "presence:user:a\0\n\xff:sockets";
	static const char empty[] = "presence:user::sockets";
	redisReply *r1 = message("message", bin, sizeof(bin) - 1);
	redisReply *r2 = message("message", empty, sizeof(empty) - 1);
	const char *id;
	size_t len;

	ck_assert_int_eq(watch_message_user(r1, &k, &id, &len), 0);
	ck_assert_uint_eq(len, 4);
	ck_assert_int_eq(memcmp(id, "a\0\n\xff", 4), 0);
	ck_assert_int_eq(watch_message_user(r2, &k, &id, &len), 0);
	ck_assert_uint_eq(len, 0);
	freeReplyObject(r1);
	freeReplyObject(r2);
}
END_TEST

START_TEST(other_keys_and_messages_are_not_users)
{
	static const char *const keys[] = {
		"session:abc:ttl", "presence:user:u-42", "presence:user", ":sockets",
	};
	static const char confirm[] = "*3\r\n$9\r\nsubscribe\r\n$22\r\n"
	    "__keyevent@0__:expired\r\n:1\r\n";
	const char *id;
	size_t len;
	redisReply *r;

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		r = message("message", keys[i], strlen(keys[i]));
		ck_assert_int_eq(watch_message_user(r, &k, &id, &len), -1);
		freeReplyObject(r);
	}
	r = message("pmessage", "presence:user:u:sockets", 23);
	ck_assert_int_eq(watch_message_user(r, &k, &id, &len), -1);
	freeReplyObject(r);
	r = unit_reply(confirm, sizeof(confirm) - 1);
	ck_assert_int_eq(watch_message_user(r, &k, &id, &len), -1);
	freeReplyObject(r);
	r = unit_reply("+OK\r\n", 5);
	ck_assert_int_eq(watch_message_user(r, &k, &id, &len), -1);
	freeReplyObject(r);
}
END_TEST

START_TEST(a_batch_is_due_when_full_or_after_the_flush_wait)
{
	ck_assert_int_eq(watch_flush_due(0, 0, 1000000, 10), 0);
	/* One event waits for company, then goes alone. */
	ck_assert_int_eq(watch_flush_due(1, 5000, 5000, 10), 0);
	ck_assert_int_eq(watch_flush_due(1, 5000, 5000 + WATCH_FLUSH_MS - 1, 10), 0);
	ck_assert_int_eq(watch_flush_due(1, 5000, 5000 + WATCH_FLUSH_MS, 10), 1);
	/* A full batch goes at once. */
	ck_assert_int_eq(watch_flush_due(10, 5000, 5000, 10), 1);
	ck_assert_int_eq(watch_flush_due(9, 5000, 5001, 10), 0);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("watch");
	TCase *tc = tcase_create("messages");

	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_add_test(tc, expired_socket_set_names_its_user);
	tcase_add_test(tc, binary_and_empty_ids_come_whole);
	tcase_add_test(tc, other_keys_and_messages_are_not_users);
	tcase_add_test(tc, a_batch_is_due_when_full_or_after_the_flush_wait);
	suite_add_tcase(s, tc);
	return unit_run(s);
}
