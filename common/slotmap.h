/*
 * slotmap: which Cluster primary serves which hash slot, read from a
 * CLUSTER SLOTS reply, and the MOVED / ASK redirections that say the map
 * is out of date. Parses replies only; it never talks to a server, so the
 * connection layer can use it and unit tests can feed it replies.
 */
#ifndef PR_SLOTMAP_H
#define PR_SLOTMAP_H

#include <stddef.h>
#include <hiredis/hiredis.h>

#include "rurl.h"
#include "slot.h"

struct slotmap_node {
	char host[RURL_HOST_MAX];
	int port;
};

struct slotmap {
	struct slotmap_node *nodes;	/* the primaries, each once */
	size_t nnodes;
	short owner[SLOT_COUNT];	/* index into nodes, -1: no owner */
};

void slotmap_init(struct slotmap *m);
void slotmap_free(struct slotmap *m);

/*
 * Replace m with the map in a CLUSTER SLOTS reply. seed_host is the host
 * the command was sent to: a node announced with an empty or unknown
 * ("?" or nil) address is reached there, on its own port. Returns 0, or
 * -1 with the reason in err (what Redis sent is escaped) and m unchanged.
 */
int slotmap_parse(struct slotmap *m, const redisReply *rep, const char *seed_host,
    char *err, size_t errlen);

/* The primary that serves slot, or NULL when no node owns it. */
const struct slotmap_node *slotmap_node(const struct slotmap *m, unsigned slot);

/* Slots that have an owner. 16384 when the whole space is covered. */
unsigned slotmap_covered(const struct slotmap *m);

enum slotmap_redirect {
	SLOTMAP_NONE,		/* not a redirection */
	SLOTMAP_MOVED,		/* the slot lives elsewhere now: refresh the map */
	SLOTMAP_ASK,		/* this once, ask there after ASKING: keep the map */
};

/*
 * Whether an error reply is "MOVED <slot> <host>:<port>" or "ASK ...".
 * With a redirection, *slot and *to are set (host may be empty: the same
 * host as the connection, on that port). A malformed one is SLOTMAP_NONE.
 */
enum slotmap_redirect slotmap_redirect(const char *text, size_t len, unsigned *slot,
    struct slotmap_node *to);

#endif
