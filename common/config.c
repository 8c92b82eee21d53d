#include "config.h"

#include <errno.h>
#include <libconfig.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

enum cfg_type { CT_STRING, CT_INT, CT_NUMBER, CT_BOOL };

#define F_SECRET	0x01	/* never printed */
#define F_NONEMPTY	0x02	/* "" is not allowed */
#define F_POSITIVE	0x04	/* must be > 0 (min is then 0, exclusive) */

struct setting {
	const char *group;
	const char *name;
	enum cfg_type type;
	size_t off;
	const char *def_s;
	double def_n;
	double min, max;
	int flags;
	const char *choices;	/* "a|b|c" for enumerated strings */
};

#define S(g, n, field, def, fl, ch) \
	{ g, n, CT_STRING, offsetof(struct cfg, field), def, 0, 0, 0, fl, ch }
#define I(g, n, field, def, lo, hi) \
	{ g, n, CT_INT, offsetof(struct cfg, field), NULL, def, lo, hi, 0, NULL }
#define B(g, n, field, def) \
	{ g, n, CT_BOOL, offsetof(struct cfg, field), NULL, def, 0, 1, 0, NULL }
#define N(g, n, field, def, lo, hi, fl) \
	{ g, n, CT_NUMBER, offsetof(struct cfg, field), NULL, def, lo, hi, fl, NULL }

static const struct setting settings[] = {
	S("redis", "url", redis_url, "redis://127.0.0.1:6379/0", F_NONEMPTY, NULL),
	S("redis", "username", redis_username, "", 0, NULL),
	S("redis", "password", redis_password, "", F_SECRET, NULL),
	S("redis", "password_file", redis_password_file, "", 0, NULL),
	I("redis", "db", redis_db, -1, -1, 1000000),
	N("redis", "connect_timeout", connect_timeout, 2, 0, 3600, F_POSITIVE),
	N("redis", "command_timeout", command_timeout, 2, 0, 3600, F_POSITIVE),
	S("keys", "online_set", online_set, "presence:online-users", F_NONEMPTY, NULL),
	S("keys", "socket_prefix", socket_prefix, "presence:user:", 0, NULL),
	S("keys", "socket_suffix", socket_suffix, ":sockets", 0, NULL),
	N("reaper", "interval", interval, 30, 0, 86400, F_POSITIVE),
	I("reaper", "batch_size", batch_size, 500, 1, 100000),
	N("reaper", "max_stale_ratio", max_stale_ratio, 0.9, 0, 1, 0),
	I("reaper", "guard_min_users", guard_min_users, 100, 0, 2147483647),
	N("reaper", "repair_missing_ttl", repair_missing_ttl, 0, 0, 86400 * 365, 0),
	N("reaper", "max_rate", max_rate, 0, 0, 1e9, 0),
	B("reaper", "watch_expiry", watch_expiry, 0),
	B("reaper", "enable_notifications", enable_notifications, 0),
	S("leader", "key", leader_key, "presence:reaper:leader", F_NONEMPTY, NULL),
	N("leader", "lease", lease, 15, 0, 86400, F_POSITIVE),
	N("leader", "renew", renew, 5, 0, 86400, F_POSITIVE),
	S("leader", "identity", identity, "", 0, NULL),
	S("events", "mode", events_mode, "none", 0, "none|publish|stream"),
	S("events", "channel", events_channel, "presence:events", F_NONEMPTY, NULL),
	S("events", "stream", events_stream, "presence:events", F_NONEMPTY, NULL),
	I("events", "stream_maxlen", events_stream_maxlen, 100000, 0, 2147483647),
	S("metrics", "listen", metrics_listen, "", 0, NULL),
	S("metrics", "textfile", metrics_textfile, "", 0, NULL),
	S("log", "level", log_level, "info", 0, "error|warn|info|debug"),
	S("log", "format", log_format, "text", 0, "text|json"),
};
#define NSETTINGS (sizeof(settings) / sizeof(settings[0]))

