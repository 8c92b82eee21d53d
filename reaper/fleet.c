#define _GNU_SOURCE	/* eventfd flags */
#include "fleet.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "failover.h"
#include "log.h"
#include "metrics.h"
#include "metrics_shard.h"
#include "reload.h"
#include "scripts.h"
#include "script.h"
#include "shardcfg.h"
#include "wait.h"

/* A seat's thread needs little stack: its buffers are on the heap. */
#define SEAT_STACK	(512 * 1024)

struct fleet {
	struct daemon *d;	/* the main thread's: membership, reloads */
	struct shardset set;
	struct share_gate gate;
	struct fleet_seat *seats;
	struct script members;
	int live;		/* replicas at the last renewal; 0 unknown */
	int failures;		/* membership renewals failed in a row */
	int beats;		/* membership renewals that went through */
};

void
fleet_seat_role(struct fleet_seat *s, enum role was, enum role now)
{
	if (was != ROLE_LEADER || now == ROLE_LEADER)
		return;
	if (s->releasing)
		s->releasing = 0;	/* counted out when it was given back */
	else
		share_drop(s->gate);
}

int64_t
fleet_seat_idle(struct daemon *d)
{
	struct fleet_seat *s = d->seat;
	int64_t now = mono_ms();

	if (share_room(s->gate)) {
		s->full_since = 0;
		return 0;
	}
	if (s->full_since == 0)
		s->full_since = now;
	/*
	 * Nothing to do: hold no connection, once the share has stayed full
	 * for a lease (not while the replicas are still evening out).
	 */
	if (d->role != ROLE_DISCONNECTED &&
	    now - s->full_since >= (int64_t)(d->cfg.lease * 1000))
		daemon_disconnect(d);
	return now + daemon_renew_ms(&d->cfg);
}

int
fleet_seat_lock_taken(struct daemon *d)
{
	char holder[LEADER_TOKEN_MAX], err[512];

	if (leader_holder(&d->leader, d->conn, holder, sizeof(holder), err, sizeof(err)) !=
	    LEADER_OTHER)
		return 0;	/* free, ours, or unknown: the attempt itself will tell */
	daemon_note_holder(d, holder);
	return 1;
}

int
fleet_seat_give_back(struct daemon *d)
{
	if (!share_claim_release(d->seat->gate))
		return 0;
	d->seat->releasing = 1;
	log_info("above this replica's fair share: giving the shard back");
	daemon_release_lock(d);
	return 1;
}

static void
poke(struct fleet *f)
{
	uint64_t one = 1;

	for (size_t i = 0; i < f->set.n; i++)
		if (f->seats[i].wake_fd >= 0 && write(f->seats[i].wake_fd, &one, sizeof(one)) < 0) {
			/* the counter is already non-zero: a wake-up is pending */
		}
}

static void *
seat_main(void *arg)
{
	struct fleet_seat *s = arg;

	rnd_seed();
	log_set_thread_shard(s->name);
	metrics_set_thread_shard(s->index);
	wait_set_thread_fd(s->wake_fd);
	daemon_run(&s->d);
	return NULL;
}

int
fleet_shard_daemon(struct daemon *s, const struct daemon *d, const char *name)
{
	char err[512];

	memset(s, 0, sizeof(*s));
	s->cli = d->cli;
	if (shardcfg_make(&d->cfg, name, &s->cfg) < 0) {
		log_error("shard %s: out of memory", name);
		return -1;
	}
	if (tlsctx_load(&s->tls, &s->cfg, err, sizeof(err)) < 0) {
		log_error("shard %s: %s", name, err);
		return -1;
	}
	if (daemon_init(s) < 0) {
		log_warn("shard %s", name);
		return -1;
	}
	return 0;
}

