#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"
#include "keyslot.h"
#include "slot.h"

static struct cfg c;
static char err[4096];
static unsigned slot;

static void
setup(void)
{
	cfg_defaults(&c);
	err[0] = '\0';
	slot = 99999;
}

static void
teardown(void)
{
	cfg_free(&c);
}

static void
tag_all(void)
{
	cfg_set_string(&c.online_set, "{presence}:online-users");
	cfg_set_string(&c.socket_prefix, "{presence}:user:");
	cfg_set_string(&c.leader_key, "{presence}:reaper:leader");
	cfg_set_string(&c.events_stream, "{presence}:events");
}

static void
has(const char *what)
{
	ck_assert_msg(strstr(err, what) != NULL, "no \"%s\" in:\n%s", what, err);
}

START_TEST(the_default_keys_are_refused_with_a_tagged_layout)
{
	ck_assert_int_eq(keyslot_check(&c, &slot, err, sizeof(err)), -1);
	has("keys.socket_prefix \"presence:user:\" holds no hash tag");
	has("CROSSSLOT");
	has("keys.online_set = \"{presence}:online-users\";");
	has("keys.socket_prefix = \"{presence}:user:\";");
	has("leader.key = \"{presence}:reaper:leader\";");
	ck_assert_ptr_null(strstr(err, "events.stream ="));	/* events.mode is none */
	ck_assert_uint_eq(slot, 99999);
}
END_TEST

START_TEST(one_tag_everywhere_is_one_slot)
{
	tag_all();
	ck_assert_int_eq(keyslot_check(&c, &slot, err, sizeof(err)), 0);
	ck_assert_uint_eq(slot, slot_of("presence", 8));
	cfg_set_string(&c.socket_prefix, "chat:{presence}:u:");
	cfg_set_string(&c.socket_suffix, ":{other}");
	ck_assert_int_eq(keyslot_check(&c, &slot, err, sizeof(err)), 0);
}
END_TEST

START_TEST(a_lock_in_another_slot_is_named)
{
	tag_all();
	cfg_set_string(&c.leader_key, "presence:reaper:leader");
	ck_assert_int_eq(keyslot_check(&c, &slot, err, sizeof(err)), -1);
	has("leader.key \"presence:reaper:leader\" is in hash slot");
	has("leader.key = \"{presence}:reaper:leader\";");
}
END_TEST

START_TEST(the_stream_counts_only_in_stream_mode)
{
	tag_all();
	cfg_set_string(&c.events_stream, "presence:events");
	cfg_set_string(&c.events_mode, "publish");
	ck_assert_int_eq(keyslot_check(&c, &slot, err, sizeof(err)), 0);
	cfg_set_string(&c.events_mode, "stream");
	ck_assert_int_eq(keyslot_check(&c, &slot, err, sizeof(err)), -1);
	has("events.stream \"presence:events\" is in hash slot");
	has("events.stream = \"{presence}:events\";");
}
END_TEST

/* A tag that is not whole within the prefix takes in the user's ID. */
START_TEST(an_unfinished_or_empty_tag_in_the_prefix_is_no_tag)
{
	tag_all();
	cfg_set_string(&c.socket_prefix, "{presence:user:");
	cfg_set_string(&c.socket_suffix, "}:sockets");
	ck_assert_int_eq(keyslot_check(&c, &slot, err, sizeof(err)), -1);
	has("holds no hash tag");
	cfg_set_string(&c.socket_prefix, "presence{}:{presence}:user:");
	ck_assert_int_eq(keyslot_check(&c, &slot, err, sizeof(err)), -1);
}
END_TEST

START_TEST(a_tag_in_another_slot_than_the_online_set)
{
	tag_all();
	cfg_set_string(&c.socket_prefix, "{sockets}:user:");
	ck_assert_int_eq(keyslot_check(&c, &slot, err, sizeof(err)), -1);
	has("keys.socket_prefix \"{sockets}:user:\" is in hash slot");
}
END_TEST

START_TEST(tagged_names_keep_the_rest_of_the_key)
{
	char out[128];

	keyslot_tagged("presence:online-users", "presence", out, sizeof(out));
	ck_assert_str_eq(out, "{presence}:online-users");
	keyslot_tagged("online", "presence", out, sizeof(out));
	ck_assert_str_eq(out, "{presence}:online");
	keyslot_tagged("presencex:a", "presence", out, sizeof(out));
	ck_assert_str_eq(out, "{presence}:presencex:a");
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("keyslot");
	TCase *tc = tcase_create("keyslot");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, the_default_keys_are_refused_with_a_tagged_layout);
	tcase_add_test(tc, one_tag_everywhere_is_one_slot);
	tcase_add_test(tc, a_lock_in_another_slot_is_named);
	tcase_add_test(tc, the_stream_counts_only_in_stream_mode);
	tcase_add_test(tc, an_unfinished_or_empty_tag_in_the_prefix_is_no_tag);
	tcase_add_test(tc, a_tag_in_another_slot_than_the_online_set);
	tcase_add_test(tc, tagged_names_keep_the_rest_of_the_key);
	suite_add_tcase(s, tc);
	return unit_run(s);
}
