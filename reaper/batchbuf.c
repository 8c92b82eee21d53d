#include "batchbuf.h"

#include <stdlib.h>
#include <string.h>

int
batchbuf_grow(void **p, size_t *cap, size_t want, size_t elsz)
{
	void *n;

	if (want <= *cap)
		return 0;
	if ((n = realloc(*p, want * elsz)) == NULL)
		return -1;
	*p = n;
	*cap = want;
	return 0;
}

int
batchbuf_reserve(struct batchbuf *b, size_t nargs)
{
	size_t cap = b->nargs;

	if (batchbuf_grow((void **)&b->argv, &cap, nargs, sizeof(*b->argv)) < 0 ||
	    batchbuf_grow((void **)&b->argvlen, &b->nargs, nargs, sizeof(*b->argvlen)) < 0)
		return -1;
	return 0;
}

int
batchbuf_keys(struct batchbuf *b, const struct keyfmt *k, const char *const *ids,
    const size_t *lens, size_t n, size_t lead, size_t nargs)
{
	size_t need = 0, off = 0;

	for (size_t i = 0; i < n; i++)
		need += keys_socket_len(k, lens[i]);
	if (batchbuf_grow((void **)&b->arena, &b->arenasz, need ? need : 1, 1) < 0 ||
	    batchbuf_reserve(b, nargs) < 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		b->argv[lead + i] = b->arena + off;
		b->argvlen[lead + i] = keys_socket(k, b->arena + off, ids[i], lens[i]);
		off += b->argvlen[lead + i];
	}
	return 0;
}

void
batchbuf_set(struct batchbuf *b, size_t i, const char *s, size_t len)
{
	b->argv[i] = s;
	b->argvlen[i] = len;
}

void
batchbuf_free(struct batchbuf *b)
{
	free(b->argv);
	free(b->argvlen);
	free(b->arena);
	memset(b, 0, sizeof(*b));
}

int
batchbuf_gather(struct batchbuf_ids *v, redisReply *const *members, const size_t *idx,
    size_t n)
{
	size_t cap = v->cap;

	if (batchbuf_grow((void **)&v->ids, &cap, n ? n : 1, sizeof(*v->ids)) < 0 ||
	    batchbuf_grow((void **)&v->lens, &v->cap, n ? n : 1, sizeof(*v->lens)) < 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		const redisReply *m = members[idx ? idx[i] : i];

		v->ids[i] = m->str;
		v->lens[i] = m->len;
	}
	return 0;
}

void
batchbuf_ids_free(struct batchbuf_ids *v)
{
	free(v->ids);
	free(v->lens);
	memset(v, 0, sizeof(*v));
}

int
batchbuf_push(struct batchbuf_idx *l, size_t i)
{
	if (l->n == l->cap &&
	    batchbuf_grow((void **)&l->v, &l->cap, l->cap ? 2 * l->cap : 64, sizeof(*l->v)) < 0)
		return -1;
	l->v[l->n++] = i;
	return 0;
}

void
batchbuf_idx_free(struct batchbuf_idx *l)
{
	free(l->v);
	memset(l, 0, sizeof(*l));
}
