/*
 * presence-reaper: removes users whose socket sets expired from the Redis
 * online-users set. main.c reads the command line and the configuration,
 * sets up logging, signals and metrics, hands over to the daemon
 * (daemon.c) or to a one-shot run (oneshot.c), and decides every exit
 * status; the modules below it only report.
 */
#include <stdio.h>
#include <string.h>
#include <sysexits.h>

#include "build-config.h"
#include "cli.h"
#include "conf.h"
#include "daemon.h"
#include "fleet.h"
#include "log.h"
#include "metrics.h"
#include "oneshot.h"
#include "shardonce.h"
#include "status.h"
#include "rconn.h"
#include "settings.h"
#include "timeutil.h"
#include "wait.h"

/* --help and --version. EX_OK when one was asked for and printed, else -1. */
static int
print_info(const struct cli *cli)
{
	if (cli->help) {
		cli_usage(stdout);
		printf("\nSettings (presence-reaper.conf(5); durations in seconds):\n");
		cfg_help(conf_print_line, stdout);
		return EX_OK;
	}
	if (cli->version) {
		printf("presence-reaper %s\n", PACKAGE_VERSION);
		return EX_OK;
	}
	return -1;
}

/* The daemon or --once, with signals and metrics around it. Returns the exit status. */
static int
run(struct daemon *d)
{
	char err[CFG_ERR_MAX];
	int rc;

	if (wait_setup() < 0) {
		log_warn("pipe");
		return EX_OSERR;
	}
	rconn_set_interrupt_hook(wait_note_shutdown);
	metrics_init(d->cli.dry_run, daemon_health_window_ms(&d->cfg));
	metrics_set_interval(d->cfg.interval);
	if (!d->cli.once)
		wait_watchdog_start();
	if (d->cfg.metrics_listen[0] &&
	    metrics_http_start(d->cfg.metrics_listen, err, sizeof(err)) < 0) {
		log_error("%s", err);
		rc = EX_CONFIG;
		goto stop;
	}
	if (tlsctx_load(&d->tls, &d->cfg, err, sizeof(err)) < 0) {
		log_error("%s", err);
		rc = EX_CONFIG;
		goto stop;
	}
	if (daemon_init(d) < 0) {
		log_warn("starting");
		rc = EX_OSERR;
		goto stop;
	}
	if (d->cli.once) {
		rc = strcmp(d->cfg.shards, "0") != 0 ? shardonce_run(d) : oneshot_run(d);
	} else if (strcmp(d->cfg.shards, "0") != 0) {
		rc = fleet_run(d) < 0 ? EX_OSERR : EX_OK;	/* keys.shards: a thread each */
	} else {
		daemon_run(d);	/* only a signal ends it */
		rc = EX_OK;
	}
stop:
	metrics_http_stop();
	if (d->cli.once)
		oneshot_write_textfile(d, rc);
	return rc;
}

int
main(int argc, char **argv)
{
	static struct daemon d;
	char err[CFG_ERR_MAX];
	int rc;

	if (cli_parse(argc, argv, &d.cli, err, sizeof(err)) < 0) {
		fprintf(stderr, "presence-reaper: %s\n", err);
		cli_usage(stderr);
		return EX_USAGE;
	}
	if ((rc = print_info(&d.cli)) >= 0)
		return rc;
	conf_apply_logging(&d.cli, &d.cfg);	/* until the file says otherwise */
	if (conf_load(&d.cli, &d.cfg, err, sizeof(err)) < 0) {
		conf_print_errors(err);
		log_error("configuration invalid; exiting");
		return EX_CONFIG;
	}
	conf_apply_logging(&d.cli, &d.cfg);
	rnd_seed();
	if (d.cli.status)
		d.cli.dry_run = 1;	/* read-only: no lock, no script */
	rc = d.cli.check_config ? oneshot_check_config(&d) : d.cli.status ? status_run(&d) :
	    run(&d);
	daemon_free(&d);
	cfg_free(&d.cfg);
	return rc;
}
