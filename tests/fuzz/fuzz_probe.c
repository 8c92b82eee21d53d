/*
 * The probe script's reply (reaper/lua/probe.lua) for a sample of n
 * members (the first two input bytes, 1..1024; the rest is the reply):
 * the checks guard.c makes before it trusts a reply, then its use of the
 * ghost indexes, members[index - 1], on an array of exactly n members, so
 * that an index let through out of range is an overflow the sanitizer
 * sees.
 */
#include <stdint.h>
#include <stdlib.h>

#include "fuzz.h"
#include "guard.h"

static void
judge(const redisReply *rep, void *arg)
{
	size_t n = *(const size_t *)arg;
	const redisReply **members;
	size_t ghosts = 0;

	/* As probe_script: an array led by the count of missing sets. */
	if (rep->type != REDIS_REPLY_ARRAY || rep->elements < 1 ||
	    rep->element[0]->type != REDIS_REPLY_INTEGER || !guard_probe_reply_ok(rep, n))
		return;
	members = malloc(n * sizeof(*members));
	FUZZ_CHECK(members != NULL);
	for (size_t i = 0; i < n; i++)
		members[i] = rep;
	for (size_t i = 1; i < rep->elements; i++)
		ghosts += members[rep->element[i]->integer - 1] == rep;
	FUZZ_CHECK(ghosts == rep->elements - 1);
	free(members);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t n;

	if (size < 2)
		return 0;
	n = ((size_t)data[0] << 8 | data[1]) % 1024 + 1;
	fuzz_replies(data + 2, size - 2, judge, &n);
	return 0;
}
