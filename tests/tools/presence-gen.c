/*
 * presence-gen: create presence in Redis the way the realtime servers'
 * connect script does (packaging/realtime/connect.lua), fast: many users
 * per round trip.
 *
 * A live user gets   SADD <prefix><id><suffix> <socket id>
 *                    EXPIRE <prefix><id><suffix> <ttl>
 *                    SADD <online> <id>
 * a stale user (its server crashed, its socket set expired) only the last.
 *
 * User i of -n N is "u<i>". Exactly round(N * stale) of them are stale,
 * spread evenly (every k-th for a fraction 1/k); the seed shifts the pattern
 * and picks the socket IDs, so the same options always make the same data.
 * --odd adds IDs that break naive clients (empty, spaces, newlines, NUL,
 * bytes > 0x7f, 5 KB), half of them live, half stale.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tool.h"

#define CHUNK 1000		/* users per round trip */
#define MAX_USERS 1000000000LL	/* keeps the stale pattern's arithmetic in 64 bits */
#define BIG_ID 5120
#define SOCKET_ID_LEN 20

enum gen_mode { GEN_CREATE, GEN_RESTORE, GEN_EMIT };

struct gen {
	struct tool_opts o;
	enum gen_mode mode;
	const char *emit_path;
	long long n;
	long long nstale;	/* stale among the n regular users */
	long long phase;	/* shift of the stale pattern, from the seed */
	long long ttl;
	unsigned long long seed;
	int odd;
};

struct user {
	const char *id;
	size_t len;
	int stale;
	char buf[24];
};

struct odd_id {
	const char *id;
	size_t len;
	int stale;
};

static char big_live[BIG_ID], big_stale[BIG_ID];

#define ODD(s, stale) { s, sizeof(s) - 1, stale }
static struct odd_id odd_ids[] = {
	ODD("", 1),
	ODD(" ", 0),
	ODD("with space", 1),
	ODD(" lead and trail ", 0),
	ODD("line\nbreak", 0),
	ODD("line\nbreak\r\n", 1),
	ODD("nul\0inside", 1),
	ODD("\0", 0),
	ODD("caf\xc3\xa9", 0),
	ODD("\xff\xfe\x80\x7f", 1),
	ODD("{tag}*?[x]", 0),
	ODD("\"quote\\back", 1),
	{ big_live, sizeof(big_live), 0 },
	{ big_stale, sizeof(big_stale), 1 },
};
#define NODD ((long long)(sizeof(odd_ids) / sizeof(odd_ids[0])))

static uint64_t
splitmix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

static void
odd_init(void)
{
	memset(big_live, 'L', sizeof(big_live));
	for (size_t i = 0; i < sizeof(big_stale); i++)
		big_stale[i] = (char)(0x80 + i % 0x80);
}

/*
 * User i is stale when the running count floor((i + phase) * nstale / n)
 * steps up: exactly nstale steps over any n consecutive values.
 */
static int
is_stale(const struct gen *g, long long i)
{
	unsigned long long a = (unsigned long long)(i + g->phase);
	unsigned long long s = (unsigned long long)g->nstale, n = (unsigned long long)g->n;

	return (a + 1) * s / n != a * s / n;
}

static long long
total_users(const struct gen *g)
{
	return g->n + (g->odd ? NODD : 0);
}

static void
user_at(const struct gen *g, long long i, struct user *u)
{
	if (i < g->n) {
		u->len = (size_t)snprintf(u->buf, sizeof(u->buf), "u%lld", i);
		u->id = u->buf;
		u->stale = is_stale(g, i);
	} else {
		const struct odd_id *d = &odd_ids[i - g->n];

		u->id = d->id;
		u->len = d->len;
		u->stale = d->stale;
	}
}

