#include "settings.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conftab.h"
#include "log.h"
#include "scanrange.h"

#define F_SECRET	CONFTAB_SECRET
#define F_NONEMPTY	CONFTAB_NONEMPTY
#define F_POSITIVE	CONFTAB_POSITIVE

/* How a change is applied on SIGHUP: the last argument of each row. */
#define LIVE		CONFTAB_LIVE
#define RECONNECT	CONFTAB_RECONNECT
#define RESTART		CONFTAB_RESTART

#define S(g, n, field, def, fl, ch, rl) \
	{ g, n, CONFTAB_STRING, offsetof(struct cfg, field), def, 0, 0, 0, fl, ch, rl }
#define I(g, n, field, def, lo, hi, rl) \
	{ g, n, CONFTAB_INT, offsetof(struct cfg, field), NULL, def, lo, hi, 0, NULL, rl }
#define B(g, n, field, def, rl) \
	{ g, n, CONFTAB_BOOL, offsetof(struct cfg, field), NULL, def, 0, 1, 0, NULL, rl }
#define L(g, n, field, def, hi, rl) \
	{ g, n, CONFTAB_NAMES, offsetof(struct cfg, field), def, 0, 0, hi, 0, NULL, rl }
#define N(g, n, field, def, lo, hi, fl, rl) \
	{ g, n, CONFTAB_NUMBER, offsetof(struct cfg, field), NULL, def, lo, hi, fl, NULL, rl }

static const struct conftab_row settings[] = {
	S("redis", "url", redis_url, "redis://127.0.0.1:6379/0", F_NONEMPTY, NULL, RECONNECT),
	S("redis", "username", redis_username, "", 0, NULL, RECONNECT),
	S("redis", "password", redis_password, "", F_SECRET, NULL, RECONNECT),
	S("redis", "password_file", redis_password_file, "", 0, NULL, RECONNECT),
	I("redis", "db", redis_db, -1, -1, 1000000, RECONNECT),
	N("redis", "connect_timeout", connect_timeout, 2, 0, 3600, F_POSITIVE, RECONNECT),
	N("redis", "command_timeout", command_timeout, 2, 0, 3600, F_POSITIVE, RECONNECT),
	S("sentinel", "username", sentinel_username, "", 0, NULL, RECONNECT),
	S("sentinel", "password", sentinel_password, "", F_SECRET, NULL, RECONNECT),
	S("sentinel", "password_file", sentinel_password_file, "", 0, NULL, RECONNECT),
	B("tls", "enabled", tls_enabled, 0, RECONNECT),
	S("tls", "ca_file", tls_ca_file, "", 0, NULL, RECONNECT),
	S("tls", "ca_dir", tls_ca_dir, "", 0, NULL, RECONNECT),
	S("tls", "cert_file", tls_cert_file, "", 0, NULL, RECONNECT),
	S("tls", "key_file", tls_key_file, "", 0, NULL, RECONNECT),
	S("tls", "server_name", tls_server_name, "", 0, NULL, RECONNECT),
	B("tls", "verify", tls_verify, 1, RECONNECT),
	S("keys", "online_set", online_set, "presence:online-users", F_NONEMPTY, NULL, LIVE),
	S("keys", "socket_prefix", socket_prefix, "presence:user:", 0, NULL, LIVE),
	S("keys", "socket_suffix", socket_suffix, ":sockets", 0, NULL, LIVE),
	L("keys", "shards", shards, "0", SHARDS_MAX, RESTART),
	N("reaper", "interval", interval, 30, 0, 86400, F_POSITIVE, LIVE),
	I("reaper", "batch_size", batch_size, 500, 1, 100000, LIVE),
	I("reaper", "scan_ranges", scan_ranges, 1, 1, SCANRANGE_MAX, LIVE),
	N("reaper", "max_stale_ratio", max_stale_ratio, 0.9, 0, 1, 0, LIVE),
	I("reaper", "guard_min_users", guard_min_users, 100, 0, 2147483647, LIVE),
	N("reaper", "repair_missing_ttl", repair_missing_ttl, 0, 0, 86400 * 365, 0, LIVE),
	N("reaper", "max_rate", max_rate, 0, 0, 1e9, 0, LIVE),
	B("reaper", "watch_expiry", watch_expiry, 0, LIVE),
	B("reaper", "enable_notifications", enable_notifications, 0, LIVE),
	B("reaper", "track_expiry", track_expiry, 0, LIVE),
	I("reaper", "track_max", track_max, 250000, 1, 100000000, LIVE),
	S("leader", "key", leader_key, "presence:reaper:leader", F_NONEMPTY, NULL, RECONNECT),
	N("leader", "lease", lease, 15, 0, 86400, F_POSITIVE, RECONNECT),
	N("leader", "renew", renew, 5, 0, 86400, F_POSITIVE, LIVE),
	S("leader", "identity", identity, "", 0, NULL, RESTART),
	S("leader", "members_key", members_key, "", 0, NULL, RESTART),
	S("events", "mode", events_mode, "none", 0, "none|publish|stream", LIVE),
	S("events", "channel", events_channel, "presence:events", F_NONEMPTY, NULL, LIVE),
	S("events", "stream", events_stream, "presence:events", F_NONEMPTY, NULL, LIVE),
	I("events", "stream_maxlen", events_stream_maxlen, 100000, 0, 2147483647, LIVE),
	S("metrics", "listen", metrics_listen, "", 0, NULL, LIVE),
	S("metrics", "textfile", metrics_textfile, "", 0, NULL, LIVE),
	S("log", "level", log_level, "info", 0, "error|warn|info|debug", LIVE),
	S("log", "format", log_format, "text", 0, "text|json", LIVE),
};
#define NSETTINGS (sizeof(settings) / sizeof(settings[0]))

