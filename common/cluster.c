#include "cluster.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errbuf.h"
#include "escape.h"
#include "rerr.h"

struct cluster {
	int n, cur;		/* known nodes; the one that answered last */
	struct rurl_node known[CLUSTER_KNOWN_MAX];
	struct slotmap map;
	struct slotmap_node owner;
	char owner_addr[4 * RURL_ADDR_MAX];
	char named_by[4 * RURL_ADDR_MAX];
};

struct cluster *
cluster_new(const struct rurl *url)
{
	struct cluster *cl = calloc(1, sizeof(*cl));

	if (cl == NULL)
		return NULL;
	slotmap_init(&cl->map);
	cl->n = url->nhosts;
	memcpy(cl->known, url->hosts, (size_t)url->nhosts * sizeof(cl->known[0]));
	return cl;
}

void
cluster_free(struct cluster *cl)
{
	if (cl == NULL)
		return;
	slotmap_free(&cl->map);
	free(cl);
}

/* "host:port" of a node, escaped: the map's addresses come from the nodes. */
static void
node_addr(const char *host, int port, char *out, size_t outsz)
{
	char raw[RURL_ADDR_MAX];

	rurl_format_addr(host, port, raw, sizeof(raw));
	escape_id(out, outsz, raw, strlen(raw));
}

/* Connect to host:port with data's credentials, TLS and timeouts. */
static struct rconn *
open_node(const struct rconn_opts *data, const char *host, int port, enum rconn_err *kind,
    char *err, size_t errlen)
{
	struct rconn_opts o = *data;
	struct rurl u = *data->url;
	struct rconn *c;

	u.is_cluster = 0;
	u.is_unix = 0;
	u.nhosts = 0;
	snprintf(u.host, sizeof(u.host), "%s", host);
	u.port = port;
	o.url = &u;
	c = rconn_connect(&o, kind, err, errlen);
	explicit_bzero(u.password, sizeof(u.password));
	return c;
}

/* Remember the primaries of a new map as nodes to ask next time. */
static void
learn_nodes(struct cluster *cl, const struct slotmap *m)
{
	for (size_t i = 0; i < m->nnodes && cl->n < CLUSTER_KNOWN_MAX; i++) {
		int known = 0;

		for (int k = 0; k < cl->n && !known; k++)
			known = cl->known[k].port == m->nodes[i].port &&
			    strcmp(cl->known[k].host, m->nodes[i].host) == 0;
		if (known)
			continue;
		memcpy(cl->known[cl->n].host, m->nodes[i].host, sizeof(cl->known[0].host));
		cl->known[cl->n++].port = m->nodes[i].port;
	}
}

/* Node i's map into *m (CLUSTER SLOTS). 0, or -1 with *kind and err. */
static int
ask_map(struct cluster *cl, const struct rconn_opts *data, int i, struct slotmap *m,
    enum rconn_err *kind, char *err, size_t errlen)
{
	struct rconn *c = open_node(data, cl->known[i].host, cl->known[i].port, kind, err,
	    errlen);
	redisReply *r;
	int rc = -1;

	if (c == NULL)
		return -1;
	*kind = RCONN_EPROTO;
	if ((r = rconn_calll(c, "CLUSTER", "SLOTS", NULL)) == NULL)
		snprintf(err, errlen, "CLUSTER SLOTS: %s", rconn_errstr(c));
	else
		rc = slotmap_parse(m, r, cl->known[i].host, err, errlen);
	if (rerr_of(r) == RERR_NOPERM)	/* the ACL user lacks +cluster|slots */
		*kind = RCONN_EAUTH;
	if (r != NULL)
		freeReplyObject(r);
	rconn_close(c);
	return rc;
}

/*
 * The map of the first node, in turn, that names an owner for slot. 0 with
 * cl->map, cl->named_by and cl->cur set; -1 with reasons in err.
 */