/* A socket.io-like socket ID: 20 URL-safe characters, from seed and user. */
static void
socket_id(const struct gen *g, long long i, char out[SOCKET_ID_LEN])
{
	static const char abc[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	uint64_t a = splitmix64(g->seed ^ (uint64_t)i);
	uint64_t b = splitmix64(a);

	for (int k = 0; k < SOCKET_ID_LEN; k++) {
		uint64_t *w = k < 10 ? &a : &b;

		out[k] = abc[*w & 63];
		*w >>= 6;
	}
}

/*
 * Queue the connect script's commands for user i (a stale user: only the
 * online-set SADD); returns how many, or -1.
 */
static int
append_connect(redisContext *c, const struct gen *g, long long i, const struct user *u,
    struct tool_key *k, const char *ttl)
{
	char sid[SOCKET_ID_LEN];
	const char *argv[3];
	size_t argvlen[3];
	int n = 0;

	if (!u->stale) {
		if (tool_socket_key(&g->o, k, u->id, u->len) < 0)
			return -1;
		socket_id(g, i, sid);
		argv[0] = "SADD", argvlen[0] = 4;
		argv[1] = k->buf, argvlen[1] = k->len;
		argv[2] = sid, argvlen[2] = sizeof(sid);
		if (tool_append(c, 3, argv, argvlen) < 0)
			return -1;
		argv[0] = "EXPIRE", argvlen[0] = 6;
		argv[2] = ttl, argvlen[2] = strlen(ttl);
		if (tool_append(c, 3, argv, argvlen) < 0)
			return -1;
		n = 2;
	}
	argv[0] = "SADD", argvlen[0] = 4;
	argv[1] = g->o.online, argvlen[1] = strlen(g->o.online);
	argv[2] = u->id, argvlen[2] = u->len;
	if (tool_append(c, 3, argv, argvlen) < 0)
		return -1;
	return n + 1;
}

/*
 * GEN_CREATE: the connect script for every user. GEN_RESTORE: put only the
 * stale users back into the online set, so a benchmark can repeat a pass.
 * *added counts the online-set members that SADD added.
 */
static int
write_users(redisContext *c, const struct gen *g, long long *added)
{
	struct tool_key k = { 0 };
	char ttl[24];
	long long total = total_users(g);
	int rc = -1;

	snprintf(ttl, sizeof(ttl), "%lld", g->ttl);
	*added = 0;
	for (long long first = 0; first < total; first += CHUNK) {
		long long end = first + CHUNK < total ? first + CHUNK : total;
		long long pending = 0;

		for (long long i = first; i < end; i++) {
			struct user u;
			int q;

			user_at(g, i, &u);
			if (g->mode == GEN_RESTORE && !u.stale)
				continue;
			if ((q = append_connect(c, g, i, &u, &k, ttl)) < 0)
				goto fail;
			pending += q;
		}
		/* A restore queues only online-set SADDs: their sum is what it added. */
		for (long long j = 0; j < pending; j++) {
			redisReply *r = tool_reply(c, REDIS_REPLY_INTEGER, "SADD/EXPIRE");

			if (r == NULL)
				goto fail;
			if (g->mode == GEN_RESTORE)
				*added += r->integer;
			freeReplyObject(r);
		}
	}
	rc = 0;
fail:
	tool_key_free(&k);
	return rc;
}

/* The RESP of EXISTS <socket key> for every user, for redis-cli --pipe. */
static int
emit_exists(const struct gen *g, FILE *f)
{
	struct tool_key k = { 0 };
	long long total = total_users(g);
	int rc = -1;

	for (long long i = 0; i < total; i++) {
		struct user u;
		const char *argv[2];
		size_t argvlen[2];
		char *cmd;
		int len;

		user_at(g, i, &u);
		if (tool_socket_key(&g->o, &k, u.id, u.len) < 0)
			goto fail;
		argv[0] = "EXISTS", argvlen[0] = 6;
		argv[1] = k.buf, argvlen[1] = k.len;
		if ((len = redisFormatCommandArgv(&cmd, 2, argv, argvlen)) < 0) {
			fprintf(stderr, "%s: out of memory formatting a command\n", tool_prog);
			goto fail;
		}
		if (fwrite(cmd, 1, (size_t)len, f) != (size_t)len) {
			redisFreeCommand(cmd);
			perror(tool_prog);
			goto fail;
		}
		redisFreeCommand(cmd);
	}
	rc = 0;
fail:
	tool_key_free(&k);
	return rc;
}

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: %s " TOOL_USAGE_REDIS "\n"
	    "           [-n N] [--stale FRACTION] [--ttl S] [--odd] [--restore]\n"
	    "           " TOOL_USAGE_KEYS " [--seed N]\n"
	    "       %s --emit-exists FILE [-n N] [--odd] [--prefix P] [--suffix S]\n"
	    "\n"
	    "Create N users \"u0\"..\"u<N-1>\" as the realtime servers' connect script\n"
	    "does (socket set + TTL + online set); a FRACTION of them (default 0.01,\n"
	    "exact, evenly spread) are stale: in the online set without a socket set.\n"
	    "  -n N               users (default 10000)\n"
	    "  --stale FRACTION   0..1 (default 0.01)\n"
	    "  --ttl S            socket set TTL in seconds (default 60)\n"
	    "  --odd              also 14 odd IDs: empty, spaces, newline, NUL,\n"
	    "                     bytes > 0x7f, 5 KB; 7 live, 7 stale\n"
	    "  --restore          only put the stale users back into the online set\n"
	    "                     (same -n, --stale, --odd and --seed as when created)\n"
	    "  --seed N           shifts the stale pattern, picks socket IDs (default 1)\n"
	    "  --emit-exists FILE write EXISTS <socket key> for every user as RESP\n"
	    "                     (for redis-cli --pipe); \"-\" = stdout; no Redis needed\n"
	    "Prints what it did and the time on stdout.\n",
	    tool_prog, tool_prog);
}

