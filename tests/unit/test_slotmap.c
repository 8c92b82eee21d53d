#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"
#include "slotmap.h"

static redisReply *
resp(const char *text)
{
	return unit_reply(text, strlen(text));
}

/* A node entry: host "h", port p, an id. */
#define NODE(p) "*3\r\n$1\r\nh\r\n:" #p "\r\n$2\r\nid\r\n"

/* Three primaries, 0-5460, 5461-10922, 10923-16383, each with one replica. */
static const char three[] =
    "*3\r\n"
    "*4\r\n:0\r\n:5460\r\n*3\r\n$9\r\n127.0.0.1\r\n:7000\r\n$2\r\nid\r\n"
    "*3\r\n$9\r\n127.0.0.1\r\n:7003\r\n$2\r\nid\r\n"
    "*4\r\n:5461\r\n:10922\r\n*3\r\n$9\r\n127.0.0.1\r\n:7001\r\n$2\r\nid\r\n"
    "*3\r\n$9\r\n127.0.0.1\r\n:7004\r\n$2\r\nid\r\n"
    "*4\r\n:10923\r\n:16383\r\n*3\r\n$9\r\n127.0.0.1\r\n:7002\r\n$2\r\nid\r\n"
    "*3\r\n$9\r\n127.0.0.1\r\n:7005\r\n$2\r\nid\r\n";

START_TEST(a_full_map_names_each_slot_s_primary)
{
	struct slotmap m;
	redisReply *r = resp(three);
	char err[256];

	slotmap_init(&m);
	ck_assert_int_eq(slotmap_parse(&m, r, "seed", err, sizeof(err)), 0);
	ck_assert_uint_eq(m.nnodes, 3);
	ck_assert_uint_eq(slotmap_covered(&m), SLOT_COUNT);
	ck_assert_int_eq(slotmap_node(&m, 0)->port, 7000);
	ck_assert_int_eq(slotmap_node(&m, 5460)->port, 7000);
	ck_assert_int_eq(slotmap_node(&m, 5461)->port, 7001);
	ck_assert_int_eq(slotmap_node(&m, slot_of("foo", 3))->port, 7002);	/* 12182 */
	ck_assert_str_eq(slotmap_node(&m, 16383)->host, "127.0.0.1");
	ck_assert_ptr_null(slotmap_node(&m, SLOT_COUNT));
	freeReplyObject(r);
	slotmap_free(&m);
}
END_TEST

START_TEST(an_unknown_address_is_the_seed_s_host)
{
	struct slotmap m;
	redisReply *r = resp("*3\r\n"
	    "*3\r\n:0\r\n:99\r\n*3\r\n$0\r\n\r\n:7000\r\n$2\r\nid\r\n"
	    "*3\r\n:100\r\n:199\r\n*3\r\n$1\r\n?\r\n:7001\r\n$2\r\nid\r\n"
	    "*3\r\n:200\r\n:299\r\n*3\r\n$-1\r\n:7002\r\n$2\r\nid\r\n");
	char err[256];

	slotmap_init(&m);
	ck_assert_int_eq(slotmap_parse(&m, r, "10.0.0.9", err, sizeof(err)), 0);
	ck_assert_str_eq(slotmap_node(&m, 0)->host, "10.0.0.9");
	ck_assert_str_eq(slotmap_node(&m, 150)->host, "10.0.0.9");
	ck_assert_int_eq(slotmap_node(&m, 250)->port, 7002);
	ck_assert_uint_eq(slotmap_covered(&m), 300);
	ck_assert_ptr_null(slotmap_node(&m, 300));
	freeReplyObject(r);
	slotmap_free(&m);
}
END_TEST

/* A bad reply leaves the map as it was, and says why. */
static void
refused(const char *text, size_t len, const char *why)
{
	struct slotmap m;
	redisReply *good = resp(three), *bad = unit_reply(text, len);
	char err[256] = "";

	slotmap_init(&m);
	ck_assert_int_eq(slotmap_parse(&m, good, "seed", err, sizeof(err)), 0);
	ck_assert_int_eq(slotmap_parse(&m, bad, "seed", err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, why) != NULL, "\"%s\" lacks \"%s\"", err, why);
	ck_assert_uint_eq(slotmap_covered(&m), SLOT_COUNT);
	ck_assert_int_eq(slotmap_node(&m, 0)->port, 7000);
	freeReplyObject(good);
	freeReplyObject(bad);
	slotmap_free(&m);
}

