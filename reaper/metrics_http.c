/*
 * metrics_http: the /metrics, /healthz and /readyz listener, served by
 * libmicrohttpd in a thread of its own. It only reads the metrics state
 * through metrics.h; moving the listener on reload is done here too.
 */
#include "metrics.h"

#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "log.h"

#define CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

static struct MHD_Daemon *httpd;
static char httpd_listen[300];	/* what httpd serves: to know its port, to put it back */

static enum MHD_Result
respond(struct MHD_Connection *conn, unsigned status, const char *type, const char *body,
    size_t len)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	r = MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
	if (r == NULL)
		return MHD_NO;
	MHD_add_response_header(r, "Content-Type", type);
	MHD_add_response_header(r, "Cache-Control", "no-store");
	ret = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result
handle(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
    const char *version, const char *upload, size_t *upload_size, void **state)
{
	(void)cls; (void)version; (void)upload; (void)upload_size; (void)state;

	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
		return respond(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain",
		    "method not allowed\n", 19);
	if (strcmp(url, "/metrics") == 0) {
		char *buf = malloc(METRICS_RENDER_MAX);
		enum MHD_Result ret;

		if (buf == NULL)
			return MHD_NO;
		ret = respond(conn, MHD_HTTP_OK, CONTENT_TYPE, buf, metrics_render(buf, METRICS_RENDER_MAX));
		free(buf);
		return ret;
	}
	if (strcmp(url, "/healthz") == 0)
		return metrics_healthy() ? respond(conn, MHD_HTTP_OK, "text/plain", "ok\n", 3)
		    : respond(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "text/plain",
		    "main loop stalled\n", 18);
	if (strcmp(url, "/readyz") == 0)
		return metrics_ready() ? respond(conn, MHD_HTTP_OK, "text/plain", "ok\n", 3)
		    : respond(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "text/plain",
		    "redis unreachable\n", 18);
	return respond(conn, MHD_HTTP_NOT_FOUND, "text/plain", "not found\n", 10);
}

int
metrics_split_listen(const char *listen, char *host, size_t hostsz, char *port, size_t portsz)
{
	const char *colon;

	if (listen[0] == '[') {
		const char *rb = strchr(listen, ']');

		if (rb == NULL || rb[1] != ':')
			return -1;
		snprintf(host, hostsz, "%.*s", (int)(rb - listen - 1), listen + 1);
		colon = rb + 1;
	} else {
		if ((colon = strrchr(listen, ':')) == NULL)
			return -1;
		snprintf(host, hostsz, "%.*s", (int)(colon - listen), listen);
	}
	snprintf(port, portsz, "%s", colon + 1);
	return port[0] ? 0 : -1;
}

/* Do two listen strings name the same port? Then one must close for the other. */
static int
same_port(const char *a, const char *b)
{
	char host[256], pa[16], pb[16];

	return metrics_split_listen(a, host, sizeof(host), pa, sizeof(pa)) == 0 &&
	    metrics_split_listen(b, host, sizeof(host), pb, sizeof(pb)) == 0 && strcmp(pa, pb) == 0;
}

/*
 * The address to bind for listen. An empty host means every interface: the
 * IPv6 wildcard with *any set, for a dual-stack socket that takes IPv4 too.
 * Returns 0, or -1 with a message in err.
 */
static int
resolve_listen(const char *listen, struct sockaddr_storage *ss, int *any, char *err,
    size_t errlen)
{
	struct addrinfo hints, *res = NULL;
	char host[256], port[16];
	int rc;

	if (metrics_split_listen(listen, host, sizeof(host), port, sizeof(port)) < 0) {
		snprintf(err, errlen, "metrics.listen: \"%s\" is not host:port", listen);
		return -1;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = host[0] ? AF_UNSPEC : AF_INET6;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE;
	if ((rc = getaddrinfo(host[0] ? host : NULL, port, &hints, &res)) != 0) {
		snprintf(err, errlen, "metrics.listen %s: %s", listen, gai_strerror(rc));
		return -1;
	}
	memset(ss, 0, sizeof(*ss));
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	freeaddrinfo(res);
	*any = host[0] == '\0';
	return 0;
}

/* One libmicrohttpd daemon bound to sa; NULL with errno set (0 when unknown). */
static struct MHD_Daemon *
serve(const struct sockaddr *sa, unsigned family_flags)
{
	errno = 0;
	/* Bounded everything: a slow or hostile client cannot hold the server. */
	return MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | family_flags, 0,
	    NULL, NULL, handle, NULL,
	    MHD_OPTION_SOCK_ADDR, sa,
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned)64,
	    MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)16,
	    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)5,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)32768,
	    MHD_OPTION_END);
}

