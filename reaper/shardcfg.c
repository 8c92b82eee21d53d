#include "shardcfg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keyslot.h"
#include "slot.h"

int
shardset_init(struct shardset *s, const struct cfg *c)
{
	const char *v = c->shards;
	size_t len = strlen(v), n = 0;
	int list = len > 0 && v[len - 1] == ',';

	memset(s, 0, sizeof(*s));
	if (list)
		for (const char *p = v; *p; p++)
			n += *p == ',';
	else
		n = (size_t)strtoul(v, NULL, 10);
	if (n == 0)
		return 0;
	if ((s->names = calloc(n, sizeof(*s->names))) == NULL)
		return -1;
	s->n = n;
	for (size_t i = 0; i < n; i++) {
		if (!list) {
			snprintf(s->names[i], sizeof(s->names[i]), "%zu", i);
			continue;
		}
		snprintf(s->names[i], sizeof(s->names[i]), "%.*s", (int)strcspn(v, ","), v);
		v = strchr(v, ',') + 1;
	}
	return 0;
}

void
shardset_free(struct shardset *s)
{
	free(s->names);
	memset(s, 0, sizeof(*s));
}

char *
shardcfg_expand(const char *tmpl, const char *name)
{
	size_t ph = strlen(SHARD_PLACEHOLDER), n = 0, o = 0;
	char *out;

	for (const char *p = tmpl; (p = strstr(p, SHARD_PLACEHOLDER)) != NULL; p += ph)
		n++;
	if ((out = malloc(strlen(tmpl) + n * strlen(name) + 1)) == NULL)
		return NULL;
	while (*tmpl) {
		if (strncmp(tmpl, SHARD_PLACEHOLDER, ph) == 0) {
			memcpy(out + o, name, strlen(name));
			o += strlen(name);
			tmpl += ph;
		} else {
			out[o++] = *tmpl++;
		}
	}
	out[o] = '\0';
	return out;
}

static int
has_ph(const char *s)
{
	return strstr(s, SHARD_PLACEHOLDER) != NULL;
}

/* The settings that may name the shard, and whether a sharded layout must. */
struct templ {
	const char *setting;
	char **field;
	int must;
};

static size_t
templates(struct cfg *c, struct templ *t)
{
	int stream = strcmp(c->events_mode, "stream") == 0;
	size_t n = 0;

	t[n++] = (struct templ){ "keys.online_set", &c->online_set, 1 };
	t[n++] = (struct templ){ "keys.socket_prefix", &c->socket_prefix, 0 };
	t[n++] = (struct templ){ "keys.socket_suffix", &c->socket_suffix, 0 };
	t[n++] = (struct templ){ "leader.key", &c->leader_key, 1 };
	t[n++] = (struct templ){ "events.stream", &c->events_stream, stream };
	t[n++] = (struct templ){ "events.channel", &c->events_channel, 0 };
	return n;
}

/*
 * "FILE:LINE: " of setting (group.name) when a file set it, else of
 * keys.shards (a default that the shards make wrong), else "".
 */
static const char *
at(const struct cfg *c, const char *setting, char *buf, size_t sz)
{
	char group[16];
	size_t g = strcspn(setting, ".");

	snprintf(group, sizeof(group), "%.*s", (int)g, setting);
	cfg_origin(c, group, setting + g + 1, buf, sz);
	if (buf[0] == '\0')
		cfg_origin(c, "keys", "shards", buf, sz);
	if (buf[0])
		strncat(buf, ": ", sz - strlen(buf) - 1);
	return buf;
}

/* Without keys.shards no template may name a shard; with it, some must. */
static int
check_templates(struct cfg *c, size_t nshards, char *err, size_t errlen)
{
	struct templ t[8];
	size_t n = templates(c, t);
	char w[4200];
	int bad = 0;

	for (size_t i = 0; i < n; i++) {
		if (!nshards && has_ph(*t[i].field)) {
			conftab_errf(err, errlen, "%s%s \"%s\" names %s, but keys.shards is not set",
			    at(c, t[i].setting, w, sizeof(w)), t[i].setting, *t[i].field,
			    SHARD_PLACEHOLDER);
			bad = 1;
		} else if (nshards && t[i].must && !has_ph(*t[i].field)) {
			conftab_errf(err, errlen, "%s%s \"%s\" must name %s with keys.shards: each "
			    "shard has its own", at(c, t[i].setting, w, sizeof(w)), t[i].setting,
			    *t[i].field, SHARD_PLACEHOLDER);
			bad = 1;
		}
	}
	if (has_ph(c->members_key)) {
		conftab_errf(err, errlen, "%sleader.members_key \"%s\": one key for all the "
		    "shards, so it may not name %s", at(c, "leader.members_key", w, sizeof(w)),
		    c->members_key, SHARD_PLACEHOLDER);
		bad = 1;
	}
	if (nshards && c->watch_expiry) {
		conftab_errf(err, errlen, "%sreaper.watch_expiry works with one online set; with "
		    "keys.shards the periodic pass reaps: set it to false",
		    at(c, "reaper.watch_expiry", w, sizeof(w)));
		bad = 1;
	}
	return bad;
}

/* On a Cluster: each shard's keys in one slot, checked shard by shard. */
static int
check_slots(const struct cfg *c, const struct shardset *s, char *err, size_t errlen)
{
	for (size_t i = 0; i < s->n; i++) {
		struct cfg one;
		unsigned slot;
		int rc;

		if (shardcfg_make(c, s->names[i], &one) < 0)
			return -1;
		rc = keyslot_check(&one, &slot, err + strlen(err), errlen - strlen(err));
		cfg_free(&one);
		if (rc < 0) {
			conftab_errf(err, errlen, "  (shown for shard \"%s\"; %s in a template "
			    "belongs inside the hash tag: \"{%s}\")", s->names[i],
			    SHARD_PLACEHOLDER, SHARD_PLACEHOLDER);
			return -1;
		}
	}
	return 0;
}

int
shardcfg_check(struct cfg *c, char *err, size_t errlen)
{
	struct shardset s;
	int bad;

	if (shardset_init(&s, c) < 0) {
		conftab_errf(err, errlen, "keys.shards: out of memory");
		return -1;
	}
	bad = check_templates(c, s.n, err, errlen);
	if (!bad && s.n && c->members_key[0] == '\0') {
		char *k = shardcfg_expand(c->leader_key, "members");

		if (k == NULL)
			abort();
		cfg_set_string(&c->members_key, k);
		free(k);
	}
	if (!bad && s.n && c->url.is_cluster && check_slots(c, &s, err, errlen) < 0)
		bad = 1;
	/* The main connection of a sharded replica serves the membership key. */
	if (!bad && s.n && c->url.is_cluster)
		c->cluster_slot = slot_of(c->members_key, strlen(c->members_key));
	shardset_free(&s);
	return bad ? -1 : 0;
}

int
shardcfg_make(const struct cfg *c, const char *name, struct cfg *out)
{
	struct templ t[8];
	size_t n;

	cfg_copy(out, c);
	n = templates(out, t);
	for (size_t i = 0; i < n; i++) {
		char *v = shardcfg_expand(*t[i].field, name);

		if (v == NULL) {
			cfg_free(out);
			return -1;
		}
		free(*t[i].field);
		*t[i].field = v;
	}
	/* Every key of the shard is in the online set's slot: shardcfg_check says so. */
	if (out->url.is_cluster)
		out->cluster_slot = slot_of(out->online_set, strlen(out->online_set));
	return 0;
}
