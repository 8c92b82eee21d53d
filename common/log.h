/*
 * log: leveled logging to stderr, text or one JSON object per line.
 * Shaped like OpenBSD ntpd's log.c: log_warn() appends strerror(errno),
 * the *x variants do not. Every message is one line in either format: the
 * text format escapes control bytes (escape_ctl: "\n", "\x1b"), the JSON
 * format escapes them as JSON does, so nothing a message quotes can forge
 * a line or drive a terminal.
 */
#ifndef PR_LOG_H
#define PR_LOG_H

#include <stddef.h>

enum log_level { LOG_LVL_ERROR, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };
enum log_format { LOG_FMT_TEXT, LOG_FMT_JSON };

#define LOG_PRINTF(a, b) __attribute__((format(printf, a, b)))

void log_init(enum log_level level, enum log_format format);
void log_set_level(enum log_level level);
void log_set_format(enum log_format format);

/*
 * Lines the calling thread logs from now on name this shard ("shard NAME: "
 * in text, a "shard" field in JSON); NULL or "" for none. name is printed
 * as it is: [A-Za-z0-9_.-] only (conftab.h, CONFTAB_NAMES).
 */
void log_set_thread_shard(const char *name);
enum log_level log_get_level(void);

/* Parse "error|warn|info|debug" / "text|json"; return 0 or -1. */
int log_level_parse(const char *s, enum log_level *out);
int log_format_parse(const char *s, enum log_format *out);

void log_error(const char *fmt, ...) LOG_PRINTF(1, 2);
void log_warn(const char *fmt, ...) LOG_PRINTF(1, 2);
void log_warnx(const char *fmt, ...) LOG_PRINTF(1, 2);
void log_info(const char *fmt, ...) LOG_PRINTF(1, 2);
void log_debug(const char *fmt, ...) LOG_PRINTF(1, 2);

/*
 * Append s to out as the body of a JSON string (no quotes), escaping quotes,
 * backslashes, control bytes and bytes >= 0x80 (as \u00XX, so any byte string
 * yields valid JSON). Returns the length written, excluding the NUL; output is
 * truncated to fit outsz.
 */
size_t log_json_escape(char *out, size_t outsz, const char *s, size_t len);

#endif
