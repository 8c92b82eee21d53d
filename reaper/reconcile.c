#include "reconcile.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "escape.h"
#include "log.h"
#include "scripts.h"
#include "timeutil.h"

#define GUARD_ROUNDS 10
#define GUARD_COUNT_N 100
#define GUARD_COUNT "100"	/* 10 x 100 = 1000 sampled members */
#define GUARD_SMALL "1000"
#define GHOST_SAMPLE 5
/* Smallest EXISTS group worth sending; below it each member gets its PTTL. */
#define MIN_GROUP 3

/* PTTL answers: no such key, or a key without a TTL. */
#define PTTL_MISSING -2
#define PTTL_PERSISTENT -1

/*
 * Reap script argv: EVALSHA sha numkeys online lock stream key*n
 * token mode channel maxlen repair_ms id*n.
 */
#define REAP_LEAD 6
#define REAP_MID 5

void
reconcile_init(struct reconcile *r, const struct cfg *cfg, struct leader *leader,
    int dry_run, FILE *out)
{
	memset(r, 0, sizeof(*r));
	r->cfg = cfg;
	keys_init(&r->keys, cfg->socket_prefix, cfg->socket_suffix);
	r->leader = leader;
	r->dry_run = dry_run;
	r->out = out;
	r->reap_script = (struct script){ "reap", script_reap, "", RERR_NONE };
	r->probe_script = (struct script){ "probe", script_probe, "", RERR_NONE };
	idset_init(&r->printed);
	idset_init(&r->ghosts);
	gwin_init(&r->win, cfg->interval);
}

static void
batchbuf_free(struct batchbuf *b)
{
	free(b->argv);
	free(b->argvlen);
	free(b->arena);
	memset(b, 0, sizeof(*b));
}

static void
batch_release(struct batch *b)
{
	if (b->reply)
		freeReplyObject(b->reply);
	b->reply = NULL;
	b->ncand = 0;
}

void
reconcile_free(struct reconcile *r)
{
	batchbuf_free(&r->scan);
	batchbuf_free(&r->grp);
	batchbuf_free(&r->reap);
	for (int i = 0; i < RECONCILE_SLOTS; i++) {
		batch_release(&r->slots[i]);
		free(r->slots[i].cand);
		free(r->slots[i].chk);
		r->slots[i].cand = r->slots[i].chk = NULL;
		r->slots[i].candcap = r->slots[i].chkcap = 0;
	}
	free(r->esc);
	free(r->ids);
	free(r->lens);
	r->ids = NULL;
	r->lens = NULL;
	r->idscap = 0;
	idset_clear(&r->printed);
	idset_clear(&r->ghosts);
	r->esc = NULL;
	r->escsz = 0;
}

static int
grow(void **p, size_t *cap, size_t want, size_t elsz)
{
	void *n;

	if (want <= *cap)
		return 0;
	if ((n = realloc(*p, want * elsz)) == NULL)
		return -1;
	*p = n;
	*cap = want;
	return 0;
}

/* Room for nargs arguments in b's argv / argvlen. */
static int
argv_reserve(struct reconcile *r, struct batchbuf *b, size_t nargs)
{
	size_t cap = b->nargs;

	if (grow((void **)&b->argv, &cap, nargs, sizeof(*b->argv)) < 0 ||
	    grow((void **)&b->argvlen, &b->nargs, nargs, sizeof(*b->argvlen)) < 0) {
		snprintf(r->err, sizeof(r->err), "out of memory building a batch");
		return -1;
	}
	return 0;
}

/*
 * Lay the socket keys of ids[0..n) out in b's arena as argv[lead + i], with
 * room for nargs arguments in all.
 */
static int
build_keys(struct reconcile *r, struct batchbuf *b, const char *const *ids,
    const size_t *lens, size_t n, size_t lead, size_t nargs)
{
	size_t need = 0, off = 0;

	for (size_t i = 0; i < n; i++)
		need += keys_socket_len(&r->keys, lens[i]);
	if (grow((void **)&b->arena, &b->arenasz, need ? need : 1, 1) < 0) {
		snprintf(r->err, sizeof(r->err), "out of memory building a batch");
		return -1;
	}
	if (argv_reserve(r, b, nargs) < 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		b->argv[lead + i] = b->arena + off;
		b->argvlen[lead + i] = keys_socket(&r->keys, b->arena + off, ids[i], lens[i]);
		off += b->argvlen[lead + i];
	}
	return 0;
}

static void
set_arg(struct batchbuf *b, size_t i, const char *s, size_t len)
{
	b->argv[i] = s;
	b->argvlen[i] = len;
}

/* Point r->ids / r->lens at members[idx[i]] (or members[i] when idx is NULL). */
static int
gather(struct reconcile *r, redisReply **members, const size_t *idx, size_t n)
{
	size_t cap = r->idscap;

	if (grow((void **)&r->ids, &cap, n ? n : 1, sizeof(*r->ids)) < 0 ||
	    grow((void **)&r->lens, &r->idscap, n ? n : 1, sizeof(*r->lens)) < 0) {
		snprintf(r->err, sizeof(r->err), "out of memory");
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		const redisReply *m = members[idx ? idx[i] : i];

		r->ids[i] = m->str;
		r->lens[i] = m->len;
	}
	return 0;
}

static const char *
escaped(struct reconcile *r, const char *s, size_t len)
{
	if (grow((void **)&r->esc, &r->escsz, 4 * len + 1, 1) < 0)
		return "(out of memory)";
	escape_id(r->esc, r->escsz, s, len);
	return r->esc;
}

/* Every element of a member list must be a string. */
static int
check_members(struct reconcile *r, const redisReply *arr, const char *cmd)
{
	for (size_t i = 0; i < arr->elements; i++)
		if (arr->element[i]->type != REDIS_REPLY_STRING) {
			snprintf(r->err, sizeof(r->err), "%s %s: unexpected member type %d",
			    cmd, r->cfg->online_set, arr->element[i]->type);
			return -1;
		}
	return 0;
}

/*
 * An error reply (or one we cannot use) to what, a command and the keys it
 * touched: the message in r->err, the class in r->err_class. Always
 * RECONCILE_DATA; main.c decides by the class what it means.
 */
