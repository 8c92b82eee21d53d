#include "conftab.h"

#include <errno.h>
#include <libconfig.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void
conftab_errf(char *err, size_t errlen, const char *fmt, ...)
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

char **
conftab_strp(const struct conftab_row *r, void *obj)
{
	return (char **)((char *)obj + r->off);
}

const char *
conftab_str(const struct conftab_row *r, const void *obj)
{
	return *(char *const *)((const char *)obj + r->off);
}

int
conftab_int(const struct conftab_row *r, const void *obj)
{
	return *(const int *)((const char *)obj + r->off);
}

double
conftab_num(const struct conftab_row *r, const void *obj)
{
	return *(const double *)((const char *)obj + r->off);
}

static int *
int_field(const struct conftab_row *r, void *obj)
{
	return (int *)((char *)obj + r->off);
}

static double *
num_field(const struct conftab_row *r, void *obj)
{
	return (double *)((char *)obj + r->off);
}

int
conftab_find(const struct conftab *t, const char *group, const char *name)
{
	for (size_t i = 0; i < t->n; i++)
		if (strcmp(t->rows[i].group, group) == 0 &&
		    (name == NULL || strcmp(t->rows[i].name, name) == 0))
			return (int)i;
	return -1;
}

int
conftab_is_string(const struct conftab_row *r)
{
	return r->type == CONFTAB_STRING || r->type == CONFTAB_NAMES;
}

int
conftab_same(const struct conftab_row *r, const void *a, const void *b)
{
	switch (r->type) {
	case CONFTAB_STRING:
	case CONFTAB_NAMES:
		return strcmp(conftab_str(r, a), conftab_str(r, b)) == 0;
	case CONFTAB_INT:
	case CONFTAB_BOOL:
		return conftab_int(r, a) == conftab_int(r, b);
	case CONFTAB_NUMBER:
		return conftab_num(r, a) == conftab_num(r, b);
	}
	return 0;
}

void
conftab_copy(const struct conftab_row *r, void *dst, const void *src)
{
	if (conftab_is_string(r))
		conftab_set_string(conftab_strp(r, dst), conftab_str(r, src));
	else if (r->type == CONFTAB_NUMBER)
		*num_field(r, dst) = conftab_num(r, src);
	else
		*int_field(r, dst) = conftab_int(r, src);
}

void
conftab_set_string(char **field, const char *value)
{
	char *dup = strdup(value);

	if (dup == NULL)
		abort();	/* a few bytes at startup; nothing sane to do */
	free(*field);
	*field = dup;
}

void
conftab_defaults(const struct conftab *t, void *obj)
{
	for (size_t i = 0; i < t->n; i++) {
		const struct conftab_row *r = &t->rows[i];

		if (conftab_is_string(r))
			conftab_set_string(conftab_strp(r, obj), r->def_s);
		else if (r->type == CONFTAB_INT || r->type == CONFTAB_BOOL)
			*int_field(r, obj) = (int)r->def_n;
		else
			*num_field(r, obj) = r->def_n;
	}
}

