/*
 * escape: printable rendering of binary-safe user IDs for stdout and logs.
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

#endif
