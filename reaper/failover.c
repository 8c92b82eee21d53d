#include "failover.h"

#include <string.h>

#include "escape.h"
#include "log.h"
#include "metrics.h"
#include "rerr.h"
#include "sentinel.h"

/* How long a subscription waits after every Sentinel refused it. */
#define SUBSCRIBE_RETRY_MS 1000

/*
 * ASK, TRYAGAIN or CLUSTERDOWN replies in a row, each retried after a short
 * backoff, before the slot map is loaded again: a migration of a few keys
 * ends within them, a stuck one does not.
 */
#define CLUSTER_RETRIES 5

/* The address of a redis:// or unix:// URL, as the metrics show it. */
static void
configured_addr(const struct rurl *u, char *out, size_t outsz)
{
	char raw[RURL_PATH_MAX + 8];

	if (u->is_unix) {
		snprintf(raw, sizeof(raw), "unix:%s", u->path);
		escape_id(out, outsz, raw, strlen(raw));
	} else {
		rurl_format_addr(u->host, u->port, out, outsz);
	}
}

void
failover_init(struct daemon *d)
{
	char addr[sizeof(d->endpoint)];

	if (d->cfg.url.is_sentinel || d->cfg.url.is_cluster)
		return;
	configured_addr(&d->cfg.url, addr, sizeof(addr));
	metrics_endpoint(addr, d->cfg.url.tls, "unknown");
}

/*
 * The node is addr, named by by (the Sentinel, or the node whose slot map
 * named it; NULL: the configured node): one line when it changed.
 */
static void
note_endpoint(struct daemon *d, const char *addr, const char *by)
{
	const char *via = d->cfg.url.is_cluster ? "slot map of" : "sentinel";
	char svc[4 * RURL_SERVICE_MAX];

	if (d->endpoint[0] && strcmp(d->endpoint, addr) != 0) {
		log_info("redis endpoint: %s -> %s (%s %s)", d->endpoint, addr, via,
		    by ? by : "none");
		metrics_failover();
	} else if (!d->endpoint[0] && d->cfg.url.is_cluster) {
		log_info("redis endpoint: %s, primary of hash slot %u (%s %s)", addr,
		    d->cfg.cluster_slot, via, by);
	} else if (!d->endpoint[0] && by) {
		escape_id(svc, sizeof(svc), d->cfg.url.service, strlen(d->cfg.url.service));
		log_info("redis endpoint: %s, primary of %s (sentinel %s)", addr, svc, by);
	}
	snprintf(d->endpoint, sizeof(d->endpoint), "%s", addr);
	metrics_endpoint(addr, d->cfg.url.tls, by ? "primary" : "unknown");
}

/* The Sentinel context, made on first use from the configuration. */
static struct sentinel *
sentinel_of(struct daemon *d)
{
	struct sentinel_conf sc;
	char name[300];

	if (d->sentinel != NULL)
		return d->sentinel;
	leader_client_name(d->cfg.identity, name, sizeof(name));
	sc.url = &d->cfg.url;
	sc.user = d->cfg.sentinel_username;
	sc.password = d->cfg.sentinel_has_password ? d->cfg.sentinel_pw : NULL;
	sc.connect_timeout_ms = (int)(d->cfg.connect_timeout * 1000);
	sc.command_timeout_ms = (int)(d->cfg.command_timeout * 1000);
	sc.client_name = name;
	sc.tls = d->tls.rtls;
	d->sentinel = sentinel_new(&sc);
	return d->sentinel;
}

/* The node a discovery found becomes d->node, the URL of every connection to it. */
static void
set_node(struct daemon *d, const char *host, int port)
{
	d->node = d->cfg.url;
	d->node.is_sentinel = 0;
	d->node.is_cluster = 0;
	d->node.nhosts = 0;
	snprintf(d->node.host, sizeof(d->node.host), "%s", host);
	d->node.port = port;
}

/* Cluster: the primary that serves the keys' slot, from a fresh slot map. */
static struct rconn *
cluster_primary(struct daemon *d, const struct rconn_opts *o, enum rconn_err *kind,
    char *err, size_t errlen)
{
	struct rconn_opts co = *o;
	struct rconn *c;

	if (d->cluster == NULL && (d->cluster = cluster_new(&d->cfg.url)) == NULL) {
		snprintf(err, errlen, "out of memory");
		*kind = RCONN_EIO;
		return NULL;
	}
	co.url = &d->cfg.url;	/* every node's credentials and TLS */
	c = cluster_connect(d->cluster, &co, d->cfg.cluster_slot, kind, err, errlen);
	if (c == NULL)
		return NULL;
	set_node(d, cluster_owner_node(d->cluster)->host, cluster_owner_node(d->cluster)->port);
	d->cluster_retries = 0;
	note_endpoint(d, cluster_owner(d->cluster), cluster_named_by(d->cluster));
	return c;
}