/* Make seat i for the main daemon's configuration; 0, or -1 (logged). */
static int
seat_init(struct fleet *f, size_t i)
{
	struct fleet_seat *s = &f->seats[i];

	memset(s, 0, sizeof(*s));
	s->gate = &f->gate;
	s->index = (int)i;
	s->name = f->set.names[i];
	if ((s->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0) {
		log_warn("eventfd");
		return -1;
	}
	if (fleet_shard_daemon(&s->d, f->d, s->name) < 0)
		return -1;
	s->d.seat = s;
	return 0;
}

static void
seat_free(struct fleet_seat *s)
{
	if (s->wake_fd >= 0)
		close(s->wake_fd);
	s->wake_fd = -1;
	daemon_free(&s->d);
	cfg_free(&s->d.cfg);
}

/* Start every seat's thread; 0, or -1 (logged, the started ones stopped by the caller). */
static int
seats_start(struct fleet *f)
{
	pthread_attr_t attr;
	int rc = 0;

	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, SEAT_STACK);
	for (size_t i = 0; i < f->set.n && rc == 0; i++) {
		struct fleet_seat *s = &f->seats[i];

		if (seat_init(f, i) < 0)
			rc = -1;
		else if ((errno = pthread_create(&s->thread, &attr, seat_main, s)) != 0) {
			log_warn("shard %s: starting its thread", s->name);
			rc = -1;
		} else
			s->started = 1;
	}
	pthread_attr_destroy(&attr);
	return rc;
}

/* Ask every seat to leave (after its pass, giving its lock back) and wait for it. */
static void
seats_stop(struct fleet *f)
{
	for (size_t i = 0; i < f->set.n; i++)
		f->seats[i].quit = 1;
	poke(f);
	for (size_t i = 0; i < f->set.n; i++) {
		if (f->seats[i].started)
			pthread_join(f->seats[i].thread, NULL);
		f->seats[i].started = 0;
		seat_free(&f->seats[i]);
	}
}

/* Connect the main daemon to the node of leader.members_key; 0, or -1 (said once a spell). */
static int
members_conn(struct fleet *f)
{
	struct daemon *d = f->d;
	char err[512];

	if (d->role != ROLE_DISCONNECTED)
		return 0;
	if (daemon_connect(d, err, sizeof(err)) == 0) {
		daemon_connected(d);
		return 0;
	}
	metrics_redis_error();
	if (f->failures++ == 0)
		log_warnx("replica membership (%s): %s; retrying with backoff", d->cfg.members_key,
		    err);
	return -1;
}

/*
 * members.lua: join (or renew) or leave. The number of live replicas, or
 * -1 with a message in err (the connection dropped when it broke; a
 * Cluster redirection followed at the next turn).
 */
static int
members_call(struct fleet *f, const char *how, char *err, size_t errlen)
{
	struct daemon *d = f->d;
	char lease[32], what[300];
	const char *argv[7];
	size_t argvlen[7];
	redisReply *r;
	int n = -1;

	snprintf(lease, sizeof(lease), "%lld", (long long)(d->cfg.lease * 1000));
	snprintf(what, sizeof(what), "members.lua on %s", d->cfg.members_key);
	argv[2] = "1";
	argv[3] = d->cfg.members_key;
	argv[4] = d->leader.token;
	argv[5] = lease;
	argv[6] = how;
	for (int i = 2; i < 7; i++)
		argvlen[i] = strlen(argv[i]);
	r = script_call(d->conn, &f->members, 7, argv, argvlen, err, errlen);
	if (r && r->type == REDIS_REPLY_INTEGER)
		n = (int)r->integer;
	else if (r)
		failover_refused(d, rerr_format(err, errlen, what, r));
	else if (f->members.err_class != RERR_NONE)
		failover_refused(d, f->members.err_class);
	if (r)
		freeReplyObject(r);
	if (n < 0 && rconn_broken(d->conn))
		daemon_disconnect(d);
	return n;
}