static int
reply_error(struct reconcile *r, const redisReply *rep, const char *what)
{
	r->err_class = rerr_format(r->err, sizeof(r->err), what, rep);
	return RECONCILE_DATA;
}

/* An error reply on the online set: WRONGTYPE and friends. */
static int
data_error(struct reconcile *r, const redisReply *rep, const char *cmd)
{
	char what[300];

	snprintf(what, sizeof(what), "%s %s", cmd, r->cfg->online_set);
	reply_error(r, rep, what);
	return RECONCILE_DATA;
}

/* An error reply to cmd on socket sets, named by their pattern as an ACL grants them. */
static int
socket_error(struct reconcile *r, const redisReply *rep, const char *cmd)
{
	char what[300];

	snprintf(what, sizeof(what), "%s on %s*%s", cmd, r->cfg->socket_prefix,
	    r->cfg->socket_suffix);
	return reply_error(r, rep, what);
}

/* A script that did not run: the connection broke, or Redis refused to load it. */
static int
script_failed(struct reconcile *r, struct rconn *c, const struct script *s)
{
	if (rconn_broken(c))
		return RECONCILE_CONN;
	r->err_class = s->err_class;
	return RECONCILE_DATA;
}

static int
conn_error(struct reconcile *r, struct rconn *c)
{
	snprintf(r->err, sizeof(r->err), "redis: %s", rconn_errstr(c));
	return RECONCILE_CONN;
}

/* Read and drop the replies still queued, so the connection stays in step. */
static int
drain(struct reconcile *r, struct rconn *c)
{
	while (rconn_pending(c) > 0) {
		redisReply *rep;

		if (rconn_get_reply(c, &rep) < 0)
			return conn_error(r, c);
		freeReplyObject(rep);
	}
	return 0;
}

/* Queue PTTL for the socket keys of members[idx[i]] (members[i] when idx is NULL). */
static int
screen_append(struct reconcile *r, struct rconn *c, redisReply **members, const size_t *idx,
    size_t n)
{
	const char *argv[2] = { "PTTL", NULL };
	size_t argvlen[2] = { 4, 0 };

	if (gather(r, members, idx, n) < 0 ||
	    build_keys(r, &r->scan, r->ids, r->lens, n, 0, n) < 0)
		return RECONCILE_INTERNAL;
	for (size_t i = 0; i < n; i++) {
		argv[1] = r->scan.argv[i];
		argvlen[1] = r->scan.argvlen[i];
		if (rconn_append(c, 2, argv, argvlen) < 0)
			return conn_error(r, c);
	}
	return 0;
}

/* Count a ghost once per cycle, though the guard's sample and the pass may both see it. */
static void
note_ghost(struct reconcile *r, const redisReply *id, struct reconcile_stats *st)
{
	size_t n;

	/* -t's probe keeps no statistics. */
	if (st == NULL || idset_add(&r->ghosts, id->str, id->len) == 0)
		return;
	n = strlen(st->ghost_sample);
	st->ghosts++;
	if (st->ghosts > GHOST_SAMPLE || n + 8 >= sizeof(st->ghost_sample))
		return;
	snprintf(st->ghost_sample + n, sizeof(st->ghost_sample) - n, "%s\"%.60s\"",
	    n ? ", " : "", escaped(r, id->str, id->len));
}

/* Append i to a grown-on-demand index list. */
static int
add_index(struct reconcile *r, size_t **v, size_t *len, size_t *cap, size_t i)
{
	if (*len == *cap &&
	    grow((void **)v, cap, *cap ? 2 * *cap : 64, sizeof(**v)) < 0) {
		snprintf(r->err, sizeof(r->err), "out of memory");
		return RECONCILE_INTERNAL;
	}
	(*v)[(*len)++] = i;
	return 0;
}

static int
add_candidate(struct reconcile *r, struct batch *b, size_t i)
{
	return add_index(r, &b->cand, &b->ncand, &b->candcap, i);
}

/*
 * Read the PTTL replies for members[b->chk[0..n)]. Stale members (no
 * socket set) become candidates for the reap script, or in dry-run are
 * printed once; ghosts (a socket set without TTL) are counted, and are
 * candidates when they are to be repaired. Any reply that is not an
 * integer is a data error, but every reply is still read so the pipeline
 * stays in step.
 */
static int
screen_read(struct reconcile *r, struct rconn *c, struct batch *b, redisReply **members,
    size_t n, struct reconcile_stats *st)
{
	int repair = !r->dry_run && r->cfg->repair_missing_ttl > 0;
	int rc = 0;

	b->ncand = 0;
	for (size_t i = 0; i < n; i++) {
		const redisReply *m;
		redisReply *rep;
		long long ttl;

		if (rconn_get_reply(c, &rep) < 0)
			return conn_error(r, c);
		if (rep->type != REDIS_REPLY_INTEGER) {
			if (rc == 0)
				socket_error(r, rep, "PTTL");
			rc = RECONCILE_DATA;
			freeReplyObject(rep);
			continue;
		}
		ttl = rep->integer;
		freeReplyObject(rep);
		if (rc != 0)
			continue;
		m = members[b->chk[i]];
		if (ttl == PTTL_PERSISTENT) {
			note_ghost(r, m, st);
			if (repair)
				rc = add_candidate(r, b, b->chk[i]);
		} else if (ttl == PTTL_MISSING) {
			if (!r->dry_run) {
				st->stale++;
				rc = add_candidate(r, b, b->chk[i]);
			} else if (idset_add(&r->printed, m->str, m->len) != 0) {
				st->stale++;
				fprintf(r->out, "%s\n", escaped(r, m->str, m->len));
			}
		}
	}
	return rc;
}

/* Read the n PTTL replies for the guard's sample members[0..n). */
static int
probe_read(struct reconcile *r, struct rconn *c, redisReply **members, size_t n,
    struct guard_probe *g, struct reconcile_stats *st)
{
	int rc = 0;

	for (size_t i = 0; i < n; i++) {
		redisReply *t;

		if (rconn_get_reply(c, &t) < 0)
			return conn_error(r, c);
		if (t->type == REDIS_REPLY_INTEGER) {
			g->sampled++;
			g->stale += t->integer == PTTL_MISSING;
			if (t->integer == PTTL_PERSISTENT) {
				g->ghosts++;
				note_ghost(r, members[i], st);
			}
		} else if (rc == 0) {
			rc = socket_error(r, t, "PTTL");
		}
		freeReplyObject(t);
	}
	return rc;
}

