/*
 * Key-expiry messages (reaper/watch.c): any bytes through hiredis's
 * reader, as the subscriber connection reads them, each reply asked for
 * its user by watch_message_user under one of a few key layouts (the first
 * input byte; an empty prefix or suffix too). Checks watch.h's promise:
 * the ID lies inside the key of a ["message", channel, key] reply, between
 * the prefix and the suffix.
 */
#include <stdint.h>
#include <string.h>

#include "escape.h"
#include "fuzz.h"
#include "keys.h"
#include "watch.h"

static const char *const layouts[][2] = {
	{ "presence:user:", ":sockets" },
	{ "{presence}:user:", ":sockets" },
	{ "", "" },
	{ "s:", "" },
	{ "", ":s" },
	{ "ab", "ba" },
};
#define NLAYOUTS (sizeof(layouts) / sizeof(layouts[0]))

static void
judge(const redisReply *rep, void *arg)
{
	const struct keyfmt *k = arg;
	const redisReply *key;
	const char *id;
	size_t idlen;
	char esc[256];

	if (watch_message_user(rep, k, &id, &idlen) != 0)
		return;
	FUZZ_CHECK(rep->type == REDIS_REPLY_ARRAY && rep->elements == 3);
	FUZZ_CHECK(rep->element[0]->type == REDIS_REPLY_STRING &&
	    strcmp(rep->element[0]->str, "message") == 0);
	key = rep->element[2];
	FUZZ_CHECK(key->type == REDIS_REPLY_STRING);
	FUZZ_CHECK(keys_socket_len(k, idlen) == key->len && id == key->str + k->prefix_len);
	FUZZ_CHECK(memcmp(key->str, k->prefix, k->prefix_len) == 0);
	FUZZ_CHECK(memcmp(id + idlen, k->suffix, k->suffix_len) == 0);
	/* As the daemon logs the user it queues. */
	FUZZ_CHECK(escape_id(esc, sizeof(esc), id, idlen) <= 4 * idlen);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct keyfmt k;

	if (size < 1)
		return 0;
	keys_init(&k, layouts[data[0] % NLAYOUTS][0], layouts[data[0] % NLAYOUTS][1]);
	fuzz_replies(data + 1, size - 1, judge, &k);
	return 0;
}
