/*
 * rurl_parse on any text, every scheme; then what it parsed through
 * rurl_format_redacted, into buffers of several sizes. Checks the header's
 * promises: fields NUL-terminated and in range, the password never in the
 * rendering, and a rendering without credentials parsed back to the same
 * endpoint.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "rurl.h"

#define FUZZ_URL_MAX 8192

static int
terminated(const char *s, size_t sz)
{
	return memchr(s, '\0', sz) != NULL;
}

static int
port_ok(int port)
{
	return port >= 1 && port <= 65535;
}

/* What a successful parse promises, field by field. */
static void
check_fields(const struct rurl *u)
{
	int kinds = u->is_unix + u->is_sentinel + u->is_cluster;

	FUZZ_CHECK(kinds <= 1);
	FUZZ_CHECK(terminated(u->host, sizeof(u->host)));
	FUZZ_CHECK(terminated(u->path, sizeof(u->path)));
	FUZZ_CHECK(terminated(u->user, sizeof(u->user)));
	FUZZ_CHECK(terminated(u->password, sizeof(u->password)));
	FUZZ_CHECK(terminated(u->service, sizeof(u->service)));
	FUZZ_CHECK(u->has_password || u->password[0] == '\0');
	FUZZ_CHECK(u->db >= -1 && u->db <= 1000000);
	FUZZ_CHECK(u->nhosts >= 0 && u->nhosts <= RURL_HOSTS_MAX);
	if (u->is_unix) {
		FUZZ_CHECK(u->path[0] == '/' && u->host[0] == '\0' && !u->tls);
	} else if (u->is_sentinel || u->is_cluster) {
		FUZZ_CHECK(u->nhosts >= 1 && u->host[0] == '\0');
		FUZZ_CHECK(!u->is_sentinel || u->service[0] != '\0');
		FUZZ_CHECK(!u->is_cluster || u->db == -1);
	} else {
		FUZZ_CHECK(u->host[0] != '\0' && port_ok(u->port) && u->nhosts == 0);
	}
	for (int i = 0; i < u->nhosts; i++) {
		FUZZ_CHECK(terminated(u->hosts[i].host, sizeof(u->hosts[i].host)));
		FUZZ_CHECK(u->hosts[i].host[0] != '\0' && port_ok(u->hosts[i].port));
	}
}

/* The rendering into exactly outsz bytes: terminated, a prefix of the whole. */
static void
check_cut(const struct rurl *u, const char *whole, size_t outsz)
{
	char *out = malloc(outsz);
	size_t n;

	FUZZ_CHECK(out != NULL);
	rurl_format_redacted(u, out, outsz);
	FUZZ_CHECK(terminated(out, outsz));
	n = strlen(out);
	FUZZ_CHECK(strncmp(out, whole, n) == 0);
	FUZZ_CHECK(n == outsz - 1 || whole[n] == '\0');
	free(out);
}

/*
 * A host that reads back as another: "[[]" parses to the host "[", shown
 * as it is, which reads as an unterminated IPv6 address. No name or
 * address starts with '[', and the connection fails on it with its name.
 */
static int
odd_host(const struct rurl *u)
{
	int odd = u->host[0] == '[';

	for (int i = 0; i < u->nhosts; i++)
		odd |= u->hosts[i].host[0] == '[';
	return odd;
}

/* Parsed back, a rendering without credentials names the same endpoint. */
static void
check_round_trip(const struct rurl *u, const char *whole)
{
	static struct rurl back;
	char err[256];

	if (u->user[0] || u->has_password || u->is_sentinel || odd_host(u))
		return;		/* "(redacted)"; a service is shown decoded */
	FUZZ_CHECK(rurl_parse(whole, &back, err, sizeof(err)) == 0);
	FUZZ_CHECK(back.is_unix == u->is_unix && back.is_cluster == u->is_cluster);
	FUZZ_CHECK(back.tls == u->tls && back.nhosts == u->nhosts);
	FUZZ_CHECK(strcmp(back.host, u->host) == 0 && strcmp(back.path, u->path) == 0);
	FUZZ_CHECK(back.db == u->db);
	FUZZ_CHECK(u->is_unix || back.port == u->port);
	for (int i = 0; i < u->nhosts; i++)
		FUZZ_CHECK(strcmp(back.hosts[i].host, u->hosts[i].host) == 0 &&
		    back.hosts[i].port == u->hosts[i].port);
}

static void
check_redacted(const struct rurl *u)
{
	static struct rurl other;
	static char whole[FUZZ_URL_MAX], again[FUZZ_URL_MAX];
	static const size_t cuts[] = { 1, 2, 9, 17, 64, 300 };

	rurl_format_redacted(u, whole, sizeof(whole));
	FUZZ_CHECK(terminated(whole, sizeof(whole)));
	for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++)
		check_cut(u, whole, cuts[i]);
	/* The rendering does not depend on the password at all. */
	other = *u;
	memset(other.password, 'x', sizeof(other.password) - 1);
	other.password[sizeof(other.password) - 1] = '\0';
	rurl_format_redacted(&other, again, sizeof(again));
	FUZZ_CHECK(strcmp(whole, again) == 0);
	check_round_trip(u, whole);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct rurl u;
	char *s = malloc(size + 1), err[256];

	FUZZ_CHECK(s != NULL);
	memcpy(s, data, size);
	s[size] = '\0';
	memset(err, 0x55, sizeof(err));
	if (rurl_parse(s, &u, err, sizeof(err)) == 0) {
		check_fields(&u);
		check_redacted(&u);
	} else {
		FUZZ_CHECK(terminated(err, sizeof(err)) && err[0] != '\0');
	}
	free(s);
	return 0;
}
