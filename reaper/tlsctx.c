#include "tlsctx.h"

#include <string.h>

#include "log.h"

static void
opts_of(const struct cfg *c, struct rtls_opts *o)
{
	o->ca_file = c->tls_ca_file;
	o->ca_dir = c->tls_ca_dir;
	o->cert_file = c->tls_cert_file;
	o->key_file = c->tls_key_file;
	o->server_name = c->tls_server_name;
	o->verify = c->tls_verify;
}

int
tlsctx_load(struct tlsctx *t, const struct cfg *c, char *err, size_t errlen)
{
	struct rtls_opts o;

	if (!c->url.tls)
		return 0;
	if (t->rtls == NULL && (t->rtls = rtls_new()) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	opts_of(c, &o);
	if (rtls_load(t->rtls, &o, err, errlen) < 0)
		return -1;
	t->fresh = 1;
	return 0;
}

const struct rtls *
tlsctx_for_connect(struct tlsctx *t, const struct cfg *c)
{
	char err[sizeof(t->failing)];

	if (!c->url.tls)
		return NULL;
	if (t->fresh) {		/* just read at start: the first connection uses it */
		t->fresh = 0;
		return t->rtls;
	}
	if (tlsctx_load(t, c, err, sizeof(err)) == 0) {
		t->fresh = 0;
		if (t->failing[0])
			log_info("TLS: the certificate files load again");
		t->failing[0] = '\0';
		return t->rtls;
	}
	if (strcmp(err, t->failing) != 0)
		log_warnx("TLS: cannot reload the certificate files: %s; %s", err,
		    t->rtls && rtls_loaded(t->rtls) ? "keeping the ones loaded before" :
		    "cannot connect until they load");
	snprintf(t->failing, sizeof(t->failing), "%s", err);
	return t->rtls;
}

void
tlsctx_connected(const struct cfg *c)
{
	if (c->url.tls && !c->tls_verify)
		log_warnx("TLS: tls.verify is false: the server's certificate is not checked, "
		    "so anyone on the path can pose as Redis");
}

void
tlsctx_describe(const struct rconn *conn, char *out, size_t outsz)
{
	struct rtls_peer p;

	if (rconn_tls_peer(conn, &p) < 0)
		snprintf(out, outsz, "%s", "");
	else
		snprintf(out, outsz, " (tls %s %s)", p.protocol, p.cipher);
}

void
tlsctx_report(const struct rconn *conn, FILE *out)
{
	struct rtls_peer p;

	if (rconn_tls_peer(conn, &p) < 0)
		return;
	fprintf(out, "# tls: %s, cipher %s\n", p.protocol, p.cipher);
	if (p.subject[0] == '\0') {
		fprintf(out, "# tls: the server sent no certificate\n");
		return;
	}
	fprintf(out, "# tls: server certificate %s, expires %s (in %d days)\n", p.subject,
	    p.not_after, p.days_left);
	if (p.days_left < TLSCTX_EXPIRY_WARN_DAYS) {
		fprintf(out, "# tls: WARNING: the server certificate expires within %d days\n",
		    TLSCTX_EXPIRY_WARN_DAYS);
		log_warnx("TLS: the server certificate (%s) expires on %s, within %d days",
		    p.subject, p.not_after, TLSCTX_EXPIRY_WARN_DAYS);
	}
}

void
tlsctx_free(struct tlsctx *t)
{
	rtls_free(t->rtls);
	t->rtls = NULL;
}
