/*
 * cluster: find the Redis Cluster primary that serves one hash slot.
 *
 * Discovery asks the known nodes in turn, starting with the one that
 * answered last, for the slot map (CLUSTER SLOTS): first the seeds of the
 * URL, then every primary an earlier map named, so the reaper still finds
 * its way when the seeds it was started with are gone. The first node
 * whose map gives the slot an owner wins; the reaper then connects to
 * that owner with the data options (credentials, TLS; the name a TLS
 * certificate must carry is the address the map announces unless
 * tls.server_name says otherwise). Seeds are spoken to with the same
 * credentials and TLS as the data nodes: they are nodes of the same
 * Cluster.
 *
 * Everything a node says (addresses, error texts) is escaped before it
 * reaches a message. Knows nothing of presence; never exits; errors are
 * left in the caller's buffer or in the context (cluster_err).
 */
#ifndef PR_CLUSTER_H
#define PR_CLUSTER_H

#include <stddef.h>

#include "rconn.h"
#include "rurl.h"
#include "slotmap.h"

/* Nodes kept to ask for the map: the seeds and the primaries maps named. */
#define CLUSTER_KNOWN_MAX 64

/* One seed's answer, for -t. */
struct cluster_answer {
	char node[4 * RURL_ADDR_MAX];	/* its address, escaped */
	int answered;			/* 1: covered and primaries hold its map */
	unsigned covered;		/* slots with an owner */
	size_t primaries;
	char err[300];			/* why not, escaped */
};

struct cluster;

/* A context for url's seeds (url->hosts); NULL: out of memory. */
struct cluster *cluster_new(const struct rurl *url);
void cluster_free(struct cluster *cl);

/*
 * Load the map (see above) and connect to the primary that serves slot,
 * with data's options (its url gives credentials and TLS; host and port
 * are the owner's). Returns the connection, or NULL with *kind and err:
 * RCONN_EAUTH when a node refused the credentials or CLUSTER SLOTS (an ACL
 * user without +cluster|slots), RCONN_EBUSY when the
 * owner is LOADING or BUSY, RCONN_EIO otherwise (no node answered, no
 * owner for the slot, the owner unreachable); err says what each node
 * tried answered.
 */
struct rconn *cluster_connect(struct cluster *cl, const struct rconn_opts *data,
    unsigned slot, enum rconn_err *kind, char *err, size_t errlen);

/*
 * After cluster_connect: the owner (its node; its address, escaped), the
 * node whose map named it, and how many slots that map covers.
 */
const struct slotmap_node *cluster_owner_node(const struct cluster *cl);
const char *cluster_owner(const struct cluster *cl);
const char *cluster_named_by(const struct cluster *cl);
unsigned cluster_covered(const struct cluster *cl);

/*
 * An ASK reply's text ("ASK <slot> <host>:<port>"): a connection, with
 * data's options, to the node it names (the owner's host when it names
 * none), in asking mode (rconn_set_asking), for the one command that was
 * redirected; the map is kept. NULL with err when text is no ASK or the
 * node cannot be reached.
 */
struct rconn *cluster_ask_connect(struct cluster *cl, const struct rconn_opts *data,
    const char *text, char *err, size_t errlen);

/* -t: ask each seed for its map, with data's options; fill at most max answers. */
int cluster_survey(struct cluster *cl, const struct rconn_opts *data,
    struct cluster_answer *out, int max);

#endif
