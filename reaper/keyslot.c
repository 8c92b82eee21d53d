#include "keyslot.h"

#include <stdio.h>
#include <string.h>

#include "conftab.h"
#include "slot.h"

/* A key the reap script touches, by the setting that names it. */
struct named_key {
	const char *setting;
	const char *key;
};

void
keyslot_tagged(const char *key, const char *word, char *out, size_t outsz)
{
	size_t wl = strlen(word);

	if (strncmp(key, word, wl) == 0 && key[wl] == ':')
		snprintf(out, outsz, "{%s}%s", word, key + wl);
	else
		snprintf(out, outsz, "{%s}:%s", word, key);
}

/* Whether prefix holds a whole hash tag, so every key that starts with it shares its slot. */
static int
prefix_fixes_slot(const char *prefix)
{
	const char *tag;

	return slot_hashed_part(prefix, strlen(prefix), &tag) < strlen(prefix);
}

/* The first ':'-separated part of the online set's name, braces left out. */
static void
tag_word(const char *online, char *out, size_t outsz)
{
	size_t n = strcspn(online, ":{}");

	if (n == 0)
		snprintf(out, outsz, "presence");
	else
		snprintf(out, outsz, "%.*s", (int)n, online);
}

/* The explanation and the suggested layout, after the first line already in err. */
static void
suggest(const struct cfg *c, int stream, char *err, size_t errlen)
{
	char word[64], k[4][512];

	tag_word(c->online_set, word, sizeof(word));
	keyslot_tagged(c->online_set, word, k[0], sizeof(k[0]));
	keyslot_tagged(c->socket_prefix, word, k[1], sizeof(k[1]));
	keyslot_tagged(c->leader_key, word, k[2], sizeof(k[2]));
	keyslot_tagged(c->events_stream, word, k[3], sizeof(k[3]));
	conftab_errf(err, errlen, "  On a Redis Cluster only the part of a key between the first "
	    "'{' and the next '}' (its hash tag) is hashed. Give every key the same tag, e.g.:");
	conftab_errf(err, errlen, "    keys.online_set = \"%s\";", k[0]);
	conftab_errf(err, errlen, "    keys.socket_prefix = \"%s\";", k[1]);
	conftab_errf(err, errlen, "    leader.key = \"%s\";", k[2]);
	if (stream)
		conftab_errf(err, errlen, "    events.stream = \"%s\";", k[3]);
	conftab_errf(err, errlen, "  and have the realtime servers use the same key names.");
}

int
keyslot_check(const struct cfg *c, unsigned *slot, char *err, size_t errlen)
{
	int stream = strcmp(c->events_mode, "stream") == 0;
	const struct named_key keys[] = {
		{ "leader.key", c->leader_key },
		{ "keys.socket_prefix", c->socket_prefix },
		{ "events.stream", stream ? c->events_stream : NULL },
	};
	unsigned want = slot_of(c->online_set, strlen(c->online_set));

	err[0] = '\0';
	if (!prefix_fixes_slot(c->socket_prefix)) {
		conftab_errf(err, errlen, "keys.socket_prefix \"%s\" holds no hash tag, so each "
		    "user's socket set lands in a slot of its own, and the reap script, which "
		    "touches them with keys.online_set, would fail with CROSSSLOT.",
		    c->socket_prefix);
		suggest(c, stream, err, errlen);
		return -1;
	}
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		unsigned s;

		if (keys[i].key == NULL ||
		    (s = slot_of(keys[i].key, strlen(keys[i].key))) == want)
			continue;
		conftab_errf(err, errlen, "%s \"%s\" is in hash slot %u and keys.online_set "
		    "\"%s\" in slot %u: one script touches both, which a Redis Cluster refuses "
		    "(CROSSSLOT).", keys[i].setting, keys[i].key, s, c->online_set, want);
		suggest(c, stream, err, errlen);
		return -1;
	}
	*slot = want;
	return 0;
}
