#include "rerr.h"

#include <stdio.h>
#include <string.h>

#include "escape.h"

/* Error codes with a policy of their own; the code is the reply's first word. */
static const struct {
	const char *code;
	enum rerr_class cls;
} codes[] = {
	{ "READONLY", RERR_READONLY },
	{ "MASTERDOWN", RERR_READONLY },
	{ "LOADING", RERR_LOADING },
	{ "BUSY", RERR_BUSY },
	{ "OOM", RERR_OOM },
	{ "NOPERM", RERR_NOPERM },
	{ "MOVED", RERR_MOVED },
	{ "ASK", RERR_ASK },
	{ "TRYAGAIN", RERR_TRYAGAIN },
	{ "CLUSTERDOWN", RERR_CLUSTERDOWN },
};

/*
 * "ERR ..." texts that mean the same as a code above. A script's ACL
 * refusal and unknown command come back as plain ERR (Redis 7.0).
 */
static const struct {
	const char *prefix;
	enum rerr_class cls;
} err_texts[] = {
	{ "ERR unknown command", RERR_UNKNOWN_COMMAND },
	{ "ERR unknown subcommand", RERR_UNKNOWN_COMMAND },
	{ "ERR Unknown Redis command called from script", RERR_UNKNOWN_COMMAND },
	{ "ERR The user executing the script can't", RERR_NOPERM },
};

static int
has_prefix(const char *s, size_t len, const char *prefix)
{
	size_t n = strlen(prefix);

	return len >= n && memcmp(s, prefix, n) == 0;
}

enum rerr_class
rerr_classify(const char *text, size_t len)
{
	size_t word = 0;

	while (word < len && text[word] != ' ')
		word++;
	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
		if (strlen(codes[i].code) == word && memcmp(text, codes[i].code, word) == 0)
			return codes[i].cls;
	for (size_t i = 0; i < sizeof(err_texts) / sizeof(err_texts[0]); i++)
		if (has_prefix(text, len, err_texts[i].prefix))
			return err_texts[i].cls;
	return RERR_OTHER;
}

enum rerr_class
rerr_of(const redisReply *r)
{
	if (r == NULL || r->type != REDIS_REPLY_ERROR)
		return RERR_NONE;
	return rerr_classify(r->str, r->len);
}

int
rerr_transient(enum rerr_class cls)
{
	return cls == RERR_LOADING || cls == RERR_BUSY || rerr_cluster(cls);
}

int
rerr_cluster(enum rerr_class cls)
{
	return cls == RERR_MOVED || cls == RERR_ASK || cls == RERR_TRYAGAIN ||
	    cls == RERR_CLUSTERDOWN;
}

enum rerr_class
rerr_format(char *out, size_t outsz, const char *what, const redisReply *r)
{
	static const char args[] = ", with args beginning with:";
	enum rerr_class cls = rerr_of(r);
	char text[400];
	size_t len;

	if (cls == RERR_NONE) {
		snprintf(out, outsz, "%s: unexpected reply", what);
		return cls;
	}
	len = r->len;
	if (cls == RERR_UNKNOWN_COMMAND) {
		const char *cut = strstr(r->str, args);

		if (cut != NULL && (size_t)(cut - r->str) < len)
			len = (size_t)(cut - r->str);
	}
	/* "... read only replica." reads better in a line that goes on after it. */
	if (len > 0 && r->str[len - 1] == '.')
		len--;
	escape_id(text, sizeof(text), r->str, len);
	snprintf(out, outsz, "%s: %s", what, text);
	return cls;
}

/* The value of "name:" in an INFO text, up to the end of its line. */
static int
info_field(const char *info, const char *name, char *out, size_t outsz)
{
	size_t n = strlen(name);
	const char *p = info;

	while (p != NULL && *p != '\0') {
		if (strncmp(p, name, n) == 0 && p[n] == ':') {
			escape_id(out, outsz, p + n + 1, strcspn(p + n + 1, "\r\n"));
			return 0;
		}
		if ((p = strchr(p, '\n')) != NULL)
			p++;
	}
	return -1;
}

int
rerr_server_version(const redisReply *info, char *out, size_t outsz)
{
	int rc = -1;

	if (info != NULL && info->type == REDIS_REPLY_STRING)
		rc = info_field(info->str, "redis_version", out, outsz);
	if (rc < 0)
		snprintf(out, outsz, "unknown");
	return rc;
}
