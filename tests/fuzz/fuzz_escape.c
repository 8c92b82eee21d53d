/*
 * escape_id and escape_ctl on any bytes, into an output buffer of any
 * size (the first two input bytes; the rest is the ID). Checks the
 * header's promises: the result NUL-terminated within outsz, the length
 * returned that of the whole escape, a cut output a prefix of the whole
 * that never splits an escape, no control byte in either output, and
 * escape_id's output printable ASCII that decodes back to the ID.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "escape.h"
#include "fuzz.h"

typedef size_t escape_fn(char *out, size_t outsz, const char *s, size_t len);

/* Bytes the escape of c takes (escape.h's rules). */
static size_t
escape_len(unsigned char c, int ctl_only)
{
	if (c == '\n' || c == '\r' || c == '\t' || (c == '\\' && !ctl_only))
		return 2;
	if (c < 0x20 || c == 0x7f || (c > 0x7f && !ctl_only))
		return 4;
	return 1;
}

/* One digit of a "\\xHH" escape: lower-case hex. */
static int
hexdigit(char c)
{
	const char *digits = "0123456789abcdef", *p = c ? strchr(digits, c) : NULL;

	FUZZ_CHECK(p != NULL);
	return (int)(p - digits);
}

/* escape_id's output read back: the ID's bytes into out; their count. */
static size_t
unescape(const char *s, size_t len, char *out)
{
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		if (s[i] != '\\') {
			out[o++] = s[i];
			continue;
		}
		FUZZ_CHECK(i + 1 < len);
		switch (s[++i]) {
		case '\\': out[o++] = '\\'; break;
		case 'n': out[o++] = '\n'; break;
		case 'r': out[o++] = '\r'; break;
		case 't': out[o++] = '\t'; break;
		case 'x':
			FUZZ_CHECK(i + 2 < len);
			out[o++] = (char)(hexdigit(s[i + 1]) << 4 | hexdigit(s[i + 2]));
			i += 2;
			break;
		default:
			FUZZ_CHECK(!"unknown escape");
		}
	}
	return o;
}

static void
check(escape_fn *fn, int ctl_only, const char *id, size_t len, size_t outsz)
{
	char *whole = malloc(4 * len + 1), *out = malloc(outsz ? outsz : 1);
	size_t need, n, at = 0, next = 0;

	FUZZ_CHECK(whole != NULL && out != NULL);
	need = fn(whole, 4 * len + 1, id, len);
	FUZZ_CHECK(need <= 4 * len && strlen(whole) == need);
	for (size_t i = 0; i < need; i++) {
		unsigned char c = (unsigned char)whole[i];

		FUZZ_CHECK(c >= 0x20 && c != 0x7f);
		FUZZ_CHECK(ctl_only || c < 0x80);
	}
	out[0] = 'x';
	FUZZ_CHECK(fn(out, outsz, id, len) == need);
	if (outsz == 0) {
		FUZZ_CHECK(out[0] == 'x');	/* nothing written */
		goto done;
	}
	FUZZ_CHECK(memchr(out, '\0', outsz) != NULL);
	n = strlen(out);
	FUZZ_CHECK(n <= need && memcmp(out, whole, n) == 0);
	/* Cut only between two escapes, and only where the next would not fit. */
	while (next < len && at < n)
		at += escape_len((unsigned char)id[next++], ctl_only);
	FUZZ_CHECK(at == n);
	FUZZ_CHECK(next == len || n + escape_len((unsigned char)id[next], ctl_only) >= outsz);
	if (!ctl_only) {
		char *back = malloc(len ? len : 1);

		FUZZ_CHECK(back != NULL);
		FUZZ_CHECK(unescape(whole, need, back) == len && memcmp(back, id, len) == 0);
		free(back);
	}
done:
	free(whole);
	free(out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t outsz;

	if (size < 2)
		return 0;
	outsz = (size_t)data[0] << 2 | (data[1] & 3);	/* 0..1023 */
	check(escape_id, 0, (const char *)data + 2, size - 2, outsz);
	check(escape_ctl, 1, (const char *)data + 2, size - 2, outsz);
	return 0;
}
