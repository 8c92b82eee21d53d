#include "sentinel.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errbuf.h"
#include "escape.h"
#include "rerr.h"

#define SWITCH_CHANNEL "+switch-master"

struct sentinel {
	struct rurl node;	/* the Sentinels' credentials; host and port set per call */
	const struct rtls *tls;	/* node.tls: the context to speak TLS with */
	int n, cur;		/* known Sentinels; the one that answered last */
	struct rurl_node list[RURL_HOSTS_MAX];
	char service[RURL_SERVICE_MAX];
	int connect_timeout_ms, command_timeout_ms;
	char client_name[256];
	int has_client_name;
	struct rconn *sub;	/* +switch-master subscription, or NULL */
	char sub_addr[RURL_ADDR_MAX];
	struct rurl_node primary_node;
	char primary[RURL_ADDR_MAX];
	char named_by[RURL_ADDR_MAX];
	char err[512];
};

/*
 * Addresses come from Sentinels (their own peers, the primary): only
 * host names and IP addresses are used, so nothing else reaches a
 * connection attempt or a message.
 */
static int
host_ok(const char *h, size_t len)
{
	if (len == 0 || len >= RURL_HOST_MAX)
		return 0;
	for (size_t i = 0; i < len; i++)
		if (!(h[i] >= 'a' && h[i] <= 'z') && !(h[i] >= 'A' && h[i] <= 'Z') &&
		    !(h[i] >= '0' && h[i] <= '9') && strchr(".-_:%", h[i]) == NULL)
			return 0;
	return 1;
}

/* Port of a reply element, 1..65535, or 0. */
static int
port_of(const redisReply *r)
{
	long v;
	char *end;

	if (r->type != REDIS_REPLY_STRING || r->len == 0 || r->len > 5)
		return 0;
	v = strtol(r->str, &end, 10);
	return *end == '\0' && v >= 1 && v <= 65535 ? (int)v : 0;
}

static void
sentinel_addr(const struct sentinel *s, int i, char *out, size_t outsz)
{
	rurl_format_addr(s->list[i].host, s->list[i].port, out, outsz);
}

struct sentinel *
sentinel_new(const struct sentinel_conf *sc)
{
	struct sentinel *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return NULL;
	s->node.db = -1;
	s->node.tls = sc->url->tls;
	s->tls = sc->tls;
	snprintf(s->node.user, sizeof(s->node.user), "%s", sc->user ? sc->user : "");
	if (sc->password) {
		snprintf(s->node.password, sizeof(s->node.password), "%s", sc->password);
		s->node.has_password = 1;
	}
	s->n = sc->url->nhosts;
	memcpy(s->list, sc->url->hosts, sizeof(s->list));
	snprintf(s->service, sizeof(s->service), "%s", sc->url->service);
	s->connect_timeout_ms = sc->connect_timeout_ms;
	s->command_timeout_ms = sc->command_timeout_ms;
	if (sc->client_name) {
		snprintf(s->client_name, sizeof(s->client_name), "%s", sc->client_name);
		s->has_client_name = 1;
	}
	return s;
}

void
sentinel_free(struct sentinel *s)
{
	if (s == NULL)
		return;
	sentinel_unsubscribe(s);
	explicit_bzero(s, sizeof(*s));
	free(s);
}

/* Connect to Sentinel i with the Sentinels' credentials. */
static struct rconn *
open_sentinel(struct sentinel *s, int i, enum rconn_err *kind, char *err, size_t errlen)
{
	struct rconn_opts o;

	memcpy(s->node.host, s->list[i].host, sizeof(s->node.host));
	s->node.port = s->list[i].port;
	o.url = &s->node;
	o.connect_timeout_ms = s->connect_timeout_ms;
	o.command_timeout_ms = s->command_timeout_ms;
	o.client_name = s->has_client_name ? s->client_name : NULL;
	o.tls = s->node.tls ? s->tls : NULL;
	return rconn_connect(&o, kind, err, errlen);
}

/* A reply that is not the one expected: its text (escaped), or what it was. */
static void
bad_reply(struct rconn *c, const redisReply *r, const char *what, char *err, size_t errlen)
{
	if (r == NULL)
		snprintf(err, errlen, "%s: %s", what, rconn_errstr(c));
	else if (r->type == REDIS_REPLY_NIL)
		snprintf(err, errlen, "%s: no such service", what);
	else
		rerr_format(err, errlen, what, r);
}

