/*
 * sentinel: find the primary of a Redis Sentinel service and follow it.
 *
 * Discovery asks the known Sentinels in turn, starting with the one that
 * answered last, for the primary of the service (SENTINEL
 * GET-MASTER-ADDR-BY-NAME), connects to the address named and keeps the
 * connection only when ROLE says "master": a Sentinel that is down, answers
 * nothing or names a replica moves on to the next. Each Sentinel that
 * answers also lends its list of peers (SENTINEL SENTINELS), so Sentinels
 * added later are found; the list holds at most RURL_HOSTS_MAX.
 *
 * A subscription to +switch-master on one Sentinel says when the primary
 * moves; when that Sentinel goes away the next subscription goes to the
 * next one.
 *
 * Everything a Sentinel says (addresses, error texts) is escaped before it
 * reaches a message. Knows nothing of presence; never exits; errors are
 * left in the context (sentinel_err) or in the caller's buffer.
 */
#ifndef PR_SENTINEL_H
#define PR_SENTINEL_H

#include <stddef.h>

#include "rconn.h"
#include "rurl.h"

/* What a Sentinel context needs; sentinel_new() copies all of it. */
struct sentinel_conf {
	const struct rurl *url;		/* Sentinels, service, tls */
	const struct rtls *tls;		/* with url->tls: TLS to the Sentinels (kept, not copied) */
	const char *user;		/* the Sentinels' ACL user; "" for none */
	const char *password;		/* the Sentinels' password; NULL for none */
	int connect_timeout_ms;
	int command_timeout_ms;
	const char *client_name;	/* CLIENT SETNAME on the Sentinels, or NULL */
};

/* One Sentinel's answer, for -t. */
struct sentinel_answer {
	char sentinel[RURL_ADDR_MAX];	/* its address */
	int answered;			/* 1: primary holds the address it named */
	char primary[4 * RURL_ADDR_MAX];	/* escaped */
	char err[300];			/* why not, escaped */
};

struct sentinel;

/* A context for sc's Sentinels and service. NULL: out of memory. */
struct sentinel *sentinel_new(const struct sentinel_conf *sc);

/* Close the subscription and free (s may be NULL). */
void sentinel_free(struct sentinel *s);

/*
 * Discovery: connect to the primary the Sentinels name, with data's
 * options (its url is the Sentinel URL: the data nodes' credentials and
 * database), and confirm it with ROLE. Returns the connection, or NULL
 * with *kind and err: RCONN_EAUTH when a Sentinel or the primary refused
 * the credentials, RCONN_EBUSY when the primary is LOADING or BUSY,
 * RCONN_EIO otherwise; err says what each Sentinel tried answered.
 */
struct rconn *sentinel_connect(struct sentinel *s, const struct rconn_opts *data,
    enum rconn_err *kind, char *err, size_t errlen);

/*
 * After sentinel_connect: the primary (its node, its address) and the
 * Sentinel that named it; sentinel_err() says which answers were passed
 * over on the way ("" when none).
 */
const struct rurl_node *sentinel_primary_node(const struct sentinel *s);
const char *sentinel_primary(const struct sentinel *s);
const char *sentinel_named_by(const struct sentinel *s);

/*
 * -t: ask every known Sentinel (the list as it grows) for the primary, and
 * fill at most max answers. Returns how many.
 */
int sentinel_survey(struct sentinel *s, struct sentinel_answer *out, int max);

/*
 * Subscribe to +switch-master on the Sentinel that answered last (or the
 * next one after a failure). 0, or -1 with sentinel_err(); the next
 * attempt then goes to the next Sentinel.
 */
int sentinel_subscribe(struct sentinel *s);
void sentinel_unsubscribe(struct sentinel *s);

/* The subscription's fd to poll, or -1; the Sentinel it listens to. */
int sentinel_sub_fd(const struct sentinel *s);
const char *sentinel_sub_addr(const struct sentinel *s);

/*
 * Read what the subscription holds, without waiting. 1 when our service's
 * primary moved (what, escaped: "old -> new"), 0 when nothing for us, -1
 * when the subscription broke (closed; sentinel_err() says why; the next
 * subscription goes to the next Sentinel).
 */
int sentinel_sub_read(struct sentinel *s, char *what, size_t whatsz);

const char *sentinel_err(const struct sentinel *s);

/*
 * The primary a +switch-master message announces for service:
 * "service old-ip old-port new-ip new-port" → "old -> new" in what,
 * escaped. 0, or -1 when it is malformed or about another service.
 */
int sentinel_switch_parse(const char *msg, size_t len, const char *service, char *what,
    size_t whatsz);

#endif
