#include "scanrange.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

uint64_t
scanrange_rev(uint64_t v)
{
	v = ((v >> 1) & 0x5555555555555555ULL) | ((v & 0x5555555555555555ULL) << 1);
	v = ((v >> 2) & 0x3333333333333333ULL) | ((v & 0x3333333333333333ULL) << 2);
	v = ((v >> 4) & 0x0F0F0F0F0F0F0F0FULL) | ((v & 0x0F0F0F0F0F0F0F0FULL) << 4);
	v = ((v >> 8) & 0x00FF00FF00FF00FFULL) | ((v & 0x00FF00FF00FF00FFULL) << 8);
	v = ((v >> 16) & 0x0000FFFF0000FFFFULL) | ((v & 0x0000FFFF0000FFFFULL) << 16);
	return (v >> 32) | (v << 32);
}

int
scanrange_parse(const char *s, uint64_t *v)
{
	unsigned long long n;
	char *end;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	n = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || n > UINT64_MAX)
		return -1;
	*v = (uint64_t)n;
	return 0;
}

int
scanrange_count(uint64_t at, unsigned long long seen, int count, int max)
{
	/* The share of the table the first reply covered, and what the rest holds. */
	double done = (double)at / 18446744073709551616.0;
	double rest = done > 0 ? (double)seen * (1 - done) / done : 0;
	double batches = count > 0 ? rest / count + 1 : 1;

	if (max > SCANRANGE_MAX)
		max = SCANRANGE_MAX;
	if (max < 1)
		max = 1;
	return batches >= max ? max : (int)batches;
}

int
scanrange_split(struct scanrange *rg, int n, uint64_t at)
{
	uint64_t width;

	/* From n * n up, the n ranges of width (2^64 - at) / n + 1 fit under 2^64. */
	if (n < 1 || (uint64_t)n * (uint64_t)n > UINT64_MAX - at)
		n = 1;
	width = (UINT64_MAX - at) / (uint64_t)n + 1;

	for (int i = 0; i < n; i++) {
		uint64_t start = at + (uint64_t)i * width;

		rg[i].last = i == n - 1;
		rg[i].end = rg[i].last ? 0 : start + width;
		snprintf(rg[i].next, sizeof(rg[i].next), "%llu",
		    (unsigned long long)scanrange_rev(start));
		rg[i].sent[0] = '\0';
		rg[i].rescans = 0;
	}
	return n;
}

int
scanrange_count_left(const struct scanrange *rg, double density, int max)
{
	uint64_t v, at;
	double left;

	if (density <= 0 || scanrange_parse(rg->sent, &v) < 0)
		return max;
	at = scanrange_rev(v);
	left = rg->last ? 18446744073709551616.0 - (double)at :
	    at < rg->end ? (double)(rg->end - at) : 0;
	/* A tenth more, and a few, so that a range rarely needs one more call. */
	left = left * density * 1.1 + 4;
	return left >= max ? max : (int)left;
}

int
scanrange_step(struct scanrange *rg, const char *cursor)
{
	uint64_t v;

	rg->next[0] = '\0';
	if (scanrange_parse(cursor, &v) < 0)
		return -1;
	if (v == 0 || (!rg->last && scanrange_rev(v) >= rg->end))
		return 0;
	snprintf(rg->next, sizeof(rg->next), "%s", cursor);
	return 1;
}
