/*
 * batchbuf: argument vectors, key bytes and index lists reused from batch
 * to batch, so a pass's memory stays flat however large the online set.
 * Each grows on demand and never shrinks; every function returns 0, or -1
 * when out of memory (the buffer keeps what it had). Pointers handed out
 * stay valid until the next call on the same buffer.
 */
#ifndef PR_BATCHBUF_H
#define PR_BATCHBUF_H

#include <stddef.h>
#include <hiredis/hiredis.h>

#include "keys.h"

/* An argv / argvlen pair for rconn_append, and the bytes of the keys it points at. */
struct batchbuf {
	const char **argv;
	size_t *argvlen;
	size_t nargs;		/* capacity of argv / argvlen */
	char *arena;		/* socket key bytes */
	size_t arenasz;
};

/* IDs and their lengths, pointing into replies the caller owns. */
struct batchbuf_ids {
	const char **ids;
	size_t *lens;
	size_t cap;
};

/* Indexes into a member array. */
struct batchbuf_idx {
	size_t *v;
	size_t n, cap;
};

/* Make *p hold at least want elements of elsz bytes; *cap follows. */
int batchbuf_grow(void **p, size_t *cap, size_t want, size_t elsz);

/* Room for nargs arguments in b's argv / argvlen. */
int batchbuf_reserve(struct batchbuf *b, size_t nargs);

/*
 * Lay the socket keys of ids[0..n) out in b's arena as argv[lead + i], with
 * room for nargs arguments in all.
 */
int batchbuf_keys(struct batchbuf *b, const struct keyfmt *k, const char *const *ids,
    const size_t *lens, size_t n, size_t lead, size_t nargs);

void batchbuf_set(struct batchbuf *b, size_t i, const char *s, size_t len);

void batchbuf_free(struct batchbuf *b);

/*
 * Point v at the strings members[idx[i]] (members[i] when idx is NULL),
 * i < n. The members must be string replies.
 */
int batchbuf_gather(struct batchbuf_ids *v, redisReply *const *members, const size_t *idx,
    size_t n);

void batchbuf_ids_free(struct batchbuf_ids *v);

/* Append i. */
int batchbuf_push(struct batchbuf_idx *l, size_t i);

void batchbuf_idx_free(struct batchbuf_idx *l);

#endif
