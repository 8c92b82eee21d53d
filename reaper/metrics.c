#include "metrics.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "build-config.h"
#include "log.h"
#include "metrics_shard.h"
#include "promtext.h"
#include "timeutil.h"

static const char *const result_names[MC_NRESULTS] = {
	"ok", "guard", "error", "not_leader", "interrupted",
};

static const char *const once_names[MO_NRESULTS] = {
	"ok", "not_leader", "interrupted", "guard", "unreachable", "error",
};

struct snapshot {
	int dry_run;
	int is_leader;
	int redis_up;
	unsigned long long leader_changes;
	unsigned long long cycles[MC_NRESULTS];
	unsigned long long scanned, removed, ghosts, redis_errors, event_removed;
	unsigned long long event_guard;	/* key-expiry batches the guard refused */
	long long cal_entries;		/* the expiry calendar (reaper.track_expiry) */
	unsigned long long cal_checks, cal_removed, cal_untracked;
	int cal_full;
	long long online;
	double cycle_seconds;
	double last_success;
	int64_t last_tick_ms;
	int64_t health_window_ms;
	double start_time;
	int cycled;		/* a cycle ended; last_cycle says how */
	enum metrics_cycle_result last_cycle;
	int once_ended;		/* --once is over: render how */
	enum metrics_once_result once_result;
	int once_exit_code;
	char endpoint[300];	/* "" until known */
	char endpoint_role[16];
	int endpoint_tls;
	unsigned long long failovers;
	double interval;	/* reaper.interval, s */
};

static struct {
	pthread_mutex_t mu;
	struct snapshot s;
} m = { .mu = PTHREAD_MUTEX_INITIALIZER, .s = { .online = -1 } };


static double
wall_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void
metrics_init(int dry_run, int64_t health_window_ms)
{
	pthread_mutex_lock(&m.mu);
	m.s.dry_run = dry_run;
	m.s.health_window_ms = health_window_ms;
	m.s.last_tick_ms = mono_ms();
	m.s.start_time = wall_seconds();
	pthread_mutex_unlock(&m.mu);
}

void
metrics_set_health_window(int64_t ms)
{
	pthread_mutex_lock(&m.mu);
	m.s.health_window_ms = ms;
	pthread_mutex_unlock(&m.mu);
}

void
metrics_tick(void)
{
	int64_t now = mono_ms();

	pthread_mutex_lock(&m.mu);
	m.s.last_tick_ms = now;
	pthread_mutex_unlock(&m.mu);
}

void
metrics_leader(int is_leader)
{
	int shard = metrics_thread_shard();

	/* Sharded: the replica leads while it holds any shard; the seats say it. */
	if (shard >= 0)
		is_leader = metrics_shard_leader(shard, is_leader) > 0;
	else if (metrics_shards_count() > 0)
		return;
	pthread_mutex_lock(&m.mu);
	if (is_leader != m.s.is_leader)
		m.s.leader_changes++;
	m.s.is_leader = is_leader;
	pthread_mutex_unlock(&m.mu);
}

void
metrics_redis_up(int up)
{
	if (metrics_thread_shard() >= 0)
		return;		/* the main thread's connection says it */
	pthread_mutex_lock(&m.mu);
	m.s.redis_up = up;
	pthread_mutex_unlock(&m.mu);
}

void
metrics_set_interval(double seconds)
{
	pthread_mutex_lock(&m.mu);
	m.s.interval = seconds;
	pthread_mutex_unlock(&m.mu);
}

void
metrics_redis_error(void)
{
	pthread_mutex_lock(&m.mu);
	m.s.redis_errors++;
	pthread_mutex_unlock(&m.mu);
}