_Static_assert(NSETTINGS <= sizeof(((struct cfg *)0)->where) / sizeof(char *),
    "struct cfg where[] too small");

static const struct conftab table = {
	settings, NSETTINGS, "chmod go-r, or move it to redis.password_file"
};

const struct conftab *
cfg_table(void)
{
	return &table;
}

void
cfg_set_string(char **field, const char *value)
{
	conftab_set_string(field, value);
}

void
cfg_defaults(struct cfg *c)
{
	memset(c, 0, sizeof(*c));
	conftab_defaults(&table, c);
}

static void
free_secret(char **s)
{
	if (*s) {
		explicit_bzero(*s, strlen(*s));
		free(*s);
	}
	*s = NULL;
}

void
cfg_free(struct cfg *c)
{
	conftab_free(&table, c);
	free_secret(&c->env_password);
	free_secret(&c->env_sentinel_password);
	for (size_t i = 0; i < NSETTINGS; i++) {
		free(c->where[i]);
		c->where[i] = NULL;
	}
	free(c->path);
	explicit_bzero(&c->url, sizeof(c->url));
	explicit_bzero(c->sentinel_pw, sizeof(c->sentinel_pw));
	c->path = NULL;
}

static char *
dup_or_null(const char *s)
{
	char *d = NULL;

	if (s)
		cfg_set_string(&d, s);
	return d;
}

void
cfg_copy(struct cfg *dst, const struct cfg *src)
{
	memset(dst, 0, sizeof(*dst));
	for (size_t i = 0; i < NSETTINGS; i++) {
		conftab_copy(&settings[i], dst, src);
		dst->where[i] = dup_or_null(src->where[i]);
	}
	dst->path = dup_or_null(src->path);
	dst->env_password = dup_or_null(src->env_password);
	dst->env_sentinel_password = dup_or_null(src->env_sentinel_password);
	dst->url_on_command_line = src->url_on_command_line;
	dst->url = src->url;
	memcpy(dst->sentinel_pw, src->sentinel_pw, sizeof(dst->sentinel_pw));
	dst->sentinel_has_password = src->sentinel_has_password;
	dst->cluster_slot = src->cluster_slot;
}

/* "FILE:LINE" of a setting when it came from a file, else the file or "configuration". */
static void
origin(const struct cfg *c, const char *group, const char *name, char *buf, size_t sz)
{
	int k = conftab_find(&table, group, name);
	const char *where = k >= 0 ? c->where[k] : NULL;

	snprintf(buf, sz, "%s", where ? where : c->path ? c->path : "configuration");
}

