#include "conf.h"

#include <stdio.h>
#include <string.h>

#include "conftab.h"
#include "keyslot.h"
#include "log.h"
#include "shardcfg.h"

/*
 * A Cluster URL: database 0 only, no Sentinel settings, and every key in
 * one hash slot (keyslot.h), so no script ever fails with CROSSSLOT.
 */
static int
check_cluster(struct cfg *c, char *err, size_t errlen)
{
	int bad = 0;

	if (c->redis_db > 0) {
		conftab_errf(err, errlen, "redis.db = %d: a Redis Cluster has only database 0",
		    c->redis_db);
		bad = 1;
	}
	if (c->sentinel_username[0] || c->sentinel_password[0] ||
	    c->sentinel_password_file[0] || c->env_sentinel_password) {
		conftab_errf(err, errlen, "sentinel settings (or PRESENCE_REAPER_SENTINEL_PASSWORD) "
		    "with a Cluster URL: Sentinel and Cluster exclude each other (a Cluster "
		    "fails over by itself)");
		bad = 1;
	}
	/* Sharded: each shard's keys are checked by shardcfg_check. */
	if (strcmp(c->shards, "0") == 0 &&
	    keyslot_check(c, &c->cluster_slot, err + strlen(err), errlen - strlen(err)) < 0)
		bad = 1;
	c->url.db = 0;
	return bad ? -1 : 0;
}

int
conf_load(const struct cli *cli, struct cfg *c, char *err, size_t errlen)
{
	cfg_defaults(c);
	if (cfg_load(c, cli->config_path, !cli->config_given, err, errlen) < 0)
		return -1;
	cfg_apply_env(c);
	if (cli->redis_url)
		cfg_set_url_option(c, cli->redis_url);
	if (cfg_finalize(c, err, errlen) < 0 || shardcfg_check(c, err, errlen) < 0)
		return -1;
	return c->url.is_cluster ? check_cluster(c, err, errlen) : 0;
}

void
conf_apply_logging(const struct cli *cli, const struct cfg *c)
{
	enum log_level lvl = LOG_LVL_INFO;
	enum log_format fmt = LOG_FMT_TEXT;

	if (c->log_level)
		log_level_parse(c->log_level, &lvl);
	if (c->log_format)
		log_format_parse(c->log_format, &fmt);
	if (cli->verbose)
		lvl = LOG_LVL_DEBUG;
	if (cli->quiet)
		lvl = LOG_LVL_ERROR;
	if (cli->log_format)
		log_format_parse(cli->log_format, &fmt);
	log_init(lvl, fmt);
}

void
conf_print_errors(const char *errs)
{
	const char *p = errs;

	while (*p) {
		const char *nl = strchr(p, '\n');
		int len = nl ? (int)(nl - p) : (int)strlen(p);

		log_error("%.*s", len, p);
		p += len + (nl ? 1 : 0);
	}
}

void
conf_print_line(void *ctx, const char *line)
{
	fprintf(ctx, "%s\n", line);
}