void
metrics_cycle(enum metrics_cycle_result res, unsigned long long scanned,
    unsigned long long removed, unsigned long long ghosts, long long online,
    double seconds)
{
	if (metrics_thread_shard() >= 0)
		metrics_shard_cycle(metrics_thread_shard(), res, removed, online, seconds);
	pthread_mutex_lock(&m.mu);
	m.s.cycles[res]++;
	m.s.cycled = 1;
	m.s.last_cycle = res;
	m.s.scanned += scanned;
	m.s.removed += removed;
	m.s.ghosts += ghosts;
	if (online >= 0)
		m.s.online = online;
	m.s.cycle_seconds = seconds;
	if (res == MC_OK)
		m.s.last_success = wall_seconds();
	pthread_mutex_unlock(&m.mu);
}

void
metrics_endpoint(const char *address, int tls, const char *role)
{
	pthread_mutex_lock(&m.mu);
	snprintf(m.s.endpoint, sizeof(m.s.endpoint), "%s", address);
	snprintf(m.s.endpoint_role, sizeof(m.s.endpoint_role), "%s", role);
	m.s.endpoint_tls = tls;
	pthread_mutex_unlock(&m.mu);
}

void
metrics_failover(void)
{
	pthread_mutex_lock(&m.mu);
	m.s.failovers++;
	pthread_mutex_unlock(&m.mu);
}

const char *
metrics_label(const char *value, char *out, size_t outsz)
{
	size_t o = 0;

	for (; *value && o + 3 < outsz; value++) {
		if (*value == '\\' || *value == '"' || *value == '\n') {
			out[o++] = '\\';
			out[o++] = *value == '\n' ? 'n' : *value;
		} else {
			out[o++] = *value;
		}
	}
	if (outsz > 0)
		out[o < outsz ? o : outsz - 1] = '\0';
	return out;
}

int
metrics_last_cycle(enum metrics_cycle_result *res)
{
	int cycled;

	pthread_mutex_lock(&m.mu);
	cycled = m.s.cycled;
	*res = m.s.last_cycle;
	pthread_mutex_unlock(&m.mu);
	return cycled ? 0 : -1;
}

void
metrics_once_end(enum metrics_once_result res, int exit_code)
{
	pthread_mutex_lock(&m.mu);
	m.s.once_ended = 1;
	m.s.once_result = res;
	m.s.once_exit_code = exit_code;
	pthread_mutex_unlock(&m.mu);
}

void
metrics_event_removals(unsigned long long removed)
{
	pthread_mutex_lock(&m.mu);
	m.s.removed += removed;
	m.s.event_removed += removed;
	pthread_mutex_unlock(&m.mu);
}

void
metrics_calendar(long long entries_delta, unsigned long long checks,
    unsigned long long removed, unsigned long long untracked)
{
	pthread_mutex_lock(&m.mu);
	m.s.cal_entries += entries_delta;
	m.s.cal_checks += checks;
	m.s.cal_removed += removed;
	m.s.removed += removed;
	m.s.cal_untracked += untracked;
	pthread_mutex_unlock(&m.mu);
}

void
metrics_calendar_full(int delta)
{
	pthread_mutex_lock(&m.mu);
	m.s.cal_full += delta;
	pthread_mutex_unlock(&m.mu);
}

void
metrics_event_guard(void)
{
	pthread_mutex_lock(&m.mu);
	m.s.event_guard++;
	pthread_mutex_unlock(&m.mu);
}

int
metrics_healthy(void)
{
	int64_t now = mono_ms();
	int ok;

	pthread_mutex_lock(&m.mu);
	ok = now - m.s.last_tick_ms <= m.s.health_window_ms;
	pthread_mutex_unlock(&m.mu);
	return ok;
}

int
metrics_ready(void)
{
	int up;

	pthread_mutex_lock(&m.mu);
	up = m.s.redis_up;
	pthread_mutex_unlock(&m.mu);
	return up;
}