static int
load_map(struct cluster *cl, const struct rconn_opts *data, unsigned slot, int *auth,
    char *err, size_t errlen)
{
	char why[300], at[4 * RURL_ADDR_MAX];
	int start = cl->cur, n = cl->n;
	struct slotmap m;
	enum rconn_err kind;

	slotmap_init(&m);
	for (int k = 0; k < n; k++) {
		int i = (start + k) % n;

		why[0] = '\0';
		node_addr(cl->known[i].host, cl->known[i].port, at, sizeof(at));
		if (ask_map(cl, data, i, &m, &kind, why, sizeof(why)) < 0) {
			*auth |= kind == RCONN_EAUTH;
			errbuf_add(err, errlen, "node %s: %s", at, why);
			continue;
		}
		if (slotmap_node(&m, slot) == NULL) {
			snprintf(why, sizeof(why), "slot %u has no owner in its map (%u of %d "
			    "slots covered)", slot, slotmap_covered(&m), SLOT_COUNT);
			errbuf_add(err, errlen, "node %s: %s", at, why);
			continue;
		}
		slotmap_free(&cl->map);
		cl->map = m;
		cl->cur = i;
		memcpy(cl->named_by, at, sizeof(at));
		learn_nodes(cl, &m);
		return 0;
	}
	slotmap_free(&m);
	return -1;
}

struct rconn *
cluster_connect(struct cluster *cl, const struct rconn_opts *data, unsigned slot,
    enum rconn_err *kind, char *err, size_t errlen)
{
	const struct slotmap_node *owner;
	char why[300];
	struct rconn *c;
	int auth = 0;
	size_t n;

	/* The reasons after what they explain, so a full buffer cuts the reasons. */
	snprintf(err, errlen, "no owner found for hash slot %u: ", slot);
	n = strlen(err);
	if (load_map(cl, data, slot, &auth, err + n, errlen - n) < 0) {
		*kind = auth ? RCONN_EAUTH : RCONN_EIO;
		return NULL;
	}
	owner = slotmap_node(&cl->map, slot);
	cl->owner = *owner;
	node_addr(owner->host, owner->port, cl->owner_addr, sizeof(cl->owner_addr));
	if ((c = open_node(data, owner->host, owner->port, kind, why, sizeof(why))) == NULL) {
		snprintf(err, errlen, "hash slot %u: node %s named its owner %s: %s", slot,
		    cl->named_by, cl->owner_addr, why);
		return NULL;
	}
	*kind = RCONN_OK;
	return c;
}

struct rconn *
cluster_ask_connect(struct cluster *cl, const struct rconn_opts *data, const char *text,
    char *err, size_t errlen)
{
	struct slotmap_node to;
	enum rconn_err kind;
	struct rconn *c;
	unsigned slot;

	if (slotmap_redirect(text, strlen(text), &slot, &to) != SLOTMAP_ASK) {
		snprintf(err, errlen, "not an ASK redirection");
		return NULL;
	}
	if (to.host[0] == '\0')
		memcpy(to.host, cl->owner.host, sizeof(to.host));
	if ((c = open_node(data, to.host, to.port, &kind, err, errlen)) != NULL)
		rconn_set_asking(c);
	return c;
}

const struct slotmap_node *
cluster_owner_node(const struct cluster *cl)
{
	return &cl->owner;
}

const char *
cluster_owner(const struct cluster *cl)
{
	return cl->owner_addr;
}

const char *
cluster_named_by(const struct cluster *cl)
{
	return cl->named_by;
}

unsigned
cluster_covered(const struct cluster *cl)
{
	return slotmap_covered(&cl->map);
}

int
cluster_survey(struct cluster *cl, const struct rconn_opts *data,
    struct cluster_answer *out, int max)
{
	int i;

	for (i = 0; i < cl->n && i < max; i++) {
		struct cluster_answer *a = &out[i];
		enum rconn_err kind;
		struct slotmap m;

		memset(a, 0, sizeof(*a));
		slotmap_init(&m);
		node_addr(cl->known[i].host, cl->known[i].port, a->node, sizeof(a->node));
		if (ask_map(cl, data, i, &m, &kind, a->err, sizeof(a->err)) == 0) {
			a->answered = 1;
			a->covered = slotmap_covered(&m);
			a->primaries = m.nnodes;
		}
		slotmap_free(&m);
	}
	return i;
}