/* Renew the membership and derive the share; when to renew next (mono ms). */
static int64_t
members_beat(struct fleet *f)
{
	struct daemon *d = f->d;
	char err[600];
	int live, share;

	failover_step(d, mono_ms());
	if (members_conn(f) < 0)
		return mono_ms() + daemon_retry_ms(d);
	if ((live = members_call(f, "join", err, sizeof(err))) < 0) {
		if (f->failures++ == 0)
			log_warnx("replica membership: %s; the fair share stays %d", err,
			    f->gate.share);
		return mono_ms() + daemon_retry_ms(d);
	}
	if (f->failures)
		log_info("replica membership renewed again after %d failures", f->failures);
	f->failures = 0;
	backoff_reset(&d->backoff);
	/*
	 * The share counts from the second renewal on: replicas started
	 * together then see one another before taking anything.
	 */
	if (f->beats++ == 0) {
		log_info("joined the replica membership %s (%d live); taking shards from the next "
		    "renewal", d->cfg.members_key, live);
		return mono_ms() + daemon_renew_ms(&d->cfg);
	}
	share = share_fair((int)f->set.n, live);
	if (live != f->live || share != f->gate.share) {
		log_info("%d live replicas: fair share %d of %zu shards", live, share, f->set.n);
		/* Room may have appeared, or a seat must give back: the seats look now. */
		share_set(&f->gate, share);
		poke(f);
	}
	f->live = live;
	metrics_shard_fleet(live, share);
	return mono_ms() + jitter_ms(daemon_renew_ms(&d->cfg), 0.05, rnd_u64());
}

/* --dry-run: no membership, but the main connection still says whether Redis is up (/readyz). */
static int64_t
dry_beat(struct fleet *f)
{
	redisReply *r;

	failover_step(f->d, mono_ms());
	if (members_conn(f) < 0)
		return mono_ms() + daemon_retry_ms(f->d);
	if ((r = rconn_calll(f->d->conn, "PING", NULL)) == NULL) {
		daemon_drop_conn(f->d, rconn_errstr(f->d->conn));
		return mono_ms() + daemon_retry_ms(f->d);
	}
	freeReplyObject(r);
	f->failures = 0;
	return mono_ms() + daemon_renew_ms(&f->d->cfg);
}

/* Leave the membership at shutdown, so the others' shares grow at once. */
static void
members_leave(struct fleet *f)
{
	char err[600];

	/* Connected again if need be (a reload may just have dropped it), once. */
	if (members_conn(f) < 0 || members_call(f, "leave", err, sizeof(err)) < 0)
		return;
	log_info("left the replica membership %s", f->d->cfg.members_key);
}

static int
fleet_init(struct fleet *f, struct daemon *d)
{
	memset(f, 0, sizeof(*f));
	f->d = d;
	f->members = (struct script){ .name = "members", .src = script_members };
	share_gate_init(&f->gate, d->cli.dry_run);
	if (shardset_init(&f->set, &d->cfg) < 0 ||
	    (f->seats = calloc(f->set.n, sizeof(*f->seats))) == NULL ||
	    metrics_shards_init(f->set.n, (const char (*)[65])f->set.names) < 0) {
		log_warn("starting");
		return -1;
	}
	for (size_t i = 0; i < f->set.n; i++)
		f->seats[i].wake_fd = -1;
	return 0;
}

static void
fleet_free(struct fleet *f)
{
	free(f->seats);
	shardset_free(&f->set);
	share_gate_destroy(&f->gate);
}

/* SIGHUP: the seats give their shards back, the configuration is read, they start again. */
static int
fleet_reload(struct fleet *f)
{
	seats_stop(f);
	daemon_reload(f->d);
	return seats_start(f);
}

int
fleet_run(struct daemon *d)
{
	struct fleet f;
	int rc = -1;

	if (fleet_init(&f, d) < 0)
		goto done;
	log_info("%zu shards; %s", f.set.n, d->cli.dry_run ? "dry run: every shard, no locks" :
	    "fair share from the replica membership");
	if (d->cli.dry_run)
		share_set(&f.gate, (int)f.set.n);
	if (seats_start(&f) < 0)
		goto stop;
	rc = 0;
	while (!wait_stopping()) {
		int64_t wake = d->cli.dry_run ? dry_beat(&f) : members_beat(&f);

		if (wait_reload_pending() && fleet_reload(&f) < 0) {
			rc = -1;
			break;
		}
		wait_until(wake, 1, NULL, 0);
	}
stop:
	wait_note_shutdown();
	seats_stop(&f);
	if (!d->cli.dry_run)
		members_leave(&f);
done:
	fleet_free(&f);
	metrics_shards_free();
	return rc;
}
