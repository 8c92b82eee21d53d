/*
 * cli: the command line, parsed into a plain struct. Nothing here exits or
 * prints; main.c decides.
 */
#ifndef PR_CLI_H
#define PR_CLI_H

#include <stddef.h>
#include <stdio.h>

#define CLI_DEFAULT_CONFIG "/etc/presence-reaper.conf"

struct cli {
	const char *config_path;
	int config_given;	/* -c was used: a missing file is an error */
	int check_config;
	int once;
	int dry_run;
	int status;		/* -s: read-only report, Nagios exit status */
	const char *format;	/* --status output: NULL (text) or "text" / "json" */
	const char *redis_url;	/* NULL when not given */
	int verbose;
	int quiet;
	const char *log_format;	/* NULL when not given */
	int version;
	int help;
};

/* Returns 0, or -1 with a message in err (a usage error: exit 64). */
int cli_parse(int argc, char **argv, struct cli *out, char *err, size_t errlen);

void cli_usage(FILE *f);

#endif