void
cfg_origin(const struct cfg *c, const char *group, const char *name, char *buf, size_t sz)
{
	int k = conftab_find(&table, group, name);

	snprintf(buf, sz, "%s", k >= 0 && c->where[k] ? c->where[k] : "");
}

/* Record where a setting's value now comes from: a variable or an option. */
static void
set_origin(struct cfg *c, const char *group, const char *name, const char *from)
{
	cfg_set_string(&c->where[conftab_find(&table, group, name)], from);
}

/* A group's password and password_file are two answers to one question: keep one. */
static int
one_password_source(const struct cfg *c, const char *group, const char *password,
    const char *file, char *err, size_t errlen)
{
	char where[4200];

	if (!password[0] || !file[0])
		return 0;
	origin(c, group, "password_file", where, sizeof(where));
	conftab_errf(err, errlen, "%s: %s.password_file: %s.password is set too; keep one", where,
	    group, group);
	return -1;
}

int
cfg_load(struct cfg *c, const char *path, int optional, char *err, size_t errlen)
{
	int rc = conftab_load(&table, c, c->where, path, optional, err, errlen);

	if (rc == 1)
		return 0;	/* no file: the defaults stand */
	cfg_set_string(&c->path, path);
	if (one_password_source(c, "redis", c->redis_password, c->redis_password_file, err,
	    errlen) < 0)
		rc = -1;
	if (one_password_source(c, "sentinel", c->sentinel_password, c->sentinel_password_file,
	    err, errlen) < 0)
		rc = -1;
	return rc;
}

void
cfg_apply_env(struct cfg *c)
{
	const char *v;

	if ((v = getenv("PRESENCE_REAPER_REDIS_URL")) != NULL && *v) {
		cfg_set_string(&c->redis_url, v);
		set_origin(c, "redis", "url", "PRESENCE_REAPER_REDIS_URL");
	} else if ((v = getenv("REDIS_URL")) != NULL && *v) {
		cfg_set_string(&c->redis_url, v);
		set_origin(c, "redis", "url", "REDIS_URL");
	}
	if ((v = getenv("PRESENCE_REAPER_REDIS_PASSWORD")) != NULL && *v)
		cfg_set_string(&c->env_password, v);
	if ((v = getenv("PRESENCE_REAPER_SENTINEL_PASSWORD")) != NULL && *v)
		cfg_set_string(&c->env_sentinel_password, v);
}

void
cfg_set_url_option(struct cfg *c, const char *url)
{
	cfg_set_string(&c->redis_url, url);
	set_origin(c, "redis", "url", "--redis-url");
	c->url_on_command_line = 1;
}

/*
 * Read the password, the first line of group.password_file (file) without
 * its line end, into out (outsz bytes). A longer line is an error, never
 * cut. Warns when other users can read the file.
 */
static int
read_password_file(struct cfg *c, const char *group, const char *file, char *out,
    size_t outsz, char *err, size_t errlen)
{
	char where[4200], line[RURL_CRED_MAX + 2];
	FILE *f;
	size_t n;
	int rc = -1;

	origin(c, group, "password_file", where, sizeof(where));
	line[0] = '\0';
	if ((f = fopen(file, "r")) == NULL ||
	    (fgets(line, sizeof(line), f) == NULL && ferror(f))) {
		conftab_errf(err, errlen, "%s: %s.password_file: cannot read %s: %s",
		    where, group, file, strerror(errno));
		goto done;
	}
	n = strlen(line);
	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = '\0';
	if (n >= outsz) {
		conftab_errf(err, errlen, "%s: %s.password_file: password in %s is longer "
		    "than %zu bytes", where, group, file, outsz - 1);
		goto done;
	}
	memcpy(out, line, n + 1);
	conftab_warn_if_readable(file, "chmod go-r; for a Kubernetes Secret, "
	    "defaultMode 0400, or 0440 with fsGroup");
	rc = 0;
done:
	explicit_bzero(line, sizeof(line));
	if (f)
		fclose(f);
	return rc;
}

static int
env_too_long(const char *value, const char *var, char *err, size_t errlen)
{
	if (value == NULL || strlen(value) < RURL_CRED_MAX)
		return 0;
	conftab_errf(err, errlen, "%s: password is longer than %d bytes", var, RURL_CRED_MAX - 1);
	return 1;
}

