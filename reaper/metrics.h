/*
 * metrics: counters and gauges of the reaper, rendered in the Prometheus
 * text format 0.0.4, served over HTTP by libmicrohttpd (/metrics,
 * /healthz, /readyz) and, for --once, written as a node_exporter textfile.
 *
 * The main loop updates the state; the HTTP thread only reads a snapshot.
 * Every function is thread-safe (one mutex; never held across I/O).
 */
#ifndef PR_METRICS_H
#define PR_METRICS_H

#include <stddef.h>
#include <stdint.h>

enum metrics_cycle_result {
	MC_OK, MC_GUARD, MC_ERROR, MC_NOT_LEADER, MC_INTERRUPTED, MC_NRESULTS
};

/* How a --once run ended, as the textfile says (presence_reaper_once_result). */
enum metrics_once_result {
	MO_OK, MO_NOT_LEADER, MO_INTERRUPTED, MO_GUARD, MO_UNREACHABLE, MO_ERROR, MO_NRESULTS
};

void metrics_init(int dry_run, int64_t health_window_ms);
void metrics_set_health_window(int64_t ms);

/* The main loop is alive: called at every wake-up and between batches. */
void metrics_tick(void);
void metrics_leader(int is_leader);
void metrics_redis_up(int up);
/* reaper.interval, at start and on SIGHUP (presence_reaper_interval_seconds). */
void metrics_set_interval(double seconds);
void metrics_redis_error(void);
void metrics_cycle(enum metrics_cycle_result res, unsigned long long scanned,
    unsigned long long removed, unsigned long long ghosts, long long online,
    double seconds);

/*
 * The Redis node in use (or last used): presence_reaper_redis_endpoint_info
 * {address, tls, role}. address and role are printable (escaped) text.
 */
void metrics_endpoint(const char *address, int tls, const char *role);

/* The primary moved and the reaper followed it (redis_failovers_total). */
void metrics_failover(void);

/*
 * A label value for the text format into out: backslash, double quote
 * and line feed escaped. Returns out.
 */
const char *metrics_label(const char *value, char *out, size_t outsz);

/* The result of the last cycle into *res; -1 when no cycle has ended yet. */
int metrics_last_cycle(enum metrics_cycle_result *res);

/* --once is over: from now on the metrics say how it ended and its exit status. */
void metrics_once_end(enum metrics_once_result res, int exit_code);

/* Users removed on key-expiry events (also counted in users_removed_total). */
void metrics_event_removals(unsigned long long removed);

/* The guard refused a batch of key-expiry events (guard_tripped_total). */
void metrics_event_guard(void);

/*
 * The expiry calendar (reaper.track_expiry): entries added (or, negative,
 * gone), due checks made, users removed at expiry (also counted in
 * users_removed_total), sets close to expiry left untracked at the cap.
 */
void metrics_calendar(long long entries_delta, unsigned long long checks,
    unsigned long long removed, unsigned long long untracked);

/* A calendar became full (+1) or has room again (-1). */
void metrics_calendar_full(int delta);

/* Room enough for the whole exposition text. */
#define METRICS_RENDER_MAX (16384 + 256 * 10 * 176)	/* SHARDS_MAX * METRICS_SHARD_RENDER */

/* Render the exposition text into buf; returns its length (truncated to fit). */
size_t metrics_render(char *buf, size_t bufsz);

/* 1 when the loop ticked within the health window. */
int metrics_healthy(void);
int metrics_ready(void);

/*
 * Listen on "host:port", "[v6]:port" or ":port" (all interfaces, IPv4 and
 * IPv6; IPv4 only, logged, on a host without IPv6) and serve in a thread of
 * libmicrohttpd's. Called again, it moves the listener: the old one stops
 * once the new one serves. Returns 0, or -1 with a message in err; on -1
 * the listener already running, if any, keeps serving (unless err says it
 * is gone: moving within one port closes the old first, then restores it).
 */
int metrics_http_start(const char *listen, char *err, size_t errlen);
void metrics_http_stop(void);

/*
 * Split metrics.listen, "host:port", "[v6]:port" or ":port", into host
 * (empty for every interface) and port. 0, or -1 when it has no port.
 */
int metrics_split_listen(const char *listen, char *host, size_t hostsz, char *port,
    size_t portsz);

/*
 * Write the metrics to path atomically: a new temporary file in the same
 * folder (never a planted symlink), mode 0644, fsync, rename.
 * Returns 0, or -1 with a message in err.
 */
int metrics_write_textfile(const char *path, char *err, size_t errlen);

#endif
