#include "rurl.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

enum { PCT_OK, PCT_BAD_ESCAPE, PCT_TOO_LONG, PCT_NUL };

/* Percent-decode [s, s+len) into out (NUL-terminated); PCT_OK or why not. */
static int
pct_decode(const char *s, size_t len, char *out, size_t outsz)
{
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		int c = (unsigned char)s[i];

		if (c == '%') {
			int hi, lo;

			if (i + 2 >= len)
				return PCT_BAD_ESCAPE;
			hi = hexval((unsigned char)s[i + 1]);
			lo = hexval((unsigned char)s[i + 2]);
			if (hi < 0 || lo < 0)
				return PCT_BAD_ESCAPE;
			c = hi * 16 + lo;
			i += 2;
		}
		if (c == 0)
			return PCT_NUL;
		if (o + 1 >= outsz)
			return PCT_TOO_LONG;
		out[o++] = (char)c;
	}
	out[o] = '\0';
	return PCT_OK;
}

/*
 * Decode one credential (what names it in messages: "user name" or
 * "password"). A credential that does not fit, or holds a NUL byte, is an
 * error rather than cut: a cut password fails in a way nobody can explain.
 */
static int
decode_cred(const char *s, size_t len, char *out, size_t outsz, const char *what,
    char *err, size_t errlen)
{
	switch (pct_decode(s, len, out, outsz)) {
	case PCT_OK:
		return 0;
	case PCT_TOO_LONG:
		snprintf(err, errlen, "%s in URL is longer than %zu bytes", what, outsz - 1);
		break;
	case PCT_NUL:
		snprintf(err, errlen, "%s in URL contains a NUL byte (%%00)", what);
		break;
	default:
		snprintf(err, errlen, "bad %s in URL", what);
		break;
	}
	return -1;
}

static int
parse_int(const char *s, size_t len, int min, int max, int *out)
{
	char buf[16], *end;
	long v;

	if (len == 0 || len >= sizeof(buf))
		return -1;
	memcpy(buf, s, len);
	buf[len] = '\0';
	for (size_t i = 0; i < len; i++)
		if (!isdigit((unsigned char)buf[i]))
			return -1;
	v = strtol(buf, &end, 10);
	if (*end != '\0' || v < min || v > max)
		return -1;
	*out = (int)v;
	return 0;
}

/* userinfo = [user][:password]; the part before the last '@'. */
static int
parse_userinfo(const char *s, size_t len, struct rurl *u, char *err, size_t errlen)
{
	const char *colon = memchr(s, ':', len);
	size_t ulen = colon ? (size_t)(colon - s) : len;

	if (decode_cred(s, ulen, u->user, sizeof(u->user), "user name", err, errlen) < 0)
		return -1;
	if (colon) {
		if (decode_cred(colon + 1, len - ulen - 1, u->password, sizeof(u->password),
		    "password", err, errlen) < 0)
			return -1;
		u->has_password = 1;
	}
	return 0;
}

/*
 * The userinfo of an authority [*p, end), the part before its last '@',
 * if any, into u; *p moves past it to the host.
 */
static int
take_userinfo(const char **p, const char *end, struct rurl *u, char *err, size_t errlen)
{
	const char *at = NULL;

	for (const char *q = *p; q < end; q++)
		if (*q == '@')
			at = q;
	if (at == NULL)
		return 0;
	if (parse_userinfo(*p, (size_t)(at - *p), u, err, errlen) < 0)
		return -1;
	*p = at + 1;
	return 0;
}

static int
parse_hostport(const char *s, size_t len, struct rurl *u, char *err, size_t errlen)
{
	const char *port = NULL;
	size_t hlen;

	if (len > 0 && s[0] == '[') {
		const char *rb = memchr(s, ']', len);

		if (rb == NULL) {
			snprintf(err, errlen, "unterminated IPv6 address in URL");
			return -1;
		}
		hlen = (size_t)(rb - s) - 1;
		if (hlen == 0 || hlen >= sizeof(u->host))
			goto badhost;
		memcpy(u->host, s + 1, hlen);
		u->host[hlen] = '\0';
		if ((size_t)(rb - s) + 1 < len) {
			if (rb[1] != ':')
				goto badhost;
			port = rb + 2;
		}
	} else {
		const char *colon = memchr(s, ':', len);

		hlen = colon ? (size_t)(colon - s) : len;
		if (hlen == 0 || hlen >= sizeof(u->host))
			goto badhost;
		memcpy(u->host, s, hlen);
		u->host[hlen] = '\0';
		if (colon)
			port = colon + 1;
	}
	if (port && parse_int(port, len - (size_t)(port - s), 1, 65535, &u->port) < 0) {
		snprintf(err, errlen, "bad port in URL");
		return -1;
	}
	return 0;
badhost:
	snprintf(err, errlen, "bad or missing host in URL");
	return -1;
}