static int
too_long(const struct cfg *c, const char *group, const char *name, const char *value,
    char *err, size_t errlen)
{
	char where[4200];

	if (strlen(value) < RURL_CRED_MAX)
		return 0;
	origin(c, group, name, where, sizeof(where));
	conftab_errf(err, errlen, "%s: %s.%s: %s is longer than %d bytes", where, group, name,
	    strcmp(name, "username") == 0 ? "user name" : "password", RURL_CRED_MAX - 1);
	return 1;
}

/*
 * A user name or password from the environment or a setting that does not
 * fit in struct rurl is an error naming its source, never cut (rurl_parse
 * and read_password_file check those of the URL and of the file).
 */
static int
check_cred_lengths(const struct cfg *c, char *err, size_t errlen)
{
	int bad = 0;

	bad |= env_too_long(c->env_password, "PRESENCE_REAPER_REDIS_PASSWORD", err, errlen);
	bad |= env_too_long(c->env_sentinel_password, "PRESENCE_REAPER_SENTINEL_PASSWORD", err,
	    errlen);
	bad |= too_long(c, "redis", "password", c->redis_password, err, errlen);
	bad |= too_long(c, "redis", "username", c->redis_username, err, errlen);
	bad |= too_long(c, "sentinel", "password", c->sentinel_password, err, errlen);
	bad |= too_long(c, "sentinel", "username", c->sentinel_username, err, errlen);
	return bad ? -1 : 0;
}

/* Fill c->url's password and user, and the Sentinels' password, by the precedence of settings.h. */
static void
resolve_credentials(struct cfg *c, const char *filepw, const char *sentinel_filepw)
{
	const char *pw = NULL;

	if (c->env_password)
		pw = c->env_password;
	else if (!c->url.has_password && c->redis_password_file[0])
		pw = filepw;
	else if (!c->url.has_password && c->redis_password[0])
		pw = c->redis_password;
	if (pw) {
		snprintf(c->url.password, sizeof(c->url.password), "%s", pw);
		c->url.has_password = 1;
	}
	if (c->url.user[0] == '\0')
		snprintf(c->url.user, sizeof(c->url.user), "%s", c->redis_username);
	pw = c->env_sentinel_password ? c->env_sentinel_password :
	    c->sentinel_password_file[0] ? sentinel_filepw :
	    c->sentinel_password[0] ? c->sentinel_password : NULL;
	c->sentinel_has_password = pw != NULL;
	snprintf(c->sentinel_pw, sizeof(c->sentinel_pw), "%s", pw ? pw : "");
}

/*
 * TLS: on with a rediss:// URL or tls.enabled, never over a Unix socket;
 * a client certificate comes with its key. The files themselves are read
 * when connecting (rtls), so a renewed certificate needs no reload.
 */
static int
check_tls(struct cfg *c, char *err, size_t errlen)
{
	char where[4200];
	int bad = 0;

	if (c->url.tls)
		c->tls_enabled = 1;
	if (c->tls_enabled && c->url.is_unix) {
		origin(c, "tls", "enabled", where, sizeof(where));
		conftab_errf(err, errlen, "%s: tls.enabled: TLS over a Unix socket is not "
		    "supported (use a rediss:// or redis:// URL)", where);
		bad = 1;
	}
	if (!c->tls_cert_file[0] != !c->tls_key_file[0]) {
		const char *set = c->tls_cert_file[0] ? "cert_file" : "key_file";

		origin(c, "tls", set, where, sizeof(where));
		conftab_errf(err, errlen, "%s: tls.%s: mutual TLS needs both tls.cert_file and "
		    "tls.key_file", where, set);
		bad = 1;
	}
	if (c->tls_enabled && !c->url.is_unix)
		c->url.tls = 1;
	return bad ? -1 : 0;
}

static void
resolve_identity(struct cfg *c)
{
	const char *pod = getenv("POD_NAME");
	char host[256];

	if (c->identity[0] != '\0')
		return;
	if (pod && *pod) {
		cfg_set_string(&c->identity, pod);
		return;
	}
	if (gethostname(host, sizeof(host)) != 0)
		strcpy(host, "unknown");
	host[sizeof(host) - 1] = '\0';
	cfg_set_string(&c->identity, host);
}

