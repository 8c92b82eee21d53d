#include "statusout.h"

#include <string.h>

#include "log.h"

/* The first line's words: why, or what is well. */
static void
summary(const struct status_view *v, size_t n, enum status_code code, char *out, size_t outsz)
{
	size_t count[4] = { 0 };

	if (n == 1 && v->shard[0] == '\0') {
		if (code != STATUS_OK)
			snprintf(out, outsz, "%s", v->why);
		else
			snprintf(out, outsz, "leader %s, last pass %s %.1f s ago", v->holder,
			    v->lp.result, (double)(v->now_ms - v->lp.finished_ms) / 1000.0);
		return;
	}
	for (size_t i = 0; i < n; i++)
		count[v[i].code]++;
	snprintf(out, outsz, "%zu shards: %zu OK, %zu WARNING, %zu CRITICAL, %zu UNKNOWN", n,
	    count[STATUS_OK], count[STATUS_WARNING], count[STATUS_CRITICAL],
	    count[STATUS_UNKNOWN]);
}

static double
age_s(const struct status_view *v)
{
	return (double)(v->now_ms - v->lp.finished_ms) / 1000.0;
}

/* The one online set: a line each. */
static void
text_details(FILE *f, const struct status_view *v)
{
	if (v->held)
		fprintf(f, "lock %s: held by %s, lease %.1f s left\n", v->lock_key, v->holder,
		    (double)v->lease_ms / 1000.0);
	else
		fprintf(f, "lock %s: free\n", v->lock_key);
	if (v->lp.present)
		fprintf(f, "last pass: %s, %.1f s ago (interval %g s): scanned %llu, stale %llu, "
		    "removed %llu, ghosts %llu, %.3f s; by %s\n", v->lp.result, age_s(v),
		    v->lp.interval, v->lp.scanned, v->lp.stale, v->lp.removed, v->lp.ghosts,
		    v->lp.seconds, v->lp.by);
	else
		fprintf(f, "last pass: none in %s\n", v->status_key);
	fprintf(f, "online set %s: %lld members\n", v->online_set, v->g.online);
	fprintf(f, "guard sample: %d checked, %d without a socket set (%.1f%%), %d ghosts; "
	    "the guard trips above %g%%%s\n", v->g.sampled, v->g.stale,
	    v->g.sampled ? 100.0 * v->g.stale / v->g.sampled : 0.0, v->g.ghosts,
	    100 * v->cfg->max_stale_ratio, v->g.applies ? "" : " (it does not apply: too few "
	    "users, or max_stale_ratio 1)");
	if (v->cfg->watch_expiry)
		fprintf(f, "keyspace notifications: %s%s%s\n", v->notify_known ? "\"" : "",
		    v->notify, v->notify_known ? "\"" : " (could not be read)");
	fprintf(f, "redis: %s\n", v->endpoint);
}

/* A shard: one line. */
static void
text_shard(FILE *f, const struct status_view *v)
{
	fprintf(f, "shard %s %s%s%s", v->shard, status_name(v->code), v->why[0] ? ": " : "",
	    v->why);
	if (v->err[0]) {
		fputc('\n', f);
		return;
	}
	if (v->held)
		fprintf(f, "; lock held by %s, lease %.1f s", v->holder,
		    (double)v->lease_ms / 1000.0);
	if (v->lp.present)
		fprintf(f, "; last pass %s %.1f s ago, removed %llu", v->lp.result, age_s(v),
		    v->lp.removed);
	fprintf(f, "; online %lld; sample %d of %d stale, %d ghosts\n", v->g.online, v->g.stale,
	    v->g.sampled, v->g.ghosts);
}

void
statusout_text(FILE *f, const struct status_view *v, size_t n, enum status_code code)
{
	char line[1200];

	summary(v, n, code, line, sizeof(line));
	fprintf(f, "presence-reaper %s: %s\n", status_name(code), line);
	if (n == 1 && v->shard[0] == '\0') {
		if (v->err[0] == '\0')
			text_details(f, v);
		return;
	}
	for (size_t i = 0; i < n; i++)
		text_shard(f, &v[i]);
}

