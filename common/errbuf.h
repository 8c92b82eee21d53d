/*
 * errbuf: a message that lists several reasons, e.g. one per address or
 * per Sentinel tried, "a: refused; b: timed out". The buffer is the
 * caller's; a reason that does not fit is cut, never written past it.
 */
#ifndef PR_ERRBUF_H
#define PR_ERRBUF_H

#include <stddef.h>

/* Append one formatted reason to err, after "; " unless err is empty. */
void errbuf_add(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
