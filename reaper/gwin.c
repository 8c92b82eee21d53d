#include "gwin.h"

#include <string.h>

void
gwin_init(struct gwin *w, double interval_s)
{
	int64_t span = (int64_t)(2.0 * interval_s * 1000.0);

	memset(w, 0, sizeof(*w));
	w->span_ms = span > GWIN_MIN_SPAN_MS ? span : GWIN_MIN_SPAN_MS;
	w->bucket_ms = w->span_ms / GWIN_BUCKETS;
	w->online = -1;
}

void
gwin_sample(struct gwin *w, long long online, int sampled, int stale)
{
	w->online = online;
	w->stale_frac = sampled > 0 ? (double)stale / (double)sampled : 0.0;
	w->since_sample = 0;
}

/* The bucket that holds now, emptied first when it holds an older slice. */
static int
bucket(struct gwin *w, int64_t now)
{
	int64_t slice = now / w->bucket_ms;
	int i = (int)(slice % GWIN_BUCKETS);

	if (w->slot_at[i] != slice * w->bucket_ms) {
		w->slot_at[i] = slice * w->bucket_ms;
		w->removed[i] = 0;
	}
	return i;
}

void
gwin_removed(struct gwin *w, unsigned long long n, int64_t now)
{
	if (n == 0)
		return;
	w->removed[bucket(w, now)] += n;
	w->since_sample += n;
}

unsigned long long
gwin_recent(const struct gwin *w, int64_t now)
{
	unsigned long long sum = 0;

	for (int i = 0; i < GWIN_BUCKETS; i++)
		if (w->removed[i] && now - w->slot_at[i] < w->span_ms)
			sum += w->removed[i];
	return sum;
}

/* The online set now: the last SCARD less what was removed since. */
static long long
online_now(const struct gwin *w)
{
	long long n = w->online - (long long)w->since_sample;

	return n > 0 ? n : 0;
}

long long
gwin_population(const struct gwin *w, int64_t now)
{
	if (w->online < 0)
		return 0;
	return online_now(w) + (long long)gwin_recent(w, now);
}

double
gwin_fraction(const struct gwin *w, unsigned long long pending, int64_t now)
{
	long long pop = gwin_population(w, now);
	double stale;

	if (pop <= 0)
		return 0.0;
	stale = (double)gwin_recent(w, now) + (double)pending +
	    w->stale_frac * (double)online_now(w);
	return stale / (double)pop;
}

int
gwin_needs_sample(const struct gwin *w)
{
	unsigned long long step = w->online > 100 ? (unsigned long long)w->online / 100 : 1;

	return w->online < 0 || w->since_sample >= step;
}