/*
 * Check a sample's socket sets with the probe script, one call for the
 * lot: { missing, ghost_index... }. Read-only, but a script, which a
 * read-only ACL user may not run: dry runs send one PTTL per member.
 */
static int
probe_script(struct reconcile *r, struct rconn *c, redisReply **members, size_t n,
    struct guard_probe *g, struct reconcile_stats *st)
{
	struct batchbuf *b = &r->scan;
	redisReply *rep;
	int rc = 0;

	if (gather(r, members, NULL, n) < 0 ||
	    build_keys(r, b, r->ids, r->lens, n, 3, n + 3) < 0)
		return RECONCILE_INTERNAL;
	snprintf(b->numkeys, sizeof(b->numkeys), "%zu", n);
	set_arg(b, 2, b->numkeys, strlen(b->numkeys));
	rep = script_call(c, &r->probe_script, (int)n + 3, b->argv, b->argvlen, r->err,
	    sizeof(r->err));
	if (rep == NULL)
		return script_failed(r, c, &r->probe_script);
	if (rep->type != REDIS_REPLY_ARRAY || rep->elements < 1 ||
	    rep->element[0]->type != REDIS_REPLY_INTEGER) {
		rc = socket_error(r, rep, "EVALSHA probe script");
		goto out;
	}
	for (size_t i = 1; i < rep->elements; i++)
		if (rep->element[i]->type != REDIS_REPLY_INTEGER ||
		    rep->element[i]->integer < 1 || (size_t)rep->element[i]->integer > n) {
			snprintf(r->err, sizeof(r->err), "probe script: malformed reply");
			rc = RECONCILE_DATA;
			goto out;
		}
	g->sampled += (int)n;
	g->stale += (int)rep->element[0]->integer;
	for (size_t i = 1; i < rep->elements; i++) {
		g->ghosts++;
		note_ghost(r, members[rep->element[i]->integer - 1], st);
	}
out:
	freeReplyObject(rep);
	return rc;
}

/*
 * Sample GUARD_ROUNDS x GUARD_COUNT random members and count those whose
 * socket set is gone, and the ghosts among them. Several small SRANDMEMBER
 * calls rather than one of 1000: on a large set each call costs Redis about
 * 2 us per member, and no single call may block it for long. A member drawn
 * twice counts twice, which does not bias the fraction.
 */
static int
guard_sample(struct reconcile *r, struct rconn *c, struct guard_probe *g,
    struct reconcile_stats *st)
{
	redisReply *rep[GUARD_ROUNDS] = { NULL };
	/* A set of up to 1000 is cheap to return whole, and then seen exactly. */
	int small = g->online <= GUARD_ROUNDS * GUARD_COUNT_N;
	int rounds = small ? 1 : GUARD_ROUNDS;
	int rc = 0;

	for (int i = 0; i < rounds; i++)
		if (rconn_appendl(c, "SRANDMEMBER", r->cfg->online_set,
		    small ? GUARD_SMALL : GUARD_COUNT, NULL) < 0)
			return conn_error(r, c);
	for (int i = 0; i < rounds; i++)
		if (rconn_get_reply(c, &rep[i]) < 0) {
			rc = conn_error(r, c);
			goto out;
		}
	for (int i = 0; i < rounds && rc == 0; i++) {
		if (rep[i]->type != REDIS_REPLY_ARRAY)
			rc = data_error(r, rep[i], "SRANDMEMBER");
		else if (check_members(r, rep[i], "SRANDMEMBER") < 0)
			rc = RECONCILE_DATA;
		else if (!r->dry_run && rep[i]->elements > 0)
			rc = probe_script(r, c, rep[i]->element, rep[i]->elements, g, st);
		else if ((rc = screen_append(r, c, rep[i]->element, NULL, rep[i]->elements)) == 0)
			rc = probe_read(r, c, rep[i]->element, rep[i]->elements, g, st);
	}
out:
	for (int i = 0; i < GUARD_ROUNDS; i++)
		if (rep[i])
			freeReplyObject(rep[i]);
	return rc;
}

/*
 * Would removing `pending` more users now take the guard's stale fraction
 * (gwin.h: the last sample plus the window's removals) over
 * max_stale_ratio? Never while the online set, counted before the
 * window's removals, is below guard_min_users. The fraction goes to *frac.
 */
static int
guard_trips(const struct reconcile *r, unsigned long long pending, double *frac)
{
	int64_t now = mono_ms();
	double f;

	if (r->cfg->max_stale_ratio >= 1.0 ||
	    gwin_population(&r->win, now) < (long long)r->cfg->guard_min_users ||
	    gwin_population(&r->win, now) <= 0)
		return 0;
	f = gwin_fraction(&r->win, pending, now);
	if (frac)
		*frac = f;
	return f > r->cfg->max_stale_ratio;
}

static int
probe(struct reconcile *r, struct rconn *c, struct guard_probe *g, struct reconcile_stats *st)
{
	const struct cfg *cfg = r->cfg;
	redisReply *rep;
	int rc;

	memset(g, 0, sizeof(*g));
	if ((rep = rconn_calll(c, "SCARD", cfg->online_set, NULL)) == NULL)
		return conn_error(r, c);
	if (rep->type != REDIS_REPLY_INTEGER) {
		rc = data_error(r, rep, "SCARD");
		freeReplyObject(rep);
		return rc;
	}
	g->online = rep->integer;
	freeReplyObject(rep);
	g->applies = cfg->max_stale_ratio < 1.0 && g->online >= cfg->guard_min_users &&
	    g->online > 0;
	if (g->online == 0)
		return 0;

	rc = guard_sample(r, c, g, st);
	if (rc == 0)
		gwin_sample(&r->win, g->online, g->sampled, g->stale);
	g->tripped = rc == 0 && g->sampled > 0 && guard_trips(r, 0, NULL);
	return rc;
}

int
reconcile_probe(struct reconcile *r, struct rconn *c, struct guard_probe *g)
{
	r->err_class = RERR_NONE;
	return probe(r, c, g, NULL);
}

