#include "escape.h"

#include <string.h>

size_t
escape_id(char *out, size_t outsz, const char *s, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	size_t need = 0, o = 0;
	int full = outsz == 0;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		char tmp[4];
		size_t n = 2;

		tmp[0] = '\\';
		switch (c) {
		case '\\': tmp[1] = '\\'; break;
		case '\n': tmp[1] = 'n'; break;
		case '\r': tmp[1] = 'r'; break;
		case '\t': tmp[1] = 't'; break;
		default:
			if (c < 0x20 || c >= 0x7f) {
				tmp[1] = 'x';
				tmp[2] = hex[c >> 4];
				tmp[3] = hex[c & 0xf];
				n = 4;
			} else {
				tmp[0] = (char)c;
				n = 1;
			}
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
