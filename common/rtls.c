#include "rtls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "escape.h"
#include "rsock.h"
#include "timeutil.h"

struct rtls {
	SSL_CTX *ctx;
	char *server_name;
	int verify;
};

/* What the verify callback saw of the first certificate it refused. */
struct verify_note {
	int seen;
	char subject[512];
	char issuer[512];
	char not_after[32];
};

struct rtls *
rtls_new(void)
{
	return calloc(1, sizeof(struct rtls));
}

void
rtls_free(struct rtls *t)
{
	if (t == NULL)
		return;
	SSL_CTX_free(t->ctx);
	free(t->server_name);
	free(t);
}

int
rtls_loaded(const struct rtls *t)
{
	return t->ctx != NULL;
}

/* The reason of OpenSSL's latest error, for a message; the error queue is emptied. */
static const char *
ssl_reason(void)
{
	unsigned long e = ERR_peek_last_error();
	const char *r = e ? ERR_reason_error_string(e) : NULL;

	ERR_clear_error();
	return r ? r : "unknown error";
}

/* A distinguished name as one escaped line, RFC 2253 style. */
static void
name_text(const X509_NAME *name, char *out, size_t outsz)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *data = NULL;
	long n;

	out[0] = '\0';
	if (b == NULL)
		return;
	if (X509_NAME_print_ex(b, name, 0, XN_FLAG_RFC2253) >= 0 &&
	    (n = BIO_get_mem_data(b, &data)) > 0)
		escape_ctl(out, outsz, data, (size_t)n);
	BIO_free(b);
}

/* "2027-01-31 12:00:00 UTC", or "?" */
static void
time_text(const ASN1_TIME *t, char *out, size_t outsz)
{
	struct tm tm;

	if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1 ||
	    strftime(out, outsz, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
		snprintf(out, outsz, "?");
}

/* Remember the first certificate refused; the verify mode decides what follows. */
static int
verify_cb(int ok, X509_STORE_CTX *x)
{
	SSL *s = X509_STORE_CTX_get_ex_data(x, SSL_get_ex_data_X509_STORE_CTX_idx());
	struct verify_note *n = s ? SSL_get_app_data(s) : NULL;
	X509 *cert = X509_STORE_CTX_get_current_cert(x);

	if (!ok && n && !n->seen && cert) {
		n->seen = 1;
		name_text(X509_get_subject_name(cert), n->subject, sizeof(n->subject));
		name_text(X509_get_issuer_name(cert), n->issuer, sizeof(n->issuer));
		time_text(X509_get0_notAfter(cert), n->not_after, sizeof(n->not_after));
	}
	return ok;
}

/* An encrypted key must fail, not prompt on a terminal. */
static int
no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf, (void)size, (void)rwflag, (void)u;
	return 0;
}

/* "SETTING: cannot read PATH: why" when path is not a readable file (or folder). */
static int
check_path(const char *setting, const char *path, int folder, char *err, size_t errlen)
{
	char shown[1024];
	struct stat st;
	const char *why = NULL;

	if (stat(path, &st) != 0 || access(path, folder ? R_OK | X_OK : R_OK) != 0)
		why = strerror(errno);
	else if (folder && !S_ISDIR(st.st_mode))
		why = "not a folder";
	else if (!folder && S_ISDIR(st.st_mode))
		why = "a folder, not a file";
	if (why == NULL)
		return 0;
	escape_ctl(shown, sizeof(shown), path, strlen(path));
	snprintf(err, errlen, "%s: cannot read %s: %s", setting, shown, why);
	return -1;
}

/* "SETTING: PATH: what: OpenSSL's reason" */
static int
load_failed(const char *setting, const char *path, const char *what, char *err,
    size_t errlen)
{
	char shown[1024];

	escape_ctl(shown, sizeof(shown), path, strlen(path));
	snprintf(err, errlen, "%s: %s: %s: %s", setting, shown, what, ssl_reason());
	return -1;
}