static int
parse_args(struct gen *g, int argc, char **argv)
{
	static const struct option longopts[] = {
		TOOL_LONGOPTS,
		{ "stale", required_argument, NULL, 's' },
		{ "ttl", required_argument, NULL, 't' },
		{ "odd", no_argument, NULL, 'o' },
		{ "restore", no_argument, NULL, 'r' },
		{ "seed", required_argument, NULL, 'S' },
		{ "emit-exists", required_argument, NULL, 'e' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	double stale = 0.01;
	long long v;
	char *end;
	int c, r;

	while ((c = getopt_long(argc, argv, "n:h", longopts, NULL)) != -1) {
		if ((r = tool_opts_parse(&g->o, c, optarg)) != 0) {
			if (r < 0)
				return -1;
			continue;
		}
		switch (c) {
		case 'n':
			if (tool_parse_ll("-n", optarg, 0, MAX_USERS, &g->n) < 0)
				return -1;
			break;
		case 's':
			stale = strtod(optarg, &end);
			if (end == optarg || *end != '\0' || !(stale >= 0 && stale <= 1)) {
				fprintf(stderr, "%s: invalid value \"%s\" for --stale (0..1)\n",
				    tool_prog, optarg);
				return -1;
			}
			break;
		case 't':
			if (tool_parse_ll("--ttl", optarg, 1, 1LL << 40, &g->ttl) < 0)
				return -1;
			break;
		case 'o':
			g->odd = 1;
			break;
		case 'r':
			g->mode = GEN_RESTORE;
			break;
		case 'S':
			if (tool_parse_ll("--seed", optarg, 0, INT64_MAX, &v) < 0)
				return -1;
			g->seed = (unsigned long long)v;
			break;
		case 'e':
			g->mode = GEN_EMIT;
			g->emit_path = optarg;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			return -1;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "%s: unexpected argument \"%s\"\n", tool_prog, argv[optind]);
		return -1;
	}
	g->nstale = (long long)(stale * (double)g->n + 0.5);
	g->phase = g->n > 0 ? (long long)(splitmix64(g->seed) % (uint64_t)g->n) : 0;
	return 0;
}

static void
count_users(const struct gen *g, long long *live, long long *stale)
{
	*stale = g->nstale;
	for (long long j = 0; g->odd && j < NODD; j++)
		*stale += odd_ids[j].stale;
	*live = total_users(g) - *stale;
}

static int
run_emit(const struct gen *g)
{
	double t0 = tool_now();
	int to_stdout = strcmp(g->emit_path, "-") == 0;
	FILE *f = to_stdout ? stdout : fopen(g->emit_path, "wb");
	int rc;

	if (f == NULL) {
		fprintf(stderr, "%s: %s: ", tool_prog, g->emit_path);
		perror(NULL);
		return 1;
	}
	rc = emit_exists(g, f);
	if ((to_stdout ? fflush(f) : fclose(f)) != 0 && rc == 0) {
		perror(tool_prog);
		rc = -1;
	}
	if (rc < 0)
		return 1;
	fprintf(to_stdout ? stderr : stdout, "emitted commands=%lld file=%s seconds=%.3f\n",
	    total_users(g), g->emit_path, tool_now() - t0);
	return 0;
}

int
main(int argc, char **argv)
{
	struct gen g = { .n = 10000, .ttl = 60, .seed = 1, .mode = GEN_CREATE };
	redisContext *c;
	long long live, stale, added;
	double t0;
	int rc;

	tool_prog = "presence-gen";
	tool_opts_init(&g.o);
	if (parse_args(&g, argc, argv) < 0) {
		usage(stderr);
		return 64;
	}
	odd_init();
	if (g.mode == GEN_EMIT)
		return run_emit(&g);
	if ((c = tool_connect(&g.o)) == NULL)
		return 69;
	t0 = tool_now();
	rc = write_users(c, &g, &added);
	redisFree(c);
	if (rc < 0)
		return 1;
	count_users(&g, &live, &stale);
	if (g.mode == GEN_RESTORE)
		printf("restored stale=%lld added=%lld seconds=%.3f\n", stale, added,
		    tool_now() - t0);
	else
		printf("created users=%lld live=%lld stale=%lld odd=%lld ttl=%lld "
		    "seconds=%.3f\n", total_users(&g), live, stale,
		    g.odd ? NODD : 0, g.ttl, tool_now() - t0);
	return 0;
}
