/*
 * Sharded presence: the fair-share rule and the gate of one replica's
 * seats (share.h), keys.shards read from a file (conftab's NAMES type),
 * the shard names, the templates' checks and each shard's configuration
 * (shardcfg.h).
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "unit.h"
#include "settings.h"
#include "share.h"
#include "shardcfg.h"
#include "slot.h"

static struct cfg c;
static char err[CFG_ERR_MAX];
static char path[64];

static void
setup(void)
{
	cfg_defaults(&c);
	err[0] = '\0';
	path[0] = '\0';
}

static void
teardown(void)
{
	cfg_free(&c);
	if (path[0])
		unlink(path);
}

static int
load(const char *text)
{
	FILE *f;
	int fd;

	snprintf(path, sizeof(path), "/tmp/test_shards.XXXXXX");
	fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	f = fdopen(fd, "w");
	fputs(text, f);
	fclose(f);
	if (cfg_load(&c, path, 0, err, sizeof(err)) < 0)
		return -1;
	return cfg_finalize(&c, err, sizeof(err)) < 0 ? -1 : shardcfg_check(&c, err, sizeof(err));
}

static void
has(const char *what)
{
	ck_assert_msg(strstr(err, what) != NULL, "no \"%s\" in:\n%s", what, err);
}

#define SHARDED_KEYS \
	"keys = { online_set = \"p:{<shard>}:on\"; socket_prefix = \"p:{<shard>}:u:\"; "

START_TEST(fair_share_is_the_ceiling_of_shards_over_replicas)
{
	static const int want[][3] = {
		{ 16, 1, 16 }, { 16, 2, 8 }, { 16, 3, 6 }, { 16, 4, 4 }, { 16, 5, 4 },
		{ 16, 16, 1 }, { 16, 17, 1 }, { 16, 0, 16 }, { 16, -1, 16 }, { 1, 3, 1 },
		{ 256, 32, 8 }, { 256, 33, 8 }, { 7, 2, 4 },
	};

	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		ck_assert_msg(share_fair(want[i][0], want[i][1]) == want[i][2],
		    "share_fair(%d, %d) = %d, want %d", want[i][0], want[i][1],
		    share_fair(want[i][0], want[i][1]), want[i][2]);
	/* However many replicas, the shares cover every shard. */
	for (int n = 1; n <= 64; n++)
		for (int r = 1; r <= 70; r++)
			ck_assert_int_ge(share_fair(n, r) * r, n);
}
END_TEST

START_TEST(the_gate_never_lets_more_than_the_share_in)
{
	struct share_gate g;

	share_gate_init(&g, 0);
	ck_assert_int_eq(share_room(&g), 0);		/* share unknown: nothing */
	ck_assert_int_eq(share_reserve(&g), 0);
	ck_assert_int_eq(share_set(&g, 2), 0);
	ck_assert_int_eq(share_reserve(&g), 1);
	ck_assert_int_eq(share_reserve(&g), 1);
	ck_assert_int_eq(share_reserve(&g), 0);		/* full */
	ck_assert_int_eq(share_claim_release(&g), 0);	/* not above it */
	share_drop(&g);					/* a take failed */
	ck_assert_int_eq(share_room(&g), 1);
	ck_assert_int_eq(share_reserve(&g), 1);
	ck_assert_int_eq(share_set(&g, 1), 1);		/* lower: give one back */
	ck_assert_int_eq(share_claim_release(&g), 1);
	ck_assert_int_eq(share_claim_release(&g), 0);	/* only one */
	ck_assert_int_eq(g.held, 1);
	share_drop(&g);
	share_drop(&g);					/* never below zero */
	ck_assert_int_eq(g.held, 0);
	share_gate_destroy(&g);
}
END_TEST

START_TEST(a_dry_run_gate_is_unlimited_and_never_gives_back)
{
	struct share_gate g;

	share_gate_init(&g, 1);
	for (int i = 0; i < 5; i++)
		ck_assert_int_eq(share_reserve(&g), 1);
	ck_assert_int_eq(share_claim_release(&g), 0);
	share_gate_destroy(&g);
}
END_TEST

