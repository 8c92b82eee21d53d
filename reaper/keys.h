/*
 * keys: presence key names. A user's socket set is prefix + id + suffix,
 * built byte for byte (IDs may hold any byte, NUL included).
 */
#ifndef PR_KEYS_H
#define PR_KEYS_H

#include <stddef.h>

struct keyfmt {
	const char *prefix;
	size_t prefix_len;
	const char *suffix;
	size_t suffix_len;
};

void keys_init(struct keyfmt *k, const char *prefix, const char *suffix);

/* Bytes the socket key of an id of idlen bytes needs (no NUL is added). */
size_t keys_socket_len(const struct keyfmt *k, size_t idlen);

/* Write the socket key into dst (keys_socket_len bytes); returns its length. */
size_t keys_socket(const struct keyfmt *k, char *dst, const char *id, size_t idlen);

#endif
