/*
 * rurl: parse Redis URLs.
 *   redis://[[user]:password@]host[:port][/db]     (host may be [IPv6])
 *   rediss://...                                   (the same, over TLS)
 *   unix://[[user]:password@]/path/to.sock[?db=N]
 * user and password are percent-decoded; each may hold at most
 * RURL_CRED_MAX - 1 bytes and no NUL (%00), and anything else is an error,
 * never cut. Parts that are absent stay empty (db stays -1), so the caller
 * can tell "not given" from "given".
 */
#ifndef PR_RURL_H
#define PR_RURL_H

#include <stddef.h>

#define RURL_HOST_MAX 256
#define RURL_PATH_MAX 108	/* sizeof(sun_path) on Linux */
#define RURL_CRED_MAX 512

struct rurl {
	int is_unix;
	int tls;			/* rediss:// */
	char host[RURL_HOST_MAX];
	int port;			/* 6379 when not given */
	char path[RURL_PATH_MAX];
	char user[RURL_CRED_MAX];
	char password[RURL_CRED_MAX];
	int has_password;		/* "redis://:@h" gives an empty password */
	int db;				/* -1 when not given */
};

/* Parse s into u. Returns 0, or -1 with a message in err (never the password). */
int rurl_parse(const char *s, struct rurl *u, char *err, size_t errlen);

/* Render u without its password, e.g. "redis://user:***@host:6379/0". */
void rurl_format_redacted(const struct rurl *u, char *out, size_t outsz);

#endif
