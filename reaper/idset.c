#include "idset.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct idset_entry {
	struct idset_entry *next;
	size_t len;
	char id[];
};

static uint64_t
fnv1a(const char *s, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)s[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

void
idset_init(struct idset *s)
{
	memset(s, 0, sizeof(*s));
}

static int
grow(struct idset *s)
{
	size_t n = s->nslots ? s->nslots * 2 : 64;
	struct idset_entry **slots = calloc(n, sizeof(*slots));

	if (slots == NULL)
		return -1;
	for (size_t i = 0; i < s->nslots; i++) {
		struct idset_entry *e = s->slots[i], *next;

		for (; e; e = next) {
			size_t b = fnv1a(e->id, e->len) & (n - 1);

			next = e->next;
			e->next = slots[b];
			slots[b] = e;
		}
	}
	free(s->slots);
	s->slots = slots;
	s->nslots = n;
	return 0;
}

int
idset_add(struct idset *s, const char *id, size_t len)
{
	struct idset_entry *e;
	size_t b;

	if (s->count >= s->nslots && grow(s) < 0)
		return -1;
	b = fnv1a(id, len) & (s->nslots - 1);
	for (e = s->slots[b]; e; e = e->next)
		if (e->len == len && memcmp(e->id, id, len) == 0)
			return 0;
	if ((e = malloc(sizeof(*e) + len)) == NULL)
		return -1;
	e->len = len;
	memcpy(e->id, id, len);
	e->next = s->slots[b];
	s->slots[b] = e;
	s->count++;
	return 1;
}

void
idset_clear(struct idset *s)
{
	for (size_t i = 0; i < s->nslots; i++) {
		struct idset_entry *e = s->slots[i], *next;

		for (; e; e = next) {
			next = e->next;
			free(e);
		}
	}
	free(s->slots);
	idset_init(s);
}
