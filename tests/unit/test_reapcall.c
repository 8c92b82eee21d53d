#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"
#include "reapcall.h"
#include "scripts.h"

#define MAXEL 8

/* A reply array built in place: integers and strings, as the script returns them. */
struct fake {
	redisReply top;
	redisReply el[MAXEL];
	redisReply *ptr[MAXEL];
};

static void
fake_init(struct fake *f)
{
	memset(f, 0, sizeof(*f));
	f->top.type = REDIS_REPLY_ARRAY;
	f->top.element = f->ptr;
}

static void
fake_int(struct fake *f, long long v)
{
	redisReply *e = &f->el[f->top.elements];

	e->type = REDIS_REPLY_INTEGER;
	e->integer = v;
	f->ptr[f->top.elements++] = e;
}

static void
fake_str(struct fake *f, const char *s)
{
	redisReply *e = &f->el[f->top.elements];

	e->type = REDIS_REPLY_STRING;
	e->str = (char *)s;
	e->len = strlen(s);
	f->ptr[f->top.elements++] = e;
}

START_TEST(done_lists_the_removed_not_the_ghosts)
{
	struct fake f;
	redisReply *const *removed;
	size_t n;

	fake_init(&f);
	fake_int(&f, 1);
	fake_int(&f, 3);
	fake_int(&f, 2);
	fake_str(&f, "alice");
	fake_str(&f, "bob");
	fake_str(&f, "ghost");
	ck_assert_int_eq(reapcall_parse(&f.top, &removed, &n), REAPCALL_DONE);
	ck_assert_uint_eq(n, 2);
	ck_assert_str_eq(removed[0]->str, "alice");
	ck_assert_str_eq(removed[1]->str, "bob");
}
END_TEST

START_TEST(done_with_nothing_removed)
{
	struct fake f;
	redisReply *const *removed;
	size_t n;

	fake_init(&f);
	fake_int(&f, 1);
	fake_int(&f, 0);
	fake_int(&f, 0);
	ck_assert_int_eq(reapcall_parse(&f.top, &removed, &n), REAPCALL_DONE);
	ck_assert_uint_eq(n, 0);
}
END_TEST

START_TEST(status_zero_is_not_leader)
{
	struct fake f;
	redisReply *const *removed;
	size_t n;

	fake_init(&f);
	fake_int(&f, 0);
	fake_int(&f, 0);
	ck_assert_int_eq(reapcall_parse(&f.top, &removed, &n), REAPCALL_NOT_LEADER);
	ck_assert_uint_eq(n, 0);
}
END_TEST

START_TEST(an_error_reply_is_refused)
{
	redisReply e = { .type = REDIS_REPLY_ERROR, .str = (char *)"NOPERM no", .len = 9 };
	redisReply *const *removed;
	size_t n;

	ck_assert_int_eq(reapcall_parse(&e, &removed, &n), REAPCALL_REFUSED);
	ck_assert_uint_eq(n, 0);
}
END_TEST

START_TEST(bad_shapes_are_malformed)
{
	redisReply i = { .type = REDIS_REPLY_INTEGER, .integer = 1 };
	struct fake f;
	redisReply *const *removed;
	size_t n;

	ck_assert_int_eq(reapcall_parse(&i, &removed, &n), REAPCALL_MALFORMED);
	fake_init(&f);
	fake_int(&f, 1);
	ck_assert_int_eq(reapcall_parse(&f.top, &removed, &n), REAPCALL_MALFORMED);
	fake_int(&f, 0);
	ck_assert_int_eq(reapcall_parse(&f.top, &removed, &n), REAPCALL_MALFORMED);
	fake_int(&f, 2);	/* two removed, none listed */
	ck_assert_int_eq(reapcall_parse(&f.top, &removed, &n), REAPCALL_MALFORMED);
	fake_init(&f);
	fake_str(&f, "1");
	fake_int(&f, 0);
	fake_int(&f, 0);
	ck_assert_int_eq(reapcall_parse(&f.top, &removed, &n), REAPCALL_MALFORMED);
}
END_TEST

