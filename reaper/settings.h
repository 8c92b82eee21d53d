/*
 * settings: the presence-reaper configuration file validated into one plain
 * struct. A declarative table (settings.c) lists every setting with its
 * type, default, range and how a change applies on SIGHUP (live, by
 * reconnecting, or only after a restart); common/conftab reads the file
 * through it and reports every error as "FILE:LINE: group.name: message".
 *
 * Order of application (highest last): cfg_defaults, cfg_load (file),
 * environment and command line (the caller sets fields directly or through
 * cfg_set_string), then cfg_finalize, which parses the URL, reads the
 * password file and checks settings that depend on each other (a
 * rediss:// URL turns tls.enabled on; tls.enabled makes c->url.tls 1).
 */
#ifndef PR_SETTINGS_H
#define PR_SETTINGS_H

#include <stddef.h>

#include "rurl.h"

#define CFG_ERR_MAX 8192
#define SHARDS_MAX 256			/* keys.shards: one thread each at most */

struct conftab;

struct cfg {
	char *redis_url;
	char *redis_username;
	char *redis_password;
	char *redis_password_file;
	int redis_db;
	double connect_timeout;
	double command_timeout;

	char *sentinel_username;	/* the Sentinels' ACL user (redis+sentinel://) */
	char *sentinel_password;
	char *sentinel_password_file;
	int tls_enabled;		/* also set by a rediss:// URL */
	char *tls_ca_file;		/* "" with tls_ca_dir "": the system trust store */
	char *tls_ca_dir;
	char *tls_cert_file;		/* client certificate for mutual TLS */
	char *tls_key_file;
	char *tls_server_name;		/* SNI and the name verified; "" = the URL's host */
	int tls_verify;

	char *online_set;
	char *socket_prefix;
	char *socket_suffix;
	char *shards;			/* "0" none; "N" shards 0..N-1; "a,b," named (shardcfg.h) */

	double interval;
	int batch_size;
	int scan_ranges;		/* SSCAN cursors in flight at once (scanrange.h) */
	double max_stale_ratio;
	int guard_min_users;
	double repair_missing_ttl;	/* seconds; 0 = only report ghosts */
	double max_rate;		/* users checked per second; 0 = unlimited */
	int watch_expiry;		/* reap on key-expiry events too */
	int enable_notifications;	/* may CONFIG SET notify-keyspace-events */
	int track_expiry;		/* the expiry calendar (calendar.h) */
	int track_max;			/* its cap, entries */

	char *leader_key;
	double lease;
	double renew;
	char *identity;
	char *members_key;		/* keys.shards: replicas' membership; "" = derived */

	char *events_mode;		/* none | publish | stream */
	char *events_channel;
	char *events_stream;
	int events_stream_maxlen;	/* approximate; 0 = no trimming */

	char *metrics_listen;		/* "" = no HTTP listener */
	char *metrics_textfile;		/* "" = none; written after --once */

	char *log_level;
	char *log_format;

	/* Filled by cfg_load / cfg_finalize. */
	char *path;			/* file read, NULL when none */
	char *env_password;		/* PRESENCE_REAPER_REDIS_PASSWORD, if set */
	char *env_sentinel_password;	/* PRESENCE_REAPER_SENTINEL_PASSWORD, if set */
	int url_on_command_line;	/* redis.url came from --redis-url */
	struct rurl url;		/* effective endpoint and credentials */
	char sentinel_pw[RURL_CRED_MAX];	/* the Sentinels' effective password */
	int sentinel_has_password;
	unsigned cluster_slot;		/* redis+cluster://: the hash slot of every key */
	char *where[48];		/* "FILE:LINE" of each table entry, NULL = default */
};

/* The settings table (conftab.h) behind struct cfg. */
const struct conftab *cfg_table(void);

/* Fill c with built-in defaults. Strings are heap copies owned by c. */
void cfg_defaults(struct cfg *c);

/* dst = a deep copy of the finalized src (dst is overwritten, not freed). */
void cfg_copy(struct cfg *dst, const struct cfg *src);

/* Release every string owned by c. */
void cfg_free(struct cfg *c);

/*
 * Read path into c. When optional and the file does not exist, c keeps its
 * defaults and 0 is returned. Returns 0, or -1 with one error per line in
 * err (NUL-terminated, truncated to errlen).
 */
int cfg_load(struct cfg *c, const char *path, int optional, char *err, size_t errlen);

/* "FILE:LINE" where group.name was set into buf, or "" (a default, the environment...). */
void cfg_origin(const struct cfg *c, const char *group, const char *name, char *buf, size_t sz);

/* Replace a string field (e.g. from the environment or a flag). */
void cfg_set_string(char **field, const char *value);

/*
 * Apply PRESENCE_REAPER_REDIS_URL / REDIS_URL,
 * PRESENCE_REAPER_REDIS_PASSWORD and PRESENCE_REAPER_SENTINEL_PASSWORD from
 * the environment. Errors in the URL
 * then name the variable it came from.
 */
void cfg_apply_env(struct cfg *c);

/*
 * Set redis.url from the --redis-url option. Errors in the URL then name
 * the option, and cfg_finalize warns about a password in it: the command
 * line is visible to every user in the process list.
 */
void cfg_set_url_option(struct cfg *c, const char *url);

/*
 * Resolve the endpoint and credentials into c->url (password precedence:
 * environment > URL > password_file > password) and the Sentinels' into
 * c->sentinel_pw (environment > password_file > password), and check cross-setting
 * rules. A user name or password longer than RURL_CRED_MAX - 1 bytes, from
 * any source, is an error that names the source. Warns (log_warnx) about a
 * password in --redis-url and a password file that others can read.
 * Returns 0, or -1 with errors in err.
 */
int cfg_finalize(struct cfg *c, char *err, size_t errlen);

/*
 * Print the effective configuration in libconfig syntax, secrets replaced
 * by "(redacted)", through the given printf-like sink.
 */
void cfg_dump(const struct cfg *c, void (*out)(void *ctx, const char *line), void *ctx);

/*
 * One line per setting for --help: "  group.name = default  (range)".
 */
void cfg_help(void (*out)(void *ctx, const char *line), void *ctx);

/* Changed settings by how they apply, each "group.name, group.name". */
struct cfg_changes {
	char live[1024];
	char reconnect[1024];
	char restart[1024];
};

/*
 * Compare two finalized configurations setting by setting and sort the
 * names that differ into ch. A changed password file (same path, other
 * password) counts as a reconnect. Returns 1 when a change needs a
 * reconnect, else 0.
 */
int cfg_changes(const struct cfg *old, const struct cfg *next, struct cfg_changes *ch);

/* Give next the old values of the settings that apply only after a restart. */
void cfg_keep_restart_settings(struct cfg *next, const struct cfg *old);

#endif
