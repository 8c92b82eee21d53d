#include "watch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rerr.h"
#include "timeutil.h"

struct watch {
	struct rconn *sub;	/* NULL while not subscribed */
	char channel[64];
	struct idset seen;	/* users queued, to queue each once */
	char **ids;
	size_t *lens;
	size_t n, cap;
	size_t max;		/* queue bound */
	int more;		/* the last read stopped at WATCH_READ_MAX */
	int64_t first_ms;	/* when the oldest queued event arrived */
	unsigned long long events;	/* matching expiry events since the last summary */
	unsigned long long dropped;	/* events not queued, the queue being full */
	char err[256];
	enum rerr_class err_class;	/* of a refused SUBSCRIBE; RERR_NONE otherwise */
};

static size_t
queue_bound(size_t batch)
{
	return 4 * batch > WATCH_QUEUE_MIN ? 4 * batch : WATCH_QUEUE_MIN;
}

struct watch *
watch_new(size_t batch)
{
	struct watch *w = calloc(1, sizeof(*w));

	if (w == NULL)
		return NULL;
	idset_init(&w->seen);
	w->max = queue_bound(batch);
	return w;
}

void
watch_reset(struct watch *w, size_t batch)
{
	watch_unsubscribe(w);
	watch_clear(w);
	w->more = 0;
	w->max = queue_bound(batch);
}

void
watch_consume(struct watch *w, size_t n)
{
	if (n > w->n)
		n = w->n;
	for (size_t i = 0; i < n; i++)
		free(w->ids[i]);
	if (n > 0 && n < w->n) {
		memmove(w->ids, w->ids + n, (w->n - n) * sizeof(*w->ids));
		memmove(w->lens, w->lens + n, (w->n - n) * sizeof(*w->lens));
	}
	w->n -= n;
	/*
	 * The seen set only keeps an ID from being queued twice while it
	 * waits; bounded by forgetting it when the queue empties or it grows
	 * past twice the queue (a duplicate costs one slot, nothing more).
	 */
	if (w->n == 0 || w->seen.count > 2 * w->max)
		idset_clear(&w->seen);
	if (w->n == 0)
		w->first_ms = 0;
}

void
watch_clear(struct watch *w)
{
	watch_consume(w, w->n);
}

void
watch_free(struct watch *w)
{
	if (w == NULL)
		return;
	watch_unsubscribe(w);
	watch_clear(w);
	free(w->ids);
	free(w->lens);
	free(w);
}

int
watch_fd(const struct watch *w)
{
	return w->sub ? rconn_fd(w->sub) : -1;
}

const char *
watch_channel(const struct watch *w)
{
	return w->channel;
}

const char *
watch_err(const struct watch *w)
{
	return w->err;
}

enum rerr_class
watch_err_class(const struct watch *w)
{
	return w->err_class;
}

size_t
watch_take(const struct watch *w, size_t max, const char *const **ids, const size_t **lens)
{
	*ids = (const char *const *)w->ids;
	*lens = w->lens;
	return w->n < max ? w->n : max;
}

void
watch_counts(struct watch *w, unsigned long long *events, unsigned long long *dropped)
{
	*events = w->events;
	*dropped = w->dropped;
	w->events = 0;
	w->dropped = 0;
}

int
watch_server_ready(struct rconn *c, char *flags, size_t flagsz, char *err, size_t errlen)
{
	redisReply *r = rconn_calll(c, "CONFIG", "GET", "notify-keyspace-events", NULL);
	int rc = -1;

	flags[0] = '\0';
	if (r == NULL) {
		snprintf(err, errlen, "%s", rconn_errstr(c));
		return -1;
	}
	if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
	    r->element[1]->type == REDIS_REPLY_STRING) {
		const char *v = r->element[1]->str;

		snprintf(flags, flagsz, "%s", v);
		rc = strchr(v, 'E') && (strchr(v, 'x') || strchr(v, 'A'));
	} else if (rerr_format(err, errlen, "CONFIG GET notify-keyspace-events", r) ==
	    RERR_NOPERM) {
		rc = WATCH_NOT_ALLOWED;
	}
	freeReplyObject(r);
	return rc;
}

int
watch_server_enable(struct rconn *c, const char *flags, char *err, size_t errlen)
{
	char want[64];
	redisReply *r;
	int rc = -1;

	snprintf(want, sizeof(want), "%s%s%s", flags, strchr(flags, 'E') ? "" : "E",
	    strchr(flags, 'x') || strchr(flags, 'A') ? "" : "x");
	if ((r = rconn_calll(c, "CONFIG", "SET", "notify-keyspace-events", want, NULL)) == NULL) {
		snprintf(err, errlen, "%s", rconn_errstr(c));
		return -1;
	}
	if (r->type == REDIS_REPLY_STATUS)
		rc = 0;
	else
		rerr_format(err, errlen, "CONFIG SET notify-keyspace-events", r);
	freeReplyObject(r);
	return rc;
}