/* The CAs to trust: the file and folder given, else the system trust store. */
static int
load_trust(SSL_CTX *ctx, const struct rtls_opts *o, char *err, size_t errlen)
{
	if (o->ca_file[0]) {
		if (check_path("tls.ca_file", o->ca_file, 0, err, errlen) < 0)
			return -1;
		if (SSL_CTX_load_verify_file(ctx, o->ca_file) != 1)
			return load_failed("tls.ca_file", o->ca_file, "no usable certificate",
			    err, errlen);
	}
	if (o->ca_dir[0]) {
		if (check_path("tls.ca_dir", o->ca_dir, 1, err, errlen) < 0)
			return -1;
		if (SSL_CTX_load_verify_dir(ctx, o->ca_dir) != 1)
			return load_failed("tls.ca_dir", o->ca_dir, "cannot use", err, errlen);
	}
	if (!o->ca_file[0] && !o->ca_dir[0] && SSL_CTX_set_default_verify_paths(ctx) != 1) {
		snprintf(err, errlen, "cannot load the system trust store: %s", ssl_reason());
		return -1;
	}
	return 0;
}

/* Mutual TLS: the client certificate (chain) and its key, which must match. */
static int
load_client_cert(SSL_CTX *ctx, const struct rtls_opts *o, char *err, size_t errlen)
{
	if (!o->cert_file[0] && !o->key_file[0])
		return 0;
	if (!o->cert_file[0] || !o->key_file[0]) {
		snprintf(err, errlen, "%s is set but %s is not: mutual TLS needs both",
		    o->cert_file[0] ? "tls.cert_file" : "tls.key_file",
		    o->cert_file[0] ? "tls.key_file" : "tls.cert_file");
		return -1;
	}
	if (check_path("tls.cert_file", o->cert_file, 0, err, errlen) < 0 ||
	    check_path("tls.key_file", o->key_file, 0, err, errlen) < 0)
		return -1;
	if (SSL_CTX_use_certificate_chain_file(ctx, o->cert_file) != 1)
		return load_failed("tls.cert_file", o->cert_file, "no usable certificate", err,
		    errlen);
	if (SSL_CTX_use_PrivateKey_file(ctx, o->key_file, SSL_FILETYPE_PEM) != 1 &&
	    ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH)
		goto mismatch;
	if (SSL_CTX_get0_privatekey(ctx) == NULL)
		return load_failed("tls.key_file", o->key_file,
		    "no usable private key (PEM, not encrypted)", err, errlen);
	if (SSL_CTX_check_private_key(ctx) == 1)
		return 0;
mismatch:
	ERR_clear_error();
	snprintf(err, errlen, "tls.key_file is not the key of tls.cert_file");
	return -1;
}

