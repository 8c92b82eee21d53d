#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "unit.h"
#include "leader.h"

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
	Suite *s = suite_create("leader");
	TCase *tc = tcase_create("leader");

	tcase_add_test(tc, client_name_keeps_safe_characters);
	tcase_add_test(tc, client_name_replaces_other_characters);
	tcase_add_test(tc, client_name_truncates_safely);
	tcase_add_test(tc, token_is_identity_pid_and_16_hex_digits);
	tcase_add_test(tc, token_pads_small_random_values);
	tcase_add_test(tc, token_keeps_the_identity_whole);
	tcase_add_test(tc, lease_in_milliseconds);
	suite_add_tcase(s, tc);
	return unit_run(s);
}