START_TEST(malformed_keeps_the_ids_before_the_fault)
{
	struct fake f;
	redisReply *const *removed;
	size_t n;

	fake_init(&f);
	fake_int(&f, 1);
	fake_int(&f, 2);
	fake_int(&f, 2);
	fake_str(&f, "alice");
	fake_int(&f, 7);
	ck_assert_int_eq(reapcall_parse(&f.top, &removed, &n), REAPCALL_MALFORMED);
	ck_assert_uint_eq(n, 1);
	ck_assert_str_eq(removed[0]->str, "alice");
}
END_TEST

/* reap.lua's header and body use the slots reapcall.h names. */
START_TEST(script_layout_matches_the_c_slots)
{
	char want[80];

	snprintf(want, sizeof(want), "-- KEYS[%d]    online set", REAP_KEY_ONLINE + 1);
	ck_assert_ptr_nonnull(strstr(script_reap, want));
	snprintf(want, sizeof(want), "-- KEYS[%d]    leader lock", REAP_KEY_LOCK + 1);
	ck_assert_ptr_nonnull(strstr(script_reap, want));
	snprintf(want, sizeof(want), "-- KEYS[%d]    event stream", REAP_KEY_STREAM + 1);
	ck_assert_ptr_nonnull(strstr(script_reap, want));
	snprintf(want, sizeof(want), "-- KEYS[%d..]  socket set", REAP_KEY_SOCKETS + 1);
	ck_assert_ptr_nonnull(strstr(script_reap, want));
	snprintf(want, sizeof(want), "-- ARGV[%d]    our leader token", REAP_ARG_TOKEN + 1);
	ck_assert_ptr_nonnull(strstr(script_reap, want));
	snprintf(want, sizeof(want), "-- ARGV[%d]    event mode", REAP_ARG_MODE + 1);
	ck_assert_ptr_nonnull(strstr(script_reap, want));
	snprintf(want, sizeof(want), "-- ARGV[%d]    publish channel", REAP_ARG_CHANNEL + 1);
	ck_assert_ptr_nonnull(strstr(script_reap, want));
	snprintf(want, sizeof(want), "-- ARGV[%d]    stream MAXLEN", REAP_ARG_MAXLEN + 1);
	ck_assert_ptr_nonnull(strstr(script_reap, want));
	snprintf(want, sizeof(want), "-- ARGV[%d]    TTL in ms", REAP_ARG_REPAIR + 1);
	ck_assert_ptr_nonnull(strstr(script_reap, want));
	snprintf(want, sizeof(want), "-- ARGV[%d..]  user IDs", REAP_ARG_IDS + 1);
	ck_assert_ptr_nonnull(strstr(script_reap, want));
	snprintf(want, sizeof(want), "local FIRST_ID = %d\n", REAP_ARG_IDS + 1);
	ck_assert_ptr_nonnull(strstr(script_reap, want));
	snprintf(want, sizeof(want), "KEYS[i - %d]", REAP_ARG_IDS - REAP_KEY_SOCKETS);
	ck_assert_ptr_nonnull(strstr(script_reap, want));
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("reapcall");
	TCase *tc = tcase_create("reply");
	TCase *tl = tcase_create("layout");

	tcase_add_test(tc, done_lists_the_removed_not_the_ghosts);
	tcase_add_test(tc, done_with_nothing_removed);
	tcase_add_test(tc, status_zero_is_not_leader);
	tcase_add_test(tc, an_error_reply_is_refused);
	tcase_add_test(tc, bad_shapes_are_malformed);
	tcase_add_test(tc, malformed_keeps_the_ids_before_the_fault);
	tcase_add_test(tl, script_layout_matches_the_c_slots);
	suite_add_tcase(s, tc);
	suite_add_tcase(s, tl);
	return unit_run(s);
}
