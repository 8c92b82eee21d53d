/*
 * escape: printable rendering of binary-safe user IDs for stdout and logs.
 * Anything read from Redis (IDs, lock values, error texts, CONFIG values)
 * passes through escape_id before it is printed.
 */
#ifndef PR_ESCAPE_H
#define PR_ESCAPE_H

#include <stddef.h>

/*
 * Write s (len bytes, may hold NUL) to out as printable ASCII: backslash as
 * "\\", \n \r \t as such, other bytes < 0x20 or >= 0x7f as "\xHH". The
 * result is NUL-terminated and truncated to fit outsz; returns the length
 * the full escape needs (like snprintf), so callers can detect truncation.
 * Needs at most 4 * len + 1 bytes.
 */
size_t escape_id(char *out, size_t outsz, const char *s, size_t len);

/*
 * Like escape_id, but only control bytes (< 0x20 and 0x7f) are escaped;
 * backslash and bytes >= 0x80 pass through. For text meant to be read
 * as it is (a log message) that must stay on one line and must not drive
 * a terminal. Same contract and worst case as escape_id.
 */
size_t escape_ctl(char *out, size_t outsz, const char *s, size_t len);

#endif
