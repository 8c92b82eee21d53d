#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"
#include "rurl.h"

static struct rurl u;
static char err[256];

/* Parse s into u; it must succeed. */
static void
parse_ok(const char *s)
{
	err[0] = '\0';
	ck_assert_msg(rurl_parse(s, &u, err, sizeof(err)) == 0, "%s: %s", s, err);
}

/* Parse s; it must fail. Returns the message. */
/* Host i of the URL's list is host:port. */
static void
host_is(int i, const char *host, int port)
{
	ck_assert_str_eq(u.hosts[i].host, host);
	ck_assert_int_eq(u.hosts[i].port, port);
}

static const char *
parse_err(const char *s)
{
	err[0] = '\0';
	ck_assert_msg(rurl_parse(s, &u, err, sizeof(err)) == -1, "%s was accepted", s);
	ck_assert_msg(err[0] != '\0', "%s: empty error message", s);
	return err;
}

static const char *
redacted(void)
{
	static char out[2048];

	rurl_format_redacted(&u, out, sizeof(out));
	return out;
}

START_TEST(host_only_gets_default_port_and_no_db)
{
	parse_ok("redis://cache");
	ck_assert_int_eq(u.is_unix, 0);
	ck_assert_str_eq(u.host, "cache");
	ck_assert_int_eq(u.port, 6379);
	ck_assert_int_eq(u.db, -1);
	ck_assert_str_eq(u.user, "");
	ck_assert_str_eq(u.password, "");
	ck_assert_int_eq(u.has_password, 0);
}
END_TEST

START_TEST(host_and_port)
{
	parse_ok("redis://10.0.0.5:6380");
	ck_assert_str_eq(u.host, "10.0.0.5");
	ck_assert_int_eq(u.port, 6380);
	ck_assert_int_eq(u.db, -1);
}
END_TEST

START_TEST(database_number)
{
	parse_ok("redis://cache:6380/5");
	ck_assert_int_eq(u.port, 6380);
	ck_assert_int_eq(u.db, 5);
	parse_ok("redis://cache/0");
	ck_assert_int_eq(u.port, 6379);
	ck_assert_int_eq(u.db, 0);
}
END_TEST

START_TEST(user_and_password)
{
	parse_ok("redis://app:s3cret@cache:6380/1");
	ck_assert_str_eq(u.user, "app");
	ck_assert_str_eq(u.password, "s3cret");
	ck_assert_int_eq(u.has_password, 1);
	ck_assert_str_eq(u.host, "cache");
	ck_assert_int_eq(u.port, 6380);
	ck_assert_int_eq(u.db, 1);
}
END_TEST

START_TEST(password_with_empty_user)
{
	parse_ok("redis://:s3cret@cache");
	ck_assert_str_eq(u.user, "");
	ck_assert_str_eq(u.password, "s3cret");
	ck_assert_int_eq(u.has_password, 1);
	ck_assert_str_eq(u.host, "cache");
}
END_TEST

START_TEST(empty_password_is_still_given)
{
	parse_ok("redis://:@cache");
	ck_assert_str_eq(u.password, "");
	ck_assert_int_eq(u.has_password, 1);
}
END_TEST

START_TEST(user_without_password)
{
	parse_ok("redis://app@cache");
	ck_assert_str_eq(u.user, "app");
	ck_assert_int_eq(u.has_password, 0);
}
END_TEST

START_TEST(credentials_are_percent_decoded)
{
	parse_ok("redis://me%2Bops:p%40ss%3a%2f@cache");
	ck_assert_str_eq(u.user, "me+ops");
	ck_assert_str_eq(u.password, "p@ss:/");
	ck_assert_str_eq(u.host, "cache");
}
END_TEST

START_TEST(raw_at_sign_in_password_splits_at_the_last_one)
{
	parse_ok("redis://:p@ss@cache");
	ck_assert_str_eq(u.password, "p@ss");
	ck_assert_str_eq(u.host, "cache");
}
END_TEST

START_TEST(ipv6_host_in_brackets)
{
	parse_ok("redis://[::1]:6380/2");
	ck_assert_str_eq(u.host, "::1");
	ck_assert_int_eq(u.port, 6380);
	ck_assert_int_eq(u.db, 2);
	ck_assert_str_eq(redacted(), "redis://[::1]:6380/2");
	parse_ok("redis://[fe80::1]");
	ck_assert_str_eq(u.host, "fe80::1");
	ck_assert_int_eq(u.port, 6379);
}
END_TEST

