#include "rconn.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "escape.h"
#include "rerr.h"
#include "rsock.h"
#include "rtls.h"
#include "timeutil.h"

/*
 * The byte transport under RESP: plain sockets, or TLS, whose read/write
 * wrap SSL_read/SSL_write. Both report "would block" as -1 with errno
 * EAGAIN and leave in want the poll event to wait for (a TLS read may
 * need the socket writable, a TLS write readable); a TLS failure is -1
 * with errno EPROTO and its reason in tlserr.
 */
struct rconn_transport {
	ssize_t (*read)(struct rconn *c, void *buf, size_t len);
	ssize_t (*write)(struct rconn *c, const void *buf, size_t len);
	void (*close)(struct rconn *c);
};

struct rconn {
	int fd;
	const struct rconn_transport *tr;
	struct ssl_st *ssl;	/* TLS session, or NULL */
	short want;		/* what the transport waits for: POLLIN or POLLOUT */
	size_t received;	/* bytes read so far */
	unsigned char first;	/* the first byte read */
	redisReader *reader;
	char *out;		/* queued, not yet written */
	size_t outlen, outoff, outcap;
	int pending;		/* replies still expected */
	int asking;		/* each command goes after an ASKING of its own */
	int broken;
	int dropped;		/* broken by the server closing or resetting it */
	int command_timeout_ms;
	unsigned long long sent;
	char errstr[256];
	char tlserr[256];	/* why the TLS transport failed */
};

static void (*interrupt_hook)(void);

void
rconn_set_interrupt_hook(void (*hook)(void))
{
	interrupt_hook = hook;
}

static ssize_t
plain_read(struct rconn *c, void *buf, size_t len)
{
	c->want = POLLIN;
	return read(c->fd, buf, len);
}

static ssize_t
plain_write(struct rconn *c, const void *buf, size_t len)
{
	c->want = POLLOUT;
	return send(c->fd, buf, len, MSG_NOSIGNAL);
}

