/*
 * calendar: the socket sets the pass saw close to expiry (reaper.track_expiry),
 * each with the time it is due (its predicted expiry, mono ms) and the time
 * by which the next pass is sure to have seen it again (seen_by). A binary
 * min-heap by due over 12-byte entries; the IDs, length-prefixed, live in
 * an arena that is compacted when more than half of it is garbage.
 *
 * Bounded: at cap entries calendar_add refuses (counted in refused), and
 * the pass alone judges those users. One per daemon (a seat has its own);
 * not shared between threads.
 */
#ifndef PR_CALENDAR_H
#define PR_CALENDAR_H

#include <stddef.h>
#include <stdint.h>

struct cal_entry {
	uint32_t due;		/* ms after the calendar's base */
	uint32_t slack;		/* seen_by - due, ms */
	uint32_t off;		/* the ID (its length first) in the arena */
};

struct calendar {
	struct cal_entry *heap;
	size_t n, alloc;
	int64_t base;		/* mono ms the entries' due times count from */
	char *arena;
	size_t used, garbage, arenasz;
	size_t cap;
	unsigned long long refused;	/* adds refused at the cap, ever */
};

/* One entry taken out: the ID is copied into the caller's item. */
struct cal_item {
	int64_t due;
	int64_t seen_by;
	size_t len;
	char *id;		/* malloc'ed by calendar_pop, freed by the caller */
};

void calendar_init(struct calendar *c, size_t cap);

/* Forget every entry and give the memory back (cap and refused stay). */
void calendar_clear(struct calendar *c);
#define calendar_free calendar_clear

/*
 * Track id until seen_by, due at due. 1 added, 0 refused at the cap or
 * with nothing to gain (seen_by <= due: the pass sees it first, or the ID
 * too long to keep), -1 out of memory.
 */
int calendar_add(struct calendar *c, const char *id, size_t len, int64_t due, int64_t seen_by);

/* The earliest due time, INT64_MAX when empty. */
int64_t calendar_next_due(const struct calendar *c);

/*
 * Take the earliest entry when it is due at now: 1 with it in *it (the ID
 * copied), 0 when none is due, -1 out of memory (the entry stays).
 */
int calendar_pop(struct calendar *c, int64_t now, struct cal_item *it);

/* Bytes the calendar holds (heap and arena), for the log and the benchmark. */
size_t calendar_bytes(const struct calendar *c);

#endif
