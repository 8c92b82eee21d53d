#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"
#include "metrics.h"

static int
split(const char *listen, char *host, char *port)
{
	return metrics_split_listen(listen, host, 256, port, 16);
}

START_TEST(host_and_port)
{
	char host[256], port[16];

	ck_assert_int_eq(split("127.0.0.1:9100", host, port), 0);
	ck_assert_str_eq(host, "127.0.0.1");
	ck_assert_str_eq(port, "9100");
	ck_assert_int_eq(split("metrics.local:80", host, port), 0);
	ck_assert_str_eq(host, "metrics.local");
	ck_assert_str_eq(port, "80");
}
END_TEST

START_TEST(every_interface)
{
	char host[256], port[16];

	ck_assert_int_eq(split(":9100", host, port), 0);
	ck_assert_str_eq(host, "");
	ck_assert_str_eq(port, "9100");
}
END_TEST

START_TEST(bracketed_ipv6)
{
	char host[256], port[16];

	ck_assert_int_eq(split("[::1]:9100", host, port), 0);
	ck_assert_str_eq(host, "::1");
	ck_assert_str_eq(port, "9100");
	ck_assert_int_eq(split("[::]:1", host, port), 0);
	ck_assert_str_eq(host, "::");
	ck_assert_str_eq(port, "1");
}
END_TEST

START_TEST(no_port_is_refused)
{
	char host[256], port[16];

	ck_assert_int_eq(split("127.0.0.1", host, port), -1);
	ck_assert_int_eq(split("127.0.0.1:", host, port), -1);
	ck_assert_int_eq(split("[::1]", host, port), -1);
	ck_assert_int_eq(split("[::1]9100", host, port), -1);
	ck_assert_int_eq(split("[::1:9100", host, port), -1);
	ck_assert_int_eq(split("", host, port), -1);
}
END_TEST

START_TEST(bare_ipv6_splits_at_the_last_colon)
{
	char host[256], port[16];

	/* Without brackets the last colon is the port's: documented as [v6]:port. */
	ck_assert_int_eq(split("::1:9100", host, port), 0);
	ck_assert_str_eq(host, "::1");
	ck_assert_str_eq(port, "9100");
}
END_TEST

START_TEST(render_fits_and_names_the_families)
{
	char *buf = malloc(METRICS_RENDER_MAX);
	size_t n;

	ck_assert_ptr_nonnull(buf);
	metrics_init(0, 1000);
	metrics_cycle(MC_OK, 10, 2, 0, 8, 0.5);
	n = metrics_render(buf, METRICS_RENDER_MAX);
	ck_assert_uint_gt(n, 0);
	ck_assert_uint_lt(n, METRICS_RENDER_MAX);
	ck_assert_ptr_nonnull(strstr(buf, "presence_reaper_users_removed_total 2\n"));
	ck_assert_ptr_nonnull(strstr(buf, "presence_reaper_cycles_total{result=\"ok\"} 1\n"));
	free(buf);
}
END_TEST

START_TEST(label_values_are_escaped)
{
	char out[64];

	ck_assert_str_eq(metrics_label("a\\b\"c\nd", out, sizeof(out)), "a\\\\b\\\"c\\nd");
	ck_assert_str_eq(metrics_label("0123456789", out, 6), "012");
}
END_TEST

START_TEST(endpoint_and_failovers_are_rendered)
{
	char *buf = malloc(METRICS_RENDER_MAX);

	ck_assert_ptr_nonnull(buf);
	metrics_endpoint("10.0.0.1:6379", 1, "primary");
	metrics_failover();
	metrics_render(buf, METRICS_RENDER_MAX);
	ck_assert_ptr_nonnull(strstr(buf, "presence_reaper_redis_endpoint_info{address=\"10.0.0.1:6379\","
	    "tls=\"true\",role=\"primary\"} 1\n"));
	ck_assert_ptr_nonnull(strstr(buf, "presence_reaper_redis_failovers_total 1\n"));
	free(buf);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("metrics");
	TCase *tc = tcase_create("listen");

	tcase_add_test(tc, host_and_port);
	tcase_add_test(tc, every_interface);
	tcase_add_test(tc, bracketed_ipv6);
	tcase_add_test(tc, no_port_is_refused);
	tcase_add_test(tc, bare_ipv6_splits_at_the_last_colon);
	tcase_add_test(tc, render_fits_and_names_the_families);
	tcase_add_test(tc, label_values_are_escaped);
	tcase_add_test(tc, endpoint_and_failovers_are_rendered);
	suite_add_tcase(s, tc);
	return unit_run(s);
}