/* TYPE key must be want or none; RECONCILE_DATA with a message otherwise. */
static int
check_type(struct reconcile *r, struct rconn *c, const char *what, const char *key,
    const char *want)
{
	redisReply *rep = rconn_calll(c, "TYPE", key, NULL);
	int rc = 0;

	if (rep == NULL)
		return conn_error(r, c);
	if (rep->type != REDIS_REPLY_STATUS) {
		char cmd[300];

		snprintf(cmd, sizeof(cmd), "TYPE %s", key);
		rc = reply_error(r, rep, cmd);
	} else if (strcmp(rep->str, want) != 0 && strcmp(rep->str, "none") != 0) {
		char type[4 * 40 + 1];

		escape_id(type, sizeof(type), rep->str, rep->len < 40 ? rep->len : 40);
		r->err_class = RERR_OTHER;
		snprintf(r->err, sizeof(r->err), "WRONGTYPE %s %s holds a %s, not a %s: the reap "
		    "script will refuse to remove anyone until it is fixed", what, key, type,
		    want);
		rc = RECONCILE_DATA;
	}
	freeReplyObject(rep);
	return rc;
}

int
reconcile_check_keys(struct reconcile *r, struct rconn *c)
{
	int rc;

	r->err_class = RERR_NONE;
	rc = check_type(r, c, "online set", r->cfg->online_set, "set");

	if (rc == 0 && strcmp(r->cfg->events_mode, "stream") == 0)
		rc = check_type(r, c, "events stream", r->cfg->events_stream, "stream");
	return rc;
}

/* Split an SSCAN reply into cursor and members; RECONCILE_DATA on a bad shape. */
static int
parse_sscan(struct reconcile *r, redisReply *rep, const char **cursor, redisReply **members)
{
	*cursor = NULL;
	*members = NULL;
	if (rep->type != REDIS_REPLY_ARRAY)
		return data_error(r, rep, "SSCAN");
	if (rep->elements != 2 || rep->element[0]->type != REDIS_REPLY_STRING ||
	    rep->element[1]->type != REDIS_REPLY_ARRAY) {
		snprintf(r->err, sizeof(r->err), "SSCAN %s: malformed reply",
		    r->cfg->online_set);
		return RECONCILE_DATA;
	}
	*cursor = rep->element[0]->str;
	*members = rep->element[1];
	if (check_members(r, *members, "SSCAN") < 0)
		return RECONCILE_DATA;
	return 0;
}

static int
append_sscan(struct reconcile *r, struct rconn *c, const char *cursor)
{
	char count[16];

	snprintf(count, sizeof(count), "%d", r->cfg->batch_size);
	if (rconn_appendl(c, "SSCAN", r->cfg->online_set, cursor, "COUNT", count, NULL) < 0)
		return conn_error(r, c);
	return 0;
}

/* Queue the fenced reap script for users ids[0..n). */
static int
reap_append_ids(struct reconcile *r, struct rconn *c, const char *const *ids,
    const size_t *lens, size_t n, size_t *argc)
{
	const struct cfg *cfg = r->cfg;
	struct batchbuf *rb = &r->reap;
	size_t mid = REAP_LEAD + n;

	*argc = REAP_LEAD + n + REAP_MID + n;
	if (build_keys(r, rb, ids, lens, n, REAP_LEAD, *argc) < 0)
		return RECONCILE_INTERNAL;
	snprintf(rb->numkeys, sizeof(rb->numkeys), "%zu", n + 3);
	snprintf(rb->maxlen, sizeof(rb->maxlen), "%d", cfg->events_stream_maxlen);
	snprintf(rb->repair, sizeof(rb->repair), "%lld",
	    (long long)(cfg->repair_missing_ttl * 1000.0));
	set_arg(rb, 2, rb->numkeys, strlen(rb->numkeys));
	set_arg(rb, 3, cfg->online_set, strlen(cfg->online_set));
	set_arg(rb, 4, r->leader->key, strlen(r->leader->key));
	set_arg(rb, 5, cfg->events_stream, strlen(cfg->events_stream));
	set_arg(rb, mid, r->leader->token, strlen(r->leader->token));
	set_arg(rb, mid + 1, cfg->events_mode, strlen(cfg->events_mode));
	set_arg(rb, mid + 2, cfg->events_channel, strlen(cfg->events_channel));
	set_arg(rb, mid + 3, rb->maxlen, strlen(rb->maxlen));
	set_arg(rb, mid + 4, rb->repair, strlen(rb->repair));
	for (size_t i = 0; i < n; i++)
		set_arg(rb, mid + REAP_MID + i, ids[i], lens[i]);
	if (script_append(c, &r->reap_script, (int)*argc, rb->argv, rb->argvlen,
	    r->err, sizeof(r->err)) < 0)
		return script_failed(r, c, &r->reap_script);
	return 0;
}

/* Queue the fenced reap script for the candidates of batch b. */
static int
reap_append(struct reconcile *r, struct rconn *c, const struct batch *b, size_t *argc)
{
	if (gather(r, b->reply->element[1]->element, b->cand, b->ncand) < 0)
		return RECONCILE_INTERNAL;
	return reap_append_ids(r, c, r->ids, r->lens, b->ncand, argc);
}

/* The reap script refused: named with every kind of key it declares. */
static int
reap_error(struct reconcile *r, const redisReply *rep)
{
	const struct cfg *cfg = r->cfg;
	char what[600];

	snprintf(what, sizeof(what), "EVALSHA reap script on %s, %s, %s and %s*%s",
	    cfg->online_set, r->leader->key, cfg->events_stream, cfg->socket_prefix,
	    cfg->socket_suffix);
	return reply_error(r, rep, what);
}

/*
 * Judge the reap script's reply: { status, stale, nremoved, removed...,
 * ghosts... }. Stale users and ghosts were counted by the screening pass;
 * here only what the script actually removed counts.
 */