/* The standard process_* metrics, from /proc/self. */
static void
render_process(struct promtext *o, double start_time)
{
	unsigned long utime = 0, stime = 0, vsize = 0;
	long rss = 0, tck = sysconf(_SC_CLK_TCK);
	struct rlimit rl;
	char stat[1024];
	int fd, nfds = 0;
	DIR *dir;
	ssize_t n;

	if ((fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC)) >= 0) {
		n = read(fd, stat, sizeof(stat) - 1);
		close(fd);
		if (n > 0) {
			char *p;

			stat[n] = '\0';
			/* Fields after the command name, which may hold spaces. */
			if ((p = strrchr(stat, ')')) != NULL)
				sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu "
				    "%*d %*d %*d %*d %*d %*d %*u %lu %ld", &utime, &stime, &vsize, &rss);
		}
	}
	if ((dir = opendir("/proc/self/fd")) != NULL) {
		while (readdir(dir) != NULL)
			nfds++;
		nfds -= 3;	/* ".", ".." and the directory's own descriptor */
		closedir(dir);
	}
	promtext_family(o, "process_cpu_seconds_total", "counter", "User and system CPU time spent in seconds.");
	promtext_emit(o, "process_cpu_seconds_total %.2f\n", (double)(utime + stime) / (double)tck);
	promtext_family(o, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
	promtext_emit(o, "process_resident_memory_bytes %ld\n", rss * sysconf(_SC_PAGESIZE));
	promtext_family(o, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.");
	promtext_emit(o, "process_virtual_memory_bytes %lu\n", vsize);
	promtext_family(o, "process_start_time_seconds", "gauge",
	    "Start time of the process since unix epoch in seconds.");
	promtext_emit(o, "process_start_time_seconds %.3f\n", start_time);
	promtext_family(o, "process_open_fds", "gauge", "Number of open file descriptors.");
	promtext_emit(o, "process_open_fds %d\n", nfds);
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		promtext_family(o, "process_max_fds", "gauge", "Maximum number of open file descriptors.");
		promtext_emit(o, "process_max_fds %llu\n", (unsigned long long)rl.rlim_cur);
	}
}

/* The expiry calendar of reaper.track_expiry. */
static void
render_calendar(struct promtext *o, const struct snapshot *s)
{
	promtext_family(o, "presence_reaper_calendar_entries", "gauge",
	    "Socket sets the expiry calendar tracks (reaper.track_expiry).");
	promtext_emit(o, "presence_reaper_calendar_entries %lld\n", s->cal_entries);
	promtext_family(o, "presence_reaper_calendar_checks_total", "counter",
	    "Socket sets the expiry calendar checked when due.");
	promtext_emit(o, "presence_reaper_calendar_checks_total %llu\n", s->cal_checks);
	promtext_family(o, "presence_reaper_calendar_removals_total", "counter",
	    "Stale users removed at expiry by the calendar (part of users_removed_total).");
	promtext_emit(o, "presence_reaper_calendar_removals_total %llu\n", s->cal_removed);
	promtext_family(o, "presence_reaper_calendar_untracked_total", "counter",
	    "Socket sets close to expiry left to the pass: the calendar was full "
	    "(reaper.track_max).");
	promtext_emit(o, "presence_reaper_calendar_untracked_total %llu\n", s->cal_untracked);
	promtext_family(o, "presence_reaper_calendar_full", "gauge",
	    "1 while the expiry calendar is full (with keys.shards: how many are).");
	promtext_emit(o, "presence_reaper_calendar_full %d\n", s->cal_full);
}