struct rconn *
failover_connect(struct daemon *d, const struct rconn_opts *o, enum rconn_err *kind,
    char *err, size_t errlen)
{
	struct rconn_opts so = *o;
	char addr[sizeof(d->endpoint)];
	struct sentinel *s;
	struct rconn *c;

	if (d->cfg.url.is_cluster)
		return cluster_primary(d, o, kind, err, errlen);
	if (!d->cfg.url.is_sentinel) {
		if ((c = rconn_connect(o, kind, err, errlen)) != NULL) {
			configured_addr(o->url, addr, sizeof(addr));
			note_endpoint(d, addr, NULL);
		}
		return c;
	}
	if ((s = sentinel_of(d)) == NULL) {
		snprintf(err, errlen, "out of memory");
		*kind = RCONN_EIO;
		return NULL;
	}
	so.url = &d->cfg.url;	/* the data nodes' credentials and database */
	if ((c = sentinel_connect(s, &so, kind, err, errlen)) == NULL)
		return NULL;
	if (sentinel_err(s)[0])
		log_warnx("sentinels passed over: %s", sentinel_err(s));
	set_node(d, sentinel_primary_node(s)->host, sentinel_primary_node(s)->port);
	note_endpoint(d, sentinel_primary(s), sentinel_named_by(s));
	return c;
}

const struct rurl *
failover_url(const struct daemon *d)
{
	return d->cfg.url.is_sentinel || d->cfg.url.is_cluster ? &d->node : &d->cfg.url;
}

/* -t, Cluster: each seed's slot map, and the keys' slot. */
static void
cluster_survey_print(struct daemon *d, FILE *out)
{
	struct cluster_answer a[RURL_HOSTS_MAX];
	struct rconn_opts o;
	char name[300];
	int n, answered = 0;

	if (d->cluster == NULL && (d->cluster = cluster_new(&d->cfg.url)) == NULL)
		return;
	daemon_conn_opts(d, &o, name, sizeof(name));
	o.url = &d->cfg.url;
	n = cluster_survey(d->cluster, &o, a, RURL_HOSTS_MAX);
	for (int i = 0; i < n; i++) {
		if (!a[i].answered) {
			fprintf(out, "# cluster seed %s: no slot map: %s\n", a[i].node, a[i].err);
			continue;
		}
		answered++;
		fprintf(out, "# cluster seed %s: %u of %d slots covered by %zu primaries%s\n",
		    a[i].node, a[i].covered, SLOT_COUNT, a[i].primaries,
		    a[i].covered < SLOT_COUNT ? " (INCOMPLETE)" : "");
	}
	fprintf(out, "# cluster: %d of %d seeds answered; every key is in hash slot %u\n",
	    answered, n, d->cfg.cluster_slot);
}

void
failover_node_report(const struct daemon *d, FILE *out)
{
	if (d->cluster != NULL && d->conn != NULL)
		fprintf(out, "# cluster: hash slot %u is served by primary %s (slot map of %s, "
		    "%u of %d slots covered)\n", d->cfg.cluster_slot, cluster_owner(d->cluster),
		    cluster_named_by(d->cluster), cluster_covered(d->cluster), SLOT_COUNT);
}

void
failover_survey(struct daemon *d, FILE *out)
{
	struct sentinel_answer a[RURL_HOSTS_MAX];
	int n, answered = 0, agree = 1;
	const char *first = NULL;

	if (d->cfg.url.is_cluster)
		cluster_survey_print(d, out);
	if (!d->cfg.url.is_sentinel || sentinel_of(d) == NULL)
		return;
	n = sentinel_survey(d->sentinel, a, RURL_HOSTS_MAX);
	for (int i = 0; i < n; i++) {
		if (!a[i].answered) {
			fprintf(out, "# sentinel %s: no answer: %s\n", a[i].sentinel, a[i].err);
			continue;
		}
		fprintf(out, "# sentinel %s: primary %s\n", a[i].sentinel, a[i].primary);
		answered++;
		if (first == NULL)
			first = a[i].primary;
		else if (strcmp(first, a[i].primary) != 0)
			agree = 0;
	}
	if (answered == 0)
		fprintf(out, "# sentinels: none of %d answered\n", n);
	else
		fprintf(out, "# sentinels: %d of %d answered; %s\n", answered, n,
		    agree ? "they agree" : "they DISAGREE on the primary");
}

/* Drop the connection (if any) so that the next turn discovers the primary again. */
static void
rediscover(struct daemon *d)
{
	d->rediscover = 0;
	if (d->role != ROLE_DISCONNECTED)
		daemon_disconnect(d);
}

/* Read the subscription: a switch of our primary asks for a rediscovery. */
static void
read_subscription(struct daemon *d, int64_t now)
{
	char what[600];
	int rc = sentinel_sub_read(d->sentinel, what, sizeof(what));

	if (rc == 1) {
		log_info("sentinel %s: +switch-master %s; following the primary",
		    sentinel_sub_addr(d->sentinel), what);
		d->rediscover = 1;
	} else if (rc < 0) {
		log_warnx("+switch-master subscription lost: %s; moving to another sentinel",
		    sentinel_err(d->sentinel));
		d->sentinel_retry_at = now;
	}
}