/* A unix URL's "/path[?db=N]". */
static int
parse_unix_path(const char *slash, struct rurl *u, char *err, size_t errlen)
{
	const char *q = strchr(slash, '?');
	size_t plen = q ? (size_t)(q - slash) : strlen(slash);

	if (plen >= sizeof(u->path)) {
		snprintf(err, errlen, "socket path too long");
		return -1;
	}
	memcpy(u->path, slash, plen);
	u->path[plen] = '\0';
	if (q && (strncmp(q, "?db=", 4) != 0 ||
	    parse_int(q + 4, strlen(q + 4), 0, 1000000, &u->db) < 0)) {
		snprintf(err, errlen, "bad query in unix URL (only ?db=N)");
		return -1;
	}
	return 0;
}

static int
parse_authority_and_rest(const char *p, struct rurl *u, char *err, size_t errlen)
{
	const char *slash;
	size_t alen;

	if (u->is_unix) {
		/* unix://[userinfo@]/path : the path starts at the first '/'. */
		slash = strchr(p, '/');
		if (slash == NULL) {
			snprintf(err, errlen, "unix URL needs an absolute socket path");
			return -1;
		}
	} else {
		slash = strpbrk(p, "/?");
		if (slash == NULL)
			slash = p + strlen(p);
	}
	if (take_userinfo(&p, slash, u, err, errlen) < 0)
		return -1;
	alen = (size_t)(slash - p);
	if (u->is_unix) {
		if (alen != 0) {
			snprintf(err, errlen, "unix URL takes no host");
			return -1;
		}
		return parse_unix_path(slash, u, err, errlen);
	}
	if (parse_hostport(p, alen, u, err, errlen) < 0)
		return -1;
	if (*slash == '/' && slash[1] != '\0' &&
	    parse_int(slash + 1, strlen(slash + 1), 0, 1000000, &u->db) < 0) {
		snprintf(err, errlen, "bad database number in URL");
		return -1;
	}
	if (*slash == '?') {
		snprintf(err, errlen, "unexpected query in redis URL");
		return -1;
	}
	return 0;
}

/*
 * "h1[:p1],h2[:p2]...": each into u->hosts, each on port defport when not
 * given; what names them in messages ("sentinels", "cluster seeds").
 */
static int
parse_hosts(const char *p, size_t len, int defport, const char *what, struct rurl *u,
    char *err, size_t errlen)
{
	const char *end = p + len;

	while (p <= end) {
		const char *comma = memchr(p, ',', (size_t)(end - p));
		size_t n = comma ? (size_t)(comma - p) : (size_t)(end - p);

		if (u->nhosts == RURL_HOSTS_MAX) {
			snprintf(err, errlen, "more than %d %s in URL", RURL_HOSTS_MAX, what);
			return -1;
		}
		u->port = defport;
		if (parse_hostport(p, n, u, err, errlen) < 0)
			return -1;
		memcpy(u->hosts[u->nhosts].host, u->host, sizeof(u->host));
		u->hosts[u->nhosts++].port = u->port;
		p += n + 1;
	}
	/* The data node is unknown until discovery names it. */
	u->host[0] = '\0';
	u->port = 0;
	return 0;
}

/* "service[/db]" after the hosts of a Sentinel URL. */
static int
parse_service(const char *p, struct rurl *u, char *err, size_t errlen)
{
	const char *slash = strchr(p, '/');
	size_t n = slash ? (size_t)(slash - p) : strlen(p);

	if (n == 0 || pct_decode(p, n, u->service, sizeof(u->service)) != PCT_OK) {
		snprintf(err, errlen, "sentinel URL needs a service name (at most %d bytes, no "
		    "%%00): redis+sentinel://host[,host...]/service[/db]", RURL_SERVICE_MAX - 1);
		return -1;
	}
	if (slash && slash[1] != '\0' &&
	    parse_int(slash + 1, strlen(slash + 1), 0, 1000000, &u->db) < 0) {
		snprintf(err, errlen, "bad database number in URL");
		return -1;
	}
	return 0;
}

/* [userinfo@]host[:port][,host[:port]...]/service[/db] */
static int
parse_sentinel_url(const char *p, struct rurl *u, char *err, size_t errlen)
{
	const char *slash = strchr(p, '/');

	u->is_sentinel = 1;
	if (strchr(p, '?') != NULL) {
		snprintf(err, errlen, "unexpected query in sentinel URL");
		return -1;
	}
	if (slash == NULL)
		return parse_service("", u, err, errlen);
	if (take_userinfo(&p, slash, u, err, errlen) < 0)
		return -1;
	if (parse_hosts(p, (size_t)(slash - p), RURL_SENTINEL_PORT, "sentinels", u, err,
	    errlen) < 0)
		return -1;
	return parse_service(slash + 1, u, err, errlen);
}

