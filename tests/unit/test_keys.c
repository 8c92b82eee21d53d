#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"
#include "keys.h"

/*
 * Build the socket key of id into an exactly-sized heap buffer (so the
 * sanitizers catch any write past it) and compare it with the expected
 * bytes.
 */
static void
check_socket_key(const struct keyfmt *k, const char *id, size_t idlen,
    const char *want, size_t wantlen)
{
	size_t len = keys_socket_len(k, idlen);
	char *buf = malloc(len ? len : 1);

	ck_assert_ptr_nonnull(buf);
	ck_assert_uint_eq(len, wantlen);
	ck_assert_uint_eq(keys_socket(k, buf, id, idlen), wantlen);
	ck_assert_mem_eq(buf, want, wantlen);
	free(buf);
}

START_TEST(socket_key_is_prefix_id_suffix)
{
	struct keyfmt k;

	keys_init(&k, "presence:user:", ":sockets");
	check_socket_key(&k, "u42", 3, "presence:user:u42:sockets", 25);
}
END_TEST

START_TEST(socket_key_keeps_every_byte_of_the_id)
{
	struct keyfmt k;

	keys_init(&k, "p:", ":s");
	check_socket_key(&k, "a\0b", 3, "p:a\0b:s", 7);
	check_socket_key(&k, "\0", 1, "p:\0:s", 5);
	check_socket_key(&k, "line\nbreak", 10, "p:line\nbreak:s", 14);
	check_socket_key(&k, "\xff\xfe", 2, "p:\xff\xfe:s", 6);
	check_socket_key(&k, "{tag}*?[", 8, "p:{tag}*?[:s", 12);
}
END_TEST

START_TEST(socket_key_of_empty_id)
{
	struct keyfmt k;

	keys_init(&k, "presence:user:", ":sockets");
	check_socket_key(&k, "", 0, "presence:user::sockets", 22);
}
END_TEST

START_TEST(empty_suffix_and_prefix)
{
	struct keyfmt k;

	keys_init(&k, "presence:user:", "");
	check_socket_key(&k, "u1", 2, "presence:user:u1", 16);
	keys_init(&k, "", ":sockets");
	check_socket_key(&k, "u1", 2, "u1:sockets", 10);
	keys_init(&k, "", "");
	check_socket_key(&k, "u1", 2, "u1", 2);
	check_socket_key(&k, "", 0, "", 0);
}
END_TEST

START_TEST(socket_key_of_a_5k_id)
{
	enum { IDLEN = 5 * 1024 };
	struct keyfmt k;
	char *id = malloc(IDLEN), *want = malloc(IDLEN + 16);

	ck_assert_ptr_nonnull(id);
	ck_assert_ptr_nonnull(want);
	for (size_t i = 0; i < IDLEN; i++)
		id[i] = (char)(i * 7);		/* every byte value, NUL included */
	memcpy(want, "pre:", 4);
	memcpy(want + 4, id, IDLEN);
	memcpy(want + 4 + IDLEN, ":suf", 4);
	keys_init(&k, "pre:", ":suf");
	ck_assert_uint_eq(keys_socket_len(&k, IDLEN), IDLEN + 8);
	check_socket_key(&k, id, IDLEN, want, IDLEN + 8);
	free(id);
	free(want);
}
END_TEST

START_TEST(socket_len_adds_prefix_and_suffix)
{
	struct keyfmt k;

	keys_init(&k, "presence:user:", ":sockets");
	ck_assert_uint_eq(keys_socket_len(&k, 0), 22);
	ck_assert_uint_eq(keys_socket_len(&k, 1), 23);
	ck_assert_uint_eq(keys_socket_len(&k, 1000000), 1000022);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("keys");
	TCase *tc = tcase_create("keys");

	tcase_add_test(tc, socket_key_is_prefix_id_suffix);
	tcase_add_test(tc, socket_key_keeps_every_byte_of_the_id);
	tcase_add_test(tc, socket_key_of_empty_id);
	tcase_add_test(tc, empty_suffix_and_prefix);
	tcase_add_test(tc, socket_key_of_a_5k_id);
	tcase_add_test(tc, socket_len_adds_prefix_and_suffix);
	suite_add_tcase(s, tc);
	return unit_run(s);
}
