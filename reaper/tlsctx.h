/*
 * tlsctx: the program's TLS client context (common/rtls) for its Redis
 * connections. Loaded at start, where an unreadable or unparsable file is
 * a configuration error; loaded again from disk before every new
 * connection, so certificates renewed on disk (cert-manager, a mounted
 * Secret) are used without a restart, while a file that is missing or
 * bad at that moment is logged and the previous context kept.
 */
#ifndef PR_TLSCTX_H
#define PR_TLSCTX_H

#include <stddef.h>
#include <stdio.h>

#include "rconn.h"
#include "rtls.h"
#include "settings.h"

/* Certificates expiring within this many days draw a warning. */
#define TLSCTX_EXPIRY_WARN_DAYS 14

struct tlsctx {
	struct rtls *rtls;	/* NULL until first loaded */
	int fresh;		/* loaded by tlsctx_load, not used for a connection yet */
	char failing[512];	/* the reload error being repeated; "" none */
};

/*
 * Load the files c names, when c wants TLS. 0 (also without TLS), or -1
 * with the reason in err: at start, that is a configuration error.
 */
int tlsctx_load(struct tlsctx *t, const struct cfg *c, char *err, size_t errlen);

/*
 * Before a new connection: reload the files, logging a failure (once
 * while it lasts). Returns the context to connect with (the previous one
 * when the reload failed), or NULL when c wants no TLS. A context that
 * never loaded makes the handshake fail with its own message.
 */
const struct rtls *tlsctx_for_connect(struct tlsctx *t, const struct cfg *c);

/* After connecting: warn that the server is not verified, when tls.verify is off. */
void tlsctx_connected(const struct cfg *c);

/* " (tls TLSv1.3 TLS_AES_256_GCM_SHA384)" for a TLS connection, else "". */
void tlsctx_describe(const struct rconn *conn, char *out, size_t outsz);

/* -t: the negotiated protocol and cipher, the server certificate and its expiry. */
void tlsctx_report(const struct rconn *conn, FILE *out);

void tlsctx_free(struct tlsctx *t);

#endif
