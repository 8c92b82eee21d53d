#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"
#include "rerr.h"

static enum rerr_class
cls(const char *text)
{
	return rerr_classify(text, strlen(text));
}

/* An error reply as hiredis builds one; the caller frees it with reply_free. */
static redisReply *
error_reply(const char *text, size_t len)
{
	redisReply *r = calloc(1, sizeof(*r));

	ck_assert_ptr_nonnull(r);
	r->type = REDIS_REPLY_ERROR;
	r->str = malloc(len + 1);
	ck_assert_ptr_nonnull(r->str);
	memcpy(r->str, text, len);
	r->str[len] = '\0';
	r->len = len;
	return r;
}

static void
reply_free(redisReply *r)
{
	free(r->str);
	free(r);
}

START_TEST(not_a_writable_primary)
{
	ck_assert_int_eq(cls("READONLY You can't write against a read only replica."),
	    RERR_READONLY);
	ck_assert_int_eq(cls("MASTERDOWN Link with MASTER is down and "
	    "replica-serve-stale-data is set to 'no'."), RERR_READONLY);
	/* Raised inside a script, Redis 7 keeps the code. */
	ck_assert_int_eq(cls("READONLY You can't write against a read only replica. "
	    "script: e50f848e, on @user_script:1."), RERR_READONLY);
}
END_TEST

START_TEST(loading_and_busy_are_transient)
{
	ck_assert_int_eq(cls("LOADING Redis is loading the dataset in memory"), RERR_LOADING);
	ck_assert_int_eq(cls("BUSY Redis is busy running a script. You can only call "
	    "SCRIPT KILL or SHUTDOWN NOSAVE."), RERR_BUSY);
	ck_assert(rerr_transient(RERR_LOADING));
	ck_assert(rerr_transient(RERR_BUSY));
	for (int c = RERR_NONE; c < RERR_NCLASSES; c++)
		if (c != RERR_LOADING && c != RERR_BUSY && !rerr_cluster((enum rerr_class)c))
			ck_assert(!rerr_transient((enum rerr_class)c));
}
END_TEST

START_TEST(cluster_redirections)
{
	ck_assert_int_eq(cls("MOVED 3999 127.0.0.1:6381"), RERR_MOVED);
	ck_assert_int_eq(cls("ASK 3999 127.0.0.1:6381"), RERR_ASK);
	ck_assert_int_eq(cls("TRYAGAIN Multiple keys request during rehashing of slot"),
	    RERR_TRYAGAIN);
	ck_assert_int_eq(cls("CLUSTERDOWN Hash slot not served"), RERR_CLUSTERDOWN);
	ck_assert_int_eq(cls("CROSSSLOT Keys in request don't hash to the same slot"),
	    RERR_OTHER);
	ck_assert_int_eq(cls("ASKING"), RERR_OTHER);
	for (int c = RERR_NONE; c < RERR_NCLASSES; c++)
		ck_assert_int_eq(rerr_cluster((enum rerr_class)c), c == RERR_MOVED ||
		    c == RERR_ASK || c == RERR_TRYAGAIN || c == RERR_CLUSTERDOWN);
	ck_assert(rerr_transient(RERR_MOVED));
	ck_assert(rerr_transient(RERR_CLUSTERDOWN));
}
END_TEST

START_TEST(codes_match_whole_words_only)
{
	ck_assert_int_eq(cls("BUSYKEY Target key name already exists."), RERR_OTHER);
	ck_assert_int_eq(cls("BUSYGROUP Consumer Group name already exists"), RERR_OTHER);
	ck_assert_int_eq(cls("OOMPH"), RERR_OTHER);
	ck_assert_int_eq(cls("BUSY"), RERR_BUSY);	/* a code alone */
	ck_assert_int_eq(cls("READ ONLY"), RERR_OTHER);
	ck_assert_int_eq(cls(""), RERR_OTHER);
}
END_TEST

START_TEST(oom_noperm_unknown_command)
{
	ck_assert_int_eq(cls("OOM command not allowed when used memory > 'maxmemory'."),
	    RERR_OOM);
	ck_assert_int_eq(cls("NOPERM this user has no permissions to run the 'sscan' command"),
	    RERR_NOPERM);
	ck_assert_int_eq(cls("NOPERM User reaper has no permissions to access the "
	    "'presence:reaper:leader' key"), RERR_NOPERM);
	ck_assert_int_eq(cls("ERR The user executing the script can't run this command or "
	    "subcommand script: 8915930c, on @user_script:1."), RERR_NOPERM);
	ck_assert_int_eq(cls("ERR unknown command 'EVALSHA', with args beginning with: "),
	    RERR_UNKNOWN_COMMAND);
	ck_assert_int_eq(cls("ERR unknown command `SSCAN`, with args beginning with: "),
	    RERR_UNKNOWN_COMMAND);
	ck_assert_int_eq(cls("ERR unknown subcommand 'LOAD'. Try SCRIPT HELP."),
	    RERR_UNKNOWN_COMMAND);
	ck_assert_int_eq(cls("ERR Unknown Redis command called from script script: 98565c04, "
	    "on @user_script:1."), RERR_UNKNOWN_COMMAND);
	ck_assert_int_eq(cls("WRONGTYPE Operation against a key holding the wrong kind of value"),
	    RERR_OTHER);
	ck_assert_int_eq(cls("ERR value is not an integer or out of range"), RERR_OTHER);
}
END_TEST

