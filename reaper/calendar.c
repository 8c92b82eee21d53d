#include "calendar.h"

#include <stdlib.h>
#include <string.h>

#define CAL_ID_MAX (64 * 1024)	/* longer IDs are left to the pass */
#define CAL_COMPACT_MIN (64 * 1024)

void
calendar_init(struct calendar *c, size_t cap)
{
	memset(c, 0, sizeof(*c));
	c->cap = cap;
}

void
calendar_clear(struct calendar *c)
{
	free(c->heap);
	free(c->arena);
	c->heap = NULL;
	c->arena = NULL;
	c->n = c->alloc = 0;
	c->used = c->garbage = c->arenasz = 0;
}

static int
before(const struct cal_entry *a, const struct cal_entry *b)
{
	return a->due < b->due;
}

static void
sift_up(struct calendar *c, size_t i)
{
	struct cal_entry e = c->heap[i];

	while (i > 0 && before(&e, &c->heap[(i - 1) / 2])) {
		c->heap[i] = c->heap[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	c->heap[i] = e;
}

static void
sift_down(struct calendar *c, size_t i)
{
	struct cal_entry e = c->heap[i];

	for (;;) {
		size_t k = 2 * i + 1;

		if (k >= c->n)
			break;
		if (k + 1 < c->n && before(&c->heap[k + 1], &c->heap[k]))
			k++;
		if (!before(&c->heap[k], &e))
			break;
		c->heap[i] = c->heap[k];
		i = k;
	}
	c->heap[i] = e;
}

static uint32_t
id_len(const struct calendar *c, uint32_t off)
{
	uint32_t len;

	memcpy(&len, c->arena + off, sizeof(len));
	return len;
}

/* Copy the live IDs into a fresh arena, leaving the garbage behind. */
static int
compact(struct calendar *c)
{
	char *a = malloc(c->used - c->garbage + 1);
	size_t at = 0;

	if (a == NULL)
		return -1;
	for (size_t i = 0; i < c->n; i++) {
		size_t sz = sizeof(uint32_t) + id_len(c, c->heap[i].off);

		memcpy(a + at, c->arena + c->heap[i].off, sz);
		c->heap[i].off = (uint32_t)at;
		at += sz;
	}
	free(c->arena);
	c->arena = a;
	c->arenasz = c->used - c->garbage + 1;
	c->used = at;
	c->garbage = 0;
	return 0;
}

static int
room(struct calendar *c, size_t sz)
{
	if (c->garbage > CAL_COMPACT_MIN && c->garbage > c->used / 2 && compact(c) < 0)
		return -1;
	if (c->used + sz > UINT32_MAX)
		return -1;
	if (c->used + sz > c->arenasz) {
		size_t want = c->arenasz ? c->arenasz * 2 : 4096;
		char *a;

		while (want < c->used + sz)
			want *= 2;
		if ((a = realloc(c->arena, want)) == NULL)
			return -1;
		c->arena = a;
		c->arenasz = want;
	}
	if (c->n == c->alloc) {
		size_t want = c->alloc ? c->alloc * 2 : 256;
		struct cal_entry *h = realloc(c->heap, want * sizeof(*h));

		if (h == NULL)
			return -1;
		c->heap = h;
		c->alloc = want;
	}
	return 0;
}

int
calendar_add(struct calendar *c, const char *id, size_t len, int64_t due, int64_t seen_by)
{
	uint32_t len32 = (uint32_t)len;
	int64_t slack = seen_by - due;

	if (slack <= 0 || len > CAL_ID_MAX)
		return 0;
	if (c->n >= c->cap) {
		c->refused++;
		return 0;
	}
	if (room(c, sizeof(len32) + len) < 0)
		return -1;
	memcpy(c->arena + c->used, &len32, sizeof(len32));
	if (len)
		memcpy(c->arena + c->used + sizeof(len32), id, len);
	c->heap[c->n] = (struct cal_entry){ due, slack > UINT32_MAX ? UINT32_MAX :
	    (uint32_t)slack, (uint32_t)c->used };
	c->used += sizeof(len32) + len;
	sift_up(c, c->n++);
	return 1;
}

int64_t
calendar_next_due(const struct calendar *c)
{
	return c->n ? c->heap[0].due : INT64_MAX;
}

int
calendar_pop(struct calendar *c, int64_t now, struct cal_item *it)
{
	const struct cal_entry *e = &c->heap[0];
	uint32_t len;

	if (c->n == 0 || e->due > now)
		return 0;
	len = id_len(c, e->off);
	if ((it->id = malloc(len + 1)) == NULL)
		return -1;
	memcpy(it->id, c->arena + e->off + sizeof(len), len);
	it->id[len] = '\0';
	it->len = len;
	it->due = e->due;
	it->seen_by = e->due + e->slack;
	c->garbage += sizeof(len) + len;
	c->heap[0] = c->heap[--c->n];
	if (c->n)
		sift_down(c, 0);
	if (c->n == 0) {
		c->used = c->garbage = 0;	/* nothing lives in the arena */
	}
	return 1;
}

size_t
calendar_bytes(const struct calendar *c)
{
	return c->alloc * sizeof(*c->heap) + c->arenasz;
}