_Static_assert(NSETTINGS <= sizeof(((struct cfg *)0)->where) / sizeof(char *),
    "struct cfg where[] too small");

/* Append one formatted line to the error buffer. */
static void LOG_PRINTF(3, 4)
errf(char *err, size_t errlen, const char *fmt, ...)
{
	size_t n = strnlen(err, errlen);
	va_list ap;

	if (n + 1 >= errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err + n, errlen - n, fmt, ap);
	va_end(ap);
	n = strnlen(err, errlen);
	if (n + 1 < errlen) {
		err[n] = '\n';
		err[n + 1] = '\0';
	}
}

static char **
str_field(struct cfg *c, const struct setting *s)
{
	return (char **)((char *)c + s->off);
}

static const char *
str_value(const struct cfg *c, const struct setting *s)
{
	return *(char *const *)((const char *)c + s->off);
}

static int *
int_field(struct cfg *c, const struct setting *s)
{
	return (int *)((char *)c + s->off);
}

static double *
num_field(struct cfg *c, const struct setting *s)
{
	return (double *)((char *)c + s->off);
}

static const struct setting *
find_setting(const char *group, const char *name)
{
	for (size_t i = 0; i < NSETTINGS; i++)
		if (strcmp(settings[i].group, group) == 0 &&
		    (name == NULL || strcmp(settings[i].name, name) == 0))
			return &settings[i];
	return NULL;
}

void
cfg_set_string(char **field, const char *value)
{
	char *dup = strdup(value);

	if (dup == NULL)
		abort();	/* a few bytes at startup; nothing sane to do */
	free(*field);
	*field = dup;
}

void
cfg_defaults(struct cfg *c)
{
	memset(c, 0, sizeof(*c));
	for (size_t i = 0; i < NSETTINGS; i++) {
		const struct setting *s = &settings[i];

		if (s->type == CT_STRING)
			cfg_set_string(str_field(c, s), s->def_s);
		else if (s->type == CT_INT || s->type == CT_BOOL)
			*int_field(c, s) = (int)s->def_n;
		else
			*num_field(c, s) = s->def_n;
	}
}

void
cfg_free(struct cfg *c)
{
	for (size_t i = 0; i < NSETTINGS; i++)
		if (settings[i].type == CT_STRING) {
			char **f = str_field(c, &settings[i]);

			if (*f != NULL && (settings[i].flags & F_SECRET))
				explicit_bzero(*f, strlen(*f));
			free(*f);
			*f = NULL;
		}
	if (c->env_password) {
		explicit_bzero(c->env_password, strlen(c->env_password));
		free(c->env_password);
	}
	for (size_t i = 0; i < NSETTINGS; i++) {
		free(c->where[i]);
		c->where[i] = NULL;
	}
	free(c->path);
	explicit_bzero(&c->url, sizeof(c->url));
	c->env_password = c->path = NULL;
}

static int
choice_ok(const char *choices, const char *v)
{
	size_t vl = strlen(v);

	for (const char *p = choices; p && *p; ) {
		const char *bar = strchr(p, '|');
		size_t l = bar ? (size_t)(bar - p) : strlen(p);

		if (l == vl && strncmp(p, v, l) == 0)
			return 1;
		p = bar ? bar + 1 : NULL;
	}
	return 0;
}