/* [userinfo@]host[:port][,host[:port]...] : seeds, no path, no query. */
static int
parse_cluster_url(const char *p, struct rurl *u, char *err, size_t errlen)
{
	const char *end = strpbrk(p, "/?");

	u->is_cluster = 1;
	if (end != NULL) {
		snprintf(err, errlen, "cluster URL takes no database, path or query: a Redis "
		    "Cluster has only database 0; redis+cluster://host[:port][,host[:port]...]");
		return -1;
	}
	end = p + strlen(p);
	if (take_userinfo(&p, end, u, err, errlen) < 0)
		return -1;
	return parse_hosts(p, (size_t)(end - p), 6379, "cluster seeds", u, err, errlen);
}

/* The scheme's length, and what it sets in u; 0 when it is no scheme of ours. */
static size_t
parse_scheme(const char *s, struct rurl *u)
{
	static const struct {
		const char *name;
		int tls, is_unix, sentinel, cluster;
	} schemes[] = {
		{ "redis://", 0, 0, 0, 0 },
		{ "rediss://", 1, 0, 0, 0 },
		{ "unix://", 0, 1, 0, 0 },
		{ "redis+sentinel://", 0, 0, 1, 0 },
		{ "rediss+sentinel://", 1, 0, 1, 0 },
		{ "redis+cluster://", 0, 0, 0, 1 },
		{ "rediss+cluster://", 1, 0, 0, 1 },
	};

	for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++) {
		size_t n = strlen(schemes[i].name);

		if (strncmp(s, schemes[i].name, n) != 0)
			continue;
		u->tls = schemes[i].tls;
		u->is_unix = schemes[i].is_unix;
		u->is_sentinel = schemes[i].sentinel;
		u->is_cluster = schemes[i].cluster;
		return n;
	}
	return 0;
}

int
rurl_parse(const char *s, struct rurl *u, char *err, size_t errlen)
{
	size_t n;

	memset(u, 0, sizeof(*u));
	u->port = 6379;
	u->db = -1;
	if ((n = parse_scheme(s, u)) == 0) {
		char scheme[32];

		snprintf(scheme, sizeof(scheme), "%.*s", (int)strcspn(s, ":"), s);
		if (strstr(scheme, "+sentinel") != NULL && strstr(scheme, "+cluster") != NULL)
			snprintf(err, errlen, "Sentinel and Cluster exclude each other (a Cluster "
			    "fails over by itself): use redis+cluster:// or redis+sentinel://");
		else
			snprintf(err, errlen, "URL must start with redis://, rediss://, unix://, "
			    "redis+sentinel://, rediss+sentinel://, redis+cluster:// or "
			    "rediss+cluster://");
		return -1;
	}
	if (u->is_sentinel)
		return parse_sentinel_url(s + n, u, err, errlen);
	if (u->is_cluster)
		return parse_cluster_url(s + n, u, err, errlen);
	return parse_authority_and_rest(s + n, u, err, errlen);
}

void
rurl_format_addr(const char *host, int port, char *out, size_t outsz)
{
	snprintf(out, outsz, strchr(host, ':') ? "[%s]:%d" : "%s:%d", host, port);
}

/* redis+sentinel://cred@h1:p1,h2:p2/service[/db], redis+cluster://cred@h1:p1,h2:p2 */
static void
format_hosts(const struct rurl *u, const char *cred, char *out, size_t outsz)
{
	size_t n;

	snprintf(out, outsz, "%s+%s://%s", u->tls ? "rediss" : "redis",
	    u->is_cluster ? "cluster" : "sentinel", cred);
	for (int i = 0; i < u->nhosts; i++) {
		char addr[RURL_ADDR_MAX];

		rurl_format_addr(u->hosts[i].host, u->hosts[i].port, addr, sizeof(addr));
		n = strlen(out);
		snprintf(out + n, outsz - n, "%s%s", i ? "," : "", addr);
	}
	if (u->is_cluster)
		return;
	n = strlen(out);
	snprintf(out + n, outsz - n, "/%s", u->service);
	n = strlen(out);
	if (u->db >= 0)
		snprintf(out + n, outsz - n, "/%d", u->db);
}

void
rurl_format_redacted(const struct rurl *u, char *out, size_t outsz)
{
	char cred[RURL_CRED_MAX + 8] = "";

	if (u->user[0] || u->has_password)
		snprintf(cred, sizeof(cred), "%s%s@", u->user,
		    u->has_password ? ":(redacted)" : "");
	if (u->is_sentinel || u->is_cluster) {
		format_hosts(u, cred, out, outsz);
	} else if (u->is_unix) {
		if (u->db >= 0)
			snprintf(out, outsz, "unix://%s%s?db=%d", cred, u->path, u->db);
		else
			snprintf(out, outsz, "unix://%s%s", cred, u->path);
	} else {
		const char *fmt = strchr(u->host, ':') ? "%s://%s[%s]:%d" : "%s://%s%s:%d";
		size_t n;

		snprintf(out, outsz, fmt, u->tls ? "rediss" : "redis", cred, u->host, u->port);
		n = strlen(out);
		if (u->db >= 0 && n < outsz)
			snprintf(out + n, outsz - n, "/%d", u->db);
	}
}
