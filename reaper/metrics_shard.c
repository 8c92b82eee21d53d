#include "metrics_shard.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "promtext.h"
#include "settings.h"

struct shard_series {
	char name[65];
	int held;
	unsigned long long removed;
	unsigned long long passes[MC_NRESULTS];
	long long online;		/* -1 until a pass read it */
	double seconds;			/* the last pass's duration */
	double last_success;		/* Unix time; 0 before the first */
};

_Static_assert(METRICS_RENDER_MAX >= 16384 + SHARDS_MAX * METRICS_SHARD_RENDER,
    "metrics.h leaves room for every shard's series");

static struct {
	pthread_mutex_t mu;
	size_t n;
	struct shard_series *s;
	int live, share;
} ms = { .mu = PTHREAD_MUTEX_INITIALIZER };

static _Thread_local int thread_shard = -1;

static const char *const pass_result[MC_NRESULTS] = {
	"ok", "guard", "error", "not_leader", "interrupted"
};

int
metrics_shards_init(size_t n, const char (*names)[65])
{
	struct shard_series *s = calloc(n ? n : 1, sizeof(*s));

	if (s == NULL)
		return -1;
	for (size_t i = 0; i < n; i++) {
		snprintf(s[i].name, sizeof(s[i].name), "%s", names[i]);
		s[i].online = -1;
	}
	pthread_mutex_lock(&ms.mu);
	free(ms.s);
	ms.s = s;
	ms.n = n;
	pthread_mutex_unlock(&ms.mu);
	return 0;
}

void
metrics_shards_free(void)
{
	pthread_mutex_lock(&ms.mu);
	free(ms.s);
	ms.s = NULL;
	ms.n = 0;
	pthread_mutex_unlock(&ms.mu);
}

size_t
metrics_shards_count(void)
{
	size_t n;

	pthread_mutex_lock(&ms.mu);
	n = ms.n;
	pthread_mutex_unlock(&ms.mu);
	return n;
}

void
metrics_set_thread_shard(int index)
{
	thread_shard = index;
}

int
metrics_thread_shard(void)
{
	return thread_shard;
}

int
metrics_shard_leader(int index, int is_leader)
{
	int held = 0;

	pthread_mutex_lock(&ms.mu);
	if (index >= 0 && (size_t)index < ms.n)
		ms.s[index].held = is_leader;
	for (size_t i = 0; i < ms.n; i++)
		held += ms.s[i].held;
	pthread_mutex_unlock(&ms.mu);
	return held;
}

void
metrics_shard_cycle(int index, enum metrics_cycle_result res, unsigned long long removed,
    long long online, double seconds)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	pthread_mutex_lock(&ms.mu);
	if (index >= 0 && (size_t)index < ms.n) {
		struct shard_series *s = &ms.s[index];

		s->passes[res]++;
		s->removed += removed;
		if (online >= 0)
			s->online = online;
		s->seconds = seconds;
		if (res == MC_OK)
			s->last_success = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
	}
	pthread_mutex_unlock(&ms.mu);
}

void
metrics_shard_fleet(int live, int share)
{
	pthread_mutex_lock(&ms.mu);
	ms.live = live;
	ms.share = share;
	pthread_mutex_unlock(&ms.mu);
}

static void
head(struct promtext *o, const char *name, const char *type, const char *help)
{
	char full[128];

	snprintf(full, sizeof(full), "presence_reaper_%s", name);
	promtext_family(o, full, type, help);
}

/* One family, a line per shard: what(s) prints the value after the labels. */
static void
per_shard(struct promtext *o, const struct shard_series *s, size_t n, int which)
{
	for (size_t i = 0; i < n; i++) {
		const struct shard_series *x = &s[i];

		if (which == 0)
			promtext_emit(o, "presence_reaper_shard_holder{shard=\"%s\"} %d\n", x->name, x->held);
		else if (which == 1 && x->online >= 0)
			promtext_emit(o, "presence_reaper_shard_online_users{shard=\"%s\"} %lld\n", x->name,
			    x->online);
		else if (which == 2)
			promtext_emit(o, "presence_reaper_shard_users_removed_total{shard=\"%s\"} %llu\n",
			    x->name, x->removed);
		else if (which == 3)
			promtext_emit(o, "presence_reaper_shard_pass_duration_seconds{shard=\"%s\"} %.6f\n",
			    x->name, x->seconds);
		else if (which == 4)
			promtext_emit(o, "presence_reaper_shard_last_success_timestamp_seconds{shard=\"%s\"} "
			    "%.3f\n", x->name, x->last_success);
		else
			for (int r = 0; r < MC_NRESULTS; r++)
				promtext_emit(o, "presence_reaper_shard_passes_total{shard=\"%s\",result=\"%s\"} "
				    "%llu\n", x->name, pass_result[r], x->passes[r]);
	}
}

size_t
metrics_shard_render(char *buf, size_t bufsz)
{
	static const struct {
		const char *name, *type, *help;
	} fam[] = {
		{ "shard_holder", "gauge", "1 while this replica holds the shard's lock." },
		{ "shard_online_users", "gauge", "Size of the shard's online set at its last pass here." },
		{ "shard_users_removed_total", "counter", "Stale users this replica removed from the shard." },
		{ "shard_pass_duration_seconds", "gauge", "Duration of the shard's last pass here." },
		{ "shard_last_success_timestamp_seconds", "gauge",
		  "Unix time of the shard's last successful pass here; 0 before the first." },
		{ "shard_passes_total", "counter", "The shard's passes here, by result." },
	};
	struct promtext o = { buf, bufsz, 0 };
	int held = 0;

	if (bufsz == 0)
		return 0;
	buf[0] = '\0';
	pthread_mutex_lock(&ms.mu);
	if (ms.n == 0)
		goto done;
	for (size_t i = 0; i < ms.n; i++)
		held += ms.s[i].held;
	head(&o, "shards", "gauge", "Shards of the presence layout (keys.shards).");
	promtext_emit(&o, "presence_reaper_shards %zu\n", ms.n);
	head(&o, "shards_held", "gauge", "Shards whose lock this replica holds.");
	promtext_emit(&o, "presence_reaper_shards_held %d\n", held);
	head(&o, "shard_fair_share", "gauge", "ceil(shards / live replicas): most shards this replica takes.");
	promtext_emit(&o, "presence_reaper_shard_fair_share %d\n", ms.share);
	head(&o, "live_replicas", "gauge", "Replicas in the membership key at its last renewal; 0 unknown.");
	promtext_emit(&o, "presence_reaper_live_replicas %d\n", ms.live);
	for (size_t f = 0; f < sizeof(fam) / sizeof(fam[0]); f++) {
		head(&o, fam[f].name, fam[f].type, fam[f].help);
		per_shard(&o, ms.s, ms.n, (int)f);
	}
done:
	pthread_mutex_unlock(&ms.mu);
	return o.len;
}