/* s as a JSON string, or null when s is NULL. */
static void
jstr(FILE *f, const char *s)
{
	char buf[4096];

	if (s == NULL) {
		fputs("null", f);
		return;
	}
	log_json_escape(buf, sizeof(buf), s, strlen(s));
	fprintf(f, "\"%s\"", buf);
}

/* "name":"value", */
static void
jkey(FILE *f, const char *name, const char *value, int comma)
{
	fprintf(f, "\"%s\":", name);
	jstr(f, value);
	if (comma)
		fputc(',', f);
}

static void
json_reasons(FILE *f, const struct status_view *v)
{
	fputs("\"reasons\":[", f);
	for (int i = 0; i < v->nreasons; i++) {
		fprintf(f, "%s{\"level\":\"%s\",\"text\":", i ? "," : "",
		    status_name(v->levels[i]));
		jstr(f, v->reasons[i]);
		fputc('}', f);
	}
	fputs("],", f);
}

static void
json_pass(FILE *f, const struct status_view *v)
{
	const struct lastpass_view *lp = &v->lp;

	if (!lp->present) {
		fputs("\"last_pass\":null,", f);
		return;
	}
	fputs("\"last_pass\":{", f);
	jkey(f, "result", lp->result, 1);
	fprintf(f, "\"age_ms\":%lld,\"finished_ms\":%lld,\"interval\":%g,\"scanned\":%llu,"
	    "\"stale\":%llu,\"removed\":%llu,\"ghosts\":%llu,\"online\":%lld,\"seconds\":%.3f,"
	    "\"sample_stale\":%.4f,", v->now_ms - lp->finished_ms, lp->finished_ms,
	    lp->interval, lp->scanned, lp->stale, lp->removed, lp->ghosts, lp->online,
	    lp->seconds, lp->sample_stale);
	jkey(f, "by", lp->by, 0);
	fputs("},", f);
}

static void
json_set(FILE *f, const struct status_view *v)
{
	fputc('{', f);
	jkey(f, "shard", v->shard[0] ? v->shard : NULL, 1);
	jkey(f, "state", status_name(v->code), 1);
	fprintf(f, "\"code\":%d,", v->code);
	json_reasons(f, v);
	jkey(f, "error", v->err[0] ? v->err : NULL, 1);
	jkey(f, "redis", v->endpoint[0] ? v->endpoint : NULL, 1);
	fputs("\"lock\":{", f);
	jkey(f, "key", v->lock_key, 1);
	jkey(f, "holder", v->held ? v->holder : NULL, 1);
	fprintf(f, "\"lease_ms\":%lld},", v->held ? v->lease_ms : 0);
	json_pass(f, v);
	fputs("\"online_set\":{", f);
	jkey(f, "key", v->online_set, 1);
	fprintf(f, "\"members\":%lld},\"sample\":{\"sampled\":%d,\"stale\":%d,\"ghosts\":%d,"
	    "\"applies\":%s,\"tripped\":%s,\"max_stale_ratio\":%g},", v->g.online, v->g.sampled,
	    v->g.stale, v->g.ghosts, v->g.applies ? "true" : "false",
	    v->g.tripped ? "true" : "false", v->cfg->max_stale_ratio);
	jkey(f, "notify_keyspace_events", v->cfg->watch_expiry && v->notify_known ? v->notify :
	    NULL, 0);
	fputc('}', f);
}

void
statusout_json(FILE *f, const struct status_view *v, size_t n, enum status_code code)
{
	char line[1200];

	summary(v, n, code, line, sizeof(line));
	fputc('{', f);
	jkey(f, "state", status_name(code), 1);
	fprintf(f, "\"code\":%d,", code);
	jkey(f, "summary", line, 1);
	fputs("\"sets\":[", f);
	for (size_t i = 0; i < n; i++) {
		if (i)
			fputc(',', f);
		json_set(f, &v[i]);
	}
	fputs("]}\n", f);
}
