/*
 * keyslot: on a Redis Cluster, every key one script call touches must hash
 * to the same slot, or the call fails with CROSSSLOT. The reap script
 * touches the online set, the lock, the events stream (events.mode
 * "stream") and one socket set per user; a socket key's slot is fixed only
 * when keys.socket_prefix holds a whole hash tag, since otherwise the
 * hashed part takes in the user's ID. The check is exact: it needs no
 * user IDs and no server.
 */
#ifndef PR_KEYSLOT_H
#define PR_KEYSLOT_H

#include <stddef.h>

#include "settings.h"

/*
 * 0 with the one slot in *slot, or -1 with an explanation of hash tags and
 * a corrected key layout in err (several lines, for the operator).
 */
int keyslot_check(const struct cfg *c, unsigned *slot, char *err, size_t errlen);

/*
 * Key with a hash tag added for the layout keyslot_check suggests: tag is
 * "{T}" where T is the first ':'-separated part of keys.online_set; a key
 * that starts with "T:" gets it in place of T, any other key in front.
 */
void keyslot_tagged(const char *key, const char *word, char *out, size_t outsz);

#endif
