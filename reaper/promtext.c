#include "promtext.h"

#include <stdarg.h>
#include <stdio.h>

void
promtext_emit(struct promtext *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (o->len + 1 >= o->sz)
		return;
	va_start(ap, fmt);
	n = vsnprintf(o->buf + o->len, o->sz - o->len, fmt, ap);
	va_end(ap);
	if (n > 0)
		o->len = o->len + (size_t)n < o->sz ? o->len + (size_t)n : o->sz - 1;
}

void
promtext_family(struct promtext *o, const char *name, const char *type, const char *help)
{
	promtext_emit(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}
