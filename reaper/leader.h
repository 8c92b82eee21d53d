/*
 * leader: the Redis lock that elects one reaper (DESIGN §3).
 *   acquire  SET key token NX PX lease
 *   renew    PEXPIRE only while the value is our token (renew.lua)
 *   release  DEL only while the value is our token (release.lua)
 * All timing is Redis's (PX); we never compare wall clocks.
 */
#ifndef PR_LEADER_H
#define PR_LEADER_H

#include <stddef.h>
#include <stdint.h>

#include "rconn.h"
#include "rerr.h"
#include "script.h"

#define LEADER_TOKEN_MAX 1100

struct leader {
	const char *key;
	int64_t lease_ms;
	char token[LEADER_TOKEN_MAX];
	struct script renew_script;
	struct script release_script;
	enum rerr_class err_class;	/* of the last -1: RERR_NONE unless Redis refused */
};

/* Token = identity:pid:16 hex random digits; the identity is kept whole. */
void leader_init(struct leader *l, const char *key, double lease_s, const char *identity,
    uint64_t random);

/* Make identity safe for CLIENT SETNAME: [A-Za-z0-9._-] kept, others '_'. */
void leader_client_name(const char *identity, char *out, size_t outsz);

/*
 * Take the lock, or keep it when it already holds our token.
 * 1 leader, 0 another holds it (its value in holder, escaped by escape_id
 * for printing), -1 error (err names the command and key; l->err_class
 * says which error reply, if any). The same holds for renew and release.
 */
int leader_acquire(struct leader *l, struct rconn *c, char *holder, size_t holdersz,
    char *err, size_t errlen);

/* Who holds the lock, by GET: the value escaped into holder (escape_id) unless free. */
enum leader_held { LEADER_FREE = 0, LEADER_OTHER = 1, LEADER_OURS = 2 };

/* A leader_held, or -1 on an error (err names GET and the key; l->err_class). */
int leader_holder(struct leader *l, struct rconn *c, char *holder, size_t holdersz, char *err,
    size_t errlen);

/* 1 renewed, 0 no longer ours, -1 error. */
int leader_renew(struct leader *l, struct rconn *c, char *err, size_t errlen);

/* 1 released, 0 was not ours, -1 error. */
int leader_release(struct leader *l, struct rconn *c, char *err, size_t errlen);

#endif