START_TEST(a_count_names_the_shards_by_number)
{
	struct shardset s;

	ck_assert_int_eq(load(SHARDED_KEYS "shards = 16; }; leader = { key = \"p:{<shard>}:l\"; };"), 0);
	ck_assert_str_eq(c.shards, "16");
	ck_assert_int_eq(shardset_init(&s, &c), 0);
	ck_assert_uint_eq(s.n, 16);
	ck_assert_str_eq(s.names[0], "0");
	ck_assert_str_eq(s.names[15], "15");
	shardset_free(&s);
	ck_assert_str_eq(c.members_key, "p:{members}:l");	/* derived */
}
END_TEST

START_TEST(a_list_names_the_shards_in_its_order)
{
	struct shardset s;

	ck_assert_int_eq(load(SHARDED_KEYS "shards = [ \"eu\", \"us-1\", \"a.b_c\" ]; }; "
	    "leader = { key = \"p:{<shard>}:l\"; members_key = \"p:members\"; };"), 0);
	ck_assert_int_eq(shardset_init(&s, &c), 0);
	ck_assert_uint_eq(s.n, 3);
	ck_assert_str_eq(s.names[0], "eu");
	ck_assert_str_eq(s.names[1], "us-1");
	ck_assert_str_eq(s.names[2], "a.b_c");
	shardset_free(&s);
	ck_assert_str_eq(c.members_key, "p:members");	/* as set */
}
END_TEST

START_TEST(bad_shard_settings_are_refused_with_the_reason)
{
	static const struct {
		const char *text, *msg;
	} bad[] = {
		{ "keys = { shards = -1; };", "keys.shards: -1 is out of range (0..256)" },
		{ "keys = { shards = 257; };", "keys.shards: 257 is out of range (0..256)" },
		{ "keys = { shards = \"16\"; };", "wrong type (expected a count or a list of names)" },
		{ "keys = { shards = 1.5; };", "wrong type (expected a count or a list of names)" },
		{ "keys = { shards = [ ]; };", "a list of 1 to 256 names" },
		{ "keys = { shards = [ \"a\", \"a\" ]; };", "element 2: named twice" },
		{ "keys = { shards = [ \"a b\" ]; };", "element 1: a name is 1 to 64 of" },
		{ "keys = { shards = [ \"\" ]; };", "element 1: a name is 1 to 64 of" },
		{ "keys = { shards = [ 1 ]; };", "element 1: not a string" },
		{ "keys = { shards = [ \"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\" ]; };",
		  "element 1: a name is 1 to 64 of" },
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cfg_free(&c);
		cfg_defaults(&c);
		err[0] = '\0';
		ck_assert_msg(load(bad[i].text) == -1, "accepted: %s", bad[i].text);
		has(bad[i].msg);
		unlink(path);
		path[0] = '\0';
	}
}
END_TEST

START_TEST(templates_must_name_the_shard_where_each_shard_needs_its_own)
{
	char where[128];

	ck_assert_int_eq(load("keys = { shards = 4; };"), -1);
	has("keys.online_set \"presence:online-users\" must name <shard> with keys.shards");
	/* A default is pointed at where keys.shards was set. */
	snprintf(where, sizeof(where), "%s:1: keys.online_set", path);
	has(where);
	has("leader.key \"presence:reaper:leader\" must name <shard>");
	ck_assert_ptr_null(strstr(err, "events.stream"));	/* events.mode is none */
}
END_TEST

START_TEST(the_stream_must_name_the_shard_in_stream_mode)
{
	ck_assert_int_eq(load(SHARDED_KEYS "shards = 2; }; leader = { key = \"p:{<shard>}:l\"; }; "
	    "events = { mode = \"stream\"; };"), -1);
	has("events.stream \"presence:events\" must name <shard>");
}
END_TEST

START_TEST(a_shard_without_keys_shards_is_refused)
{
	char where[128];

	ck_assert_int_eq(load("keys = {\n socket_prefix = \"p:{<shard>}:u:\"; };"), -1);
	has("keys.socket_prefix \"p:{<shard>}:u:\" names <shard>, but keys.shards is not set");
	snprintf(where, sizeof(where), "%s:2: keys.socket_prefix", path);
	has(where);
}
END_TEST