START_TEST(unix_socket)
{
	parse_ok("unix:///tmp/r.sock");
	ck_assert_int_eq(u.is_unix, 1);
	ck_assert_str_eq(u.path, "/tmp/r.sock");
	ck_assert_int_eq(u.db, -1);
	ck_assert_int_eq(u.has_password, 0);
}
END_TEST

START_TEST(unix_socket_with_credentials_and_db)
{
	parse_ok("unix://u:p@/tmp/r.sock?db=3");
	ck_assert_int_eq(u.is_unix, 1);
	ck_assert_str_eq(u.user, "u");
	ck_assert_str_eq(u.password, "p");
	ck_assert_int_eq(u.has_password, 1);
	ck_assert_str_eq(u.path, "/tmp/r.sock");
	ck_assert_int_eq(u.db, 3);
}
END_TEST

START_TEST(longest_socket_path_fits)
{
	char url[16 + RURL_PATH_MAX];
	char path[RURL_PATH_MAX];

	memset(path, 'a', sizeof(path) - 1);
	path[0] = '/';
	path[sizeof(path) - 1] = '\0';		/* 107 bytes + NUL = sun_path */
	snprintf(url, sizeof(url), "unix://%s", path);
	parse_ok(url);
	ck_assert_str_eq(u.path, path);
}
END_TEST

START_TEST(bad_scheme)
{
	ck_assert_ptr_nonnull(strstr(parse_err("http://cache:6379"), "redis://"));
	parse_err("cache:6379");
	parse_err("");
	parse_err("REDIS://cache");
}
END_TEST

START_TEST(tls_scheme)
{
	parse_ok("rediss://app:pw@cache.example:6380/2");
	ck_assert_int_eq(u.tls, 1);
	ck_assert_str_eq(u.host, "cache.example");
	ck_assert_int_eq(u.port, 6380);
	ck_assert_int_eq(u.db, 2);
	ck_assert_str_eq(redacted(), "rediss://app:(redacted)@cache.example:6380/2");
	parse_ok("redis://cache");
	ck_assert_int_eq(u.tls, 0);
	ck_assert_ptr_nonnull(strstr(parse_err("rediss://cache:0"), "port"));
	ck_assert_ptr_nonnull(strstr(parse_err("rediss://"), "host"));
	ck_assert_ptr_nonnull(strstr(parse_err("rediss:/cache"), "rediss://"));
}
END_TEST

START_TEST(bad_ports)
{
	ck_assert_ptr_nonnull(strstr(parse_err("redis://cache:0"), "port"));
	ck_assert_ptr_nonnull(strstr(parse_err("redis://cache:70000"), "port"));
	ck_assert_ptr_nonnull(strstr(parse_err("redis://cache:65536"), "port"));
	ck_assert_ptr_nonnull(strstr(parse_err("redis://cache:http"), "port"));
	ck_assert_ptr_nonnull(strstr(parse_err("redis://cache:63a9"), "port"));
	ck_assert_ptr_nonnull(strstr(parse_err("redis://cache:-1"), "port"));
	ck_assert_ptr_nonnull(strstr(parse_err("redis://cache:"), "port"));
	parse_ok("redis://cache:65535");
	ck_assert_int_eq(u.port, 65535);
}
END_TEST

START_TEST(bad_database_numbers)
{
	ck_assert_ptr_nonnull(strstr(parse_err("redis://cache/one"), "database"));
	ck_assert_ptr_nonnull(strstr(parse_err("redis://cache/-1"), "database"));
	ck_assert_ptr_nonnull(strstr(parse_err("redis://cache/1x"), "database"));
	parse_err("unix:///tmp/r.sock?db=x");
	parse_err("unix:///tmp/r.sock?db=");
	parse_err("unix:///tmp/r.sock?timeout=1");
}
END_TEST

START_TEST(missing_host)
{
	parse_err("redis://");
	parse_err("redis://:6379");
	parse_err("redis://u:p@/0");
	parse_err("redis://[]:6379");
	parse_err("redis://[::1");
}
END_TEST

START_TEST(unix_without_path)
{
	parse_err("unix://");
	parse_err("unix://u:p@");
	parse_err("unix://localhost");
	parse_err("unix://localhost/tmp/r.sock");	/* a host has no meaning here */
}
END_TEST

START_TEST(bad_percent_escapes)
{
	parse_err("redis://:p%zz@cache");
	parse_err("redis://:p%4@cache");
	parse_err("redis://:p%@cache");
	parse_err("redis://u%g1:p@cache");
}
END_TEST