void
conftab_free(const struct conftab *t, void *obj)
{
	for (size_t i = 0; i < t->n; i++) {
		const struct conftab_row *r = &t->rows[i];
		char **f;

		if (!conftab_is_string(r))
			continue;
		f = conftab_strp(r, obj);
		if (*f != NULL && (r->flags & CONFTAB_SECRET))
			explicit_bzero(*f, strlen(*f));
		free(*f);
		*f = NULL;
	}
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

static int
read_string(const struct conftab_row *r, void *obj, config_setting_t *cs,
    const char *where, char *err, size_t errlen)
{
	const char *str;

	if (config_setting_type(cs) != CONFIG_TYPE_STRING) {
		conftab_errf(err, errlen, "%s: %s.%s: wrong type (expected a string)",
		    where, r->group, r->name);
		return -1;
	}
	str = config_setting_get_string(cs);
	if ((r->flags & CONFTAB_NONEMPTY) && str[0] == '\0') {
		conftab_errf(err, errlen, "%s: %s.%s: must not be empty", where,
		    r->group, r->name);
		return -1;
	}
	if (r->choices && !choice_ok(r->choices, str)) {
		conftab_errf(err, errlen, "%s: %s.%s: invalid value \"%s\" (one of %s)",
		    where, r->group, r->name, str, r->choices);
		return -1;
	}
	conftab_set_string(conftab_strp(r, obj), str);
	return 0;
}

static int
name_ok(const char *s)
{
	size_t n = strlen(s);

	return n > 0 && n <= CONFTAB_NAME_MAX &&
	    strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-") == n;
}

/* A CONFTAB_NAMES list: each name checked, kept as "a,b,c,". */
static int
read_name_list(const struct conftab_row *r, void *obj, config_setting_t *cs,
    const char *where, char *err, size_t errlen)
{
	int n = config_setting_length(cs);
	size_t len = 0;
	char *joined;

	if (n < 1 || n > r->max) {
		conftab_errf(err, errlen, "%s: %s.%s: a list of 1 to %.0f names", where,
		    r->group, r->name, r->max);
		return -1;
	}
	/* each name and its comma, then the NUL */
	if ((joined = calloc((size_t)n + 1, CONFTAB_NAME_MAX + 1)) == NULL)
		abort();
	for (int i = 0; i < n; i++) {
		const char *v = config_setting_get_string_elem(cs, i);
		int twice = 0;

		for (int j = 0; v && j < i; j++)
			twice |= strcmp(v, config_setting_get_string_elem(cs, j)) == 0;
		if (v == NULL || !name_ok(v) || twice) {
			conftab_errf(err, errlen, "%s: %s.%s: element %d: %s", where, r->group,
			    r->name, i + 1, v == NULL ? "not a string" : !name_ok(v) ?
			    "a name is 1 to 64 of A-Z a-z 0-9 _ . -" : "named twice");
			free(joined);
			return -1;
		}
		len += (size_t)sprintf(joined + len, "%s,", v);
	}
	conftab_set_string(conftab_strp(r, obj), joined);
	free(joined);
	return 0;
}

/* CONFTAB_NAMES: a count, or a list of names. */
static int
read_names(const struct conftab_row *r, void *obj, config_setting_t *cs,
    const char *where, char *err, size_t errlen)
{
	int t = config_setting_type(cs);
	char num[32];
	long long v;

	if (t == CONFIG_TYPE_LIST || t == CONFIG_TYPE_ARRAY)
		return read_name_list(r, obj, cs, where, err, errlen);
	if (t != CONFIG_TYPE_INT && t != CONFIG_TYPE_INT64) {
		conftab_errf(err, errlen, "%s: %s.%s: wrong type (expected a count or a list "
		    "of names)", where, r->group, r->name);
		return -1;
	}
	v = config_setting_get_int64(cs);
	if (v < r->min || v > r->max) {
		conftab_errf(err, errlen, "%s: %s.%s: %lld is out of range (%.0f..%.0f)", where,
		    r->group, r->name, v, r->min, r->max);
		return -1;
	}
	snprintf(num, sizeof(num), "%lld", v);
	conftab_set_string(conftab_strp(r, obj), num);
	return 0;
}

/* Validate one libconfig setting against its row and store it in obj. */
static int
read_value(const struct conftab_row *r, void *obj, config_setting_t *cs,
    const char *where, char *err, size_t errlen)
{
	int t = config_setting_type(cs);
	double v;

	if (r->type == CONFTAB_STRING)
		return read_string(r, obj, cs, where, err, errlen);
	if (r->type == CONFTAB_NAMES)
		return read_names(r, obj, cs, where, err, errlen);
	if (r->type == CONFTAB_BOOL) {
		if (t != CONFIG_TYPE_BOOL) {
			conftab_errf(err, errlen, "%s: %s.%s: wrong type (expected true or "
			    "false)", where, r->group, r->name);
			return -1;
		}
		*int_field(r, obj) = config_setting_get_bool(cs) ? 1 : 0;
		return 0;
	}
	if (t == CONFIG_TYPE_INT || t == CONFIG_TYPE_INT64)
		v = (double)config_setting_get_int64(cs);
	else if (t == CONFIG_TYPE_FLOAT && r->type == CONFTAB_NUMBER)
		v = config_setting_get_float(cs);
	else {
		conftab_errf(err, errlen, "%s: %s.%s: wrong type (expected %s)", where,
		    r->group, r->name, r->type == CONFTAB_INT ? "an integer" : "a number");
		return -1;
	}
	if ((r->flags & CONFTAB_POSITIVE) && v <= 0) {
		conftab_errf(err, errlen, "%s: %s.%s: %g must be greater than 0", where,
		    r->group, r->name, v);
		return -1;
	}
	if (v < r->min || v > r->max) {
		conftab_errf(err, errlen, "%s: %s.%s: %g is out of range (%g..%g)", where,
		    r->group, r->name, v, r->min, r->max);
		return -1;
	}
	if (r->type == CONFTAB_INT)
		*int_field(r, obj) = (int)v;
	else
		*num_field(r, obj) = v;
	return 0;
}

static void
setting_where(config_setting_t *cs, const char *path, char *buf, size_t sz)
{
	const char *file = config_setting_source_file(cs);

	snprintf(buf, sz, "%s:%u", file ? file : path, config_setting_source_line(cs));
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
 * A group of its own (such as a Kubernetes fsGroup) is how the process is
 * meant to read a secret file, so the group bit counts only for others.
 */
void
conftab_warn_if_readable(const char *file, const char *fix)
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
load_group(const struct conftab *t, void *obj, char **where, config_setting_t *grp,
    const char *path, char *err, size_t errlen)
{
	const char *gname = config_setting_name(grp);
	int bad = 0;

	for (int i = 0; i < config_setting_length(grp); i++) {
		config_setting_t *cs = config_setting_get_elem(grp, (unsigned)i);
		const char *name = config_setting_name(cs);
		int k = conftab_find(t, gname, name ? name : "");
		char at[4200];

		setting_where(cs, path, at, sizeof(at));
		if (k < 0) {
			conftab_errf(err, errlen, "%s: %s.%s: unknown setting", at, gname,
			    name ? name : "?");
			bad = 1;
			continue;
		}
		if (read_value(&t->rows[k], obj, cs, at, err, errlen) < 0) {
			bad = 1;
			continue;
		}
		conftab_set_string(&where[k], at);
		if ((t->rows[k].flags & CONFTAB_SECRET) &&
		    conftab_str(&t->rows[k], obj)[0] != '\0') {
			const char *file = config_setting_source_file(cs);

			conftab_warn_if_readable(file ? file : path, t->secret_fix);
		}
	}
	return bad ? -1 : 0;
}

/* The folder of path, for relative @include paths; a heap string. */
static char *
dir_of(const char *path)
{
	char *dir = strdup(path), *slash;

	if (dir == NULL)
		abort();
	slash = strrchr(dir, '/');
	if (slash == NULL)
		strcpy(dir, ".");
	else if (slash == dir)
		dir[1] = '\0';
	else
		*slash = '\0';
	return dir;
}

static int
load_root(const struct conftab *t, void *obj, char **where, config_t *cf,
    const char *path, char *err, size_t errlen)
{
	config_setting_t *root = config_root_setting(cf);
	int bad = 0;

	for (int i = 0; i < config_setting_length(root); i++) {
		config_setting_t *grp = config_setting_get_elem(root, (unsigned)i);
		const char *gname = config_setting_name(grp);
		char at[4200];

		setting_where(grp, path, at, sizeof(at));
		if (conftab_find(t, gname ? gname : "", NULL) < 0) {
			conftab_errf(err, errlen, "%s: %s: unknown setting", at,
			    gname ? gname : "?");
			bad = 1;
		} else if (config_setting_type(grp) != CONFIG_TYPE_GROUP) {
			conftab_errf(err, errlen, "%s: %s: wrong type (expected a group)",
			    at, gname);
			bad = 1;
		} else if (load_group(t, obj, where, grp, path, err, errlen) < 0) {
			bad = 1;
		}
	}
	return bad ? -1 : 0;
}

int
conftab_load(const struct conftab *t, void *obj, char **where, const char *path,
    int optional, char *err, size_t errlen)
{
	config_t cf;
	char *dir;
	int rc = -1;
	FILE *f;

	err[0] = '\0';
	if ((f = fopen(path, "r")) == NULL) {
		if (optional && errno == ENOENT)
			return 1;
		conftab_errf(err, errlen, "cannot open %s: %s", path, strerror(errno));
		return -1;
	}
	fclose(f);

	dir = dir_of(path);
	config_init(&cf);
	config_set_include_dir(&cf, dir);
	if (!config_read_file(&cf, path)) {
		const char *efile = config_error_file(&cf);

		conftab_errf(err, errlen, "%s:%d: syntax error: %s", efile ? efile : path,
		    config_error_line(&cf), config_error_text(&cf));
		goto done;
	}
	rc = load_root(t, obj, where, &cf, path, err, errlen);
done:
	config_destroy(&cf);
	free(dir);
	return rc;
}

void
conftab_help(const struct conftab *t, void (*out)(void *ctx, const char *line), void *ctx)
{
	char line[512], name[64], range[128];

	for (size_t i = 0; i < t->n; i++) {
		const struct conftab_row *r = &t->rows[i];

		snprintf(name, sizeof(name), "%s.%s", r->group, r->name);
		if (r->type == CONFTAB_STRING)
			snprintf(range, sizeof(range), "%s", r->choices ? r->choices : "");
		else if (r->type == CONFTAB_BOOL)
			snprintf(range, sizeof(range), "true|false");
		else if (r->type == CONFTAB_NAMES)
			snprintf(range, sizeof(range), "%.0f..%.0f, or a list of names", r->min,
			    r->max);
		else if (r->flags & CONFTAB_POSITIVE)
			snprintf(range, sizeof(range), "> 0");
		else if (r->type == CONFTAB_INT)
			snprintf(range, sizeof(range), "%.0f..%.0f", r->min, r->max);
		else
			snprintf(range, sizeof(range), "%g..%g", r->min, r->max);
		if (r->type == CONFTAB_STRING)
			snprintf(line, sizeof(line), "  %-28s \"%s\"%s%s", name, r->def_s,
			    range[0] ? "  " : "", range);
		else if (r->type == CONFTAB_BOOL)
			snprintf(line, sizeof(line), "  %-28s %s  %s", name,
			    r->def_n ? "true" : "false", range);
		else if (r->type == CONFTAB_NAMES)
			snprintf(line, sizeof(line), "  %-28s %s  %s", name, r->def_s, range);
		else
			snprintf(line, sizeof(line), "  %-28s %.*f  %s", name,
			    r->type == CONFTAB_INT ? 0 : (r->def_n == (int)r->def_n ? 0 : 1),
			    r->def_n, range);
		out(ctx, line);
	}
}
