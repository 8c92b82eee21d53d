/*
 * rtls: TLS under a Redis connection, with OpenSSL 3.0. A client context
 * is built from the files the configuration names (CA file or folder, or
 * the system trust store; a client certificate and key for mutual TLS)
 * and can be rebuilt from disk before every new connection, so renewed
 * certificates are used without a restart; when a rebuild fails the
 * previous context stays in use. TLS 1.2 is the minimum.
 *
 * A connection's handshake runs on a connected non-blocking socket within
 * the caller's deadline; reads and writes never block and say which event
 * (POLLIN or POLLOUT) OpenSSL waits for, since a read may need to write
 * and a write to read. Every failure leaves a message in the caller's
 * buffer that names the likely cause (unknown CA, name mismatch, expired
 * certificate, client certificate required, not a TLS server); text from
 * the peer (certificate names) is escaped, key contents never appear.
 */
#ifndef PR_RTLS_H
#define PR_RTLS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct ssl_st;		/* OpenSSL's SSL */

struct rtls_opts {
	const char *ca_file;		/* "" = none */
	const char *ca_dir;		/* "" = none; neither: the system trust store */
	const char *cert_file;		/* client certificate (chain), "" = none */
	const char *key_file;		/* its private key */
	const char *server_name;	/* SNI and the name verified; "" = the host */
	int verify;			/* 0: accept any certificate (insecure) */
};

/* A client context and the options it was built from; private to rtls.c. */
struct rtls;

/* An empty context (nothing loaded). NULL when out of memory. */
struct rtls *rtls_new(void);
void rtls_free(struct rtls *t);

/*
 * Build a context from the files o names, and use it from now on. On
 * failure -1 with the reason in err ("tls.ca_file: cannot read ...") and
 * the context loaded before, if any, stays in use. Returns 0 on success.
 */
int rtls_load(struct rtls *t, const struct rtls_opts *o, char *err, size_t errlen);

/* Has a load ever succeeded? */
int rtls_loaded(const struct rtls *t);

/*
 * TLS handshake on fd (connected, non-blocking) to host, before deadline
 * (CLOCK_MONOTONIC ms). Returns the session, or NULL with the reason in
 * err. on_interrupt as for rsock_wait.
 */
struct ssl_st *rtls_handshake(const struct rtls *t, int fd, const char *host,
    int64_t deadline, void (*on_interrupt)(void), char *err, size_t errlen);

/*
 * Read or write like read(2)/send(2) on a non-blocking socket: bytes
 * moved, 0 when the server closed, or -1 with errno EAGAIN (and *want
 * set to the poll event OpenSSL waits for), EPROTO (the reason in err)
 * or the socket's own error.
 */
ssize_t rtls_read(struct ssl_st *s, void *buf, size_t len, short *want, char *err,
    size_t errlen);
ssize_t rtls_write(struct ssl_st *s, const void *buf, size_t len, short *want, char *err,
    size_t errlen);

/* Send close_notify if it fits without waiting, and free the session. */
void rtls_close(struct ssl_st *s);

/*
 * The server dropped a connection after the handshake, before its first
 * reply. In TLS 1.3 the server judges the client certificate only after
 * the handshake, and its alert can be lost in the reset: say so.
 */
void rtls_dropped_hint(struct ssl_st *s, char *out, size_t outsz);

/* What -t shows of a session. */
struct rtls_peer {
	char protocol[32];	/* "TLSv1.3" */
	char cipher[80];
	char subject[512];	/* the server certificate's, escaped; "" when none */
	char not_after[32];	/* "2027-01-31 12:00:00 UTC" */
	int days_left;		/* whole days until not_after; negative when past */
};

void rtls_peer(struct ssl_st *s, struct rtls_peer *p);

#endif
