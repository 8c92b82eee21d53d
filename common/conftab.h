/*
 * conftab: a libconfig file read through a declarative table of settings.
 * The caller owns the table and the plain struct it describes (each row
 * names a field by its offset); this module knows nothing of what the
 * settings mean. Every error found is reported, one per line, as
 * "FILE:LINE: group.name: message"; then the load fails.
 *
 * Each row also says how a change of the setting takes effect when the
 * file is read again (conftab_reload); the loader does not act on it, the
 * caller compares two loaded structs row by row with conftab_same.
 */
#ifndef PR_CONFTAB_H
#define PR_CONFTAB_H

#include <stddef.h>

#include "log.h"

/*
 * CONFTAB_NAMES: an integer count (min..max) or a list of names, each of
 * [A-Za-z0-9_.-], distinct, at most max of them; kept in a char * field as
 * the count's decimal text, or as the names each followed by ','.
 */
enum conftab_type { CONFTAB_STRING, CONFTAB_INT, CONFTAB_NUMBER, CONFTAB_BOOL, CONFTAB_NAMES };

#define CONFTAB_NAME_MAX	64	/* bytes in one name of a CONFTAB_NAMES list */

/* How a changed value is applied by a running program. */
enum conftab_reload {
	CONFTAB_LIVE,		/* at once, nothing torn down */
	CONFTAB_RECONNECT,	/* by dropping and rebuilding the connection */
	CONFTAB_RESTART,	/* not until the program restarts */
};

#define CONFTAB_SECRET		0x01	/* never printed */
#define CONFTAB_NONEMPTY	0x02	/* "" is not allowed */
#define CONFTAB_POSITIVE	0x04	/* must be > 0 (min is then 0, exclusive) */

struct conftab_row {
	const char *group;
	const char *name;
	enum conftab_type type;
	size_t off;		/* of a char *, int (also bool) or double field */
	const char *def_s;
	double def_n;
	double min, max;
	int flags;
	const char *choices;	/* "a|b|c" for enumerated strings */
	enum conftab_reload reload;
};

struct conftab {
	const struct conftab_row *rows;
	size_t n;
	const char *secret_fix;	/* advice when a secret sits in a file others can read */
};

/* Fill every field of obj the table names with its default (strings are heap copies). */
void conftab_defaults(const struct conftab *t, void *obj);

/* Free the table's strings in obj (secrets zeroed first) and set them NULL. */
void conftab_free(const struct conftab *t, void *obj);

/*
 * Read path into obj. where (t->n entries, owned by the caller, freed with
 * free()) receives "FILE:LINE" for each setting the file sets. Returns 0
 * when read, 1 when optional and the file does not exist (obj untouched),
 * or -1 with every error found, one per line, in err (NUL-terminated,
 * truncated to errlen). Warns (log_warnx) when a CONFTAB_SECRET setting
 * sits in a file that other users can read.
 */
int conftab_load(const struct conftab *t, void *obj, char **where, const char *path,
    int optional, char *err, size_t errlen);

/* Index of group.name in t, or -1. name NULL matches any setting of group. */
int conftab_find(const struct conftab *t, const char *group, const char *name);

/* Does row r hold the same value in a and b? */
int conftab_same(const struct conftab_row *r, const void *a, const void *b);

/* Copy row r's value from src to dst (a string as a heap copy). */
void conftab_copy(const struct conftab_row *r, void *dst, const void *src);

/* Does row r keep its value in a char * field (STRING, NAMES)? */
int conftab_is_string(const struct conftab_row *r);

/* The field row r names in obj. */
char **conftab_strp(const struct conftab_row *r, void *obj);
const char *conftab_str(const struct conftab_row *r, const void *obj);
int conftab_int(const struct conftab_row *r, const void *obj);
double conftab_num(const struct conftab_row *r, const void *obj);

/* Replace a string field with a heap copy of value. */
void conftab_set_string(char **field, const char *value);

/* Append one formatted line to an error buffer of errlen bytes. */
void conftab_errf(char *err, size_t errlen, const char *fmt, ...) LOG_PRINTF(3, 4);

/*
 * Warn when file, which holds a password, can be read by other users: it
 * has the "other" read bit, or the group read bit for a group this process
 * is not in. fix tells the operator what to do.
 */
void conftab_warn_if_readable(const char *file, const char *fix);

/* One line per setting: "  group.name  default  range". */
void conftab_help(const struct conftab *t, void (*out)(void *ctx, const char *line),
    void *ctx);

#endif
