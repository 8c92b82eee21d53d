#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acl.h"
#include "settings.h"
#include "unit.h"

static struct cfg cfg;

static void
setup(void)
{
	memset(&cfg, 0, sizeof(cfg));
	cfg_defaults(&cfg);
}

static void
teardown(void)
{
	cfg_free(&cfg);
}

/* The line for the configuration as set up, finalized as the program does. */
static char *
line(enum acl_variant v)
{
	char err[CFG_ERR_MAX];
	char *s;

	ck_assert_msg(cfg_finalize(&cfg, err, sizeof(err)) == 0, "%s", err);
	s = acl_setuser(&cfg, v);
	ck_assert_ptr_nonnull(s);
	return s;
}

static void
assert_line(enum acl_variant v, const char *want)
{
	char *got = line(v);

	ck_assert_str_eq(got, want);
	free(got);
}

/* Does the line hold this exact argument (space-separated)? */
static int
has_arg(const char *s, const char *arg)
{
	size_t n = strlen(arg);

	for (const char *p = strstr(s, arg); p != NULL; p = strstr(p + 1, arg))
		if (p[-1] == ' ' && (p[n] == ' ' || p[n] == '\0'))
			return 1;
	return 0;
}

START_TEST(default_keys_leader_line)
{
	assert_line(ACL_LEADER, "ACL SETUSER presence-reaper reset on >PASSWORD resetchannels "
	    "+ping +client|setname +type +scard +srandmember +sscan +exists +pttl "
	    "+set +get +evalsha +script|load +pexpire +del +srem +hset +time "
	    "~presence:online-users ~presence:reaper:leader "
	    "~{presence:reaper:leader}:status ~presence:user:*:sockets");
}
END_TEST

START_TEST(default_keys_dry_run_line_only_reads)
{
	assert_line(ACL_DRY_RUN, "ACL SETUSER presence-reaper reset on >PASSWORD resetchannels "
	    "+ping +client|setname +type +scard +srandmember +sscan +exists +pttl "
	    "+get +time +hgetall %R~presence:online-users %R~presence:reaper:leader "
	    "%R~{presence:reaper:leader}:status %R~presence:user:*:sockets");
}
END_TEST

START_TEST(the_configured_user_never_its_password)
{
	char *s;

	cfg_set_string(&cfg.redis_url, "redis://reaper-7:s3cret@127.0.0.1:6379/0");
	s = line(ACL_LEADER);
	ck_assert_ptr_nonnull(strstr(s, "ACL SETUSER reaper-7 reset on >PASSWORD "));
	ck_assert_ptr_null(strstr(s, "s3cret"));
	free(s);
	cfg_set_string(&cfg.redis_url, "redis://127.0.0.1:6379/0");
	cfg.url.user[0] = '\0';
	cfg_set_string(&cfg.redis_username, "from-setting");
	s = line(ACL_DRY_RUN);
	ck_assert_ptr_nonnull(strstr(s, "ACL SETUSER from-setting reset "));
	free(s);
}
END_TEST

START_TEST(select_only_for_a_database_other_than_0)
{
	char *s = line(ACL_LEADER);

	ck_assert(!has_arg(s, "+select"));
	free(s);
	cfg_set_string(&cfg.redis_url, "redis://127.0.0.1:6379/4");
	s = line(ACL_DRY_RUN);
	ck_assert(has_arg(s, "+select"));
	free(s);
}
END_TEST

START_TEST(role_only_through_sentinel_and_for_the_dry_run_too)
{
	char *s = line(ACL_LEADER);

	ck_assert(!has_arg(s, "+role"));
	free(s);
	cfg_set_string(&cfg.redis_url, "redis+sentinel://s1:26379,s2:26379/mymaster/0");
	s = line(ACL_LEADER);
	ck_assert(has_arg(s, "+role"));
	free(s);
	s = line(ACL_DRY_RUN);
	ck_assert(has_arg(s, "+role"));
	free(s);
}
END_TEST

START_TEST(cluster_slots_and_asking_only_on_a_cluster)
{
	char *s = line(ACL_LEADER);

	ck_assert(!has_arg(s, "+cluster|slots") && !has_arg(s, "+asking"));
	free(s);
	cfg_set_string(&cfg.redis_url, "redis+cluster://n1:7000,n2:7001");
	cfg_set_string(&cfg.online_set, "{presence}:online-users");
	cfg_set_string(&cfg.socket_prefix, "{presence}:user:");
	cfg_set_string(&cfg.leader_key, "{presence}:reaper:leader");
	s = line(ACL_LEADER);
	ck_assert(has_arg(s, "+cluster|slots") && has_arg(s, "+asking"));
	ck_assert(!has_arg(s, "+role"));
	free(s);
	s = line(ACL_DRY_RUN);
	ck_assert(has_arg(s, "+cluster|slots") && has_arg(s, "+asking"));
	free(s);
}
END_TEST

