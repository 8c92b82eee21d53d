/*
 * The last pass's summary as --status reads it (HGETALL of the status
 * hash, lastpass.c): any reply through hiredis's reader into
 * lastpass_parse. What it keeps from Redis for printing (the result, the
 * token that wrote it) must come out escaped: no byte below 0x20, none
 * above 0x7e, NUL-terminated within its buffer.
 */
#include <stdint.h>
#include <string.h>

#include "fuzz.h"
#include "lastpass.h"

static void
printable(const char *s, size_t size)
{
	size_t n = strnlen(s, size);

	FUZZ_CHECK(n < size);
	for (size_t i = 0; i < n; i++)
		FUZZ_CHECK((unsigned char)s[i] >= 0x20 && (unsigned char)s[i] < 0x7f);
}

static void
judge(const redisReply *rep, void *arg)
{
	struct lastpass_view v;

	(void)arg;
	if (lastpass_parse(rep, &v) < 0)
		return;
	printable(v.result, sizeof(v.result));
	printable(v.by, sizeof(v.by));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_replies(data, size, judge, NULL);
	return 0;
}