static SSL_CTX *
build_ctx(const struct rtls_opts *o, char *err, size_t errlen)
{
	SSL_CTX *ctx;

	ERR_clear_error();
	if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL) {
		snprintf(err, errlen, "cannot create a TLS context: %s", ssl_reason());
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	/* RESP frames itself: a peer that closes without close_notify just closed. */
	SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
	    SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_CTX_set_verify(ctx, o->verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, verify_cb);
	SSL_CTX_set_default_passwd_cb(ctx, no_passphrase);
	if (load_trust(ctx, o, err, errlen) < 0 || load_client_cert(ctx, o, err, errlen) < 0) {
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

int
rtls_load(struct rtls *t, const struct rtls_opts *o, char *err, size_t errlen)
{
	SSL_CTX *ctx = build_ctx(o, err, errlen);
	char *name;

	if (ctx == NULL)
		return -1;
	if ((name = strdup(o->server_name)) == NULL) {
		SSL_CTX_free(ctx);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	SSL_CTX_free(t->ctx);
	free(t->server_name);
	t->ctx = ctx;
	t->server_name = name;
	t->verify = o->verify;
	return 0;
}

/* SNI for a name (never for an address), and the name or address to verify. */
static int
set_peer_name(SSL *s, const char *name)
{
	unsigned char addr[16];

	if (inet_pton(AF_INET, name, addr) == 1 || inet_pton(AF_INET6, name, addr) == 1)
		return X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(s), name) == 1 ? 0 : -1;
	SSL_set_hostflags(s, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	if (SSL_set_tlsext_host_name(s, name) != 1 || SSL_set1_host(s, name) != 1)
		return -1;
	return 0;
}

/* The server's certificate did not verify: say why in an operator's words. */
static void
verify_failed(long vr, const struct verify_note *n, const char *name, char *err,
    size_t errlen)
{
	char shown[300];

	escape_ctl(shown, sizeof(shown), name, strlen(name));
	switch (vr) {
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
	case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
	case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
		snprintf(err, errlen, "TLS: the server's certificate is signed by an unknown "
		    "CA (issuer %s): set tls.ca_file or tls.ca_dir to the CA that signed it",
		    n->issuer);
		break;
	case X509_V_ERR_HOSTNAME_MISMATCH:
	case X509_V_ERR_IP_ADDRESS_MISMATCH:
		snprintf(err, errlen, "TLS: hostname mismatch: the server's certificate (%s) "
		    "is not valid for %s: connect by a name it holds, or set tls.server_name",
		    n->subject, shown);
		break;
	case X509_V_ERR_CERT_HAS_EXPIRED:
		snprintf(err, errlen, "TLS: the server's certificate (%s) expired on %s",
		    n->subject, n->not_after);
		break;
	default:
		snprintf(err, errlen, "TLS: the server's certificate (%s) did not verify: %s",
		    n->subject, X509_verify_cert_error_string(vr));
		break;
	}
}

/* A fatal alert or record error: a client certificate refused, or not TLS at all. */
static int
alert_failed(SSL *s, int reason, char *err, size_t errlen)
{
	int have_cert = SSL_get_certificate(s) != NULL;

	switch (reason) {
	case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED:
	case SSL_R_SSLV3_ALERT_HANDSHAKE_FAILURE:
	case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
	case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN:
	case SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED:
	case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
	case SSL_R_TLSV1_ALERT_ACCESS_DENIED:
		if (have_cert)
			snprintf(err, errlen, "TLS: the server refused our client certificate "
			    "(tls.cert_file): %s", ERR_reason_error_string(ERR_PACK(ERR_LIB_SSL,
			    0, reason)));
		else
			snprintf(err, errlen, "TLS: the server requires a client certificate: "
			    "set tls.cert_file and tls.key_file");
		return 0;
	case SSL_R_WRONG_VERSION_NUMBER:
	case SSL_R_UNKNOWN_PROTOCOL:
	case SSL_R_PACKET_LENGTH_TOO_LONG:
	case SSL_R_UNEXPECTED_MESSAGE:
		snprintf(err, errlen, "TLS: the server did not answer in TLS: a TLS client on "
		    "a plain port? (use redis:// without tls.enabled)");
		return 0;
	}
	return -1;
}

/* Why a TLS operation that returned rc failed, in err; OpenSSL's queue is emptied. */
static void
tls_failed(SSL *s, int rc, const struct verify_note *n, const char *name, char *err,
    size_t errlen)
{
	int code = SSL_get_error(s, rc), reason = ERR_GET_REASON(ERR_peek_error());
	long vr = SSL_get_verify_result(s);

	if (code == SSL_ERROR_SSL && reason == SSL_R_CERTIFICATE_VERIFY_FAILED &&
	    vr != X509_V_OK && n != NULL)
		verify_failed(vr, n, name, err, errlen);
	else if (code == SSL_ERROR_SSL && alert_failed(s, reason, err, errlen) == 0)
		;
	else if (code == SSL_ERROR_ZERO_RETURN || (code == SSL_ERROR_SYSCALL && errno == 0))
		snprintf(err, errlen, "TLS: the server closed the connection");
	else if (code == SSL_ERROR_SYSCALL)
		snprintf(err, errlen, "TLS: %s", strerror(errno));
	else
		snprintf(err, errlen, "TLS: %s", ssl_reason());
	ERR_clear_error();
}

/* SSL_connect until done or deadline. 0, or -1 with err. */
static int
connect_loop(SSL *s, int fd, const struct verify_note *n, const char *name,
    int64_t deadline, void (*on_interrupt)(void), char *err, size_t errlen)
{
	int64_t start = mono_ms();

	for (;;) {
		int rc, code;

		ERR_clear_error();
		errno = 0;
		if ((rc = SSL_connect(s)) == 1)
			return 0;
		code = SSL_get_error(s, rc);
		if (code != SSL_ERROR_WANT_READ && code != SSL_ERROR_WANT_WRITE) {
			tls_failed(s, rc, n, name, err, errlen);
			return -1;
		}
		switch (rsock_wait(fd, code == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline,
		    on_interrupt)) {
		case 0:
			snprintf(err, errlen, "TLS handshake timed out after %lld ms: no TLS "
			    "answer from the server (a TLS client on a plain port?)",
			    (long long)(mono_ms() - start));
			return -1;
		case -1:
			snprintf(err, errlen, "poll: %s", strerror(errno));
			return -1;
		}
	}
}

SSL *
rtls_handshake(const struct rtls *t, int fd, const char *host, int64_t deadline,
    void (*on_interrupt)(void), char *err, size_t errlen)
{
	const char *name = t->server_name && t->server_name[0] ? t->server_name : host;
	struct verify_note note;
	SSL *s = NULL;

	if (t->ctx == NULL) {
		snprintf(err, errlen, "TLS: no certificates loaded (the tls.* files could not "
		    "be read)");
		return NULL;
	}
	memset(&note, 0, sizeof(note));
	ERR_clear_error();
	if ((s = SSL_new(t->ctx)) == NULL || SSL_set_fd(s, fd) != 1 ||
	    set_peer_name(s, name) < 0) {
		snprintf(err, errlen, "TLS setup failed: %s", ssl_reason());
		goto fail;
	}
	SSL_set_app_data(s, &note);
	if (connect_loop(s, fd, &note, name, deadline, on_interrupt, err, errlen) < 0)
		goto fail;
	SSL_set_app_data(s, NULL);
	return s;
fail:
	SSL_free(s);
	return NULL;
}

/* Before an SSL call: nothing stale may be taken for its error. */
static int
io_len(size_t len)
{
	ERR_clear_error();
	errno = 0;
	return len > INT_MAX ? INT_MAX : (int)len;
}

/* The outcome of SSL_read or SSL_write that returned rc, as rtls.h says. */
static ssize_t
io_result(SSL *s, int rc, short *want, char *err, size_t errlen)
{
	if (rc > 0)
		return rc;
	switch (SSL_get_error(s, rc)) {
	case SSL_ERROR_WANT_READ:
		*want = POLLIN;
		errno = EAGAIN;
		return -1;
	case SSL_ERROR_WANT_WRITE:
		*want = POLLOUT;
		errno = EAGAIN;
		return -1;
	case SSL_ERROR_ZERO_RETURN:
		return 0;
	case SSL_ERROR_SYSCALL:
		if (errno == 0 && ERR_peek_error() == 0)
			return 0;	/* closed without close_notify */
		if (errno != 0) {
			ERR_clear_error();
			return -1;	/* the socket's own error, e.g. ECONNRESET */
		}
		break;
	}
	tls_failed(s, rc, NULL, "", err, errlen);
	errno = EPROTO;
	return -1;
}

ssize_t
rtls_read(SSL *s, void *buf, size_t len, short *want, char *err, size_t errlen)
{
	int n = io_len(len);

	return io_result(s, SSL_read(s, buf, n), want, err, errlen);
}

ssize_t
rtls_write(SSL *s, const void *buf, size_t len, short *want, char *err, size_t errlen)
{
	int n = io_len(len);

	return io_result(s, SSL_write(s, buf, n), want, err, errlen);
}

/*
 * No close_notify: Redis needs none, and writing it on a connection the
 * server already reset would only raise SIGPIPE.
 */
void
rtls_close(SSL *s)
{
	SSL_free(s);
}

void
rtls_dropped_hint(SSL *s, char *out, size_t outsz)
{
	if (SSL_get_certificate(s) != NULL)
		snprintf(out, outsz, "most likely it refused our client certificate "
		    "(tls.cert_file)");
	else
		snprintf(out, outsz, "most likely it requires a client certificate: set "
		    "tls.cert_file and tls.key_file");
}

void
rtls_peer(SSL *s, struct rtls_peer *p)
{
	X509 *cert = SSL_get1_peer_certificate(s);
	int days = 0, secs = 0;

	memset(p, 0, sizeof(*p));
	snprintf(p->protocol, sizeof(p->protocol), "%s", SSL_get_version(s));
	snprintf(p->cipher, sizeof(p->cipher), "%s", SSL_get_cipher_name(s));
	if (cert == NULL)
		return;
	name_text(X509_get_subject_name(cert), p->subject, sizeof(p->subject));
	time_text(X509_get0_notAfter(cert), p->not_after, sizeof(p->not_after));
	if (ASN1_TIME_diff(&days, &secs, NULL, X509_get0_notAfter(cert)) == 1)
		p->days_left = days;
	X509_free(cert);
}