/* Redis errors, the node the reaper talks to, and how often it followed a failover. */
static void
render_redis(struct promtext *o, const struct snapshot *s)
{
	char addr[2 * sizeof(s->endpoint)], role[2 * sizeof(s->endpoint_role)];

	promtext_family(o, "presence_reaper_redis_up", "gauge",
	    "1 while this instance has a usable Redis connection.");
	promtext_emit(o, "presence_reaper_redis_up %d\n", s->redis_up);
	promtext_family(o, "presence_reaper_redis_errors_total", "counter",
	    "Redis connection and command errors.");
	promtext_emit(o, "presence_reaper_redis_errors_total %llu\n", s->redis_errors);
	if (s->endpoint[0]) {
		promtext_family(o, "presence_reaper_redis_endpoint_info", "gauge",
		    "The Redis node in use, or last used; always 1.");
		promtext_emit(o, "presence_reaper_redis_endpoint_info{address=\"%s\",tls=\"%s\","
		    "role=\"%s\"} 1\n", metrics_label(s->endpoint, addr, sizeof(addr)),
		    s->endpoint_tls ? "true" : "false",
		    metrics_label(s->endpoint_role, role, sizeof(role)));
	}
	promtext_family(o, "presence_reaper_redis_failovers_total", "counter",
	    "Times the reaper followed the primary to a new address.");
	promtext_emit(o, "presence_reaper_redis_failovers_total %llu\n", s->failovers);
}

/* How --once ended: one series per result, 1 for this run's (an enum gauge). */
static void
render_once(struct promtext *o, const struct snapshot *s)
{
	if (!s->once_ended)
		return;
	promtext_family(o, "presence_reaper_once_result", "gauge",
	    "How this --once run ended: 1 for its result, 0 for the others.");
	for (int i = 0; i < MO_NRESULTS; i++)
		promtext_emit(o, "presence_reaper_once_result{result=\"%s\"} %d\n", once_names[i],
		    i == (int)s->once_result);
	promtext_family(o, "presence_reaper_once_exit_code", "gauge", "Exit status of this --once run.");
	promtext_emit(o, "presence_reaper_once_exit_code %d\n", s->once_exit_code);
}

/* The last cycle's duration and success, and the interval they are set against. */
static void
render_timing(struct promtext *o, const struct snapshot *s)
{
	promtext_family(o, "presence_reaper_cycle_duration_seconds", "gauge",
	    "Duration of the last cycle in seconds.");
	promtext_emit(o, "presence_reaper_cycle_duration_seconds %.6f\n", s->cycle_seconds);
	promtext_family(o, "presence_reaper_interval_seconds", "gauge",
	    "reaper.interval: seconds from one pass's start to the next's.");
	promtext_emit(o, "presence_reaper_interval_seconds %g\n", s->interval);
	promtext_family(o, "presence_reaper_last_success_timestamp_seconds", "gauge",
	    "Unix time of the last successful cycle; 0 before the first.");
	promtext_emit(o, "presence_reaper_last_success_timestamp_seconds %.3f\n",
	    s->last_success);
}

