#include "screen.h"

#include <stdio.h>
#include <string.h>

#include "recerr.h"
#include "reconcile.h"
#include "track.h"

#define GHOST_SAMPLE 5

size_t
screen_group_size(double prior, unsigned long long scanned, unsigned long long stale,
    size_t n, int each_ttl)
{
	double p = prior;
	size_t g = SCREEN_MIN_GROUP;

	if (each_ttl)
		return 0;
	if (scanned > 0 && (double)stale / (double)scanned > p)
		p = (double)stale / (double)scanned;
	if ((double)g * (double)g * p > 1.0)
		return 0;
	if ((double)n * (double)n * p <= 1.0)
		return n;
	while (g < n && (double)(g + 1) * (double)(g + 1) * p <= 1.0)
		g++;
	return g < n ? g : n;
}

int
screen_sscan_append(struct reconcile *r, struct rconn *c, const char *cursor, int count)
{
	char n[16];

	if (r->tracking)
		return track_scan_append(r, c, cursor, count);
	snprintf(n, sizeof(n), "%d", count);
	if (rconn_appendl(c, "SSCAN", r->cfg->online_set, cursor, "COUNT", n, NULL) < 0)
		return recerr_conn(r, c);
	return 0;
}

int
screen_sscan_parse(struct reconcile *r, redisReply *rep, const char **cursor,
    redisReply **members)
{
	*cursor = NULL;
	*members = NULL;
	if (rep->type != REDIS_REPLY_ARRAY)
		return recerr_online(r, rep, "SSCAN");
	if (rep->elements != 2 || rep->element[0]->type != REDIS_REPLY_STRING ||
	    rep->element[1]->type != REDIS_REPLY_ARRAY)
		return recerr_malformed(r, "SSCAN", "malformed reply");
	*cursor = rep->element[0]->str;
	*members = rep->element[1];
	return recerr_members(r, *members, "SSCAN");
}

/* The socket keys of members[idx[i]] into r->scan's argv[0..n). */
static int
socket_keys(struct reconcile *r, redisReply *const *members, const size_t *idx, size_t n)
{
	if (batchbuf_gather(&r->ids, members, idx, n) < 0)
		return recerr_oom(r, NULL);
	if (batchbuf_keys(&r->scan, &r->keys, r->ids.ids, r->ids.lens, n, 0, n) < 0)
		return recerr_oom(r, "building a batch");
	return 0;
}

int
screen_exists_append(struct reconcile *r, struct rconn *c, redisReply *const *members,
    size_t n, size_t group)
{
	struct batchbuf *gb = &r->grp;
	int rc;

	if ((rc = socket_keys(r, members, NULL, n)) != 0)
		return rc;
	if (batchbuf_reserve(gb, group + 1) < 0)
		return recerr_oom(r, "building a batch");
	batchbuf_set(gb, 0, "EXISTS", 6);
	for (size_t at = 0; at < n; at += group) {
		size_t k = n - at < group ? n - at : group;

		memcpy(gb->argv + 1, r->scan.argv + at, k * sizeof(*gb->argv));
		memcpy(gb->argvlen + 1, r->scan.argvlen + at, k * sizeof(*gb->argvlen));
		if (rconn_append(c, (int)k + 1, gb->argv, gb->argvlen) < 0)
			return recerr_conn(r, c);
	}
	return 0;
}

int
screen_exists_read(struct reconcile *r, struct rconn *c, size_t n, size_t group,
    struct batchbuf_idx *chk)
{
	int rc = 0;

	chk->n = 0;
	for (size_t at = 0; at < n; at += group) {
		size_t k = n - at < group ? n - at : group;
		redisReply *rep;

		if (rconn_get_reply(c, &rep) < 0)
			return recerr_conn(r, c);
		if (rep->type != REDIS_REPLY_INTEGER && rc == 0)
			recerr_socket(r, rep, "EXISTS");
		if (rep->type != REDIS_REPLY_INTEGER)
			rc = RECONCILE_DATA;
		else if (rc == 0 && rep->integer < (long long)k)
			for (size_t i = at; i < at + k && rc == 0; i++)
				if (batchbuf_push(chk, i) < 0)
					rc = recerr_oom(r, NULL);
		freeReplyObject(rep);
	}
	return rc;
}

int
screen_pttl_send(struct reconcile *r, struct rconn *c, const struct batchbuf *keys, size_t n)
{
	const char *argv[2] = { "PTTL", NULL };
	size_t argvlen[2] = { 4, 0 };

	for (size_t i = 0; i < n; i++) {
		argv[1] = keys->argv[i];
		argvlen[1] = keys->argvlen[i];
		if (rconn_append(c, 2, argv, argvlen) < 0)
			return recerr_conn(r, c);
	}
	return 0;
}

int
screen_pttl_append(struct reconcile *r, struct rconn *c, redisReply *const *members,
    const size_t *idx, size_t n)
{
	int rc;

	if ((rc = socket_keys(r, members, idx, n)) != 0)
		return rc;
	return screen_pttl_send(r, c, &r->scan, n);
}

void
screen_note_ghost(struct reconcile *r, const redisReply *id, struct reconcile_stats *st)
{
	size_t n;

	if (st == NULL || idset_add(&r->ghosts, id->str, id->len) == 0)
		return;
	n = strlen(st->ghost_sample);
	st->ghosts++;
	if (st->ghosts > GHOST_SAMPLE || n + 8 >= sizeof(st->ghost_sample))
		return;
	snprintf(st->ghost_sample + n, sizeof(st->ghost_sample) - n, "%s\"%.60s\"",
	    n ? ", " : "", recerr_escaped(r, id->str, id->len));
}

int
screen_judge_ttl(struct reconcile *r, long long ttl, const redisReply *m, size_t i,
    struct batchbuf_idx *cand, struct reconcile_stats *st)
{
	int repair = !r->dry_run && r->cfg->repair_missing_ttl > 0;

	if (ttl == SCREEN_PTTL_PERSISTENT) {
		screen_note_ghost(r, m, st);
		if (repair && batchbuf_push(cand, i) < 0)
			return recerr_oom(r, NULL);
	} else if (ttl == SCREEN_PTTL_MISSING) {
		if (!r->dry_run) {
			st->stale++;
			if (batchbuf_push(cand, i) < 0)
				return recerr_oom(r, NULL);
		} else if (idset_add(&r->printed, m->str, m->len) != 0) {
			st->stale++;
			fprintf(r->out, "%s\n", recerr_escaped(r, m->str, m->len));
		}
	}
	return 0;
}

int
screen_pttl_read(struct reconcile *r, struct rconn *c, redisReply *const *members,
    const struct batchbuf_idx *chk, struct batchbuf_idx *cand, struct reconcile_stats *st)
{
	int rc = 0;

	cand->n = 0;
	for (size_t i = 0; i < chk->n; i++) {
		redisReply *rep;
		long long ttl;

		if (rconn_get_reply(c, &rep) < 0)
			return recerr_conn(r, c);
		if (rep->type != REDIS_REPLY_INTEGER) {
			if (rc == 0)
				recerr_socket(r, rep, "PTTL");
			rc = RECONCILE_DATA;
			freeReplyObject(rep);
			continue;
		}
		ttl = rep->integer;
		freeReplyObject(rep);
		if (rc == 0)
			rc = screen_judge_ttl(r, ttl, members[chk->v[i]], chk->v[i], cand, st);
	}
	return rc;
}
