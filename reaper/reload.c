#include "reload.h"

#include <stdio.h>
#include <string.h>

#include "conf.h"
#include "expiry.h"
#include "failover.h"
#include "log.h"
#include "metrics.h"
#include "notify.h"
#include "wait.h"

/*
 * SIGHUP: move the metrics listener when metrics.listen changed. Returns 0,
 * or -1 with a message in err when the new address cannot be served (the
 * old listener serves on).
 */
static int
move_listener(const char *from, const char *to, char *err, size_t errlen)
{
	if (strcmp(from, to) == 0)
		return 0;
	if (to[0] == '\0') {
		metrics_http_stop();
		log_info("metrics listener on %s stopped", from);
		return 0;
	}
	if (metrics_http_start(to, err, errlen) < 0)
		return -1;
	log_info("metrics listener on %s", to);
	return 0;
}

/* Make next the running configuration; what depends on it is rebuilt. */
static void
adopt_config(struct daemon *d, struct cfg *next)
{
	char token[LEADER_TOKEN_MAX];
	struct gwin window;

	watch_reset(d->watch, (size_t)next->batch_size);
	window = d->rec.win;
	expiry_clear(d);
	reconcile_free(&d->rec);
	cfg_free(&d->cfg);
	d->cfg = *next;
	/* The token keeps its identity: it names this process until it exits. */
	snprintf(token, sizeof(token), "%s", d->leader.token);
	leader_init(&d->leader, d->cfg.leader_key, d->cfg.lease, "", 0);
	snprintf(d->leader.token, sizeof(d->leader.token), "%s", token);
	daemon_pass_init(d);
	d->rec.win = window;	/* the guard remembers recent removals across a reload */
	conf_apply_logging(&d->cli, &d->cfg);
	metrics_set_health_window(daemon_health_window_ms(&d->cfg));
	metrics_set_interval(d->cfg.interval);
	d->next_cycle = mono_ms();
}

/* One line for what was applied, a warning for what waits for a restart. */
static void
log_reload(const struct cfg_changes *ch)
{
	if (!ch->live[0] && !ch->reconnect[0] && !ch->restart[0]) {
		log_info("configuration reloaded: no setting changed");
		return;
	}
	log_info("configuration reloaded: applied live: %s; reconnecting for: %s",
	    ch->live[0] ? ch->live : "none", ch->reconnect[0] ? ch->reconnect : "none");
	if (ch->restart[0])
		log_warnx("configuration reloaded: %s changed but applies only after a "
		    "restart; the running value stays in force", ch->restart);
}

void
daemon_reload(struct daemon *d)
{
	char err[CFG_ERR_MAX];
	struct cfg_changes ch;
	struct cfg next;
	int reconnect;

	wait_reload_taken();
	notify_reloading();
	log_info("SIGHUP: reloading %s", d->cli.config_path);
	if (conf_load(&d->cli, &next, err, sizeof(err)) < 0 ||
	    move_listener(d->cfg.metrics_listen, next.metrics_listen, err, sizeof(err)) < 0) {
		conf_print_errors(err);
		log_error("reload failed, keeping the old configuration");
		cfg_free(&next);
		notify_ready();
		return;
	}
	reconnect = cfg_changes(&d->cfg, &next, &ch);
	/* Cluster: keys in another hash slot are served by another primary. */
	if (next.url.is_cluster && next.cluster_slot != d->cfg.cluster_slot)
		reconnect = 1;
	cfg_keep_restart_settings(&next, &d->cfg);
	if (reconnect) {
		daemon_release_lock(d);
		daemon_disconnect(d);
		failover_reset(d);	/* other Sentinels, or none */
	}
	adopt_config(d, &next);
	if (reconnect)
		failover_init(d);
	log_reload(&ch);
	notify_ready();
}
