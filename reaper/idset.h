/*
 * idset: a set of byte strings, used to print each stale ID once per
 * dry-run cycle (SSCAN may return a member more than once). Holds only the
 * stale IDs of one cycle, never the whole online set.
 */
#ifndef PR_IDSET_H
#define PR_IDSET_H

#include <stddef.h>

struct idset {
	struct idset_entry **slots;
	size_t nslots;
	size_t count;
};

void idset_init(struct idset *s);
/* 1 when added, 0 when already present, -1 when out of memory. */
int idset_add(struct idset *s, const char *id, size_t len);
void idset_clear(struct idset *s);

#endif
