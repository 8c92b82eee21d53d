#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "escape.h"

static enum log_level cur_level = LOG_LVL_INFO;
static enum log_format cur_format = LOG_FMT_TEXT;
static _Thread_local char thread_shard[72];	/* "" outside a shard's thread */

static const char *const level_names[] = { "error", "warn", "info", "debug" };

void
log_init(enum log_level level, enum log_format format)
{
	cur_level = level;
	cur_format = format;
}

void
log_set_level(enum log_level level)
{
	cur_level = level;
}

void
log_set_format(enum log_format format)
{
	cur_format = format;
}

enum log_level
log_get_level(void)
{
	return cur_level;
}

int
log_level_parse(const char *s, enum log_level *out)
{
	for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
		if (strcasecmp(s, level_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	return -1;
}

int
log_format_parse(const char *s, enum log_format *out)
{
	if (strcasecmp(s, "text") == 0)
		*out = LOG_FMT_TEXT;
	else if (strcasecmp(s, "json") == 0)
		*out = LOG_FMT_JSON;
	else
		return -1;
	return 0;
}

size_t
log_json_escape(char *out, size_t outsz, const char *s, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;

	if (outsz == 0)
		return 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		char tmp[7];
		size_t n;

		if (c == '"' || c == '\\') {
			tmp[0] = '\\';
			tmp[1] = (char)c;
			n = 2;
		} else if (c == '\n') {
			memcpy(tmp, "\\n", 2);
			n = 2;
		} else if (c < 0x20 || c >= 0x7f) {
			memcpy(tmp, "\\u00", 4);
			tmp[4] = hex[c >> 4];
			tmp[5] = hex[c & 0xf];
			n = 6;
		} else {
			tmp[0] = (char)c;
			n = 1;
		}
		if (o + n >= outsz)
			break;
		memcpy(out + o, tmp, n);
		o += n;
	}
	out[o] = '\0';
	return o;
}

void
log_set_thread_shard(const char *name)
{
	snprintf(thread_shard, sizeof(thread_shard), "%s", name ? name : "");
}

static void
timestamp(char *buf, size_t sz)
{
	struct timespec ts;
	struct tm tm;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	snprintf(buf, sz, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
	    tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
}

static void
vlog(enum log_level level, int with_errno, const char *fmt, va_list ap)
{
	char msg[4096], ts[32];
	int saved = errno;
	size_t n;

	if (level > cur_level)
		return;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strlen(msg);
	if (with_errno && n < sizeof(msg))
		snprintf(msg + n, sizeof(msg) - n, ": %s", strerror(saved));
	timestamp(ts, sizeof(ts));
	if (cur_format == LOG_FMT_JSON) {
		char esc[sizeof(msg) * 6 + 1];

		log_json_escape(esc, sizeof(esc), msg, strlen(msg));
		fprintf(stderr, "{\"ts\":\"%s\",\"level\":\"%s\",%s%s%s\"msg\":\"%s\"}\n",
		    ts, level_names[level], thread_shard[0] ? "\"shard\":\"" : "", thread_shard,
		    thread_shard[0] ? "\"," : "", esc);
	} else {
		/* A message is one line whatever it quotes: no byte in it may end the line. */
		char esc[sizeof(msg) * 4 + 1];

		escape_ctl(esc, sizeof(esc), msg, strlen(msg));
		fprintf(stderr, "%s %s: %s%s%s%s\n", ts, level_names[level],
		    thread_shard[0] ? "shard " : "", thread_shard, thread_shard[0] ? ": " : "",
		    esc);
	}
	fflush(stderr);
	errno = saved;
}

#define LOG_FN(name, level, with_errno)			\
void							\
name(const char *fmt, ...)				\
{							\
	va_list ap;					\
	va_start(ap, fmt);				\
	vlog(level, with_errno, fmt, ap);		\
	va_end(ap);					\
}

LOG_FN(log_error, LOG_LVL_ERROR, 0)
LOG_FN(log_warn, LOG_LVL_WARN, 1)
LOG_FN(log_warnx, LOG_LVL_WARN, 0)
LOG_FN(log_info, LOG_LVL_INFO, 0)
LOG_FN(log_debug, LOG_LVL_DEBUG, 0)
