#include "settings.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "conftab.h"

/* The longest value: a string setting, or keys.shards as SHARDS_MAX quoted names. */
#define NAMES_DUMP_MAX	(SHARDS_MAX * (CONFTAB_NAME_MAX + 4) + 8)
#define VALUE_MAX	(NAMES_DUMP_MAX > 8300 ? NAMES_DUMP_MAX : 8300)

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

/* A CONFTAB_NAMES value: the count, or "[ "a", "b" ]" for a list ("a,b,"). */
static void
format_names(const char *v, char *val, size_t valsz)
{
	size_t o;

	if (v[0] == '\0' || v[strlen(v) - 1] != ',') {
		snprintf(val, valsz, "%s", v);
		return;
	}
	o = (size_t)snprintf(val, valsz, "[ ");
	for (const char *p = v; *p && o < valsz; p = strchr(p, ',') + 1)
		o += (size_t)snprintf(val + o, valsz - o, "%s\"%.*s\"", p == v ? "" : ", ",
		    (int)strcspn(p, ","), p);
	if (o < valsz)
		snprintf(val + o, valsz - o, " ]");
}

/* One setting's effective value in libconfig syntax; secrets redacted. */
static void
format_value(const struct cfg *c, const struct conftab_row *r, char *val, size_t valsz)
{
	char url[RURL_PATH_MAX + RURL_HOST_MAX + 2 * RURL_CRED_MAX + 64];
	const char *v;

	switch (r->type) {
	case CONFTAB_STRING:
		v = conftab_str(r, c);
		if (r->off == offsetof(struct cfg, redis_url)) {
			rurl_format_redacted(&c->url, url, sizeof(url));
			v = url;
		} else if ((r->flags & CONFTAB_SECRET) && v[0] != '\0') {
			v = "(redacted)";
		}
		quote(v, val, valsz);
		break;
	case CONFTAB_BOOL:
		snprintf(val, valsz, "%s", conftab_int(r, c) ? "true" : "false");
		break;
	case CONFTAB_INT:
		snprintf(val, valsz, "%d", r->off == offsetof(struct cfg, redis_db) ?
		    c->url.db : conftab_int(r, c));
		break;
	case CONFTAB_NUMBER:
		snprintf(val, valsz, "%g", conftab_num(r, c));
		break;
	case CONFTAB_NAMES:
		format_names(conftab_str(r, c), val, valsz);
		break;
	}
}

void
cfg_dump(const struct cfg *c, void (*out)(void *ctx, const char *line), void *ctx)
{
	char line[VALUE_MAX + 700], val[VALUE_MAX];
	const char *group = NULL;

	snprintf(line, sizeof(line), "# effective configuration (file: %s)",
	    c->path ? c->path : "none, built-in defaults");
	out(ctx, line);
	for (size_t i = 0; i < cfg_table()->n; i++) {
		const struct conftab_row *r = &cfg_table()->rows[i];

		if (group == NULL || strcmp(group, r->group) != 0) {
			if (group)
				out(ctx, "};");
			group = r->group;
			snprintf(line, sizeof(line), "%s = {", group);
			out(ctx, line);
		}
		format_value(c, r, val, sizeof(val));
		snprintf(line, sizeof(line), "  %s = %s;", r->name, val);
		out(ctx, line);
	}
	out(ctx, "};");
	snprintf(line, sizeof(line), "# password: %s",
	    c->url.has_password ? "set (redacted)" : "none");
	out(ctx, line);
	if (c->url.is_sentinel) {
		snprintf(line, sizeof(line), "# sentinel password: %s",
		    c->sentinel_has_password ? "set (redacted)" : "none");
		out(ctx, line);
	}
}

void
cfg_help(void (*out)(void *ctx, const char *line), void *ctx)
{
	conftab_help(cfg_table(), out, ctx);
}

