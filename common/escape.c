#include "escape.h"

#include <string.h>

/*
 * The one escaper behind escape_id and escape_ctl. ctl_only leaves backslash
 * and bytes >= 0x80 alone: text that is already meant to be read (a log
 * message) keeps its UTF-8 and its backslashes, and only loses its power to
 * break a line or drive a terminal.
 */
static size_t
escape(char *out, size_t outsz, const char *s, size_t len, int ctl_only)
{
	static const char hex[] = "0123456789abcdef";
	size_t need = 0, o = 0;
	int full = outsz == 0;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		char tmp[4];
		size_t n = 2;

		tmp[0] = '\\';
		if (c == '\\' && !ctl_only) {
			tmp[1] = '\\';
		} else if (c == '\n') {
			tmp[1] = 'n';
		} else if (c == '\r') {
			tmp[1] = 'r';
		} else if (c == '\t') {
			tmp[1] = 't';
		} else if (c < 0x20 || c == 0x7f || (c > 0x7f && !ctl_only)) {
			tmp[1] = 'x';
			tmp[2] = hex[c >> 4];
			tmp[3] = hex[c & 0xf];
			n = 4;
		} else {
			tmp[0] = (char)c;
			n = 1;
		}
		/* Never split an escape: stop writing at the first that does not fit. */
		if (!full && o + n < outsz) {
			memcpy(out + o, tmp, n);
			o += n;
		} else {
			full = 1;
		}
		need += n;
	}
	if (outsz > 0)
		out[o] = '\0';
	return need;
}

size_t
escape_id(char *out, size_t outsz, const char *s, size_t len)
{
	return escape(out, outsz, s, len, 0);
}

size_t
escape_ctl(char *out, size_t outsz, const char *s, size_t len)
{
	return escape(out, outsz, s, len, 1);
}