static int
reap_result(struct reconcile *r, redisReply *rep, struct reconcile_stats *st)
{
	long long nremoved;

	if (rep->type == REDIS_REPLY_ERROR)
		return reap_error(r, rep);
	if (rep->type != REDIS_REPLY_ARRAY || rep->elements < 2 ||
	    rep->element[0]->type != REDIS_REPLY_INTEGER)
		goto malformed;
	if (rep->element[0]->integer == 0) {
		snprintf(r->err, sizeof(r->err),
		    "lost leadership: lock %s is no longer ours; stopping the pass",
		    r->leader->key);
		return RECONCILE_NOT_LEADER;
	}
	if (rep->elements < 3 || rep->element[2]->type != REDIS_REPLY_INTEGER)
		goto malformed;
	nremoved = rep->element[2]->integer;
	if (nremoved < 0 || (size_t)nremoved > rep->elements - 3)
		goto malformed;
	for (size_t i = 3; i < 3 + (size_t)nremoved; i++) {
		const redisReply *id = rep->element[i];

		if (id->type != REDIS_REPLY_STRING)
			goto malformed;
		st->removed++;
		if (log_get_level() >= LOG_LVL_DEBUG)
			log_debug("removed stale user %s", escaped(r, id->str, id->len));
	}
	return 0;
malformed:
	snprintf(r->err, sizeof(r->err), "reap script: malformed reply");
	return RECONCILE_DATA;
}

/*
 * Read the reap script's reply with nothing else in flight. On NOSCRIPT
 * (the script cache was flushed) load it and run the batch again.
 */
static int
reap_read(struct reconcile *r, struct rconn *c, size_t argc, struct reconcile_stats *st)
{
	redisReply *rep;
	int rc;

	if (rconn_get_reply(c, &rep) < 0)
		return conn_error(r, c);
	if (script_is_noscript(rep)) {
		freeReplyObject(rep);
		r->reap_script.sha[0] = '\0';
		rep = script_call(c, &r->reap_script, (int)argc, r->reap.argv, r->reap.argvlen,
		    r->err, sizeof(r->err));
		if (rep == NULL)
			return script_failed(r, c, &r->reap_script);
	}
	rc = reap_result(r, rep, st);
	freeReplyObject(rep);
	return rc;
}

/* True when reaper.max_rate says the pass is ahead of its budget. */
static int
ahead_of_rate(struct reconcile *r, int64_t start, unsigned long long scanned, int64_t *due)
{
	if (r->cfg->max_rate <= 0 || r->sleep_until == NULL)
		return 0;
	*due = start + (int64_t)((double)scanned * 1000.0 / r->cfg->max_rate);
	return *due > mono_ms();
}

/*
 * The replies a pass expects, in order: one entry per SSCAN, EXISTS or
 * PTTL group, script, or SCRIPT LOAD queued after a NOSCRIPT.
 */
enum expect_kind { EXP_SSCAN, EXP_EXISTS, EXP_PTTL, EXP_REAP, EXP_LOAD };

struct expect {
	enum expect_kind kind;
	int slot;
	size_t n;	/* replies in the group; reap script argc */
};

#define MAX_EXPECT 32

struct pass_state {
	struct expect q[MAX_EXPECT];
	int head, len;
	char cursor[32];	/* the next SSCAN, not sent yet; "" = none */
	int hold;		/* cursor waits for an empty pipeline (tick, rate) */
};

static void
expect(struct pass_state *p, enum expect_kind kind, int slot, size_t n)
{
	p->q[(p->head + p->len++) % MAX_EXPECT] = (struct expect){ kind, slot, n };
}

static int
free_slot(struct reconcile *r)
{
	for (int i = 0; i < RECONCILE_SLOTS; i++)
		if (r->slots[i].reply == NULL)
			return i;
	return -1;
}

/*
 * Whether the held cursor's SSCAN may go out with replies in flight: not
 * when it waits for an empty pipeline, nor without a slot for its batch or
 * room in the queue for what that batch will expect.
 */
static int
sscan_may_go(struct reconcile *r, const struct pass_state *p)
{
	return !p->hold && free_slot(r) >= 0 && p->len < MAX_EXPECT - 4;
}

/*
 * Members per EXISTS group, or 0 for one PTTL per member. This is group
 * testing (Dorfman): one EXISTS over g socket keys answers for all g when
 * none is missing, and a short count sends PTTL for each of them. With a
 * stale fraction p that costs about 1/g + 1 - (1 - p)^g commands per
 * member, least near g = 1/sqrt(p): 10 at 1 %, the whole batch when nobody
 * is stale. p is the larger of the guard's sample and what this pass has
 * found so far. Ghost repair must see every TTL, so it checks each member.
 */
static size_t
group_size(const struct reconcile *r, const struct reconcile_stats *st, size_t n)
{
	double p = r->stale_prior;
	size_t g = MIN_GROUP;

	if (!r->dry_run && r->cfg->repair_missing_ttl > 0)
		return 0;
	if (st->scanned > 0 && (double)st->stale / (double)st->scanned > p)
		p = (double)st->stale / (double)st->scanned;
	if ((double)g * (double)g * p > 1.0)
		return 0;
	if ((double)n * (double)n * p <= 1.0)
		return n;
	while (g < n && (double)(g + 1) * (double)(g + 1) * p <= 1.0)
		g++;
	return g < n ? g : n;
}

/* A batch's screening was read: checked members, stale among them. */
static void
runwin_push(struct runwin *w, size_t checked, unsigned long long stale)
{
	int i = (w->head + w->n) % RUNWIN_BATCHES;

	if (w->n == RUNWIN_BATCHES)
		w->head = (w->head + 1) % RUNWIN_BATCHES;
	else
		w->n++;
	w->checked[i] = (unsigned)checked;
	w->stale[i] = (unsigned)stale;
}

/*
 * The running guard (DESIGN §7a): once the pass has checked
 * guard_min_users, the stale fraction of its newest batches, back to at
 * least guard_min_users users, may not exceed max_stale_ratio. Realtime
 * servers that stop refreshing in the middle of a long pass stop it here,
 * before the batch that shows it is reaped.
 */
