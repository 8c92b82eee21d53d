/*
 * promtext: the Prometheus text format 0.0.4 written into a fixed buffer;
 * what does not fit is cut, never overrun.
 */
#ifndef PR_PROMTEXT_H
#define PR_PROMTEXT_H

#include <stddef.h>

struct promtext {
	char *buf;
	size_t sz, len;
};

/* Append printf-style text. */
void promtext_emit(struct promtext *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The # HELP and # TYPE lines of a family. */
void promtext_family(struct promtext *o, const char *name, const char *type, const char *help);

#endif
