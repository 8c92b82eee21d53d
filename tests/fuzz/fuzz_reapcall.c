/*
 * The reap script's reply (reaper/lua/reap.lua): any bytes through
 * hiredis's reader, each reply judged by reapcall_parse and counted by
 * reapcall_result as a pass does, the removed IDs escaped for the log.
 * Checks reapcall.h's promises: the removed IDs are string replies inside
 * the reply, as many as it says for DONE, none unless DONE or MALFORMED.
 */
#include <stdint.h>
#include <string.h>

#include "fuzz.h"
#include "leader.h"
#include "reapcall.h"
#include "recerr.h"
#include "reconcile.h"
#include "settings.h"

static struct cfg cfg;
static struct leader leader;
static struct reconcile rec;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	cfg_defaults(&cfg);
	leader_init(&leader, cfg.leader_key, cfg.lease, "fuzz", 42);
	reconcile_init(&rec, &cfg, &leader, 0, NULL);
	return 0;
}

static void
check_removed(const redisReply *rep, redisReply *const *removed, size_t n)
{
	if (n == 0)
		return;
	FUZZ_CHECK(rep->type == REDIS_REPLY_ARRAY && rep->elements >= REAP_REPLY_REMOVED + n);
	FUZZ_CHECK(removed == rep->element + REAP_REPLY_REMOVED);
	for (size_t i = 0; i < n; i++) {
		const redisReply *id = removed[i];

		FUZZ_CHECK(id->type == REDIS_REPLY_STRING && id->str[id->len] == '\0');
		FUZZ_CHECK(strlen(recerr_escaped(&rec, id->str, id->len)) <= 4 * id->len);
	}
}

static void
judge(const redisReply *rep, void *arg)
{
	redisReply *const *removed;
	struct reconcile_stats st;
	size_t n;
	enum reapcall_verdict v = reapcall_parse(rep, &removed, &n);
	int rc;

	(void)arg;
	FUZZ_CHECK(v == REAPCALL_DONE || v == REAPCALL_NOT_LEADER || v == REAPCALL_REFUSED ||
	    v == REAPCALL_MALFORMED);
	FUZZ_CHECK(n == 0 || v == REAPCALL_DONE || v == REAPCALL_MALFORMED);
	FUZZ_CHECK(v != REAPCALL_REFUSED || rep->type == REDIS_REPLY_ERROR);
	if (v == REAPCALL_DONE)
		FUZZ_CHECK(rep->element[REAP_REPLY_NREMOVED]->integer == (long long)n);
	check_removed(rep, removed, n);

	memset(&st, 0, sizeof(st));
	rec.err[0] = '\0';
	rc = reapcall_result(&rec, rep, &st);
	FUZZ_CHECK(st.removed == n);
	FUZZ_CHECK((rc == 0) == (v == REAPCALL_DONE));
	FUZZ_CHECK(memchr(rec.err, '\0', sizeof(rec.err)) != NULL);
	FUZZ_CHECK(rc == 0 || rec.err[0] != '\0');
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_replies(data, size, judge, NULL);
	return 0;
}