/* Did binding the IPv6 wildcard fail (errno) because the host has no IPv6? Keeps errno. */
static int
ipv6_absent(void)
{
	int saved = errno, fd, absent = 1;

	if (saved != EAFNOSUPPORT && saved != EPROTONOSUPPORT && saved != EADDRNOTAVAIL) {
		if ((fd = socket(AF_INET6, SOCK_STREAM, 0)) >= 0)
			close(fd);
		absent = fd < 0 && (errno == EAFNOSUPPORT || errno == EPROTONOSUPPORT);
	}
	errno = saved;
	return absent;
}

/*
 * Serve on listen. ":port" is one IPv6 socket with IPV6_V6ONLY off, which
 * takes both families; on a host without IPv6 it is IPv4 only, logged.
 * Returns the daemon, or NULL with a message in err.
 */
static struct MHD_Daemon *
listen_on(const char *listen, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	struct MHD_Daemon *dm;
	int any;

	if (resolve_listen(listen, &ss, &any, err, errlen) < 0)
		return NULL;
	if (!any) {
		dm = serve((struct sockaddr *)&ss, ss.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0);
	} else if ((dm = serve((struct sockaddr *)&ss, MHD_USE_DUAL_STACK)) == NULL &&
	    ipv6_absent()) {
		struct sockaddr_in v4 = { .sin_family = AF_INET,
			.sin_port = ((struct sockaddr_in6 *)&ss)->sin6_port,
			.sin_addr.s_addr = htonl(INADDR_ANY) };

		log_warnx("metrics.listen %s: no IPv6 on this host (%s); listening on IPv4 only",
		    listen, errno ? strerror(errno) : "cannot bind [::]");
		dm = serve((struct sockaddr *)&v4, 0);
	}
	if (dm == NULL)
		snprintf(err, errlen, "metrics.listen %s: cannot listen (%s)", listen,
		    errno ? strerror(errno) : "address in use?");
	return dm;
}

/*
 * Serve on listen; when a listener runs already, move it there. The new
 * address is bound before the old one closes, so a bad one costs nothing;
 * only when it needs the old one's port (127.0.0.1:P to :P) does the old one
 * close first, to be put back if the new one still fails.
 */
int
metrics_http_start(const char *listen, char *err, size_t errlen)
{
	struct MHD_Daemon *next;
	char why[512];

	if (strlen(listen) >= sizeof(httpd_listen)) {
		snprintf(err, errlen, "metrics.listen: \"%.40s...\" is too long", listen);
		return -1;
	}
	next = listen_on(listen, err, errlen);
	if (next == NULL && httpd != NULL && same_port(listen, httpd_listen)) {
		MHD_stop_daemon(httpd);
		httpd = NULL;
		if ((next = listen_on(listen, err, errlen)) == NULL &&
		    (httpd = listen_on(httpd_listen, why, sizeof(why))) == NULL) {
			snprintf(err + strlen(err), errlen - strlen(err),
			    "; the old listener is gone too: %s", why);
			httpd_listen[0] = '\0';
		}
	}
	if (next == NULL)
		return -1;
	if (httpd)
		MHD_stop_daemon(httpd);
	httpd = next;
	snprintf(httpd_listen, sizeof(httpd_listen), "%s", listen);
	return 0;
}

void
metrics_http_stop(void)
{
	if (httpd)
		MHD_stop_daemon(httpd);
	httpd = NULL;
	httpd_listen[0] = '\0';
}
