/*
 * The scan script's reply (reaper/lua/scan.lua, reaper.track_expiry): any
 * bytes through hiredis's reader, each reply split by track_scan_parse
 * and, when it holds members, judged by track_scan_judge as the pass does
 * (stale and ghosts counted, the rest into the expiry calendar), on a
 * fresh struct reconcile each time, so the calendar starts empty. No
 * connection: parse and judge only read the reply and the calendar.
 */
#include <stdint.h>
#include <string.h>

#include "batchbuf.h"
#include "fuzz.h"
#include "reconcile.h"
#include "settings.h"
#include "track.h"

static struct cfg cfg;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	cfg_defaults(&cfg);
	cfg.track_expiry = 1;
	return 0;
}

/* What a successful parse promises: the reply's own parts, each of its type and range. */
static void
check_parsed(const struct reconcile *r, const redisReply *rep, const char *cursor,
    const redisReply *ids)
{
	const redisReply *ttls;

	FUZZ_CHECK(rep->type == REDIS_REPLY_ARRAY && rep->elements == 4);
	ttls = rep->element[3];
	FUZZ_CHECK(cursor == rep->element[0]->str && ids == rep->element[2]);
	FUZZ_CHECK(ids->type == REDIS_REPLY_ARRAY && ttls->elements == ids->elements);
	for (size_t i = 0; i < ids->elements; i++)
		FUZZ_CHECK(ids->element[i]->type == REDIS_REPLY_STRING &&
		    ttls->element[i]->type == REDIS_REPLY_INTEGER &&
		    ttls->element[i]->integer >= -2 && ttls->element[i]->integer < r->horizon);
}

static void
judge(const redisReply *rep, void *arg)
{
	struct reconcile r;
	struct reconcile_stats st;
	struct batchbuf_idx cand = { 0 };
	const char *cursor;
	redisReply *ids;
	long long scanned;

	(void)arg;
	reconcile_init(&r, &cfg, NULL, 0, NULL);
	r.tracking = 1;
	r.horizon = track_horizon(&cfg, 2.0, 0);
	memset(&st, 0, sizeof(st));
	if (track_scan_parse(&r, rep, &cursor, &ids, &scanned) != 0) {
		FUZZ_CHECK(r.err[0] != '\0');
	} else {
		check_parsed(&r, rep, cursor, ids);
		if (scanned > 0 && track_scan_judge(&r, rep, &cand, &st) == 0) {
			FUZZ_CHECK(cand.n <= ids->elements && st.stale <= ids->elements);
			FUZZ_CHECK(r.cal.n <= ids->elements);
			for (size_t i = 0; i < cand.n; i++)
				FUZZ_CHECK(cand.v[i] < ids->elements);
		}
	}
	batchbuf_idx_free(&cand);
	reconcile_free(&r);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_replies(data, size, judge, NULL);
	return 0;
}
