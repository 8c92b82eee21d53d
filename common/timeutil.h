/*
 * timeutil: monotonic clock, capped exponential backoff with full jitter,
 * and a small PRNG seeded from the kernel.
 */
#ifndef PR_TIMEUTIL_H
#define PR_TIMEUTIL_H

#include <stdint.h>

/* Milliseconds on CLOCK_MONOTONIC. Schedules never use the wall clock. */
int64_t mono_ms(void);

/* Seed the PRNG from getrandom(2), falling back to time and pid. */
/* Seed the calling thread's generator (each thread seeds its own). */
void rnd_seed(void);
uint64_t rnd_u64(void);

struct backoff {
	int64_t base_ms;	/* first ceiling */
	int64_t cap_ms;		/* ceiling never grows past this */
	int64_t floor_ms;	/* never sleep less, so a dead peer cannot make us spin */
	unsigned attempt;
};

void backoff_init(struct backoff *b, int64_t base_ms, int64_t cap_ms, int64_t floor_ms);
void backoff_reset(struct backoff *b);

/*
 * Next delay: uniform in [floor, min(cap, base * 2^attempt)] ("full jitter"),
 * then count the attempt. r is a random 64-bit value (rnd_u64() outside tests).
 */
int64_t backoff_next(struct backoff *b, uint64_t r);

/* d scaled by a factor uniform in [1 - frac, 1 + frac]. */
int64_t jitter_ms(int64_t d, double frac, uint64_t r);

#endif