/* SENTINEL GET-MASTER-ADDR-BY-NAME: the primary's address into *node. 0 or -1 (err). */
static int
ask_primary(struct sentinel *s, struct rconn *c, struct rurl_node *node, char *err,
    size_t errlen)
{
	redisReply *r = rconn_calll(c, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", s->service, NULL);
	int rc = -1;

	if (r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
	    r->element[0]->type == REDIS_REPLY_STRING &&
	    host_ok(r->element[0]->str, r->element[0]->len) &&
	    (node->port = port_of(r->element[1])) != 0) {
		memcpy(node->host, r->element[0]->str, r->element[0]->len + 1);
		rc = 0;
	} else if (r != NULL && r->type == REDIS_REPLY_ARRAY) {
		snprintf(err, errlen, "SENTINEL GET-MASTER-ADDR-BY-NAME: not an address");
	} else {
		bad_reply(c, r, "SENTINEL GET-MASTER-ADDR-BY-NAME", err, errlen);
	}
	if (r != NULL)
		freeReplyObject(r);
	return rc;
}

/* Add a Sentinel to the list unless it is known, malformed, or the list is full. */
static void
add_peer(struct sentinel *s, const redisReply *host, const redisReply *port)
{
	int p = port_of(port);

	if (s->n == RURL_HOSTS_MAX || p == 0 || host->type != REDIS_REPLY_STRING ||
	    !host_ok(host->str, host->len))
		return;
	for (int i = 0; i < s->n; i++)
		if (s->list[i].port == p && strcmp(s->list[i].host, host->str) == 0)
			return;
	memcpy(s->list[s->n].host, host->str, host->len + 1);
	s->list[s->n++].port = p;
}

/* SENTINEL SENTINELS: learn the peers of the Sentinel on c. Failures only mean no news. */
static void
learn_peers(struct sentinel *s, struct rconn *c)
{
	redisReply *r = rconn_calll(c, "SENTINEL", "SENTINELS", s->service, NULL);

	if (r == NULL)
		return;
	for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
		const redisReply *e = r->element[i], *host = NULL, *port = NULL;

		/* RESP2: a flat list of field names and values. */
		for (size_t k = 0; e->type == REDIS_REPLY_ARRAY && k + 1 < e->elements; k += 2) {
			const redisReply *name = e->element[k];

			if (name->type != REDIS_REPLY_STRING)
				continue;
			if (strcmp(name->str, "ip") == 0)
				host = e->element[k + 1];
			else if (strcmp(name->str, "port") == 0)
				port = e->element[k + 1];
		}
		if (host && port)
			add_peer(s, host, port);
	}
	freeReplyObject(r);
}

/*
 * ROLE says "master". 0, or -1 with what it says instead and *kind: a
 * user that may not run ROLE is as wrong as a wrong password.
 */
static int
confirm_primary(struct rconn *c, enum rconn_err *kind, char *err, size_t errlen)
{
	redisReply *r = rconn_calll(c, "ROLE", NULL);
	int rc = -1;

	*kind = rerr_of(r) == RERR_NOPERM ? RCONN_EAUTH : RCONN_EPROTO;

	if (r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements > 0 &&
	    r->element[0]->type == REDIS_REPLY_STRING) {
		char role[64];

		if (strcmp(r->element[0]->str, "master") == 0)
			rc = 0;
		escape_id(role, sizeof(role), r->element[0]->str, r->element[0]->len);
		if (rc < 0)
			snprintf(err, errlen, "ROLE says %s, not master", role);
	} else {
		bad_reply(c, r, "ROLE", err, errlen);
	}
	if (r != NULL)
		freeReplyObject(r);
	return rc;
}

/* Sentinel i's answer: the primary's address in *node. 0, or -1 (*kind, err). */
static int
query(struct sentinel *s, int i, struct rurl_node *node, enum rconn_err *kind, char *err,
    size_t errlen)
{
	struct rconn *c = open_sentinel(s, i, kind, err, errlen);
	int rc;

	if (c == NULL)
		return -1;
	rc = ask_primary(s, c, node, err, errlen);
	if (rc == 0)
		learn_peers(s, c);
	rconn_close(c);
	return rc;
}

