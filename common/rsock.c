#include "rsock.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "errbuf.h"
#include "timeutil.h"

/* Wait for events on fd until deadline (mono ms). 1 ready, 0 timeout, -1 error. */
int
rsock_wait(int fd, short events, int64_t deadline, void (*on_interrupt)(void))
{
	for (;;) {
		struct pollfd p = { .fd = fd, .events = events };
		int64_t left = deadline - mono_ms();
		int rc;

		if (left <= 0)
			return 0;
		rc = poll(&p, 1, left > 60000 ? 60000 : (int)left);
		if (rc > 0)
			return 1;
		if (rc < 0 && errno != EINTR)
			return -1;
		if (rc < 0 && on_interrupt)
			on_interrupt();
	}
}

static int
set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

/* Non-blocking connect to one address with a deadline. Returns fd or -1. */
static int
connect_addr(const struct sockaddr *sa, socklen_t salen, int64_t deadline,
    void (*on_interrupt)(void), char *err, size_t errlen)
{
	int64_t start = mono_ms();
	int fd, soerr = 0;
	socklen_t len = sizeof(soerr);

	fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || set_nonblock(fd) < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		goto fail;
	}
	if (connect(fd, sa, salen) == 0)
		return fd;
	if (errno != EINPROGRESS && errno != EAGAIN) {
		snprintf(err, errlen, "%s", strerror(errno));
		goto fail;
	}
	switch (rsock_wait(fd, POLLOUT, deadline, on_interrupt)) {
	case 0:
		snprintf(err, errlen, "connect timed out after %lld ms",
		    (long long)(deadline - start));
		goto fail;
	case -1:
		snprintf(err, errlen, "poll: %s", strerror(errno));
		goto fail;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0 || soerr != 0) {
		snprintf(err, errlen, "%s", strerror(soerr ? soerr : errno));
		goto fail;
	}
	return fd;
fail:
	if (fd >= 0)
		close(fd);
	return -1;
}

static int
connect_unix(const struct rurl *u, int64_t deadline, void (*on_interrupt)(void), char *err,
    size_t errlen)
{
	struct sockaddr_un sun;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", u->path);
	return connect_addr((struct sockaddr *)&sun, sizeof(sun), deadline, on_interrupt, err,
	    errlen);
}

static void
tune_tcp(int fd)
{
	int one = 1, idle = 30, intvl = 10, cnt = 3;

	/* Small pipelined requests must not wait for Nagle; keepalive finds dead peers. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
}

/* Add "ADDR: why" for one failed address to the semicolon-separated err. */
static void
note_addr_error(const struct addrinfo *ai, const char *why, char *err, size_t errlen)
{
	char host[NI_MAXHOST];
	if (getnameinfo(ai->ai_addr, ai->ai_addrlen, host, sizeof(host), NULL, 0,
	    NI_NUMERICHOST) != 0)
		snprintf(host, sizeof(host), "?");
	errbuf_add(err, errlen, "%s: %s", host, why);
}

/*
 * Connect to the addresses host resolves to, in the resolver's order,
 * before deadline (mono ms). Each attempt may use the time left divided
 * by the addresses not yet tried, so an address that silently drops
 * packets (often the IPv6 one) cannot use up the whole timeout, and one
 * that fails at once leaves its share to the others. Returns the fd, or
 * -1 with the reason in err (each address's, when there are several).
 */
static int
connect_tcp(const struct rurl *u, int64_t deadline, void (*on_interrupt)(void), char *err,
    size_t errlen)
{
	struct addrinfo hints, *res = NULL;
	char port[8], why[200];
	int fd = -1, rc, naddr = 0, several;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	snprintf(port, sizeof(port), "%d", u->port);
	if ((rc = getaddrinfo(u->host, port, &hints, &res)) != 0) {
		snprintf(err, errlen, "cannot resolve %s: %s", u->host, gai_strerror(rc));
		return -1;
	}
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next)
		naddr++;
	several = naddr > 1;
	err[0] = '\0';
	for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next, naddr--) {
		int64_t now = mono_ms();

		fd = connect_addr(ai->ai_addr, ai->ai_addrlen, now + (deadline - now) / naddr,
		    on_interrupt, why, sizeof(why));
		if (fd < 0 && several)
			note_addr_error(ai, why, err, errlen);
		else if (fd < 0)
			snprintf(err, errlen, "%s", why);
	}
	freeaddrinfo(res);
	if (fd >= 0)
		tune_tcp(fd);
	return fd;
}

int
rsock_dial(const struct rurl *u, int64_t deadline, void (*on_interrupt)(void), char *err,
    size_t errlen)
{
	return u->is_unix ? connect_unix(u, deadline, on_interrupt, err, errlen) :
	    connect_tcp(u, deadline, on_interrupt, err, errlen);
}
