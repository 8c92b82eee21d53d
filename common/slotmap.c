#include "slotmap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "escape.h"

void
slotmap_init(struct slotmap *m)
{
	m->nodes = NULL;
	m->nnodes = 0;
	for (unsigned i = 0; i < SLOT_COUNT; i++)
		m->owner[i] = -1;
}

void
slotmap_free(struct slotmap *m)
{
	free(m->nodes);
	slotmap_init(m);
}

static int
is_int(const redisReply *r)
{
	return r != NULL && r->type == REDIS_REPLY_INTEGER;
}

/*
 * A node entry, [host, port, id, ...], into n. An empty, "?" or nil host
 * is the seed's. -1 on a bad shape.
 */
static int
parse_node(const redisReply *e, const char *seed_host, struct slotmap_node *n)
{
	const redisReply *h;

	if (e->type != REDIS_REPLY_ARRAY || e->elements < 2 || !is_int(e->element[1]) ||
	    e->element[1]->integer <= 0 || e->element[1]->integer > 65535)
		return -1;
	h = e->element[0];
	if (h->type == REDIS_REPLY_NIL || (h->type == REDIS_REPLY_STRING &&
	    (h->len == 0 || (h->len == 1 && h->str[0] == '?'))))
		h = NULL;
	else if (h->type != REDIS_REPLY_STRING || h->len >= RURL_HOST_MAX ||
	    memchr(h->str, '\0', h->len) != NULL)
		return -1;
	snprintf(n->host, sizeof(n->host), "%s", h ? h->str : seed_host);
	n->port = (int)e->element[1]->integer;
	return 0;
}

/* The index of n in the node list, added when new; -1 out of memory. */
static int
node_index(struct slotmap_node **nodes, size_t *nnodes, const struct slotmap_node *n)
{
	struct slotmap_node *grown;

	for (size_t i = 0; i < *nnodes; i++)
		if ((*nodes)[i].port == n->port && strcmp((*nodes)[i].host, n->host) == 0)
			return (int)i;
	if (*nnodes >= SLOT_COUNT ||
	    (grown = realloc(*nodes, (*nnodes + 1) * sizeof(*grown))) == NULL)
		return -1;
	*nodes = grown;
	grown[*nnodes] = *n;
	return (int)(*nnodes)++;
}

/* One [start, end, primary, replicas...] range into owner[]. */
static int
parse_range(const redisReply *e, const char *seed_host, struct slotmap_node **nodes,
    size_t *nnodes, short *owner, char *err, size_t errlen)
{
	struct slotmap_node n;
	long long lo, hi;
	int idx;

	if (e->type != REDIS_REPLY_ARRAY || e->elements < 3 || !is_int(e->element[0]) ||
	    !is_int(e->element[1])) {
		snprintf(err, errlen, "CLUSTER SLOTS: malformed slot range");
		return -1;
	}
	lo = e->element[0]->integer;
	hi = e->element[1]->integer;
	if (lo < 0 || hi < lo || hi >= SLOT_COUNT) {
		snprintf(err, errlen, "CLUSTER SLOTS: slot range %lld-%lld out of bounds", lo, hi);
		return -1;
	}
	if (parse_node(e->element[2], seed_host, &n) < 0) {
		snprintf(err, errlen, "CLUSTER SLOTS: malformed node for slots %lld-%lld", lo, hi);
		return -1;
	}
	if ((idx = node_index(nodes, nnodes, &n)) < 0) {
		snprintf(err, errlen, "CLUSTER SLOTS: out of memory");
		return -1;
	}
	for (long long s = lo; s <= hi; s++)
		owner[s] = (short)idx;
	return 0;
}

int
slotmap_parse(struct slotmap *m, const redisReply *rep, const char *seed_host, char *err,
    size_t errlen)
{
	struct slotmap_node *nodes = NULL;
	size_t nnodes = 0;
	short *owner;
	char esc[160];

	if (rep->type == REDIS_REPLY_ERROR) {
		escape_ctl(esc, sizeof(esc), rep->str, rep->len);
		snprintf(err, errlen, "CLUSTER SLOTS: %s", esc);
		return -1;
	}
	if (rep->type != REDIS_REPLY_ARRAY) {
		snprintf(err, errlen, "CLUSTER SLOTS: not an array");
		return -1;
	}
	if ((owner = malloc(sizeof(m->owner))) == NULL) {
		snprintf(err, errlen, "CLUSTER SLOTS: out of memory");
		return -1;
	}
	for (unsigned i = 0; i < SLOT_COUNT; i++)
		owner[i] = -1;
	for (size_t i = 0; i < rep->elements; i++)
		if (parse_range(rep->element[i], seed_host, &nodes, &nnodes, owner, err,
		    errlen) < 0)
			goto fail;
	free(m->nodes);
	m->nodes = nodes;
	m->nnodes = nnodes;
	memcpy(m->owner, owner, sizeof(m->owner));
	free(owner);
	return 0;
fail:
	free(nodes);
	free(owner);
	return -1;
}

const struct slotmap_node *
slotmap_node(const struct slotmap *m, unsigned slot)
{
	if (slot >= SLOT_COUNT || m->owner[slot] < 0)
		return NULL;
	return &m->nodes[m->owner[slot]];
}

unsigned
slotmap_covered(const struct slotmap *m)
{
	unsigned n = 0;

	for (unsigned i = 0; i < SLOT_COUNT; i++)
		n += m->owner[i] >= 0;
	return n;
}

/* "<slot> <host>:<port>" after the code; the host may be empty or [v6]. */
static int
parse_target(const char *s, size_t len, unsigned *slot, struct slotmap_node *to)
{
	char buf[RURL_HOST_MAX + 32], *sp, *colon, *end;
	unsigned long v;
	size_t hl;

	if (len >= sizeof(buf) || memchr(s, '\0', len) != NULL)
		return -1;
	memcpy(buf, s, len);
	buf[len] = '\0';
	v = strtoul(buf, &sp, 10);
	if (sp == buf || *sp != ' ' || v >= SLOT_COUNT)
		return -1;
	if ((colon = strrchr(sp + 1, ':')) == NULL)
		return -1;
	hl = (size_t)(colon - (sp + 1));
	if (hl >= 2 && sp[1] == '[' && colon[-1] == ']') {
		sp++;
		hl -= 2;
	}
	if (hl >= sizeof(to->host))
		return -1;
	memcpy(to->host, sp + 1, hl);
	to->host[hl] = '\0';
	to->port = (int)strtol(colon + 1, &end, 10);
	if (end == colon + 1 || *end != '\0' || to->port <= 0 || to->port > 65535)
		return -1;
	*slot = (unsigned)v;
	return 0;
}

enum slotmap_redirect
slotmap_redirect(const char *text, size_t len, unsigned *slot, struct slotmap_node *to)
{
	if (len > 6 && memcmp(text, "MOVED ", 6) == 0)
		return parse_target(text + 6, len - 6, slot, to) == 0 ? SLOTMAP_MOVED : SLOTMAP_NONE;
	if (len > 4 && memcmp(text, "ASK ", 4) == 0)
		return parse_target(text + 4, len - 4, slot, to) == 0 ? SLOTMAP_ASK : SLOTMAP_NONE;
	return SLOTMAP_NONE;
}