/* Connect to the primary node and confirm its role. NULL with *kind and err. */
static struct rconn *
open_primary(const struct rconn_opts *data, const struct rurl_node *node, enum rconn_err *kind,
    char *err, size_t errlen)
{
	struct rconn_opts o = *data;
	struct rurl u = *data->url;
	struct rconn *c;

	u.is_sentinel = 0;
	u.is_unix = 0;
	memcpy(u.host, node->host, sizeof(u.host));
	u.port = node->port;
	o.url = &u;
	c = rconn_connect(&o, kind, err, errlen);
	explicit_bzero(u.password, sizeof(u.password));
	if (c != NULL && confirm_primary(c, kind, err, errlen) < 0) {
		rconn_close(c);
		return NULL;
	}
	return c;
}

/* What a failed round says, by precedence: credentials, then a busy primary, then I/O. */
static enum rconn_err
round_kind(int auth, int busy)
{
	return auth ? RCONN_EAUTH : busy ? RCONN_EBUSY : RCONN_EIO;
}

struct rconn *
sentinel_connect(struct sentinel *s, const struct rconn_opts *data, enum rconn_err *kind,
    char *err, size_t errlen)
{
	char why[300], at[RURL_ADDR_MAX], addr[RURL_ADDR_MAX];
	int auth = 0, busy = 0, start = s->cur;
	struct rurl_node node;
	struct rconn *c;

	err[0] = '\0';
	for (int k = 0; k < s->n; k++) {
		int i = (start + k) % s->n;

		why[0] = '\0';
		sentinel_addr(s, i, at, sizeof(at));
		if (query(s, i, &node, kind, why, sizeof(why)) < 0) {
			auth |= *kind == RCONN_EAUTH;
			errbuf_add(err, errlen, "sentinel %s: %s", at, why);
			continue;
		}
		rurl_format_addr(node.host, node.port, addr, sizeof(addr));
		if ((c = open_primary(data, &node, kind, why, sizeof(why))) == NULL) {
			auth |= *kind == RCONN_EAUTH;
			busy |= *kind == RCONN_EBUSY;
			errbuf_add(err, errlen, "sentinel %s names %s: %s", at, addr, why);
			continue;
		}
		s->cur = i;
		snprintf(s->err, sizeof(s->err), "%s", err);	/* those passed over */
		s->primary_node = node;
		memcpy(s->primary, addr, sizeof(s->primary));
		memcpy(s->named_by, at, sizeof(s->named_by));
		*kind = RCONN_OK;
		return c;
	}
	*kind = round_kind(auth, busy);
	snprintf(why, sizeof(why), "no primary for service %s: ", s->service);
	if (strlen(why) + strlen(err) < errlen) {
		memmove(err + strlen(why), err, strlen(err) + 1);
		memcpy(err, why, strlen(why));
	}
	return NULL;
}

const struct rurl_node *
sentinel_primary_node(const struct sentinel *s)
{
	return &s->primary_node;
}

const char *
sentinel_primary(const struct sentinel *s)
{
	return s->primary;
}

const char *
sentinel_named_by(const struct sentinel *s)
{
	return s->named_by;
}

int
sentinel_survey(struct sentinel *s, struct sentinel_answer *out, int max)
{
	int i;

	for (i = 0; i < s->n && i < max; i++) {
		struct sentinel_answer *a = &out[i];
		struct rurl_node node;
		enum rconn_err kind;

		memset(a, 0, sizeof(*a));
		sentinel_addr(s, i, a->sentinel, sizeof(a->sentinel));
		if (query(s, i, &node, &kind, a->err, sizeof(a->err)) == 0) {
			a->answered = 1;
			rurl_format_addr(node.host, node.port, a->primary, sizeof(a->primary));
		}
	}
	return i;
}