START_TEST(publish_mode_adds_publish_and_the_channel)
{
	char *s;

	cfg_set_string(&cfg.events_mode, "publish");
	cfg_set_string(&cfg.events_channel, "chat:offline");
	s = line(ACL_LEADER);
	ck_assert(has_arg(s, "+time") && has_arg(s, "+publish") && has_arg(s, "&chat:offline"));
	ck_assert(!has_arg(s, "+xadd"));
	free(s);
	s = line(ACL_DRY_RUN);
	ck_assert(!has_arg(s, "+publish") && !has_arg(s, "&chat:offline"));
	free(s);
}
END_TEST

START_TEST(stream_mode_adds_time_and_xadd_no_channel)
{
	char *s;

	cfg_set_string(&cfg.events_mode, "stream");
	cfg_set_string(&cfg.events_stream, "chat:stream");
	s = line(ACL_LEADER);
	ck_assert(has_arg(s, "+time") && has_arg(s, "+xadd") && has_arg(s, "~chat:stream"));
	ck_assert(!has_arg(s, "+publish") && strchr(s, '&') == NULL);
	free(s);
}
END_TEST

START_TEST(watch_expiry_subscribes_to_its_databases_channel)
{
	char *s;

	cfg.watch_expiry = 1;
	cfg.enable_notifications = 1;
	cfg_set_string(&cfg.redis_url, "unix:///run/redis.sock?db=12");
	s = line(ACL_LEADER);
	ck_assert(has_arg(s, "+subscribe") && has_arg(s, "&__keyevent@12__:expired"));
	ck_assert_ptr_null(strstr(s, "config"));	/* never, even when asked to enable */
	free(s);
	s = line(ACL_DRY_RUN);
	ck_assert(!has_arg(s, "+subscribe") && strchr(s, '&') == NULL);
	free(s);
}
END_TEST

START_TEST(glob_metacharacters_are_escaped_and_quoted_for_redis_cli)
{
	char *s;

	cfg_set_string(&cfg.online_set, "on*line?[1]");
	cfg_set_string(&cfg.socket_prefix, "u\\");
	cfg_set_string(&cfg.socket_suffix, "\"s");
	cfg_set_string(&cfg.events_mode, "publish");
	cfg_set_string(&cfg.events_channel, "ev*");
	s = line(ACL_LEADER);
	/* Redis reads ~on\*line\?\[1\], ~u\\*"s and &ev\* once redis-cli unquotes. */
	ck_assert(has_arg(s, "\"~on\\\\*line\\\\?\\\\[1\\\\]\""));
	ck_assert(has_arg(s, "\"~u\\\\\\\\*\\\"s\""));
	ck_assert(has_arg(s, "\"&ev\\\\*\""));
	free(s);
}
END_TEST

START_TEST(white_space_becomes_a_one_byte_wildcard)
{
	char *s;

	cfg_set_string(&cfg.online_set, "online users\tnow");
	cfg_set_string(&cfg.socket_prefix, "\x01\xc3\xa9:");
	s = line(ACL_DRY_RUN);
	/* Redis refuses white space in a rule; bytes outside ASCII go as \xHH. */
	ck_assert(has_arg(s, "%R~online?users?now"));
	ck_assert(has_arg(s, "\"%R~\\x01\\xc3\\xa9:*:sockets\""));
	free(s);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("acl");
	TCase *tc = tcase_create("setuser");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, default_keys_leader_line);
	tcase_add_test(tc, default_keys_dry_run_line_only_reads);
	tcase_add_test(tc, the_configured_user_never_its_password);
	tcase_add_test(tc, select_only_for_a_database_other_than_0);
	tcase_add_test(tc, role_only_through_sentinel_and_for_the_dry_run_too);
	tcase_add_test(tc, cluster_slots_and_asking_only_on_a_cluster);
	tcase_add_test(tc, publish_mode_adds_publish_and_the_channel);
	tcase_add_test(tc, stream_mode_adds_time_and_xadd_no_channel);
	tcase_add_test(tc, watch_expiry_subscribes_to_its_databases_channel);
	tcase_add_test(tc, glob_metacharacters_are_escaped_and_quoted_for_redis_cli);
	tcase_add_test(tc, white_space_becomes_a_one_byte_wildcard);
	suite_add_tcase(s, tc);
	return unit_run(s);
}
