#include "recerr.h"

#include <stdio.h>

#include "batchbuf.h"
#include "escape.h"
#include "reconcile.h"

int
recerr_conn(struct reconcile *r, struct rconn *c)
{
	snprintf(r->err, sizeof(r->err), "redis: %s", rconn_errstr(c));
	return RECONCILE_CONN;
}

int
recerr_conn_or_data(const struct rconn *c)
{
	return rconn_broken(c) ? RECONCILE_CONN : RECONCILE_DATA;
}

int
recerr_reply(struct reconcile *r, const redisReply *rep, const char *what)
{
	r->err_class = rerr_format(r->err, sizeof(r->err), what, rep);
	return RECONCILE_DATA;
}

int
recerr_online(struct reconcile *r, const redisReply *rep, const char *cmd)
{
	char what[300];

	snprintf(what, sizeof(what), "%s %s", cmd, r->cfg->online_set);
	return recerr_reply(r, rep, what);
}

int
recerr_socket(struct reconcile *r, const redisReply *rep, const char *cmd)
{
	char what[300];

	snprintf(what, sizeof(what), "%s on %s*%s", cmd, r->cfg->socket_prefix,
	    r->cfg->socket_suffix);
	return recerr_reply(r, rep, what);
}

int
recerr_script(struct reconcile *r, const struct rconn *c, const struct script *s)
{
	if (!rconn_broken(c))
		r->err_class = s->err_class;
	return recerr_conn_or_data(c);
}

int
recerr_oom(struct reconcile *r, const char *what)
{
	snprintf(r->err, sizeof(r->err), "out of memory%s%s", what ? " " : "", what ? what : "");
	return RECONCILE_INTERNAL;
}

int
recerr_malformed(struct reconcile *r, const char *cmd, const char *what)
{
	snprintf(r->err, sizeof(r->err), "%s %s: %s", cmd, r->cfg->online_set, what);
	return RECONCILE_DATA;
}

int
recerr_members(struct reconcile *r, const redisReply *arr, const char *cmd)
{
	for (size_t i = 0; i < arr->elements; i++)
		if (arr->element[i]->type != REDIS_REPLY_STRING) {
			snprintf(r->err, sizeof(r->err), "%s %s: unexpected member type %d",
			    cmd, r->cfg->online_set, arr->element[i]->type);
			return RECONCILE_DATA;
		}
	return 0;
}

const char *
recerr_escaped(struct reconcile *r, const char *s, size_t len)
{
	if (batchbuf_grow((void **)&r->esc, &r->escsz, 4 * len + 1, 1) < 0)
		return "(out of memory)";
	escape_id(r->esc, r->escsz, s, len);
	return r->esc;
}