START_TEST(socket_path_too_long)
{
	char url[32 + RURL_PATH_MAX];
	char path[RURL_PATH_MAX + 1];

	memset(path, 'a', sizeof(path) - 1);
	path[0] = '/';
	path[sizeof(path) - 1] = '\0';		/* 108 bytes: no room for the NUL */
	snprintf(url, sizeof(url), "unix://%s", path);
	ck_assert_ptr_nonnull(strstr(parse_err(url), "too long"));
}
END_TEST

/* "redis://USER:PASSWORD@cache" with a user and a password of these lengths. */
static const char *
url_with_credentials(size_t userlen, size_t pwlen)
{
	static char url[4 * RURL_CRED_MAX];
	size_t n = 0;

	n += (size_t)snprintf(url + n, sizeof(url) - n, "redis://");
	memset(url + n, 'u', userlen);
	n += userlen;
	url[n++] = ':';
	memset(url + n, 'p', pwlen);
	n += pwlen;
	snprintf(url + n, sizeof(url) - n, "@cache");
	return url;
}

START_TEST(longest_credentials_fit)
{
	parse_ok(url_with_credentials(RURL_CRED_MAX - 1, RURL_CRED_MAX - 1));
	ck_assert_uint_eq(strlen(u.user), RURL_CRED_MAX - 1);
	ck_assert_uint_eq(strlen(u.password), RURL_CRED_MAX - 1);
}
END_TEST

START_TEST(too_long_credentials_are_an_error_that_says_so)
{
	/* Cut, a password would fail in a way nobody could explain. */
	ck_assert_str_eq(parse_err(url_with_credentials(1, RURL_CRED_MAX)),
	    "password in URL is longer than 511 bytes");
	ck_assert_str_eq(parse_err(url_with_credentials(RURL_CRED_MAX, 1)),
	    "user name in URL is longer than 511 bytes");
}
END_TEST

START_TEST(nul_byte_in_credentials_is_an_error)
{
	/* AUTH would send only what comes before it. */
	ck_assert_str_eq(parse_err("redis://:pass%00word@cache"),
	    "password in URL contains a NUL byte (%00)");
	ck_assert_str_eq(parse_err("redis://us%00er:pw@cache"),
	    "user name in URL contains a NUL byte (%00)");
}
END_TEST

