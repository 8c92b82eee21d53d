/*
 * What every Check suite here shares: running a suite to an exit status,
 * and decoding RESP bytes into a reply with hiredis's own reader, as
 * rconn gets replies from Redis.
 */
#ifndef PR_TEST_UNIT_H
#define PR_TEST_UNIT_H

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

/* Run s, free it; EXIT_SUCCESS when every test passed. */
static inline int
unit_run(Suite *s)
{
	SRunner *sr = srunner_create(s);
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

/* The reply in resp[0..len); the caller frees it. */
static inline redisReply *
unit_reply(const char *resp, size_t len)
{
	redisReader *rd = redisReaderCreate();
	void *r = NULL;

	ck_assert_ptr_nonnull(rd);
	ck_assert_int_eq(redisReaderFeed(rd, resp, len), REDIS_OK);
	ck_assert_int_eq(redisReaderGetReply(rd, &r), REDIS_OK);
	ck_assert_ptr_nonnull(r);
	redisReaderFree(rd);
	return r;
}

#endif
