/*
 * tool: what the presence generator and the benchmark clients share: the
 * Redis endpoint and key options, connecting with hiredis, socket key names,
 * reply checks and a clock.
 *
 * Deliberately independent of common/ and reaper/: the benchmark measures
 * the reaper against these clients, so they must not share its code paths
 * (a bug in the reaper's key builder would otherwise go unnoticed).
 */
#ifndef PR_TOOL_H
#define PR_TOOL_H

#include <getopt.h>
#include <stddef.h>
#include <stdio.h>

#include <hiredis/hiredis.h>

struct tool_opts {
	const char *socket;	/* Unix socket; wins over host/port */
	const char *host;
	int port;
	const char *online;	/* online set key */
	const char *prefix;	/* socket set key = prefix + id + suffix */
	const char *suffix;
};

/* getopt_long entries for struct tool_opts; tool_opts_parse handles them. */
#define TOOL_OPT_SOCKET 0x100
#define TOOL_OPT_HOST 0x101
#define TOOL_OPT_PORT 0x102
#define TOOL_OPT_ONLINE 0x103
#define TOOL_OPT_PREFIX 0x104
#define TOOL_OPT_SUFFIX 0x105
#define TOOL_LONGOPTS \
	{ "socket", required_argument, NULL, TOOL_OPT_SOCKET }, \
	{ "host", required_argument, NULL, TOOL_OPT_HOST }, \
	{ "port", required_argument, NULL, TOOL_OPT_PORT }, \
	{ "online", required_argument, NULL, TOOL_OPT_ONLINE }, \
	{ "prefix", required_argument, NULL, TOOL_OPT_PREFIX }, \
	{ "suffix", required_argument, NULL, TOOL_OPT_SUFFIX }
#define TOOL_USAGE_REDIS "[--socket PATH | --host HOST --port PORT]"
#define TOOL_USAGE_KEYS "[--online KEY] [--prefix P] [--suffix S]"

/* Program name for messages; set by main before anything else. */
extern const char *tool_prog;

/* The realtime servers' defaults: 127.0.0.1:6379 and the presence keys. */
void tool_opts_init(struct tool_opts *o);

/*
 * Apply option opt (one of TOOL_OPT_*) with argument arg.
 * Returns 1 when handled, 0 when opt is not one of ours, -1 on a bad value
 * (message printed on stderr).
 */
int tool_opts_parse(struct tool_opts *o, int opt, const char *arg);

/*
 * An option nobody took: -h (r == 0, ch == 'h') prints usage on stdout and
 * exits 0; anything else prints it on stderr and exits 64.
 */
_Noreturn void tool_option_end(int r, int ch, void (*usage)(FILE *));

/* Exit 64 with a message and usage when arguments remain after the options. */
void tool_no_operands(int argc, char **argv, void (*usage)(FILE *));

/* Parse a whole decimal integer in [min, max]; -1 (message printed) if not. */
int tool_parse_ll(const char *name, const char *s, long long min, long long max,
    long long *out);

/* Connect (5 s timeout). NULL with a message on stderr on failure. */
redisContext *tool_connect(const struct tool_opts *o);

/* Seconds on CLOCK_MONOTONIC, with nanosecond resolution. */
double tool_now(void);

/* A reusable buffer for socket key names. */
struct tool_key {
	char *buf;
	size_t cap;
	size_t len;
};

/*
 * Build prefix + id + suffix (byte for byte, NUL allowed) into k->buf and
 * k->len. Returns 0, or -1 when out of memory (message printed).
 */
int tool_socket_key(const struct tool_opts *o, struct tool_key *k, const char *id,
    size_t idlen);
void tool_key_free(struct tool_key *k);

/*
 * Queue one command (hiredis's redisAppendCommandArgv). Returns 0, or -1
 * after printing why (out of memory).
 */
int tool_append(redisContext *c, int argc, const char **argv, const size_t *argvlen);

/*
 * Read one reply and check it is of type want (REDIS_REPLY_*). Returns the
 * reply (the caller frees it) or NULL after printing what went wrong; the
 * reply is freed on a type mismatch. what names the command for messages.
 */
redisReply *tool_reply(redisContext *c, int want, const char *what);

#endif