/* Validate one libconfig setting against its table entry and store it. */
static int
read_value(struct cfg *c, const struct setting *s, config_setting_t *cs,
    const char *where, char *err, size_t errlen)
{
	int t = config_setting_type(cs);
	double v;

	if (s->type == CT_STRING) {
		const char *str;

		if (t != CONFIG_TYPE_STRING) {
			errf(err, errlen, "%s: %s.%s: wrong type (expected a string)",
			    where, s->group, s->name);
			return -1;
		}
		str = config_setting_get_string(cs);
		if ((s->flags & F_NONEMPTY) && str[0] == '\0') {
			errf(err, errlen, "%s: %s.%s: must not be empty", where,
			    s->group, s->name);
			return -1;
		}
		if (s->choices && !choice_ok(s->choices, str)) {
			errf(err, errlen, "%s: %s.%s: invalid value \"%s\" (one of %s)",
			    where, s->group, s->name, str, s->choices);
			return -1;
		}
		cfg_set_string(str_field(c, s), str);
		return 0;
	}
	if (s->type == CT_BOOL) {
		if (t != CONFIG_TYPE_BOOL) {
			errf(err, errlen, "%s: %s.%s: wrong type (expected true or false)",
			    where, s->group, s->name);
			return -1;
		}
		*int_field(c, s) = config_setting_get_bool(cs) ? 1 : 0;
		return 0;
	}
	if (t == CONFIG_TYPE_INT || t == CONFIG_TYPE_INT64)
		v = (double)config_setting_get_int64(cs);
	else if (t == CONFIG_TYPE_FLOAT && s->type == CT_NUMBER)
		v = config_setting_get_float(cs);
	else {
		errf(err, errlen, "%s: %s.%s: wrong type (expected %s)", where,
		    s->group, s->name, s->type == CT_INT ? "an integer" : "a number");
		return -1;
	}
	if ((s->flags & F_POSITIVE) && v <= 0) {
		errf(err, errlen, "%s: %s.%s: %g must be greater than 0", where,
		    s->group, s->name, v);
		return -1;
	}
	if (v < s->min || v > s->max) {
		errf(err, errlen, "%s: %s.%s: %g is out of range (%g..%g)", where,
		    s->group, s->name, v, s->min, s->max);
		return -1;
	}
	if (s->type == CT_INT)
		*int_field(c, s) = (int)v;
	else
		*num_field(c, s) = v;
	return 0;
}

static void
setting_where(config_setting_t *cs, const char *path, char *buf, size_t sz)
{
	const char *file = config_setting_source_file(cs);

	snprintf(buf, sz, "%s:%u", file ? file : path, config_setting_source_line(cs));
}

/* "FILE:LINE" of a setting when it came from a file, else the file or "configuration". */
static void
origin(const struct cfg *c, const char *group, const char *name, char *buf, size_t sz)
{
	const struct setting *s = find_setting(group, name);
	const char *where = s ? c->where[s - settings] : NULL;

	snprintf(buf, sz, "%s", where ? where : c->path ? c->path : "configuration");
}

/* Record where a setting's value now comes from: a variable or an option. */
static void
set_origin(struct cfg *c, const char *group, const char *name, const char *from)
{
	const struct setting *s = find_setting(group, name);

	cfg_set_string(&c->where[s - settings], from);
}

/* Is gid this process's group or one of its supplementary groups? */
static int
in_our_groups(gid_t gid)
{
	gid_t *groups;
	int n, found = 0;

	if (gid == getegid())
		return 1;
	if ((n = getgroups(0, NULL)) <= 0 ||
	    (groups = calloc((size_t)n, sizeof(*groups))) == NULL)
		return 0;
	n = getgroups(n, groups);
	for (int i = 0; i < n && !found; i++)
		found = groups[i] == gid;
	free(groups);
	return found;
}

/*
 * Warn when file, which holds a password, can be read by other users: it
 * has the "other" read bit, or the group read bit for a group this process
 * is not in (a group of its own, such as a Kubernetes fsGroup, is how it
 * is meant to read the file). fix tells the operator what to do.
 */
static void
warn_if_others_can_read(const char *file, const char *fix)
{
	struct stat st;

	if (stat(file, &st) != 0)
		return;
	if ((st.st_mode & S_IROTH) ||
	    ((st.st_mode & S_IRGRP) && !in_our_groups(st.st_gid)))
		log_warnx("password in %s is readable by other users (%s)", file, fix);
}