START_TEST(errors_never_echo_the_password)
{
	static const char *const bad[] = {
		"redis://u:hunter2@cache:0",
		"redis://u:hunter2@cache/x",
		"redis://u:hunter2%zz@cache",
		"redis://u:hunter2@",
		"unix://u:hunter2@/tmp/r.sock?db=x",
		"rediss://u:hunter2@cache:x",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(strstr(parse_err(bad[i]), "hunter2") == NULL, "%s -> %s",
		    bad[i], err);
}
END_TEST

START_TEST(redacted_form_hides_the_password)
{
	parse_ok("redis://app:hunter2@cache:6380/1");
	ck_assert_ptr_null(strstr(redacted(), "hunter2"));
	ck_assert_str_eq(redacted(), "redis://app:(redacted)@cache:6380/1");

	parse_ok("redis://:p%40hunter2@cache");
	ck_assert_ptr_null(strstr(redacted(), "hunter2"));
	ck_assert_str_eq(redacted(), "redis://:(redacted)@cache:6379");

	parse_ok("unix://u:hunter2@/tmp/r.sock?db=3");
	ck_assert_ptr_null(strstr(redacted(), "hunter2"));
	ck_assert_str_eq(redacted(), "unix://u:(redacted)@/tmp/r.sock?db=3");
}
END_TEST

START_TEST(redacted_form_without_credentials)
{
	parse_ok("redis://cache");
	ck_assert_str_eq(redacted(), "redis://cache:6379");
	parse_ok("redis://app@cache/2");
	ck_assert_str_eq(redacted(), "redis://app@cache:6379/2");
	parse_ok("unix:///tmp/r.sock");
	ck_assert_str_eq(redacted(), "unix:///tmp/r.sock");
}
END_TEST

START_TEST(sentinel_hosts_service_and_db)
{
	parse_ok("redis+sentinel://app:pw@s1,s2:26380,[::1]:26381/mymaster/3");
	ck_assert_int_eq(u.is_sentinel, 1);
	ck_assert_int_eq(u.tls, 0);
	ck_assert_int_eq(u.nhosts, 3);
	host_is(0, "s1", 26379);
	host_is(1, "s2", 26380);
	host_is(2, "::1", 26381);
	ck_assert_str_eq(u.service, "mymaster");
	ck_assert_int_eq(u.db, 3);
	/* The credentials are the data nodes'; the data node is not known yet. */
	ck_assert_str_eq(u.user, "app");
	ck_assert_str_eq(u.password, "pw");
	ck_assert_str_eq(u.host, "");
}
END_TEST

START_TEST(sentinel_defaults_and_tls)
{
	parse_ok("redis+sentinel://s1/svc");
	ck_assert_int_eq(u.nhosts, 1);
	ck_assert_int_eq(u.hosts[0].port, 26379);
	ck_assert_int_eq(u.db, -1);
	ck_assert_int_eq(u.has_password, 0);
	parse_ok("redis+sentinel://s1/svc/");
	ck_assert_int_eq(u.db, -1);
	parse_ok("rediss+sentinel://s1:1,s2:2/my%20svc");
	ck_assert_int_eq(u.tls, 1);
	ck_assert_int_eq(u.is_sentinel, 1);
	ck_assert_str_eq(u.service, "my svc");
}
END_TEST

START_TEST(sentinel_sixteen_hosts_fit_seventeen_do_not)
{
	char url[512] = "redis+sentinel://";

	for (int i = 1; i <= 16; i++)
		snprintf(url + strlen(url), sizeof(url) - strlen(url), "%sh%d", i > 1 ? "," : "", i);
	strcat(url, "/svc");
	parse_ok(url);
	ck_assert_int_eq(u.nhosts, 16);
	ck_assert_str_eq(u.hosts[15].host, "h16");
	memmove(url + 17 + 3, url + 17, strlen(url + 17) + 1);
	memcpy(url + 17, "h0,", 3);
	ck_assert_ptr_nonnull(strstr(parse_err(url), "more than 16 sentinels"));
}
END_TEST

START_TEST(sentinel_url_errors)
{
	ck_assert_ptr_nonnull(strstr(parse_err("redis+sentinel://s1"), "service name"));
	ck_assert_ptr_nonnull(strstr(parse_err("redis+sentinel://s1/"), "service name"));
	ck_assert_ptr_nonnull(strstr(parse_err("redis+sentinel://s1//0"), "service name"));
	ck_assert_ptr_nonnull(strstr(parse_err("redis+sentinel:///svc"), "host"));
	ck_assert_ptr_nonnull(strstr(parse_err("redis+sentinel://s1,,s2/svc"), "host"));
	ck_assert_ptr_nonnull(strstr(parse_err("redis+sentinel://s1,/svc"), "host"));
	ck_assert_ptr_nonnull(strstr(parse_err("redis+sentinel://s1:0/svc"), "port"));
	ck_assert_ptr_nonnull(strstr(parse_err("redis+sentinel://s1:x/svc"), "port"));
	ck_assert_ptr_nonnull(strstr(parse_err("redis+sentinel://[::1/svc"), "IPv6"));
	ck_assert_ptr_nonnull(strstr(parse_err("redis+sentinel://s1/svc/x"), "database"));
	ck_assert_ptr_nonnull(strstr(parse_err("redis+sentinel://s1/svc?db=1"), "query"));
	ck_assert_ptr_nonnull(strstr(parse_err("redis+sentinel://s1/a%00b"), "service name"));
	ck_assert_ptr_null(strstr(parse_err("redis+sentinel://u:hunter2@s1:x/svc"), "hunter2"));
}
END_TEST

START_TEST(sentinel_redacted_form)
{
	parse_ok("rediss+sentinel://app:hunter2@s1,[::1]:26380/svc/2");
	ck_assert_str_eq(redacted(), "rediss+sentinel://app:(redacted)@s1:26379,[::1]:26380/svc/2");
	parse_ok("redis+sentinel://s1/svc");
	ck_assert_str_eq(redacted(), "redis+sentinel://s1:26379/svc");
}
END_TEST

START_TEST(cluster_seeds_and_credentials)
{
	parse_ok("redis+cluster://app:pw@n1,n2:7001,[::1]:7002");
	ck_assert_int_eq(u.is_cluster, 1);
	ck_assert_int_eq(u.is_sentinel, 0);
	ck_assert_int_eq(u.tls, 0);
	ck_assert_int_eq(u.nhosts, 3);
	host_is(0, "n1", 6379);
	host_is(1, "n2", 7001);
	host_is(2, "::1", 7002);
	ck_assert_str_eq(u.user, "app");
	ck_assert_str_eq(u.password, "pw");
	ck_assert_str_eq(u.host, "");	/* the node is found by discovery */
	ck_assert_int_eq(u.db, -1);
	parse_ok("rediss+cluster://:pw@n1");
	ck_assert_int_eq(u.tls, 1);
	ck_assert_int_eq(u.is_cluster, 1);
	ck_assert_int_eq(u.has_password, 1);
	ck_assert_int_eq(u.nhosts, 1);
}
END_TEST

START_TEST(cluster_url_errors)
{
	ck_assert_ptr_nonnull(strstr(parse_err("redis+cluster://n1/0"), "only database 0"));
	ck_assert_ptr_nonnull(strstr(parse_err("redis+cluster://n1/"), "only database 0"));
	ck_assert_ptr_nonnull(strstr(parse_err("redis+cluster://n1?x=1"), "query"));
	ck_assert_ptr_nonnull(strstr(parse_err("redis+cluster://"), "host"));
	ck_assert_ptr_nonnull(strstr(parse_err("redis+cluster://n1,,n2"), "host"));
	ck_assert_ptr_nonnull(strstr(parse_err("redis+cluster://n1:70000"), "port"));
	ck_assert_ptr_nonnull(strstr(parse_err("redis+sentinel+cluster://n1/svc"),
	    "exclude each other"));
	ck_assert_ptr_nonnull(strstr(parse_err("rediss+cluster+sentinel://n1"),
	    "exclude each other"));
	ck_assert_ptr_null(strstr(parse_err("redis+cluster://u:hunter2@n1:x"), "hunter2"));
}
END_TEST

START_TEST(cluster_seventeen_seeds_do_not_fit)
{
	char url[512] = "redis+cluster://";

	for (int i = 1; i <= 16; i++)
		snprintf(url + strlen(url), sizeof(url) - strlen(url), "%sh%d", i > 1 ? "," : "", i);
	parse_ok(url);
	ck_assert_int_eq(u.nhosts, 16);
	strcat(url, ",h17");
	ck_assert_ptr_nonnull(strstr(parse_err(url), "more than 16 cluster seeds"));
}
END_TEST

START_TEST(cluster_redacted_form)
{
	parse_ok("rediss+cluster://app:hunter2@n1,[::1]:7001");
	ck_assert_str_eq(redacted(), "rediss+cluster://app:(redacted)@n1:6379,[::1]:7001");
	parse_ok("redis+cluster://n1:7000");
	ck_assert_str_eq(redacted(), "redis+cluster://n1:7000");
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("rurl");
	TCase *ok = tcase_create("parse");
	TCase *bad = tcase_create("errors");
	TCase *fmt = tcase_create("redacted");

	tcase_add_test(ok, host_only_gets_default_port_and_no_db);
	tcase_add_test(ok, host_and_port);
	tcase_add_test(ok, database_number);
	tcase_add_test(ok, user_and_password);
	tcase_add_test(ok, password_with_empty_user);
	tcase_add_test(ok, empty_password_is_still_given);
	tcase_add_test(ok, user_without_password);
	tcase_add_test(ok, credentials_are_percent_decoded);
	tcase_add_test(ok, raw_at_sign_in_password_splits_at_the_last_one);
	tcase_add_test(ok, ipv6_host_in_brackets);
	tcase_add_test(ok, unix_socket);
	tcase_add_test(ok, unix_socket_with_credentials_and_db);
	tcase_add_test(ok, longest_socket_path_fits);
	tcase_add_test(ok, longest_credentials_fit);
	tcase_add_test(ok, sentinel_hosts_service_and_db);
	tcase_add_test(ok, sentinel_defaults_and_tls);
	tcase_add_test(ok, cluster_seeds_and_credentials);
	suite_add_tcase(s, ok);

	tcase_add_test(bad, bad_scheme);
	tcase_add_test(ok, tls_scheme);
	tcase_add_test(bad, bad_ports);
	tcase_add_test(bad, bad_database_numbers);
	tcase_add_test(bad, missing_host);
	tcase_add_test(bad, unix_without_path);
	tcase_add_test(bad, bad_percent_escapes);
	tcase_add_test(bad, socket_path_too_long);
	tcase_add_test(bad, errors_never_echo_the_password);
	tcase_add_test(bad, too_long_credentials_are_an_error_that_says_so);
	tcase_add_test(bad, nul_byte_in_credentials_is_an_error);
	tcase_add_test(bad, sentinel_sixteen_hosts_fit_seventeen_do_not);
	tcase_add_test(bad, sentinel_url_errors);
	tcase_add_test(bad, cluster_url_errors);
	tcase_add_test(bad, cluster_seventeen_seeds_do_not_fit);
	suite_add_tcase(s, bad);

	tcase_add_test(fmt, redacted_form_hides_the_password);
	tcase_add_test(fmt, redacted_form_without_credentials);
	tcase_add_test(fmt, sentinel_redacted_form);
	tcase_add_test(fmt, cluster_redacted_form);
	suite_add_tcase(s, fmt);

	return unit_run(s);
}