int
watch_subscribe(struct watch *w, const struct rconn_opts *o, int db)
{
	enum rconn_err kind;
	redisReply *r;

	snprintf(w->channel, sizeof(w->channel), "__keyevent@%d__:expired", db);
	w->err_class = RERR_NONE;
	if ((w->sub = rconn_connect(o, &kind, w->err, sizeof(w->err))) == NULL)
		return -1;
	if ((r = rconn_calll(w->sub, "SUBSCRIBE", w->channel, NULL)) == NULL) {
		snprintf(w->err, sizeof(w->err), "SUBSCRIBE: %s", rconn_errstr(w->sub));
		goto fail;
	}
	if (r->type != REDIS_REPLY_ARRAY) {
		char what[96];

		snprintf(what, sizeof(what), "SUBSCRIBE %s", w->channel);
		w->err_class = rerr_format(w->err, sizeof(w->err), what, r);
		freeReplyObject(r);
		goto fail;
	}
	freeReplyObject(r);
	return 0;
fail:
	rconn_close(w->sub);
	w->sub = NULL;
	return -1;
}

void
watch_unsubscribe(struct watch *w)
{
	/* Closing the connection ends the subscription; no UNSUBSCRIBE round trip. */
	rconn_close(w->sub);
	w->sub = NULL;
}

/* The user of a socket-set key, or -1 when the key is not one of ours. */
static int
user_of(const struct keyfmt *k, const char *key, size_t len, const char **id, size_t *idlen)
{
	if (len < k->prefix_len + k->suffix_len ||
	    memcmp(key, k->prefix, k->prefix_len) != 0 ||
	    memcmp(key + len - k->suffix_len, k->suffix, k->suffix_len) != 0)
		return -1;
	*id = key + k->prefix_len;
	*idlen = len - k->prefix_len - k->suffix_len;
	return 0;
}

int
watch_message_user(const redisReply *r, const struct keyfmt *k, const char **id,
    size_t *idlen)
{
	/* ["message", channel, key] */
	if (r->type != REDIS_REPLY_ARRAY || r->elements != 3 ||
	    r->element[0]->type != REDIS_REPLY_STRING ||
	    strcmp(r->element[0]->str, "message") != 0 ||
	    r->element[2]->type != REDIS_REPLY_STRING)
		return -1;
	return user_of(k, r->element[2]->str, r->element[2]->len, id, idlen);
}

static int
queue(struct watch *w, const char *id, size_t len)
{
	char *copy;

	if (w->n >= w->max) {
		w->dropped++;	/* the pass finds this user */
		return 0;
	}
	if (idset_add(&w->seen, id, len) != 1)
		return 0;	/* already queued (or out of memory: the pass catches it) */
	if (w->n == w->cap) {
		size_t cap = w->cap ? w->cap * 2 : 64;
		char **ids = realloc(w->ids, cap * sizeof(*ids));
		size_t *lens;

		if (ids == NULL)
			return -1;
		w->ids = ids;
		if ((lens = realloc(w->lens, cap * sizeof(*lens))) == NULL)
			return -1;
		w->lens = lens;
		w->cap = cap;
	}
	if ((copy = malloc(len ? len : 1)) == NULL)
		return -1;
	memcpy(copy, id, len);
	w->ids[w->n] = copy;
	w->lens[w->n++] = len;
	if (w->first_ms == 0)
		w->first_ms = mono_ms();
	w->events++;
	return 0;
}

int
watch_read(struct watch *w, const struct keyfmt *k)
{
	redisReply *r;
	int rc = 0, got = 0;

	w->more = 0;
	if (w->sub == NULL)
		return 0;
	while (got < WATCH_READ_MAX && (rc = rconn_poll_reply(w->sub, &r)) == 1) {
		const char *id;
		size_t idlen;

		if (watch_message_user(r, k, &id, &idlen) == 0)
			queue(w, id, idlen);
		freeReplyObject(r);
		got++;
	}
	w->more = got == WATCH_READ_MAX;
	if (rc < 0) {
		snprintf(w->err, sizeof(w->err), "%s", rconn_errstr(w->sub));
		watch_unsubscribe(w);
		return -1;
	}
	return 0;
}

int
watch_due(const struct watch *w, int64_t now, size_t batch)
{
	return watch_flush_due(w->n, w->first_ms, now, batch);
}

int
watch_flush_due(size_t n, int64_t first_ms, int64_t now, size_t batch)
{
	return n > 0 && (n >= batch || now - first_ms >= WATCH_FLUSH_MS);
}

int64_t
watch_next_ms(const struct watch *w, int64_t now, size_t batch)
{
	if (w->more || watch_due(w, now, batch))
		return now;
	return w->n > 0 ? w->first_ms + WATCH_FLUSH_MS : INT64_MAX;
}
