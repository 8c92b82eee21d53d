#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "idset.h"
#include "keys.h"
#include "leader.h"

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

static const char *
client_name(const char *identity)
{
	static char out[512];

	leader_client_name(identity, out, sizeof(out));
	return out;
}

START_TEST(client_name_keeps_safe_characters)
{
	ck_assert_str_eq(client_name("reaper-7f9c.x_2"), "presence-reaper@reaper-7f9c.x_2");
	ck_assert_str_eq(client_name("AZaz09"), "presence-reaper@AZaz09");
}
END_TEST

START_TEST(client_name_replaces_other_characters)
{
	ck_assert_str_eq(client_name("pod 1/ns:x@y"), "presence-reaper@pod_1_ns_x_y");
	ck_assert_str_eq(client_name("tab\there\nnl"), "presence-reaper@tab_here_nl");
	ck_assert_str_eq(client_name("caf\xc3\xa9"), "presence-reaper@caf__");
	ck_assert_str_eq(client_name("\xff"), "presence-reaper@_");
	ck_assert_str_eq(client_name(""), "presence-reaper@");
}
END_TEST

START_TEST(client_name_truncates_safely)
{
	char out[20];

	memset(out, 'Z', sizeof(out));
	leader_client_name("abcdefghij", out, sizeof(out));
	ck_assert_str_eq(out, "presence-reaper@abc");
}
END_TEST

/* Split a token "identity:pid:hex16" from the right; check each part. */
static void
check_token(const char *token, const char *identity, unsigned long long random)
{
	size_t len = strlen(token), idlen = strlen(identity);
	char pid[32], hex[17];

	ck_assert_uint_gt(len, idlen + 1 + 1 + 1 + 16);
	ck_assert_msg(strncmp(token, identity, idlen) == 0 && token[idlen] == ':',
	    "token \"%s\" does not start with \"%s:\"", token, identity);
	snprintf(pid, sizeof(pid), "%ld", (long)getpid());
	snprintf(hex, sizeof(hex), "%016llx", random);
	ck_assert_uint_eq(len, idlen + 1 + strlen(pid) + 1 + 16);
	ck_assert_mem_eq(token + idlen + 1, pid, strlen(pid));
	ck_assert_int_eq(token[idlen + 1 + strlen(pid)], ':');
	ck_assert_str_eq(token + len - 16, hex);
	for (size_t i = len - 16; i < len; i++)
		ck_assert_msg(strchr("0123456789abcdef", token[i]) != NULL,
		    "token \"%s\": not a hex digit at %zu", token, i);
}

START_TEST(token_is_identity_pid_and_16_hex_digits)
{
	struct leader l;

	leader_init(&l, "presence:reaper:leader", 15, "reaper-a", 0x0123456789abcdefULL);
	check_token(l.token, "reaper-a", 0x0123456789abcdefULL);
	ck_assert_str_eq(l.key, "presence:reaper:leader");
	ck_assert_int_eq(l.lease_ms, 15000);
}
END_TEST

START_TEST(token_pads_small_random_values)
{
	struct leader l;

	leader_init(&l, "k", 15, "r", 1);
	check_token(l.token, "r", 1);
	ck_assert_str_eq(l.token + strlen(l.token) - 17, ":0000000000000001");
	leader_init(&l, "k", 15, "r", UINT64_MAX);
	check_token(l.token, "r", UINT64_MAX);
}
END_TEST

START_TEST(token_keeps_the_identity_whole)
{
	struct leader l;
	char identity[254];

	/* 253 bytes: the longest Kubernetes pod name / DNS host name. */
	memset(identity, 'p', sizeof(identity) - 1);
	identity[sizeof(identity) - 1] = '\0';
	leader_init(&l, "k", 15, identity, 42);
	check_token(l.token, identity, 42);
	leader_init(&l, "k", 15, "pod:with:colons", 42);
	check_token(l.token, "pod:with:colons", 42);
}
END_TEST

START_TEST(lease_in_milliseconds)
{
	struct leader l;

	leader_init(&l, "k", 0.25, "r", 0);
	ck_assert_int_eq(l.lease_ms, 250);
	leader_init(&l, "k", 2.5, "r", 0);
	ck_assert_int_eq(l.lease_ms, 2500);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("keys");
	TCase *keys = tcase_create("keys");
	TCase *idset = tcase_create("idset");
	TCase *leader = tcase_create("leader");
	SRunner *sr;
	int failed;

	tcase_add_test(keys, socket_key_is_prefix_id_suffix);
	tcase_add_test(keys, socket_key_keeps_every_byte_of_the_id);
	tcase_add_test(keys, socket_key_of_empty_id);
	tcase_add_test(keys, empty_suffix_and_prefix);
	tcase_add_test(keys, socket_key_of_a_5k_id);
	tcase_add_test(keys, socket_len_adds_prefix_and_suffix);
	suite_add_tcase(s, keys);

	tcase_add_test(idset, idset_add_reports_duplicates);
	tcase_add_test(idset, idset_binary_ids);
	tcase_add_test(idset, idset_holds_10000_distinct_ids);
	tcase_add_test(idset, idset_clear_empties_and_is_reusable);
	suite_add_tcase(s, idset);

	tcase_add_test(leader, client_name_keeps_safe_characters);
	tcase_add_test(leader, client_name_replaces_other_characters);
	tcase_add_test(leader, client_name_truncates_safely);
	tcase_add_test(leader, token_is_identity_pid_and_16_hex_digits);
	tcase_add_test(leader, token_pads_small_random_values);
	tcase_add_test(leader, token_keeps_the_identity_whole);
	tcase_add_test(leader, lease_in_milliseconds);
	suite_add_tcase(s, leader);

	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