/* Walk one group: every child must be a known setting of the right type. */
static int
load_group(struct cfg *c, config_setting_t *grp, const char *path, char *err,
    size_t errlen)
{
	const char *gname = config_setting_name(grp);
	int bad = 0;

	for (int i = 0; i < config_setting_length(grp); i++) {
		config_setting_t *cs = config_setting_get_elem(grp, (unsigned)i);
		const char *name = config_setting_name(cs);
		const struct setting *s = find_setting(gname, name ? name : "");
		char where[4200];

		setting_where(cs, path, where, sizeof(where));
		if (s == NULL) {
			errf(err, errlen, "%s: %s.%s: unknown setting", where, gname,
			    name ? name : "?");
			bad = 1;
			continue;
		}
		if (read_value(c, s, cs, where, err, errlen) < 0) {
			bad = 1;
			continue;
		}
		cfg_set_string(&c->where[s - settings], where);
		if ((s->flags & F_SECRET) && str_value(c, s)[0] != '\0') {
			const char *file = config_setting_source_file(cs);

			warn_if_others_can_read(file ? file : path,
			    "chmod go-r, or move it to redis.password_file");
		}
	}
	return bad ? -1 : 0;
}

int
cfg_load(struct cfg *c, const char *path, int optional, char *err, size_t errlen)
{
	config_t cf;
	config_setting_t *root;
	char *dir, *slash;
	int bad = 0;
	FILE *f;

	err[0] = '\0';
	if ((f = fopen(path, "r")) == NULL) {
		if (optional && errno == ENOENT)
			return 0;
		errf(err, errlen, "cannot open %s: %s", path, strerror(errno));
		return -1;
	}
	fclose(f);
	cfg_set_string(&c->path, path);

	/* Relative @include paths resolve against the file's own folder. */
	dir = strdup(path);
	if (dir == NULL)
		abort();
	slash = strrchr(dir, '/');
	if (slash == NULL)
		strcpy(dir, ".");
	else if (slash == dir)
		dir[1] = '\0';
	else
		*slash = '\0';

	config_init(&cf);
	config_set_include_dir(&cf, dir);
	if (!config_read_file(&cf, path)) {
		const char *efile = config_error_file(&cf);

		errf(err, errlen, "%s:%d: syntax error: %s", efile ? efile : path,
		    config_error_line(&cf), config_error_text(&cf));
		bad = 1;
		goto done;
	}
	root = config_root_setting(&cf);
	for (int i = 0; i < config_setting_length(root); i++) {
		config_setting_t *grp = config_setting_get_elem(root, (unsigned)i);
		const char *gname = config_setting_name(grp);
		char where[4200];

		setting_where(grp, path, where, sizeof(where));
		if (find_setting(gname ? gname : "", NULL) == NULL) {
			errf(err, errlen, "%s: %s: unknown setting", where,
			    gname ? gname : "?");
			bad = 1;
		} else if (config_setting_type(grp) != CONFIG_TYPE_GROUP) {
			errf(err, errlen, "%s: %s: wrong type (expected a group)",
			    where, gname);
			bad = 1;
		} else if (load_group(c, grp, path, err, errlen) < 0) {
			bad = 1;
		}
	}
	if (c->redis_password[0] && c->redis_password_file[0]) {
		char where[4200];

		origin(c, "redis", "password_file", where, sizeof(where));
		errf(err, errlen, "%s: redis.password_file: redis.password is set too; "
		    "keep one", where);
		bad = 1;
	}
done:
	config_destroy(&cf);
	free(dir);
	return bad ? -1 : 0;
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
}

void
cfg_set_url_option(struct cfg *c, const char *url)
{
	cfg_set_string(&c->redis_url, url);
	set_origin(c, "redis", "url", "--redis-url");
	c->url_on_command_line = 1;
}

/*
 * Read the password, the first line of redis.password_file without its
 * line end, into out (outsz bytes). A longer line is an error, never cut.
 * Warns when other users can read the file.
 */
