/*
 * rurl: parse Redis URLs.
 *   redis://[[user]:password@]host[:port][/db]     (host may be [IPv6])
 *   rediss://...                                   (the same, over TLS)
 *   unix://[[user]:password@]/path/to.sock[?db=N]
 *   redis+sentinel://[[user]:password@]host[:port][,host[:port]...]/service[/db]
 *   rediss+sentinel://...   (the same, TLS to the Sentinels and the data nodes)
 *   redis+cluster://[[user]:password@]host[:port][,host[:port]...]
 *   rediss+cluster://...    (the same, over TLS)
 * user and password are percent-decoded; each may hold at most
 * RURL_CRED_MAX - 1 bytes and no NUL (%00), and anything else is an error,
 * never cut. Parts that are absent stay empty (db stays -1), so the caller
 * can tell "not given" from "given".
 *
 * A Sentinel URL lists up to RURL_HOSTS_MAX Sentinels in hosts (port 26379
 * when not given) and names the service (percent-decoded); host and port
 * stay empty until discovery finds the primary. Its credentials are the
 * data nodes'; the Sentinels' come from elsewhere.
 *
 * A Cluster URL lists up to RURL_HOSTS_MAX seed nodes in hosts (port 6379
 * when not given); its credentials are every node's. It takes no database
 * (a Cluster has only database 0) and no path; host and port stay empty
 * until discovery finds the node that serves the keys.
 */
#ifndef PR_RURL_H
#define PR_RURL_H

#include <stddef.h>

#define RURL_HOST_MAX 256
#define RURL_PATH_MAX 108	/* sizeof(sun_path) on Linux */
#define RURL_CRED_MAX 512
#define RURL_HOSTS_MAX 16	/* Sentinels or Cluster seeds */
#define RURL_SERVICE_MAX 256
#define RURL_SENTINEL_PORT 26379
/* "host:port", the host bracketed when it is IPv6. */
#define RURL_ADDR_MAX (RURL_HOST_MAX + 8)

struct rurl_node {
	char host[RURL_HOST_MAX];
	int port;
};

struct rurl {
	int is_unix;
	int tls;			/* rediss://, rediss+sentinel://, rediss+cluster:// */
	char host[RURL_HOST_MAX];
	int port;			/* 6379 when not given */
	char path[RURL_PATH_MAX];
	char user[RURL_CRED_MAX];
	char password[RURL_CRED_MAX];
	int has_password;		/* "redis://:@h" gives an empty password */
	int db;				/* -1 when not given */
	int is_sentinel;		/* redis+sentinel:// or rediss+sentinel:// */
	int is_cluster;			/* redis+cluster:// or rediss+cluster:// */
	int nhosts;			/* the Sentinels, or the Cluster's seeds */
	struct rurl_node hosts[RURL_HOSTS_MAX];
	char service[RURL_SERVICE_MAX];
};

/* Parse s into u. Returns 0, or -1 with a message in err (never the password). */
int rurl_parse(const char *s, struct rurl *u, char *err, size_t errlen);

/* Render u without its password, e.g. "redis://user:***@host:6379/0". */
void rurl_format_redacted(const struct rurl *u, char *out, size_t outsz);

/* "host:port", or "[v6]:port" when host holds a colon. */
void rurl_format_addr(const char *host, int port, char *out, size_t outsz);

#endif