START_TEST(the_membership_key_is_one_for_all_shards)
{
	ck_assert_int_eq(load(SHARDED_KEYS "shards = 2; }; leader = { key = \"p:{<shard>}:l\"; "
	    "members_key = \"p:{<shard>}:m\"; };"), -1);
	has("leader.members_key \"p:{<shard>}:m\": one key for all the shards");
}
END_TEST

START_TEST(watch_expiry_is_refused_with_shards)
{
	ck_assert_int_eq(load(SHARDED_KEYS "shards = 2; }; leader = { key = \"p:{<shard>}:l\"; }; "
	    "reaper = { watch_expiry = true; };"), -1);
	has("reaper.watch_expiry works with one online set");
}
END_TEST

START_TEST(each_shard_gets_its_keys_and_its_slot)
{
	struct cfg one;

	ck_assert_int_eq(load(SHARDED_KEYS "socket_suffix = \":s:<shard>\"; shards = 2; }; "
	    "redis = { url = \"redis+cluster://127.0.0.1:7000\"; }; "
	    "leader = { key = \"p:{<shard>}:l\"; }; events = { channel = \"ev:<shard>:<shard>\"; };"),
	    0);
	/* The main connection serves the membership key: a reload compares this slot. */
	ck_assert_str_eq(c.members_key, "p:{members}:l");
	ck_assert_uint_eq(c.cluster_slot, slot_of("members", 7));
	ck_assert_int_eq(shardcfg_make(&c, "eu", &one), 0);
	ck_assert_str_eq(one.online_set, "p:{eu}:on");
	ck_assert_str_eq(one.socket_prefix, "p:{eu}:u:");
	ck_assert_str_eq(one.socket_suffix, ":s:eu");
	ck_assert_str_eq(one.leader_key, "p:{eu}:l");
	ck_assert_str_eq(one.events_channel, "ev:eu:eu");
	ck_assert_uint_eq(one.cluster_slot, slot_of("eu", 2));
	ck_assert_str_eq(one.redis_url, c.redis_url);
	ck_assert_int_eq(one.url.is_cluster, 1);
	cfg_free(&one);
	ck_assert_str_eq(c.online_set, "p:{<shard>}:on");	/* the template stays */
}
END_TEST

START_TEST(on_a_cluster_each_shards_keys_must_share_a_slot)
{
	ck_assert_int_eq(load("keys = { online_set = \"p:{<shard>}:on\"; "
	    "socket_prefix = \"p:{u}:<shard>:\"; shards = 2; }; "
	    "redis = { url = \"redis+cluster://127.0.0.1:7000\"; }; "
	    "leader = { key = \"p:{<shard>}:l\"; };"), -1);
	has("CROSSSLOT");
	has("(shown for shard \"0\"; <shard> in a template belongs inside the hash tag");
}
END_TEST

START_TEST(expand_replaces_every_placeholder)
{
	char *s = shardcfg_expand("<shard><shard>-x-<shard>", "ab");

	ck_assert_str_eq(s, "abab-x-ab");
	free(s);
	s = shardcfg_expand("no placeholder <shard", "ab");
	ck_assert_str_eq(s, "no placeholder <shard");
	free(s);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("shards");
	TCase *tc = tcase_create("shards");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, fair_share_is_the_ceiling_of_shards_over_replicas);
	tcase_add_test(tc, the_gate_never_lets_more_than_the_share_in);
	tcase_add_test(tc, a_dry_run_gate_is_unlimited_and_never_gives_back);
	tcase_add_test(tc, a_count_names_the_shards_by_number);
	tcase_add_test(tc, a_list_names_the_shards_in_its_order);
	tcase_add_test(tc, bad_shard_settings_are_refused_with_the_reason);
	tcase_add_test(tc, templates_must_name_the_shard_where_each_shard_needs_its_own);
	tcase_add_test(tc, the_stream_must_name_the_shard_in_stream_mode);
	tcase_add_test(tc, a_shard_without_keys_shards_is_refused);
	tcase_add_test(tc, the_membership_key_is_one_for_all_shards);
	tcase_add_test(tc, watch_expiry_is_refused_with_shards);
	tcase_add_test(tc, each_shard_gets_its_keys_and_its_slot);
	tcase_add_test(tc, on_a_cluster_each_shards_keys_must_share_a_slot);
	tcase_add_test(tc, expand_replaces_every_placeholder);
	suite_add_tcase(s, tc);
	return unit_run(s);
}