static int
read_password_file(struct cfg *c, char *out, size_t outsz, char *err, size_t errlen)
{
	const char *file = c->redis_password_file;
	char where[4200], line[RURL_CRED_MAX + 2];
	FILE *f;
	size_t n;
	int rc = -1;

	origin(c, "redis", "password_file", where, sizeof(where));
	line[0] = '\0';
	if ((f = fopen(file, "r")) == NULL ||
	    (fgets(line, sizeof(line), f) == NULL && ferror(f))) {
		errf(err, errlen, "%s: redis.password_file: cannot read %s: %s",
		    where, file, strerror(errno));
		goto done;
	}
	n = strlen(line);
	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = '\0';
	if (n >= outsz) {
		errf(err, errlen, "%s: redis.password_file: password in %s is longer "
		    "than %zu bytes", where, file, outsz - 1);
		goto done;
	}
	memcpy(out, line, n + 1);
	warn_if_others_can_read(file, "chmod go-r; for a Kubernetes Secret, "
	    "defaultMode 0400, or 0440 with fsGroup");
	rc = 0;
done:
	explicit_bzero(line, sizeof(line));
	if (f)
		fclose(f);
	return rc;
}

/*
 * A user name or password from the environment or a setting that does not
 * fit in struct rurl is an error naming its source, never cut (rurl_parse
 * and read_password_file check those of the URL and of the file).
 */
static int
check_cred_lengths(const struct cfg *c, char *err, size_t errlen)
{
	const size_t max = RURL_CRED_MAX - 1;
	char where[4200];
	int bad = 0;

	if (c->env_password && strlen(c->env_password) > max) {
		errf(err, errlen, "PRESENCE_REAPER_REDIS_PASSWORD: password is longer "
		    "than %zu bytes", max);
		bad = 1;
	}
	if (strlen(c->redis_password) > max) {
		origin(c, "redis", "password", where, sizeof(where));
		errf(err, errlen, "%s: redis.password: password is longer than %zu bytes",
		    where, max);
		bad = 1;
	}
	if (strlen(c->redis_username) > max) {
		origin(c, "redis", "username", where, sizeof(where));
		errf(err, errlen, "%s: redis.username: user name is longer than %zu bytes",
		    where, max);
		bad = 1;
	}
	return bad ? -1 : 0;
}

/* Fill c->url's password and user by the precedence of config.h. */
static void
resolve_credentials(struct cfg *c, const char *filepw)
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
	char where[4200], msg[256], filepw[RURL_CRED_MAX];
	int bad = 0;

	err[0] = '\0';
	if (rurl_parse(c->redis_url, &c->url, msg, sizeof(msg)) < 0) {
		origin(c, "redis", "url", where, sizeof(where));
		errf(err, errlen, "%s: redis.url: %s", where, msg);
		bad = 1;
	}
	filepw[0] = '\0';
	if (c->redis_password_file[0] &&
	    read_password_file(c, filepw, sizeof(filepw), err, errlen) < 0)
		bad = 1;
	if (check_cred_lengths(c, err, errlen) < 0)
		bad = 1;
	if (c->renew >= c->lease) {
		origin(c, "leader", "renew", where, sizeof(where));
		errf(err, errlen, "%s: leader.renew: must be less than leader.lease (%g)",
		    where, c->lease);
		bad = 1;
	}
	if (!bad && c->url_on_command_line && c->url.password[0])
		log_warnx("--redis-url: the password in the URL is visible to other users "
		    "in the process list; pass it in PRESENCE_REAPER_REDIS_PASSWORD or "
		    "redis.password_file instead");
	if (!bad)
		resolve_credentials(c, filepw);
	explicit_bzero(filepw, sizeof(filepw));
	if (bad)
		return -1;
	if (c->url.db < 0)
		c->url.db = c->redis_db >= 0 ? c->redis_db : 0;
	resolve_identity(c);
	return 0;
}