/* text is a string literal: its length is its size, NULs and all. */
#define refused(text, why) refused(text, sizeof(text) - 1, why)

START_TEST(bad_replies_are_refused_and_the_map_kept)
{
	refused("-ERR This instance has cluster support disabled\r\n", "cluster support disabled");
	refused("-ERR evil\x1b[2J\r\n", "\\x1b");
	refused("+OK\r\n", "not an array");
	refused("*1\r\n*3\r\n:0\r\n:16384\r\n" NODE(7000), "out of bounds");
	refused("*1\r\n*3\r\n:9\r\n:1\r\n" NODE(7000), "out of bounds");
	refused("*1\r\n*2\r\n:0\r\n:1\r\n", "malformed slot range");
	refused("*1\r\n*3\r\n:0\r\n:1\r\n*3\r\n$1\r\nh\r\n:0\r\n$2\r\nid\r\n", "malformed node");
	refused("*1\r\n*3\r\n:0\r\n:1\r\n*3\r\n$1\r\nh\r\n:70000\r\n$2\r\nid\r\n", "malformed node");
	refused("*1\r\n*3\r\n:0\r\n:1\r\n*1\r\n$1\r\nh\r\n", "malformed node");
	refused("*1\r\n*3\r\n:0\r\n:1\r\n*3\r\n$3\r\na\0b\r\n:1\r\n$2\r\nid\r\n", "malformed node");
}
END_TEST

START_TEST(redirections_are_read)
{
	struct slotmap_node to;
	unsigned slot = 0;

#define REDIR(s) slotmap_redirect(s, strlen(s), &slot, &to)
	ck_assert_int_eq(REDIR("MOVED 3999 127.0.0.1:6381"), SLOTMAP_MOVED);
	ck_assert_uint_eq(slot, 3999);
	ck_assert_str_eq(to.host, "127.0.0.1");
	ck_assert_int_eq(to.port, 6381);
	ck_assert_int_eq(REDIR("ASK 16383 redis-2.local:7002"), SLOTMAP_ASK);
	ck_assert_uint_eq(slot, 16383);
	ck_assert_str_eq(to.host, "redis-2.local");
	ck_assert_int_eq(REDIR("MOVED 1 :6380"), SLOTMAP_MOVED);
	ck_assert_str_eq(to.host, "");
	ck_assert_int_eq(REDIR("MOVED 2 ::1:7000"), SLOTMAP_MOVED);
	ck_assert_str_eq(to.host, "::1");
	ck_assert_int_eq(REDIR("MOVED 2 [::1]:7001"), SLOTMAP_MOVED);
	ck_assert_str_eq(to.host, "::1");
	ck_assert_int_eq(to.port, 7001);
}
END_TEST

START_TEST(other_errors_are_no_redirection)
{
	struct slotmap_node to;
	unsigned slot;

	ck_assert_int_eq(REDIR("ERR unknown"), SLOTMAP_NONE);
	ck_assert_int_eq(REDIR("MOVED"), SLOTMAP_NONE);
	ck_assert_int_eq(REDIR("MOVEDX 1 h:1"), SLOTMAP_NONE);
	ck_assert_int_eq(REDIR("MOVED x h:1"), SLOTMAP_NONE);
	ck_assert_int_eq(REDIR("MOVED 16384 h:1"), SLOTMAP_NONE);
	ck_assert_int_eq(REDIR("MOVED 1 h"), SLOTMAP_NONE);
	ck_assert_int_eq(REDIR("MOVED 1 h:0"), SLOTMAP_NONE);
	ck_assert_int_eq(REDIR("MOVED 1 h:65536"), SLOTMAP_NONE);
	ck_assert_int_eq(REDIR("ASK 1 h:12x"), SLOTMAP_NONE);
	ck_assert_int_eq(REDIR("TRYAGAIN Multiple keys request during rehashing of slot"),
	    SLOTMAP_NONE);
	ck_assert_int_eq(slotmap_redirect("MOVED 1 h\0x:1", 13, &slot, &to), SLOTMAP_NONE);
#undef REDIR
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("slotmap");
	TCase *tc = tcase_create("slotmap");

	tcase_add_test(tc, a_full_map_names_each_slot_s_primary);
	tcase_add_test(tc, an_unknown_address_is_the_seed_s_host);
	tcase_add_test(tc, bad_replies_are_refused_and_the_map_kept);
	tcase_add_test(tc, redirections_are_read);
	tcase_add_test(tc, other_errors_are_no_redirection);
	suite_add_tcase(s, tc);
	return unit_run(s);
}
