#define _GNU_SOURCE	/* mremap */
#include "calendar.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define CAL_ID_MAX (64 * 1024)	/* longer IDs are left to the pass */
#define CAL_COMPACT_MIN (64 * 1024)
#define CAL_BASE_MARGIN ((int64_t)1 << 30)	/* ms: how far before the base no due may be */

/*
 * The heap and the arena are mappings of their own: they grow by mremap,
 * without a copy or a freed block left behind in the malloc heap, and an
 * emptied calendar gives its pages back at once. NULL: out of memory.
 */
static void *
remap(void *p, size_t old, size_t want)
{
	void *q;

	if (p == NULL)
		q = mmap(NULL, want, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	else
		q = mremap(p, old, want, MREMAP_MAYMOVE);
	return q == MAP_FAILED ? NULL : q;
}

static void
unmap(void *p, size_t sz)
{
	if (p != NULL)
		munmap(p, sz);
}

void
calendar_init(struct calendar *c, size_t cap)
{
	memset(c, 0, sizeof(*c));
	c->cap = cap;
}

void
calendar_clear(struct calendar *c)
{
	unmap(c->heap, c->alloc * sizeof(*c->heap));
	unmap(c->arena, c->arenasz);
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

/*
 * An ID in the arena: its length in one byte, or 0xff and four bytes for
 * 255 and more, then its bytes. The bytes an ID of len takes:
 */
static size_t
id_size(size_t len)
{
	return (len < 0xff ? 1 : 1 + sizeof(uint32_t)) + len;
}

static void
id_put(char *dst, const char *id, size_t len)
{
	uint32_t len32 = (uint32_t)len;

	if (len < 0xff) {
		*dst++ = (char)len;
	} else {
		*dst++ = (char)0xff;
		memcpy(dst, &len32, sizeof(len32));
		dst += sizeof(len32);
	}
	if (len)
		memcpy(dst, id, len);
}

/* The ID at off: its bytes in *id, its length returned. */
static size_t
id_get(const struct calendar *c, uint32_t off, const char **id)
{
	const char *p = c->arena + off;
	uint32_t len = (unsigned char)*p++;

	if (len == 0xff) {
		memcpy(&len, p, sizeof(len));
		p += sizeof(len);
	}
	*id = p;
	return len;
}

/* Copy the live IDs into a fresh arena, leaving the garbage behind. */
static int
compact(struct calendar *c)
{
	size_t live = c->used - c->garbage, sz = live + live / 4 + 4096;
	char *a = remap(NULL, 0, sz);
	size_t at = 0;

	if (a == NULL)
		return -1;
	for (size_t i = 0; i < c->n; i++) {
		const char *id;
		size_t len = id_size(id_get(c, c->heap[i].off, &id));

		memcpy(a + at, c->arena + c->heap[i].off, len);
		c->heap[i].off = (uint32_t)at;
		at += len;
	}
	unmap(c->arena, c->arenasz);
	c->arena = a;
	c->arenasz = sz;
	c->used = at;
	c->garbage = 0;
	return 0;
}

/* More than half the arena is garbage: worth a compaction. */
static int
wasteful(const struct calendar *c)
{
	return c->garbage > CAL_COMPACT_MIN && c->garbage > c->used / 2;
}

static int
room(struct calendar *c, size_t sz)
{
	if (wasteful(c) && compact(c) < 0)
		return -1;
	if (c->used + sz > UINT32_MAX)
		return -1;
	if (c->used + sz > c->arenasz) {
		size_t want = c->arenasz ? c->arenasz + c->arenasz / 2 : 4096;
		char *a;

		while (want < c->used + sz)
			want += want / 2;
		if ((a = remap(c->arena, c->arenasz, want)) == NULL)
			return -1;
		c->arena = a;
		c->arenasz = want;
	}
	if (c->n == c->alloc) {
		size_t want = c->alloc ? c->alloc + c->alloc / 2 : 256;
		struct cal_entry *h = remap(c->heap, c->alloc * sizeof(*h), want * sizeof(*h));

		if (h == NULL)
			return -1;
		c->heap = h;
		c->alloc = want;
	}
	return 0;
}

/*
 * Due times are ms after c->base, which an empty calendar sets 2^30 ms
 * (12 days) before its first entry. After 37 days without ever being
 * empty the base moves up, all entries with it. 0, or -1 when due will
 * not fit (earlier than the base).
 */
static int
rel_due(struct calendar *c, int64_t due, uint32_t *rel)
{
	if (c->n == 0)
		c->base = due - CAL_BASE_MARGIN;
	if (due - c->base > (int64_t)UINT32_MAX && c->heap[0].due > CAL_BASE_MARGIN) {
		uint32_t shift = c->heap[0].due - CAL_BASE_MARGIN;

		for (size_t i = 0; i < c->n; i++)
			c->heap[i].due -= shift;
		c->base += shift;
	}
	if (due < c->base || due - c->base > (int64_t)UINT32_MAX)
		return -1;
	*rel = (uint32_t)(due - c->base);
	return 0;
}

int
calendar_add(struct calendar *c, const char *id, size_t len, int64_t due, int64_t seen_by)
{
	int64_t slack = seen_by - due;
	uint32_t rel;

	if (slack <= 0 || len > CAL_ID_MAX)
		return 0;
	if (c->n >= c->cap) {
		c->refused++;
		return 0;
	}
	if (room(c, id_size(len)) < 0)
		return -1;
	if (rel_due(c, due, &rel) < 0)
		return 0;
	id_put(c->arena + c->used, id, len);
	c->heap[c->n] = (struct cal_entry){ rel, slack > UINT32_MAX ? UINT32_MAX :
	    (uint32_t)slack, (uint32_t)c->used };
	c->used += id_size(len);
	sift_up(c, c->n++);
	return 1;
}

int64_t
calendar_next_due(const struct calendar *c)
{
	return c->n ? c->base + c->heap[0].due : INT64_MAX;
}

int
calendar_pop(struct calendar *c, int64_t now, struct cal_item *it)
{
	const struct cal_entry *e = &c->heap[0];
	const char *id;
	size_t len;

	if (c->n == 0 || c->base + e->due > now)
		return 0;
	len = id_get(c, e->off, &id);
	if ((it->id = malloc(len + 1)) == NULL)
		return -1;
	memcpy(it->id, id, len);
	it->id[len] = '\0';
	it->len = len;
	it->due = c->base + e->due;
	it->seen_by = it->due + e->slack;
	c->garbage += id_size(len);
	c->heap[0] = c->heap[--c->n];
	if (c->n)
		sift_down(c, 0);
	if (c->n == 0)
		calendar_clear(c);	/* the pages go back */
	else if (wasteful(c))
		(void)compact(c);	/* or later, when it can */
	return 1;
}

size_t
calendar_bytes(const struct calendar *c)
{
	return c->alloc * sizeof(*c->heap) + c->arenasz;
}