size_t
metrics_render(char *buf, size_t bufsz)
{
	struct promtext o = { buf, bufsz, 0 };
	struct snapshot s;

	if (bufsz == 0)
		return 0;
	buf[0] = '\0';
	pthread_mutex_lock(&m.mu);
	s = m.s;
	pthread_mutex_unlock(&m.mu);

	promtext_family(&o, "presence_reaper_build_info", "gauge", "Build information; always 1.");
	promtext_emit(&o, "presence_reaper_build_info{version=\"%s\"} 1\n", PACKAGE_VERSION);
	promtext_family(&o, "presence_reaper_is_leader", "gauge", "1 while this instance holds the leader lock.");
	promtext_emit(&o, "presence_reaper_is_leader %d\n", s.is_leader);
	promtext_family(&o, "presence_reaper_leader_changes_total", "counter",
	    "Times this instance gained or lost leadership.");
	promtext_emit(&o, "presence_reaper_leader_changes_total %llu\n", s.leader_changes);
	promtext_family(&o, "presence_reaper_cycles_total", "counter", "Reconcile cycles by result.");
	for (int i = 0; i < MC_NRESULTS; i++)
		promtext_emit(&o, "presence_reaper_cycles_total{result=\"%s\"} %llu\n", result_names[i],
		    s.cycles[i]);
	promtext_family(&o, "presence_reaper_users_scanned_total", "counter",
	    "Members of the online set scanned.");
	promtext_emit(&o, "presence_reaper_users_scanned_total %llu\n", s.scanned);
	promtext_family(&o, "presence_reaper_users_removed_total", "counter",
	    "Stale users removed from the online set.");
	promtext_emit(&o, "presence_reaper_users_removed_total %llu\n", s.removed);
	promtext_family(&o, "presence_reaper_event_removals_total", "counter",
	    "Stale users removed on key-expiry events (part of users_removed_total).");
	promtext_emit(&o, "presence_reaper_event_removals_total %llu\n", s.event_removed);
	render_calendar(&o, &s);
	promtext_family(&o, "presence_reaper_ghosts_total", "counter",
	    "Socket sets found without a TTL (they never expire).");
	promtext_emit(&o, "presence_reaper_ghosts_total %llu\n", s.ghosts);
	if (s.online >= 0) {
		promtext_family(&o, "presence_reaper_online_users", "gauge",
		    "Size of the online set at the last cycle.");
		promtext_emit(&o, "presence_reaper_online_users %lld\n", s.online);
	}
	render_timing(&o, &s);
	render_redis(&o, &s);
	promtext_family(&o, "presence_reaper_guard_tripped_total", "counter",
	    "Cycles and key-expiry batches in which the stale-ratio guard refused to "
	    "remove.");
	promtext_emit(&o, "presence_reaper_guard_tripped_total %llu\n",
	    s.cycles[MC_GUARD] + s.event_guard);
	promtext_family(&o, "presence_reaper_dry_run", "gauge", "1 when running with --dry-run.");
	promtext_emit(&o, "presence_reaper_dry_run %d\n", s.dry_run);
	render_once(&o, &s);
	render_process(&o, s.start_time);
	o.len += metrics_shard_render(o.buf + o.len, o.sz - o.len);
	return o.len;
}

/*
 * The temporary file's template: ".NAME.XXXXXX" in path's folder. Hidden and
 * without ".prom", so node_exporter never reads a half-written file.
 */
static int
temp_template(const char *path, char *tmp, size_t tmpsz)
{
	const char *slash = strrchr(path, '/');
	const char *base = slash ? slash + 1 : path;
	int n;

	n = snprintf(tmp, tmpsz, "%.*s.%s.XXXXXX", (int)(base - path), path, base);
	return n > 0 && (size_t)n < tmpsz && base[0] ? 0 : -1;
}

static int
write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/*
 * Write the metrics to path atomically. The temporary file is new (mkstemp:
 * O_CREAT|O_EXCL, so a symlink planted in a shared folder is never followed)
 * and in path's folder (rename stays atomic); mode 0644 for node_exporter,
 * fsync before the rename so a crash leaves the old file or the new one.
 * Returns 0, or -1 with a message in err.
 */
int
metrics_write_textfile(const char *path, char *err, size_t errlen)
{
	char tmp[4200], *buf = NULL;
	int fd = -1, made = 0, e;
	size_t len;

	if (temp_template(path, tmp, sizeof(tmp)) < 0) {
		snprintf(err, errlen, "metrics.textfile %s: not a file name", path);
		return -1;
	}
	if ((buf = malloc(METRICS_RENDER_MAX)) == NULL)
		goto fail;
	len = metrics_render(buf, METRICS_RENDER_MAX);
	if ((fd = mkstemp(tmp)) < 0)
		goto fail;
	made = 1;
	if (fchmod(fd, 0644) < 0 || write_all(fd, buf, len) < 0 || fsync(fd) < 0)
		goto fail;
	e = close(fd);
	fd = -1;
	if (e < 0 || rename(tmp, path) < 0)
		goto fail;
	free(buf);
	return 0;
fail:
	e = errno;
	snprintf(err, errlen, "metrics.textfile %s: %s", path, strerror(e));
	if (fd >= 0)
		close(fd);
	if (made)
		unlink(tmp);
	free(buf);
	return -1;
}