static int
running_guard(struct reconcile *r, const struct reconcile_stats *st)
{
	unsigned long long want = (unsigned long long)r->cfg->guard_min_users;
	const struct runwin *w = &r->run;
	unsigned long long checked = 0, stale = 0;

	if (!r->guard_applies || st->checked < want)
		return 0;
	for (int k = w->n - 1; k >= 0 && (checked == 0 || checked < want); k--) {
		int i = (w->head + k) % RUNWIN_BATCHES;

		checked += w->checked[i];
		stale += w->stale[i];
	}
	if (checked == 0 || (double)stale / (double)checked <= r->cfg->max_stale_ratio)
		return 0;
	snprintf(r->err, sizeof(r->err),
	    "stale-ratio guard: %llu of the last %llu users this pass checked (%.0f%%) have "
	    "no socket set, above reaper.max_stale_ratio %.2f; stopping the pass after %llu "
	    "users. Likely cause: the realtime servers stopped refreshing their socket sets",
	    stale, checked, 100.0 * (double)stale / (double)checked, r->cfg->max_stale_ratio,
	    st->checked);
	return RECONCILE_GUARD;
}

/* A batch's screening is complete: count it, then ask the running guard. */
static int
batch_checked(struct reconcile *r, struct reconcile_stats *st, size_t n,
    unsigned long long stale)
{
	st->checked += n;
	runwin_push(&r->run, n, stale);
	return running_guard(r, st);
}

/* Queue one EXISTS per group of b->group socket keys of the batch's n members. */
static int
exists_append(struct reconcile *r, struct rconn *c, redisReply **members, size_t n,
    size_t group)
{
	struct batchbuf *gb = &r->grp;

	if (gather(r, members, NULL, n) < 0 ||
	    build_keys(r, &r->scan, r->ids, r->lens, n, 0, n) < 0 ||
	    argv_reserve(r, gb, group + 1) < 0)
		return RECONCILE_INTERNAL;
	set_arg(gb, 0, "EXISTS", 6);
	for (size_t at = 0; at < n; at += group) {
		size_t k = n - at < group ? n - at : group;

		memcpy(gb->argv + 1, r->scan.argv + at, k * sizeof(*gb->argv));
		memcpy(gb->argvlen + 1, r->scan.argvlen + at, k * sizeof(*gb->argvlen));
		if (rconn_append(c, (int)k + 1, gb->argv, gb->argvlen) < 0)
			return conn_error(r, c);
	}
	return 0;
}

/* Queue PTTL for the members listed in b->chk. */
static int
pttl_append(struct reconcile *r, struct rconn *c, struct pass_state *p, int slot)
{
	struct batch *b = &r->slots[slot];
	int rc;

	if ((rc = screen_append(r, c, b->reply->element[1]->element, b->chk, b->nchk)) != 0)
		return rc;
	expect(p, EXP_PTTL, slot, b->nchk);
	return 0;
}

/* An SSCAN reply: keep its batch, ask for the next one, queue its screening. */
static int
on_sscan(struct reconcile *r, struct rconn *c, struct pass_state *p, int hold,
    struct reconcile_stats *st)
{
	int slot = free_slot(r), rc;
	const char *cursor;
	redisReply *members;
	struct batch *b;

	if (slot < 0) {
		snprintf(r->err, sizeof(r->err), "internal error: no free batch slot");
		return RECONCILE_INTERNAL;
	}
	b = &r->slots[slot];
	b->noscript = 0;
	if (rconn_get_reply(c, &b->reply) < 0)
		return conn_error(r, c);
	if ((rc = parse_sscan(r, b->reply, &cursor, &members)) != 0)
		return rc;
	st->scanned += members->elements;
	st->batches += members->elements > 0;
	if (strcmp(cursor, "0") != 0) {
		if (strlen(cursor) >= sizeof(p->cursor)) {
			snprintf(r->err, sizeof(r->err), "SSCAN %s: cursor too long",
			    r->cfg->online_set);
			return RECONCILE_DATA;
		}
		snprintf(p->cursor, sizeof(p->cursor), "%s", cursor);
		p->hold = hold;
		/* Ahead of this batch's screening, so Redis scans while we wait. */
		if (sscan_may_go(r, p)) {
			if ((rc = append_sscan(r, c, p->cursor)) != 0)
				return rc;
			expect(p, EXP_SSCAN, -1, 0);
			p->cursor[0] = '\0';
		}
	}
	if (members->elements == 0) {
		batch_release(b);
		return 0;
	}
	b->group = group_size(r, st, members->elements);
	b->nchk = 0;
	if (b->group == 0) {
		for (size_t i = 0; i < members->elements; i++)
			if ((rc = add_index(r, &b->chk, &b->nchk, &b->chkcap, i)) != 0)
				return rc;
		return pttl_append(r, c, p, slot);
	}
	if ((rc = exists_append(r, c, members->element, members->elements, b->group)) != 0)
		return rc;
	expect(p, EXP_EXISTS, slot, members->elements);
	return 0;
}

/*
 * A batch's EXISTS replies, one per group: a group whose count is short of
 * its size holds a missing socket set, so each of its members gets a PTTL.
 */
static int
on_exists(struct reconcile *r, struct rconn *c, struct pass_state *p, const struct expect *e,
    struct reconcile_stats *st)
{
	struct batch *b = &r->slots[e->slot];
	int rc = 0;

	b->nchk = 0;
	for (size_t at = 0; at < e->n; at += b->group) {
		size_t k = e->n - at < b->group ? e->n - at : b->group;
		redisReply *rep;

		if (rconn_get_reply(c, &rep) < 0)
			return conn_error(r, c);
		if (rep->type != REDIS_REPLY_INTEGER && rc == 0)
			socket_error(r, rep, "EXISTS");
		if (rep->type != REDIS_REPLY_INTEGER)
			rc = RECONCILE_DATA;
		else if (rc == 0 && rep->integer < (long long)k)
			for (size_t i = at; i < at + k && rc == 0; i++)
				rc = add_index(r, &b->chk, &b->nchk, &b->chkcap, i);
		freeReplyObject(rep);
	}
	if (rc != 0)
		return rc;
	if (b->nchk == 0) {
		batch_release(b);
		return batch_checked(r, st, e->n, 0);
	}
	return pttl_append(r, c, p, e->slot);
}

/* A batch's PTTL replies: queue the fenced script for its candidates, if any. */
static int
on_pttl(struct reconcile *r, struct rconn *c, struct pass_state *p, const struct expect *e,
    struct reconcile_stats *st)
{
	struct batch *b = &r->slots[e->slot];
	unsigned long long stale = st->stale;
	size_t argc;
	int rc;

