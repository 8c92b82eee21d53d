#include "timeutil.h"

#include <sys/random.h>
#include <time.h>
#include <unistd.h>

/* Each thread draws its own sequence; rnd_seed() seeds the caller's. */
static _Thread_local uint64_t rnd_state = 0x9e3779b97f4a7c15ULL;

int64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
rnd_seed(void)
{
	uint64_t seed;

	if (getrandom(&seed, sizeof(seed), 0) != (ssize_t)sizeof(seed)) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		seed = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^
		    ((uint64_t)getpid() << 40);
	}
	rnd_state ^= seed;
	if (rnd_state == 0)
		rnd_state = 1;
}

/* splitmix64: tiny, good enough for jitter and token suffixes. */
uint64_t
rnd_u64(void)
{
	uint64_t z = (rnd_state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

void
backoff_init(struct backoff *b, int64_t base_ms, int64_t cap_ms, int64_t floor_ms)
{
	b->base_ms = base_ms;
	b->cap_ms = cap_ms;
	b->floor_ms = floor_ms;
	b->attempt = 0;
}

void
backoff_reset(struct backoff *b)
{
	b->attempt = 0;
}

int64_t
backoff_next(struct backoff *b, uint64_t r)
{
	int64_t ceiling = b->base_ms;

	for (unsigned i = 0; i < b->attempt && ceiling < b->cap_ms; i++)
		ceiling *= 2;
	if (ceiling > b->cap_ms)
		ceiling = b->cap_ms;
	if (ceiling < b->floor_ms)
		ceiling = b->floor_ms;
	if (b->attempt < 64)
		b->attempt++;
	return b->floor_ms + (int64_t)(r % (uint64_t)(ceiling - b->floor_ms + 1));
}

int64_t
jitter_ms(int64_t d, double frac, uint64_t r)
{
	double u = (double)(r >> 11) / (double)(1ULL << 53);	/* [0, 1) */
	double f = 1.0 - frac + 2.0 * frac * u;

	return (int64_t)((double)d * f);
}