/* Quote s as a libconfig string literal. */
static void
quote(const char *s, char *out, size_t outsz)
{
	size_t o = 0;

	if (outsz < 3)
		return;
	out[o++] = '"';
	for (; *s && o + 6 < outsz; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\') {
			out[o++] = '\\';
			out[o++] = (char)ch;
		} else if (ch < 0x20) {
			o += (size_t)snprintf(out + o, outsz - o, "\\x%02x", ch);
		} else {
			out[o++] = (char)ch;
		}
	}
	out[o++] = '"';
	out[o] = '\0';
}

void
cfg_dump(const struct cfg *c, void (*out)(void *ctx, const char *line), void *ctx)
{
	char line[9000], val[8300];
	const char *group = NULL;

	snprintf(line, sizeof(line), "# effective configuration (file: %s)",
	    c->path ? c->path : "none, built-in defaults");
	out(ctx, line);
	for (size_t i = 0; i < NSETTINGS; i++) {
		const struct setting *s = &settings[i];

		if (group == NULL || strcmp(group, s->group) != 0) {
			if (group)
				out(ctx, "};");
			group = s->group;
			snprintf(line, sizeof(line), "%s = {", group);
			out(ctx, line);
		}
		if (s->type == CT_STRING) {
			const char *v = str_value(c, s);
			char url[RURL_PATH_MAX + RURL_HOST_MAX + 2 * RURL_CRED_MAX + 64];

			if (strcmp(s->group, "redis") == 0 && strcmp(s->name, "url") == 0) {
				rurl_format_redacted(&c->url, url, sizeof(url));
				v = url;
			} else if ((s->flags & F_SECRET) && v[0] != '\0') {
				v = "(redacted)";
			}
			quote(v, val, sizeof(val));
		} else if (s->type == CT_BOOL) {
			snprintf(val, sizeof(val), "%s",
			    *(const int *)((const char *)c + s->off) ? "true" : "false");
		} else if (s->type == CT_INT) {
			int v = *(const int *)((const char *)c + s->off);

			if (strcmp(s->name, "db") == 0)
				v = c->url.db;
			snprintf(val, sizeof(val), "%d", v);
		} else {
			snprintf(val, sizeof(val), "%g",
			    *(const double *)((const char *)c + s->off));
		}
		snprintf(line, sizeof(line), "  %s = %s;", s->name, val);
		out(ctx, line);
	}
	out(ctx, "};");
	snprintf(line, sizeof(line), "# password: %s",
	    c->url.has_password ? "set (redacted)" : "none");
	out(ctx, line);
}

void
cfg_help(void (*out)(void *ctx, const char *line), void *ctx)
{
	char line[512], name[64], range[128];

	for (size_t i = 0; i < NSETTINGS; i++) {
		const struct setting *s = &settings[i];

		snprintf(name, sizeof(name), "%s.%s", s->group, s->name);
		if (s->type == CT_STRING)
			snprintf(range, sizeof(range), "%s", s->choices ? s->choices : "");
		else if (s->type == CT_BOOL)
			snprintf(range, sizeof(range), "true|false");
		else if (s->flags & F_POSITIVE)
			snprintf(range, sizeof(range), "> 0");
		else if (s->type == CT_INT)
			snprintf(range, sizeof(range), "%.0f..%.0f", s->min, s->max);
		else
			snprintf(range, sizeof(range), "%g..%g", s->min, s->max);
		if (s->type == CT_STRING)
			snprintf(line, sizeof(line), "  %-28s \"%s\"%s%s", name, s->def_s,
			    range[0] ? "  " : "", range);
		else if (s->type == CT_BOOL)
			snprintf(line, sizeof(line), "  %-28s %s  %s", name,
			    s->def_n ? "true" : "false", range);
		else
			snprintf(line, sizeof(line), "  %-28s %.*f  %s", name,
			    s->type == CT_INT ? 0 : (s->def_n == (int)s->def_n ? 0 : 1),
			    s->def_n, range);
		out(ctx, line);
	}
}