	rc = screen_read(r, c, b, b->reply->element[1]->element, e->n, st);
	if (rc == 0)
		rc = batch_checked(r, st, b->reply->element[1]->elements, st->stale - stale);
	if (rc != 0)
		return rc;
	if (r->dry_run || b->ncand == 0) {
		batch_release(b);
		return 0;
	}
	if ((rc = reap_append(r, c, b, &argc)) != 0)
		return rc;
	expect(p, EXP_REAP, e->slot, argc);
	return 0;
}

/* A batch's script is lost to NOSCRIPT this many times before it waits for the next pass. */
#define NOSCRIPT_RETRIES 3

/*
 * A batch's script came back NOSCRIPT: the script cache was flushed while
 * the pass ran. The script's SHA cannot change, so a SCRIPT LOAD queued
 * ahead of the batch's EVALSHA, sent again, lets the pass carry on. A
 * batch that keeps meeting flushes is left for the next pass (deferred).
 */
static int
requeue_reap(struct reconcile *r, struct rconn *c, struct pass_state *p, int slot)
{
	struct batch *b = &r->slots[slot];
	size_t argc;
	int rc;

	if (++b->noscript > NOSCRIPT_RETRIES) {
		r->deferred++;
		batch_release(b);
		return 0;
	}
	if (rconn_appendl(c, "SCRIPT", "LOAD", r->reap_script.src, NULL) < 0)
		return conn_error(r, c);
	expect(p, EXP_LOAD, -1, 0);
	r->reloads++;
	if ((rc = reap_append(r, c, b, &argc)) != 0)
		return rc;
	expect(p, EXP_REAP, slot, argc);
	return 0;
}

/* A batch's script reply: count what it removed, in the guard's window too. */
static int
on_reap(struct reconcile *r, struct rconn *c, struct pass_state *p, const struct expect *e,
    struct reconcile_stats *st)
{
	unsigned long long removed = st->removed;
	redisReply *rep;
	int rc;

	if (rconn_get_reply(c, &rep) < 0)
		return conn_error(r, c);
	if (script_is_noscript(rep)) {
		freeReplyObject(rep);
		return requeue_reap(r, c, p, e->slot);
	}
	rc = reap_result(r, rep, st);
	freeReplyObject(rep);
	gwin_removed(&r->win, st->removed - removed, mono_ms());
	batch_release(&r->slots[e->slot]);
	return rc;
}

/* The reply of a SCRIPT LOAD queued by requeue_reap: the same SHA again. */
static int
on_load(struct reconcile *r, struct rconn *c)
{
	redisReply *rep;
	int rc = 0;

	if (rconn_get_reply(c, &rep) < 0)
		return conn_error(r, c);
	if (rep->type != REDIS_REPLY_STRING || rep->len != 40 ||
	    memcmp(rep->str, r->reap_script.sha, 40) != 0)
		rc = reply_error(r, rep, "SCRIPT LOAD reap");
	freeReplyObject(rep);
	return rc;
}

/* tick() could not renew the lease: the pass stops and did not finish. */
static int
lost_lease(struct reconcile *r, const struct reconcile_stats *st)
{
	snprintf(r->err, sizeof(r->err), "lost the lease on %s during the pass; stopped "
	    "after checking %llu users, the pass did not finish", r->leader ? r->leader->key :
	    "the lock", st->checked);
	return RECONCILE_NOT_LEADER;
}

/* How many replies an entry of the queue stands for. */
static size_t
replies_of(const struct reconcile *r, const struct expect *e)
{
	size_t g;

	if (e->kind == EXP_PTTL)
		return e->n;
	if (e->kind != EXP_EXISTS)
		return 1;
	g = r->slots[e->slot].group;
	return (e->n + g - 1) / g;
}

/*
 * The pass stopped (an error reply, the running guard) with replies still
 * in flight: read them all, so the connection stays in step, queue nothing
 * new, and count what the scripts already sent removed: they ran, and
 * their removals are real. Keeps r->err. 0, or RECONCILE_CONN.
 */
static int
settle(struct reconcile *r, struct rconn *c, struct pass_state *p, struct reconcile_stats *st)
{
	char err[sizeof(r->err)];

	memcpy(err, r->err, sizeof(err));
	for (; p->len > 0; p->len--, p->head = (p->head + 1) % MAX_EXPECT) {
		const struct expect *e = &p->q[p->head];
		size_t n = replies_of(r, e);

		for (size_t i = 0; i < n; i++) {
			unsigned long long removed = st->removed;
			redisReply *rep;

			if (rconn_get_reply(c, &rep) < 0)
				return conn_error(r, c);
			if (e->kind == EXP_REAP && !script_is_noscript(rep))
				(void)reap_result(r, rep, st);
			gwin_removed(&r->win, st->removed - removed, mono_ms());
			freeReplyObject(rep);
		}
	}
	memcpy(r->err, err, sizeof(err));
	return 0;
}

/* Read the reply (or group of replies) at the head of the queue and act on it. */
static int
step(struct reconcile *r, struct rconn *c, struct pass_state *p, struct reconcile_stats *st,
    int64_t start)
{
	struct expect e = p->q[p->head];
	int64_t due;

	p->head = (p->head + 1) % MAX_EXPECT;
	p->len--;
	switch (e.kind) {
	case EXP_SSCAN:
		return on_sscan(r, c, p, (r->tick_due && r->tick_due(r->tick_arg)) ||
		    ahead_of_rate(r, start, st->scanned, &due), st);
	case EXP_EXISTS:
		return on_exists(r, c, p, &e, st);
	case EXP_PTTL:
		return on_pttl(r, c, p, &e, st);
	case EXP_REAP:
		return on_reap(r, c, p, &e, st);
	case EXP_LOAD:
		break;
	}
	return on_load(r, c);
}

/*
 * The pass, pipelined: replies are read in order, and whatever a reply
 * makes possible is queued at once, so Redis always has the next SSCAN and
 * PTTL batch waiting while this side parses. A batch's fenced script goes
 * out as soon as its screening is read. Lease renewal, shutdown and rate
 * pacing need an empty pipeline: when one is due the next SSCAN is held
 * back until the replies in flight are read.
 */