START_TEST(non_error_replies_have_no_class)
{
	redisReply r = { .type = REDIS_REPLY_STATUS, .str = "OK", .len = 2 };
	char out[64];

	ck_assert_int_eq(rerr_of(NULL), RERR_NONE);
	ck_assert_int_eq(rerr_of(&r), RERR_NONE);
	ck_assert_int_eq(rerr_format(out, sizeof(out), "SET k NX", &r), RERR_NONE);
	ck_assert_str_eq(out, "SET k NX: unexpected reply");
}
END_TEST

START_TEST(format_names_the_command_and_escapes_the_text)
{
	static const char text[] = "ERR bad\nline\x01 \xff.";
	redisReply *r = error_reply(text, sizeof(text) - 1);
	char out[128];

	ck_assert_int_eq(rerr_format(out, sizeof(out), "GET lock", r), RERR_OTHER);
	ck_assert_str_eq(out, "GET lock: ERR bad\\nline\\x01 \\xff");
	reply_free(r);
}
END_TEST

START_TEST(format_cuts_unknown_command_arguments)
{
	static const char text[] = "ERR unknown command 'EXISTS', with args beginning with: "
	    "'presence:user:alice:sockets' ";
	redisReply *r = error_reply(text, sizeof(text) - 1);
	char out[128];

	ck_assert_int_eq(rerr_format(out, sizeof(out), "EXISTS", r), RERR_UNKNOWN_COMMAND);
	ck_assert_str_eq(out, "EXISTS: ERR unknown command 'EXISTS'");
	reply_free(r);
}
END_TEST

START_TEST(format_truncates_to_fit)
{
	redisReply *r = error_reply("NOPERM no", 9);
	char out[12];

	ck_assert_int_eq(rerr_format(out, sizeof(out), "SSCAN set", r), RERR_NOPERM);
	ck_assert_str_eq(out, "SSCAN set: ");
	reply_free(r);
}
END_TEST

START_TEST(server_version_from_info)
{
	static const char info[] = "# Server\r\nredis_git_sha1:00000000\r\n"
	    "redis_version:7.0.15\r\nredis_mode:standalone\r\n";
	redisReply *r = error_reply(info, sizeof(info) - 1);
	char out[32];

	r->type = REDIS_REPLY_STRING;
	ck_assert_int_eq(rerr_server_version(r, out, sizeof(out)), 0);
	ck_assert_str_eq(out, "7.0.15");
	reply_free(r);
}
END_TEST

START_TEST(server_version_unknown)
{
	redisReply *r = error_reply("ERR unknown command 'INFO'", 26);
	char out[32];

	ck_assert_int_eq(rerr_server_version(NULL, out, sizeof(out)), -1);
	ck_assert_str_eq(out, "unknown");
	ck_assert_int_eq(rerr_server_version(r, out, sizeof(out)), -1);
	ck_assert_str_eq(out, "unknown");
	r->type = REDIS_REPLY_STRING;
	ck_assert_int_eq(rerr_server_version(r, out, sizeof(out)), -1);
	ck_assert_str_eq(out, "unknown");
	reply_free(r);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("rerr");
	TCase *tc = tcase_create("classify");

	tcase_add_test(tc, not_a_writable_primary);
	tcase_add_test(tc, loading_and_busy_are_transient);
	tcase_add_test(tc, cluster_redirections);
	tcase_add_test(tc, codes_match_whole_words_only);
	tcase_add_test(tc, oom_noperm_unknown_command);
	tcase_add_test(tc, non_error_replies_have_no_class);
	tcase_add_test(tc, format_names_the_command_and_escapes_the_text);
	tcase_add_test(tc, format_cuts_unknown_command_arguments);
	tcase_add_test(tc, format_truncates_to_fit);
	tcase_add_test(tc, server_version_from_info);
	tcase_add_test(tc, server_version_unknown);
	suite_add_tcase(s, tc);
	return unit_run(s);
}
