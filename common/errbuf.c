#include "errbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void
errbuf_add(char *err, size_t errlen, const char *fmt, ...)
{
	size_t n = strnlen(err, errlen);
	va_list ap;

	if (n + 3 >= errlen)
		return;
	if (n > 0) {
		memcpy(err + n, "; ", 3);
		n += 2;
	}
	va_start(ap, fmt);
	vsnprintf(err + n, errlen - n, fmt, ap);
	va_end(ap);
}