int
cfg_finalize(struct cfg *c, char *err, size_t errlen)
{
	char where[4200], msg[256], filepw[RURL_CRED_MAX], sfilepw[RURL_CRED_MAX];
	int bad = 0;

	err[0] = '\0';
	if (rurl_parse(c->redis_url, &c->url, msg, sizeof(msg)) < 0) {
		origin(c, "redis", "url", where, sizeof(where));
		conftab_errf(err, errlen, "%s: redis.url: %s", where, msg);
		bad = 1;
	}
	filepw[0] = sfilepw[0] = '\0';
	if (c->redis_password_file[0] && read_password_file(c, "redis", c->redis_password_file,
	    filepw, sizeof(filepw), err, errlen) < 0)
		bad = 1;
	if (c->sentinel_password_file[0] && read_password_file(c, "sentinel",
	    c->sentinel_password_file, sfilepw, sizeof(sfilepw), err, errlen) < 0)
		bad = 1;
	if (check_cred_lengths(c, err, errlen) < 0)
		bad = 1;
	if (check_tls(c, err, errlen) < 0)
		bad = 1;
	if (c->renew >= c->lease) {
		origin(c, "leader", "renew", where, sizeof(where));
		conftab_errf(err, errlen, "%s: leader.renew: must be less than leader.lease (%g)",
		    where, c->lease);
		bad = 1;
	}
	if (!bad && c->url_on_command_line && c->url.password[0])
		log_warnx("--redis-url: the password in the URL is visible to other users "
		    "in the process list; pass it in PRESENCE_REAPER_REDIS_PASSWORD or "
		    "redis.password_file instead");
	if (!bad)
		resolve_credentials(c, filepw, sfilepw);
	explicit_bzero(filepw, sizeof(filepw));
	explicit_bzero(sfilepw, sizeof(sfilepw));
	if (bad)
		return -1;
	if (c->url.db < 0)
		c->url.db = c->redis_db >= 0 ? c->redis_db : 0;
	resolve_identity(c);
	return 0;
}

/* Add name to a list of names separated by ", ". */
static void
add_name(char *list, size_t sz, const char *name)
{
	size_t n = strlen(list);

	snprintf(list + n, sz - n, "%s%s", n ? ", " : "", name);
}

static char *
class_list(struct cfg_changes *ch, enum conftab_reload how)
{
	return how == CONFTAB_LIVE ? ch->live :
	    how == CONFTAB_RECONNECT ? ch->reconnect : ch->restart;
}

/*
 * The password read from redis.password_file is part of the setting: a
 * rotated Secret under the same path changes the credentials.
 */
static int
password_file_rotated(const char *oldfile, const char *nextfile, const char *oldpw,
    const char *nextpw)
{
	return oldfile[0] && strcmp(oldfile, nextfile) == 0 && strcmp(oldpw, nextpw) != 0;
}

int
cfg_changes(const struct cfg *old, const struct cfg *next, struct cfg_changes *ch)
{
	char name[64];

	memset(ch, 0, sizeof(*ch));
	for (size_t i = 0; i < NSETTINGS; i++) {
		const struct conftab_row *r = &settings[i];

		if (conftab_same(r, old, next))
			continue;
		snprintf(name, sizeof(name), "%s.%s", r->group, r->name);
		add_name(class_list(ch, r->reload), sizeof(ch->live), name);
	}
	if (password_file_rotated(old->redis_password_file, next->redis_password_file,
	    old->url.password, next->url.password))
		add_name(ch->reconnect, sizeof(ch->reconnect),
		    "redis.password_file (contents)");
	if (password_file_rotated(old->sentinel_password_file, next->sentinel_password_file,
	    old->sentinel_pw, next->sentinel_pw))
		add_name(ch->reconnect, sizeof(ch->reconnect),
		    "sentinel.password_file (contents)");
	return ch->reconnect[0] != '\0';
}

void
cfg_keep_restart_settings(struct cfg *next, const struct cfg *old)
{
	for (size_t i = 0; i < NSETTINGS; i++)
		if (settings[i].reload == CONFTAB_RESTART)
			conftab_copy(&settings[i], next, old);
}
