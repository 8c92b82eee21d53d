#include "cli.h"

#include <getopt.h>
#include <string.h>

enum { OPT_ONCE = 256, OPT_REDIS_URL, OPT_LOG_FORMAT, OPT_FORMAT };

static const struct option longopts[] = {
	{ "config",       required_argument, NULL, 'c' },
	{ "check-config", no_argument,       NULL, 't' },
	{ "once",         no_argument,       NULL, OPT_ONCE },
	{ "dry-run",      no_argument,       NULL, 'n' },
	{ "status",       no_argument,       NULL, 's' },
	{ "format",       required_argument, NULL, OPT_FORMAT },
	{ "redis-url",    required_argument, NULL, OPT_REDIS_URL },
	{ "verbose",      no_argument,       NULL, 'v' },
	{ "quiet",        no_argument,       NULL, 'q' },
	{ "log-format",   required_argument, NULL, OPT_LOG_FORMAT },
	{ "version",      no_argument,       NULL, 'V' },
	{ "help",         no_argument,       NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

void
cli_usage(FILE *f)
{
	fputs(
"usage: presence-reaper [-tnvqVh] [-c file] [--once] [--redis-url url]\n"
"                       [--log-format text|json]\n"
"       presence-reaper -s [-c file] [--redis-url url] [--format text|json]\n"
"\n"
"Removes users whose socket sets expired from the Redis online-users set.\n"
"\n"
"  -c, --config FILE        configuration file (default " CLI_DEFAULT_CONFIG ";\n"
"                           a missing default file means built-in defaults)\n"
"  -t, --check-config       validate, print the effective configuration\n"
"                           (secrets redacted) and the guard probe, exit\n"
"      --once               run one cycle, release the lock and exit\n"
"  -n, --dry-run            write nothing to Redis; print stale IDs on stdout\n"
"  -s, --status             read-only: who holds the lock, the last pass, the\n"
"                           online set and the guard's sample, per shard;\n"
"                           exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN\n"
"      --format FORMAT      --status output: text (default) or json\n"
"      --redis-url URL      redis://[[user]:password@]host[:port][/db],\n"
"                           rediss://... (TLS: see the tls.* settings),\n"
"                           unix://[[user]:password@]/path.sock[?db=N] or\n"
"                           redis+sentinel://[[user]:password@]host[:port]\n"
"                           [,host[:port]...]/service[/db] (Sentinel port 26379;\n"
"                           rediss+sentinel:// for TLS), or\n"
"                           redis+cluster://[[user]:password@]host[:port]\n"
"                           [,host[:port]...] (Cluster seeds; every key in one\n"
"                           hash slot; rediss+cluster:// for TLS)\n"
"  -v, --verbose            log at debug level\n"
"  -q, --quiet              log errors only\n"
"      --log-format FORMAT  text (default) or json\n"
"  -V, --version            print the version and exit\n"
"  -h, --help               print this help and exit\n"
"\n"
"Environment: PRESENCE_REAPER_REDIS_URL (else REDIS_URL),\n"
"PRESENCE_REAPER_REDIS_PASSWORD, PRESENCE_REAPER_SENTINEL_PASSWORD, POD_NAME.\n"
"Exit status: 0 ok, 64 usage, 65 bad data in Redis, 69 Redis unreachable,\n"
"70 internal error, 75 stale-ratio guard refused, 78 configuration error.\n"
"See presence-reaper(8) and presence-reaper.conf(5).\n", f);
}

static int combination(const struct cli *o, char *err, size_t errlen);

/* optarg must be "text" or "json". */
static int
text_or_json(const char *opt, char *err, size_t errlen)
{
	if (strcmp(optarg, "text") == 0 || strcmp(optarg, "json") == 0)
		return 0;
	snprintf(err, errlen, "%s must be text or json, not \"%s\"", opt, optarg);
	return -1;
}

int
cli_parse(int argc, char **argv, struct cli *o, char *err, size_t errlen)
{
	int ch;

	memset(o, 0, sizeof(*o));
	o->config_path = CLI_DEFAULT_CONFIG;
	optind = 0;	/* glibc: full re-initialisation, so tests can parse again */
	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":c:tnsvqVh", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			o->config_path = optarg;
			o->config_given = 1;
			break;
		case 't': o->check_config = 1; break;
		case 'n': o->dry_run = 1; break;
		case 's': o->status = 1; break;
		case 'v': o->verbose = 1; o->quiet = 0; break;
		case 'q': o->quiet = 1; o->verbose = 0; break;
		case 'V': o->version = 1; break;
		case 'h': o->help = 1; break;
		case OPT_ONCE: o->once = 1; break;
		case OPT_REDIS_URL: o->redis_url = optarg; break;
		case OPT_FORMAT:
		case OPT_LOG_FORMAT:
			if (text_or_json(ch == OPT_FORMAT ? "--format" : "--log-format", err,
			    errlen) < 0)
				return -1;
			*(ch == OPT_FORMAT ? &o->format : &o->log_format) = optarg;
			break;
		case ':':
			snprintf(err, errlen, "option %s needs an argument", argv[optind - 1]);
			return -1;
		case '?':
			if (optopt >= 256) {	/* a long flag given an argument: --once=yes */
				snprintf(err, errlen, "option %s takes no argument",
				    argv[optind - 1]);
				return -1;
			}
			/* FALLTHROUGH */
		default:
			if (optopt > 0 && optopt < 256)
				snprintf(err, errlen, "unknown option -%c", optopt);
			else
				snprintf(err, errlen, "unknown option %s", argv[optind - 1]);
			return -1;
		}
	}
	if (optind < argc) {
		snprintf(err, errlen, "unexpected argument \"%s\"", argv[optind]);
		return -1;
	}
	return combination(o, err, errlen);
}

/* Options that only go with another, or not with another. */
static int
combination(const struct cli *o, char *err, size_t errlen)
{
	if (o->format && !o->status) {
		snprintf(err, errlen, "--format goes with --status");
		return -1;
	}
	if (o->status && (o->once || o->dry_run || o->check_config)) {
		snprintf(err, errlen, "--status goes alone: not with --once, --dry-run or -t");
		return -1;
	}
	return 0;
}