/* Subscribe on Sentinel i. 0, or -1 with s->err. */
static int
subscribe_at(struct sentinel *s, int i)
{
	enum rconn_err kind;
	char why[300];
	redisReply *r;

	sentinel_addr(s, i, s->sub_addr, sizeof(s->sub_addr));
	if ((s->sub = open_sentinel(s, i, &kind, why, sizeof(why))) == NULL) {
		errbuf_add(s->err, sizeof(s->err), "sentinel %s: %s", s->sub_addr, why);
		return -1;
	}
	r = rconn_calll(s->sub, "SUBSCRIBE", SWITCH_CHANNEL, NULL);
	if (r != NULL && r->type == REDIS_REPLY_ARRAY) {
		freeReplyObject(r);
		s->cur = i;
		return 0;
	}
	bad_reply(s->sub, r, "SUBSCRIBE " SWITCH_CHANNEL, why, sizeof(why));
	errbuf_add(s->err, sizeof(s->err), "sentinel %s: %s", s->sub_addr, why);
	if (r != NULL)
		freeReplyObject(r);
	sentinel_unsubscribe(s);
	return -1;
}

int
sentinel_subscribe(struct sentinel *s)
{
	sentinel_unsubscribe(s);
	s->err[0] = '\0';
	for (int k = 0; k < s->n; k++)
		if (subscribe_at(s, (s->cur + k) % s->n) == 0)
			return 0;
	s->cur = (s->cur + 1) % s->n;
	return -1;
}

void
sentinel_unsubscribe(struct sentinel *s)
{
	rconn_close(s->sub);
	s->sub = NULL;
}

int
sentinel_sub_fd(const struct sentinel *s)
{
	return s->sub ? rconn_fd(s->sub) : -1;
}

const char *
sentinel_sub_addr(const struct sentinel *s)
{
	return s->sub_addr;
}

const char *
sentinel_err(const struct sentinel *s)
{
	return s->err;
}

/* "host:port" of an announced address, both parts escaped. */
static const char *
escaped_addr(const char *host, size_t hlen, const char *port, size_t plen, char *out,
    size_t outsz)
{
	char h[4 * RURL_HOST_MAX], p[32];

	escape_id(h, sizeof(h), host, hlen);
	escape_id(p, sizeof(p), port, plen);
	snprintf(out, outsz, strchr(h, ':') ? "[%s]:%s" : "%s:%s", h, p);
	return out;
}

int
sentinel_switch_parse(const char *msg, size_t len, const char *service, char *what,
    size_t whatsz)
{
	char old[4 * RURL_ADDR_MAX];
	const char *f[5];
	size_t flen[5], n = 0, i = 0;

	while (i < len && n < 5) {
		size_t j = i;

		while (j < len && msg[j] != ' ')
			j++;
		f[n] = msg + i;
		flen[n++] = j - i;
		i = j + 1;
	}
	if (n != 5 || i < len || flen[0] != strlen(service) || memcmp(f[0], service, flen[0]) != 0)
		return -1;
	snprintf(what, whatsz, "%s -> ", escaped_addr(f[1], flen[1], f[2], flen[2], old,
	    sizeof(old)));
	n = strlen(what);
	snprintf(what + n, whatsz - n, "%s", escaped_addr(f[3], flen[3], f[4], flen[4], old,
	    sizeof(old)));
	return 0;
}

/* One pushed message: 1 when it is a switch of our service. */
static int
switch_message(struct sentinel *s, const redisReply *r, char *what, size_t whatsz)
{
	if (r->type != REDIS_REPLY_ARRAY || r->elements != 3 ||
	    r->element[0]->type != REDIS_REPLY_STRING || strcmp(r->element[0]->str, "message") != 0 ||
	    r->element[2]->type != REDIS_REPLY_STRING)
		return 0;
	return sentinel_switch_parse(r->element[2]->str, r->element[2]->len, s->service, what,
	    whatsz) == 0;
}

int
sentinel_sub_read(struct sentinel *s, char *what, size_t whatsz)
{
	redisReply *r;
	int rc, moved = 0;

	if (s->sub == NULL)
		return 0;
	while ((rc = rconn_poll_reply(s->sub, &r)) == 1) {
		moved |= switch_message(s, r, what, whatsz);
		freeReplyObject(r);
	}
	if (rc < 0) {
		snprintf(s->err, sizeof(s->err), "sentinel %s: %s", s->sub_addr,
		    rconn_errstr(s->sub));
		sentinel_unsubscribe(s);
		s->cur = (s->cur + 1) % s->n;
		return moved ? 1 : -1;
	}
	return moved;
}
