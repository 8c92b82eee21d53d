/*
 * script: Lua scripts run by EVALSHA, loaded with SCRIPT LOAD on first use
 * and again when the server answers NOSCRIPT (restart, SCRIPT FLUSH).
 */
#ifndef PR_SCRIPT_H
#define PR_SCRIPT_H

#include <stddef.h>

#include "rconn.h"
#include "rerr.h"

struct script {
	const char *name;
	const char *src;
	char sha[41];		/* "" until loaded */
	enum rerr_class err_class;	/* of the last SCRIPT LOAD refused, else RERR_NONE */
};

/*
 * Load s (SCRIPT LOAD) and remember its SHA. 0, or -1 (see rconn state;
 * s->err_class says which error reply, if Redis refused it).
 */
int script_load(struct rconn *c, struct script *s, char *err, size_t errlen);

/*
 * Queue EVALSHA. argv[0] and argv[1] are reserved: this fills them with
 * "EVALSHA" and the SHA; argv[2] must be numkeys. Loads the script first
 * when its SHA is not known yet, which needs an empty pipeline: callers
 * that pipeline load it beforehand with script_load().
 */
int script_append(struct rconn *c, struct script *s, int argc, const char **argv,
    size_t *argvlen, char *err, size_t errlen);

/* 1 when r is a NOSCRIPT error. */
int script_is_noscript(const redisReply *r);

/*
 * Append + read, reloading and retrying once on NOSCRIPT. Returns the reply
 * (may be an error reply), or NULL on a transport error or when the reload
 * was refused (s->err_class).
 */
redisReply *script_call(struct rconn *c, struct script *s, int argc, const char **argv,
    size_t *argvlen, char *err, size_t errlen);

#endif