/* Keep one Sentinel subscription; said once a spell when none will have us. */
static void
keep_subscription(struct daemon *d, int64_t now)
{
	if (sentinel_sub_fd(d->sentinel) >= 0 || now < d->sentinel_retry_at)
		return;
	if (sentinel_subscribe(d->sentinel) == 0) {
		log_info("listening for +switch-master on sentinel %s",
		    sentinel_sub_addr(d->sentinel));
		d->sub_failures = 0;
		return;
	}
	if (d->sub_failures++ == 0)
		log_warnx("cannot listen for +switch-master: %s; retrying",
		    sentinel_err(d->sentinel));
	d->sentinel_retry_at = now + SUBSCRIBE_RETRY_MS;
}

void
failover_step(struct daemon *d, int64_t now)
{
	if (d->sentinel != NULL && !d->cli.once) {
		keep_subscription(d, now);
		read_subscription(d, now);
	}
	if (d->rediscover)
		rediscover(d);
}

int
failover_fd(const struct daemon *d)
{
	return d->sentinel ? sentinel_sub_fd(d->sentinel) : -1;
}

int
failover_pending(struct daemon *d)
{
	if (d->sentinel != NULL && !d->rediscover && sentinel_sub_fd(d->sentinel) >= 0)
		read_subscription(d, mono_ms());
	return d->rediscover;
}

/*
 * Cluster: MOVED loads the map again at once; ASK, TRYAGAIN (the slot is
 * being migrated) and CLUSTERDOWN are retried with backoff CLUSTER_RETRIES
 * times first. A node that is no longer a primary (READONLY) says MOVED.
 */
static int
cluster_refused(struct daemon *d, enum rerr_class cls)
{
	if (cls != RERR_MOVED && cls != RERR_READONLY &&
	    (!rerr_cluster(cls) || ++d->cluster_retries <= CLUSTER_RETRIES))
		return 0;
	d->cluster_retries = 0;
	d->rediscover = 1;
	return 1;
}

int
failover_refused(struct daemon *d, enum rerr_class cls)
{
	if (d->cfg.url.is_cluster)
		return cluster_refused(d, cls);
	if (!d->cfg.url.is_sentinel || d->cli.once || cls != RERR_READONLY)
		return 0;
	d->rediscover = 1;
	return 1;
}

static int
lock_op(struct daemon *d, struct rconn *c, enum failover_lock_op op, char *holder,
    size_t holdersz, char *err, size_t errlen)
{
	switch (op) {
	case LOCK_ACQUIRE:
		return leader_acquire(&d->leader, c, holder, holdersz, err, errlen);
	case LOCK_RENEW:
		return leader_renew(&d->leader, c, err, errlen);
	case LOCK_RELEASE:
		break;
	}
	return leader_release(&d->leader, c, err, errlen);
}

/*
 * Cluster: a connection, in asking mode, to the node the last ASK reply in
 * err names (a call refused because its key is migrating there). NULL when
 * err holds none, or the node cannot be reached (said at debug).
 */
static struct rconn *
ask_conn(struct daemon *d, enum rerr_class cls, const char *err)
{
	const char *ask = NULL;
	struct rconn_opts o;
	struct rconn *c;
	char name[300], why[300];

	for (const char *p = err; (p = strstr(p, ": ASK ")) != NULL; p++)
		ask = p + 2;	/* the last: a key name might hold one too */
	if (ask == NULL || cls != RERR_ASK || d->cluster == NULL)
		return NULL;
	daemon_conn_opts(d, &o, name, sizeof(name));
	if ((c = cluster_ask_connect(d->cluster, &o, ask, why, sizeof(why))) == NULL)
		log_debug("cannot follow %s: %s", ask, why);
	else
		log_debug("following %s", ask);
	return c;
}

int
failover_lock(struct daemon *d, enum failover_lock_op op, char *holder, size_t holdersz,
    char *err, size_t errlen)
{
	int rc = lock_op(d, d->conn, op, holder, holdersz, err, errlen);
	struct rconn *c;

	if (rc < 0 && (c = ask_conn(d, d->leader.err_class, err)) != NULL) {
		rc = lock_op(d, c, op, holder, holdersz, err, errlen);
		rconn_close(c);
	}
	return rc;
}

int
failover_check_keys(struct daemon *d)
{
	int rc = reconcile_check_keys(&d->rec, d->conn);
	struct rconn *c;

	if (rc != 0 && (c = ask_conn(d, d->rec.err_class, d->rec.err)) != NULL) {
		rc = reconcile_check_keys(&d->rec, c);
		rconn_close(c);
	}
	return rc;
}

void
failover_reset(struct daemon *d)
{
	sentinel_free(d->sentinel);
	d->sentinel = NULL;
	cluster_free(d->cluster);
	d->cluster = NULL;
	d->cluster_retries = 0;
	d->endpoint[0] = '\0';
	d->rediscover = 0;
	d->sub_failures = 0;
	d->sentinel_retry_at = 0;
}