static void
plain_close(struct rconn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

static const struct rconn_transport plain_transport = {
	plain_read, plain_write, plain_close,
};

static ssize_t
tls_read(struct rconn *c, void *buf, size_t len)
{
	return rtls_read(c->ssl, buf, len, &c->want, c->tlserr, sizeof(c->tlserr));
}

static ssize_t
tls_write(struct rconn *c, const void *buf, size_t len)
{
	return rtls_write(c->ssl, buf, len, &c->want, c->tlserr, sizeof(c->tlserr));
}

static void
tls_close(struct rconn *c)
{
	rtls_close(c->ssl);
	c->ssl = NULL;
	plain_close(c);
}

static const struct rconn_transport tls_transport = {
	tls_read, tls_write, tls_close,
};

static int fail(struct rconn *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Record why the connection is unusable; it is never used again. */
static int
fail(struct rconn *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->errstr, sizeof(c->errstr), fmt, ap);
	va_end(ap);
	c->broken = 1;
	return -1;
}

int
rconn_append(struct rconn *c, int argc, const char **argv, const size_t *argvlen)
{
	char *cmd;
	int len;

	if (c->broken)
		return -1;
	if (c->asking) {
		c->asking = 0;	/* the ASKING itself goes alone */
		len = rconn_appendl(c, "ASKING", NULL);
		c->asking = 1;
		if (len < 0)
			return -1;
	}
	len = redisFormatCommandArgv(&cmd, argc, argv, argvlen);
	if (len < 0)
		return fail(c, "out of memory formatting a command");
	if (c->outoff > 0 && c->outoff == c->outlen)
		c->outoff = c->outlen = 0;
	if (c->outlen + (size_t)len > c->outcap) {
		size_t cap = c->outcap ? c->outcap : 4096;
		char *n;

		while (cap < c->outlen + (size_t)len)
			cap *= 2;
		if ((n = realloc(c->out, cap)) == NULL) {
			redisFreeCommand(cmd);
			return fail(c, "out of memory queueing a command");
		}
		c->out = n;
		c->outcap = cap;
	}
	memcpy(c->out + c->outlen, cmd, (size_t)len);
	c->outlen += (size_t)len;
	redisFreeCommand(cmd);
	c->pending++;
	c->sent++;
	return 0;
}

/* Queue a NULL-terminated list of C strings (at most 32). */
static int
vappendl(struct rconn *c, const char *arg0, va_list ap)
{
	const char *argv[32];
	size_t argvlen[32];
	int argc = 0;

	for (const char *a = arg0; a != NULL && argc < 32; a = va_arg(ap, const char *)) {
		argv[argc] = a;
		argvlen[argc++] = strlen(a);
	}
	return rconn_append(c, argc, argv, argvlen);
}

int
rconn_appendl(struct rconn *c, const char *arg0, ...)
{
	va_list ap;
	int rc;

	va_start(ap, arg0);
	rc = vappendl(c, arg0, ap);
	va_end(ap);
	return rc;
}

static int
flush_out(struct rconn *c, int64_t deadline)
{
	while (c->outoff < c->outlen) {
		ssize_t n = c->tr->write(c, c->out + c->outoff, c->outlen - c->outoff);

		if (n > 0) {
			c->outoff += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			int w = rsock_wait(c->fd, c->want, deadline, interrupt_hook);

			if (w == 0)
				return fail(c, "timed out writing to redis");
			if (w < 0)
				return fail(c, "poll: %s", strerror(errno));
			continue;
		}
		if (n < 0 && errno == EPROTO && c->ssl)
			return fail(c, "%s", c->tlserr);	/* the TLS reason */
		c->dropped = n < 0 && (errno == ECONNRESET || errno == EPIPE);
		return fail(c, "write to redis: %s", n < 0 ? strerror(errno) : "closed");
	}
	c->outoff = c->outlen = 0;
	return 0;
}

/*
 * Decode the next reply, reading from the socket as needed. With
 * deadline < 0 never wait: 0 when no whole reply is there yet. Otherwise
 * wait until the deadline (mono ms). 1 with *out set, or -1 (broken).
 */
static int
next_reply(struct rconn *c, int64_t deadline, void **out)
{
	for (;;) {
		char buf[16384];
		ssize_t n;

		if (redisReaderGetReply(c->reader, out) != REDIS_OK)
			return fail(c, "protocol error: %s", c->reader->errstr);
		if (*out != NULL)
			return 1;
		n = c->tr->read(c, buf, sizeof(buf));
		if (n > 0 && c->received == 0)
			c->first = (unsigned char)buf[0];
		if (n > 0) {
			c->received += (size_t)n;
			if (redisReaderFeed(c->reader, buf, (size_t)n) != REDIS_OK)
				return fail(c, "protocol error: %s", c->reader->errstr);
			continue;
		}
		c->dropped = n == 0 || errno == ECONNRESET;
		if (n == 0)
			return fail(c, "connection closed by redis");
		if (errno == EINTR)
			continue;
		if (errno == EPROTO && c->ssl)
			return fail(c, "%s", c->tlserr);	/* the TLS reason */
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return fail(c, "read from redis: %s", strerror(errno));
		if (deadline < 0)
			return 0;
		switch (rsock_wait(c->fd, c->want, deadline, interrupt_hook)) {
		case 0:
			return fail(c, "timed out waiting for redis (%d ms)",
			    c->command_timeout_ms);
		case -1:
			return fail(c, "poll: %s", strerror(errno));
		}
	}
}

int
rconn_get_reply(struct rconn *c, redisReply **reply)
{
	int64_t deadline = mono_ms() + c->command_timeout_ms;
	void *r = NULL;

	*reply = NULL;
	if (c->broken)
		return -1;
	if (c->pending == 0)
		return fail(c, "no reply expected (internal error)");
	if (flush_out(c, deadline) < 0)
		return -1;
	for (int i = c->asking; i >= 0; i--) {	/* ASKING's own reply first, dropped */
		if (r != NULL)
			freeReplyObject(r);
		if (next_reply(c, deadline, &r) < 0)
			return -1;
		c->pending--;
	}
	*reply = r;
	return 0;
}

void
rconn_set_asking(struct rconn *c)
{
	c->asking = 1;
}

int
rconn_poll_reply(struct rconn *c, redisReply **reply)
{
	void *r = NULL;
	int rc;

	*reply = NULL;
	if (c->broken)
		return -1;
	if (flush_out(c, mono_ms() + c->command_timeout_ms) < 0)
		return -1;
	if ((rc = next_reply(c, -1, &r)) <= 0)
		return rc;
	if (c->pending > 0)	/* pushed messages were never asked for */
		c->pending--;
	*reply = r;
	return 1;
}

int
rconn_fd(const struct rconn *c)
{
	return c->fd;
}

redisReply *
rconn_call(struct rconn *c, int argc, const char **argv, const size_t *argvlen)
{
	redisReply *r;

	if (rconn_append(c, argc, argv, argvlen) < 0 || rconn_get_reply(c, &r) < 0)
		return NULL;
	return r;
}

redisReply *
rconn_calll(struct rconn *c, const char *arg0, ...)
{
	redisReply *r = NULL;
	va_list ap;

	va_start(ap, arg0);
	if (vappendl(c, arg0, ap) < 0 || rconn_get_reply(c, &r) < 0)
		r = NULL;
	va_end(ap);
	return r;
}

int
rconn_pending(const struct rconn *c)
{
	return c->pending;
}

int
rconn_drain(struct rconn *c)
{
	while (c->pending > 0) {
		redisReply *r;

		if (rconn_get_reply(c, &r) < 0)
			return -1;
		freeReplyObject(r);
	}
	return 0;
}

int
rconn_broken(const struct rconn *c)
{
	return c->broken;
}

const char *
rconn_errstr(const struct rconn *c)
{
	return c->errstr;
}

unsigned long long
rconn_commands_sent(const struct rconn *c)
{
	return c->sent;
}

void
rconn_close(struct rconn *c)
{
	if (c == NULL)
		return;
	c->tr->close(c);
	if (c->reader)
		redisReaderFree(c->reader);
	free(c->out);
	free(c);
}

static int
is_auth_error(const redisReply *r)
{
	return r->type == REDIS_REPLY_ERROR &&
	    (strncmp(r->str, "NOAUTH", 6) == 0 || strncmp(r->str, "WRONGPASS", 9) == 0 ||
	    strncmp(r->str, "ERR invalid password", 20) == 0 ||
	    strncmp(r->str, "ERR invalid username", 20) == 0 ||
	    strncmp(r->str, "ERR AUTH", 8) == 0 ||
	    strncmp(r->str, "ERR Client sent AUTH", 20) == 0);
}

/*
 * Queue the AUTH that u calls for; returns 1 when one was queued, 0 when
 * u has neither user nor password. A user without a password is sent with
 * an empty one: a "nopass" ACL user accepts it, any other user refuses it,
 * and in neither case does the connection stay the "default" user.
 */
static int
queue_auth(struct rconn *c, const struct rurl *u)
{
	if (u->user[0])
		rconn_appendl(c, "AUTH", u->user, u->has_password ? u->password : "", NULL);
	else if (u->has_password)
		rconn_appendl(c, "AUTH", u->password, NULL);
	else
		return 0;
	return 1;
}

/*
 * The message for a refused AUTH: the user (when no password was given)
 * and the server's reply, both escaped; never the password.
 */
static void
auth_failed(struct rconn *c, const struct rurl *u, const redisReply *r)
{
	char user[128], why[160];

	escape_id(why, sizeof(why), r->str, r->len);
	if (u->user[0] && !u->has_password) {
		escape_id(user, sizeof(user), u->user, strlen(u->user));
		snprintf(c->errstr, sizeof(c->errstr),
		    "authentication as %s failed (no password given): %s", user, why);
	} else {
		snprintf(c->errstr, sizeof(c->errstr), "authentication failed: %s", why);
	}
}

/*
 * Pipelined AUTH, SELECT, CLIENT SETNAME and PING; read and judge each
 * reply in order. Nothing is sent after a reply is judged, so a refused
 * AUTH can never be followed by commands on an unauthenticated link.
 */
static int
handshake(struct rconn *c, const struct rconn_opts *o, enum rconn_err *kind)
{
	const struct rurl *u = o->url;
	char db[16];
	enum { H_AUTH, H_SELECT, H_NAME, H_PING } steps[4];
	int nsteps = 0, rc = 0;

	if (queue_auth(c, u))
		steps[nsteps++] = H_AUTH;
	if (u->db > 0) {
		snprintf(db, sizeof(db), "%d", u->db);
		rconn_appendl(c, "SELECT", db, NULL);
		steps[nsteps++] = H_SELECT;
	}
	if (o->client_name) {
		rconn_appendl(c, "CLIENT", "SETNAME", o->client_name, NULL);
		steps[nsteps++] = H_NAME;
	}
	rconn_appendl(c, "PING", NULL);
	steps[nsteps++] = H_PING;

	for (int i = 0; i < nsteps; i++) {
		redisReply *r;

		if (rconn_get_reply(c, &r) < 0) {
			*kind = RCONN_EIO;
			return -1;
		}
		if (rc == 0 && is_auth_error(r)) {
			auth_failed(c, u, r);
			*kind = RCONN_EAUTH;
			rc = -1;
		} else if (rc == 0 && r->type == REDIS_REPLY_ERROR && steps[i] != H_NAME) {
			char why[160];

			escape_id(why, sizeof(why), r->str, r->len);
			snprintf(c->errstr, sizeof(c->errstr), "%s refused: %s",
			    steps[i] == H_SELECT ? "SELECT" : steps[i] == H_AUTH ? "AUTH" : "PING",
			    why);
			/* A user without PING or SELECT is as wrong as a wrong password. */
			*kind = steps[i] == H_AUTH || rerr_of(r) == RERR_NOPERM ? RCONN_EAUTH :
			    rerr_transient(rerr_of(r)) ? RCONN_EBUSY : RCONN_EPROTO;
			rc = -1;
		}
		freeReplyObject(r);
	}
	return rc;
}

/*
 * The server dropped the connection before its first reply, or answered
 * with a TLS record. Plain: most likely a TLS port spoken to in plain
 * RESP. TLS: most likely our client certificate (rtls_dropped_hint).
 */
static void
hint_first_reply(struct rconn *c)
{
	char why[sizeof(c->errstr)], hint[128];
	int tls_record = c->received > 0 && (c->first == 0x15 || c->first == 0x16);

	if (!(c->dropped && c->received == 0) && (c->ssl || !tls_record))
		return;
	if (c->ssl)
		rtls_dropped_hint(c->ssl, hint, sizeof(hint));
	else
		snprintf(hint, sizeof(hint), "a plain client on a TLS port? (use rediss:// or "
		    "tls.enabled = true)");
	snprintf(why, sizeof(why), "%s", c->errstr);
	snprintf(c->errstr, sizeof(c->errstr), "%s, before any reply: %s", why, hint);
}

static void
endpoint_error(const struct rurl *u, const char *why, char *err, size_t errlen)
{
	if (u->is_unix)
		snprintf(err, errlen, "cannot connect to unix:%s: %s", u->path, why);
	else
		snprintf(err, errlen, "cannot connect to %s:%d: %s", u->host, u->port, why);
}

/* A connection on fd, with TLS when o asks for it. NULL with err. */
static struct rconn *
conn_new(int fd, const struct rconn_opts *o, int64_t deadline, char *err, size_t errlen)
{
	struct rconn *c;
	char why[300];

	if ((c = calloc(1, sizeof(*c))) == NULL || (c->reader = redisReaderCreate()) == NULL) {
		free(c);
		close(fd);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	c->fd = fd;
	c->tr = &plain_transport;
	if (o->tls == NULL)
		return c;
	c->ssl = rtls_handshake(o->tls, fd, o->url->host, deadline, interrupt_hook, why,
	    sizeof(why));
	if (c->ssl == NULL) {
		endpoint_error(o->url, why, err, errlen);
		rconn_close(c);
		return NULL;
	}
	c->tr = &tls_transport;
	return c;
}

struct rconn *
rconn_connect(const struct rconn_opts *o, enum rconn_err *kind, char *err, size_t errlen)
{
	int64_t deadline = mono_ms() + o->connect_timeout_ms;
	struct rconn *c;
	char why[200];
	int fd;

	*kind = RCONN_EIO;
	fd = rsock_dial(o->url, deadline, interrupt_hook, why, sizeof(why));
	if (fd < 0) {
		endpoint_error(o->url, why, err, errlen);
		return NULL;
	}
	if ((c = conn_new(fd, o, deadline, err, errlen)) == NULL)
		return NULL;
	*kind = RCONN_OK;
	c->command_timeout_ms = o->connect_timeout_ms;	/* the handshake is part of connecting */
	if (handshake(c, o, kind) < 0) {
		hint_first_reply(c);
		snprintf(err, errlen, "%s", c->errstr);
		rconn_close(c);
		return NULL;
	}
	c->command_timeout_ms = o->command_timeout_ms;
	c->sent = 0;
	return c;
}

int
rconn_is_tls(const struct rconn *c)
{
	return c->ssl != NULL;
}

int
rconn_tls_peer(const struct rconn *c, struct rtls_peer *p)
{
	if (c->ssl == NULL)
		return -1;
	rtls_peer(c->ssl, p);
	return 0;
}