static int
pass(struct reconcile *r, struct rconn *c, struct reconcile_stats *st, int64_t start)
{
	struct pass_state p = { .head = 0, .len = 0, .cursor = "", .hold = 0 };
	int rc = 0;

	/* Load the script now: it cannot be loaded later with replies in flight. */
	if (!r->dry_run && r->reap_script.sha[0] == '\0' &&
	    script_load(c, &r->reap_script, r->err, sizeof(r->err)) < 0)
		return script_failed(r, c, &r->reap_script);
	if ((rc = append_sscan(r, c, "0")) != 0)
		return rc;
	expect(&p, EXP_SSCAN, -1, 0);
	while (p.len > 0) {
		int64_t due;

		if ((rc = step(r, c, &p, st, start)) != 0)
			return rc == RECONCILE_CONN || settle(r, c, &p, st) != 0 ?
			    RECONCILE_CONN : rc;
		if (p.cursor[0] == '\0')
			continue;
		if (p.len > 0 && !sscan_may_go(r, &p))
			continue;
		if (p.len == 0) {
			/* Drained with more to scan: pace, renew, maybe stop, then go on. */
			if (ahead_of_rate(r, start, st->scanned, &due))
				r->sleep_until(r->tick_arg, due);
			if (r->tick && (rc = r->tick(r->tick_arg)) != 0)
				return rc == TICK_LOST ? lost_lease(r, st) : RECONCILE_STOPPED;
		}
		if ((rc = append_sscan(r, c, p.cursor)) != 0)
			return rc;
		expect(&p, EXP_SSCAN, -1, 0);
		p.cursor[0] = '\0';
		p.hold = 0;
	}
	if (r->reloads)
		log_info("the script cache was flushed during the pass; loaded the reap script "
		    "again %llu times", r->reloads);
	if (r->deferred)
		log_warnx("the script cache was flushed again and again during the pass; %llu "
		    "batches are left for the next pass", r->deferred);
	return 0;
}

/* Why the guard refused: what it judged, and the likely causes. */
static void
guard_message(struct reconcile *r, const char *what, double frac)
{
	int64_t now = mono_ms();
	unsigned long long recent = gwin_recent(&r->win, now);
	char window[160] = "";

	if (recent > 0)
		snprintf(window, sizeof(window), ", %llu users removed in the last %lld s",
		    recent, (long long)(r->win.span_ms / 1000));
	snprintf(r->err, sizeof(r->err),
	    "stale-ratio guard: %s: %.0f%% of the online set stale (sample %.0f%% of %lld "
	    "users%s), above reaper.max_stale_ratio %.2f; removing nothing. Likely causes: "
	    "wrong keys.socket_prefix/socket_suffix (%s<id>%s), or the realtime servers are "
	    "not refreshing their socket sets", what, 100.0 * frac,
	    100.0 * r->win.stale_frac, r->win.online, window, r->cfg->max_stale_ratio,
	    r->cfg->socket_prefix, r->cfg->socket_suffix);
}

/* Key-expiry events: sample again when due, then ask the guard about n more. */
static int
events_guard(struct reconcile *r, struct rconn *c, size_t n)
{
	struct guard_probe g;
	double frac = 0;
	int rc;

	if (r->cfg->max_stale_ratio >= 1.0)
		return 0;	/* the guard is off: no sample to take */
	if (gwin_needs_sample(&r->win) && (rc = probe(r, c, &g, NULL)) != 0)
		return rc;
	if (!guard_trips(r, n, &frac))
		return 0;
	guard_message(r, "key-expiry events", frac);
	return RECONCILE_GUARD;
}

enum reconcile_result
reconcile_reap_ids(struct reconcile *r, struct rconn *c, const char *const *ids,
    const size_t *lens, size_t n, struct reconcile_stats *st)
{
	size_t argc;
	int rc;

	memset(st, 0, sizeof(*st));
	st->online = -1;
	r->err[0] = '\0';
	r->err_class = RERR_NONE;
	if (n == 0)
		return RECONCILE_OK;
	if (n > (size_t)r->cfg->batch_size) {
		snprintf(r->err, sizeof(r->err), "internal error: %zu users for one script, "
		    "above reaper.batch_size %d", n, r->cfg->batch_size);
		return RECONCILE_INTERNAL;
	}
	if ((rc = events_guard(r, c, n)) != 0)
		return (enum reconcile_result)rc;
	if (r->reap_script.sha[0] == '\0' &&
	    script_load(c, &r->reap_script, r->err, sizeof(r->err)) < 0)
		return script_failed(r, c, &r->reap_script);
	if ((rc = reap_append_ids(r, c, ids, lens, n, &argc)) == 0)
		rc = reap_read(r, c, argc, st);
	gwin_removed(&r->win, st->removed, mono_ms());
	return (enum reconcile_result)rc;
}

enum reconcile_result
reconcile_cycle(struct reconcile *r, struct rconn *c, struct reconcile_stats *st)
{
	int64_t start = mono_ms();
	struct guard_probe g;
	double frac = 0;
	int rc;

	memset(st, 0, sizeof(*st));
	st->online = -1;
	r->err[0] = '\0';
	r->err_class = RERR_NONE;
	r->deferred = 0;
	r->reloads = 0;
	memset(&r->run, 0, sizeof(r->run));
	idset_clear(&r->printed);
	idset_clear(&r->ghosts);
	if ((rc = probe(r, c, &g, st)) != 0)
		goto out;
	st->online = g.online;
	r->stale_prior = g.sampled > 0 ? (double)g.stale / (double)g.sampled : 0.0;
	r->guard_applies = g.applies;
	if (g.tripped) {
		guard_trips(r, 0, &frac);
		guard_message(r, "the pass's sample", frac);
		rc = RECONCILE_GUARD;
		goto out;
	}
	rc = pass(r, c, st, start);
out:
	if (rc != 0 && rc != RECONCILE_CONN && rc != RECONCILE_STOPPED && !rconn_broken(c) &&
	    drain(r, c) != 0)
		rc = RECONCILE_CONN;
	for (int i = 0; i < RECONCILE_SLOTS; i++)
		batch_release(&r->slots[i]);
	if (r->out)
		fflush(r->out);
	st->seconds = (double)(mono_ms() - start) / 1000.0;
	return (enum reconcile_result)rc;
}
