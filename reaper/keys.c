#include "keys.h"

#include <string.h>

void
keys_init(struct keyfmt *k, const char *prefix, const char *suffix)
{
	k->prefix = prefix;
	k->prefix_len = strlen(prefix);
	k->suffix = suffix;
	k->suffix_len = strlen(suffix);
}

size_t
keys_socket_len(const struct keyfmt *k, size_t idlen)
{
	return k->prefix_len + idlen + k->suffix_len;
}

size_t
keys_socket(const struct keyfmt *k, char *dst, const char *id, size_t idlen)
{
	memcpy(dst, k->prefix, k->prefix_len);
	memcpy(dst + k->prefix_len, id, idlen);
	memcpy(dst + k->prefix_len + idlen, k->suffix, k->suffix_len);
	return keys_socket_len(k, idlen);
}
