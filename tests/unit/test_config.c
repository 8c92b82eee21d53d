#include <check.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "unit.h"
#include "settings.h"

/*
 * Each test gets fresh defaults in cfg, an empty err and its own temporary
 * folder; the environment variables the loader reads are cleared.
 */
static struct cfg cfg;
static char err[CFG_ERR_MAX];
static char tmpdir[64];
static char created[16][PATH_MAX];	/* removed in reverse order */
static int ncreated;
static char oldcwd[PATH_MAX];
static const char *conf_path;		/* the file load() wrote */

static const char *const env_vars[] = {
	"PRESENCE_REAPER_REDIS_URL", "REDIS_URL", "PRESENCE_REAPER_REDIS_PASSWORD",
	"POD_NAME",
};

static void
setup(void)
{
	for (size_t i = 0; i < sizeof(env_vars) / sizeof(env_vars[0]); i++)
		unsetenv(env_vars[i]);
	ck_assert_ptr_nonnull(getcwd(oldcwd, sizeof(oldcwd)));
	strcpy(tmpdir, "/tmp/test_config.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
	ncreated = 0;
	cfg_defaults(&cfg);
	err[0] = '\0';
}

static void
teardown(void)
{
	cfg_free(&cfg);
	while (ncreated > 0)
		remove(created[--ncreated]);
	rmdir(tmpdir);
	ck_assert_int_eq(chdir(oldcwd), 0);
}

/* Full path of name inside the test's folder, remembered for cleanup. */
static const char *
tmp_path(const char *name)
{
	char *p;

	ck_assert_int_lt(ncreated, 16);
	p = created[ncreated++];
	snprintf(p, PATH_MAX, "%s/%s", tmpdir, name);
	return p;
}

static const char *
write_file(const char *name, const char *text, mode_t mode)
{
	const char *path = tmp_path(name);
	FILE *f = fopen(path, "w");

	ck_assert_ptr_nonnull(f);
	ck_assert_int_ge(fputs(text, f), 0);
	ck_assert_int_eq(fclose(f), 0);
	ck_assert_int_eq(chmod(path, mode), 0);
	return path;
}

static void
make_dir(const char *name)
{
	ck_assert_int_eq(mkdir(tmp_path(name), 0700), 0);
}

/* Write text as the test's config file (owner-only) and load it. */
static int
load(const char *text)
{
	conf_path = write_file("test.conf", text, 0600);
	return cfg_load(&cfg, conf_path, 0, err, sizeof(err));
}

static int
load_fixture(const char *name)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", FIXTURES, name);
	return cfg_load(&cfg, path, 0, err, sizeof(err));
}

/* Does err hold "FILE:LINE: text"? */
static int
err_has(const char *file, int line, const char *text)
{
	char want[PATH_MAX + 512];

	snprintf(want, sizeof(want), "%s:%d: %s", file, line, text);
	return strstr(err, want) != NULL;
}

#define ck_assert_err(file, line, text) \
	ck_assert_msg(err_has(file, line, text), \
	    "expected \"%s:%d: %s\" in the errors:\n%s", file, line, text, err)

static int
err_lines(void)
{
	int n = 0;

	for (const char *p = err; *p; p++)
		n += *p == '\n';
	return n;
}

/* Load text that must fail with exactly one error: "FILE:LINE: text". */
static void
load_fails_with(const char *text, int line, const char *msg)
{
	ck_assert_int_eq(load(text), -1);
	ck_assert_err(conf_path, line, msg);
	ck_assert_msg(err_lines() == 1, "expected one error, got:\n%s", err);
}

/* What the library wrote to stderr between capture_start and capture_end. */
static char captured[4096];
static int capture_saved = -1, capture_fd = -1;

static void
capture_start(void)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/stderr.txt", tmpdir);
	fflush(stderr);
	capture_saved = dup(STDERR_FILENO);
	capture_fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	ck_assert_int_ge(capture_fd, 0);
	unlink(path);		/* the open descriptor is all we need */
	dup2(capture_fd, STDERR_FILENO);
}

static void
capture_end(void)
{
	ssize_t n;

	fflush(stderr);
	dup2(capture_saved, STDERR_FILENO);
	close(capture_saved);
	n = pread(capture_fd, captured, sizeof(captured) - 1, 0);
	captured[n > 0 ? n : 0] = '\0';
	close(capture_fd);
}

/* Capture what the library writes to stderr while loading text. */
static int
load_capturing_stderr(const char *text, mode_t mode)
{
	int rc;

	conf_path = write_file("test.conf", text, mode);
	capture_start();
	rc = cfg_load(&cfg, conf_path, 0, err, sizeof(err));
	capture_end();
	return rc;
}

/* cfg_finalize, capturing what the library writes to stderr. */
static int
finalize_capturing_stderr(void)
{
	int rc;

	capture_start();
	rc = cfg_finalize(&cfg, err, sizeof(err));
	capture_end();
	return rc;
}

/* A string of n copies of ch (at most 1023), in one of two static buffers. */
static const char *
repeat(char ch, size_t n)
{
	static char buf[2][1024];
	static int which;
	char *b = buf[which ^= 1];

	ck_assert_uint_lt(n, sizeof(buf[0]));
	memset(b, ch, n);
	b[n] = '\0';
	return b;
}

START_TEST(defaults_match_the_contract)
{
	ck_assert_str_eq(cfg.redis_url, "redis://127.0.0.1:6379/0");
	ck_assert_str_eq(cfg.redis_username, "");
	ck_assert_str_eq(cfg.redis_password, "");
	ck_assert_str_eq(cfg.redis_password_file, "");
	ck_assert_int_eq(cfg.redis_db, -1);
	ck_assert_double_eq(cfg.connect_timeout, 2);
	ck_assert_double_eq(cfg.command_timeout, 2);
	ck_assert_str_eq(cfg.online_set, "presence:online-users");
	ck_assert_str_eq(cfg.socket_prefix, "presence:user:");
	ck_assert_str_eq(cfg.socket_suffix, ":sockets");
	ck_assert_double_eq(cfg.interval, 30);
	ck_assert_int_eq(cfg.batch_size, 500);
	ck_assert_double_eq(cfg.max_stale_ratio, 0.9);
	ck_assert_int_eq(cfg.guard_min_users, 100);
	ck_assert_str_eq(cfg.leader_key, "presence:reaper:leader");
	ck_assert_double_eq(cfg.lease, 15);
	ck_assert_double_eq(cfg.renew, 5);
	ck_assert_str_eq(cfg.identity, "");
	ck_assert_str_eq(cfg.log_level, "info");
	ck_assert_str_eq(cfg.log_format, "text");
	ck_assert_ptr_null(cfg.path);
	ck_assert_ptr_null(cfg.env_password);
}
END_TEST

START_TEST(full_valid_file_sets_every_setting)
{
	ck_assert_msg(load_fixture("valid.conf") == 0, "errors:\n%s", err);
	ck_assert_str_eq(err, "");
	ck_assert_str_eq(cfg.path, FIXTURES "/valid.conf");
	ck_assert_str_eq(cfg.redis_url, "redis://cache.internal:6380/3");
	ck_assert_str_eq(cfg.redis_username, "reaper");
	ck_assert_str_eq(cfg.redis_password, "");
	ck_assert_str_eq(cfg.redis_password_file, "/run/secrets/redis-password");
	ck_assert_int_eq(cfg.redis_db, 4);
	ck_assert_double_eq(cfg.connect_timeout, 1.5);
	ck_assert_double_eq(cfg.command_timeout, 3);
	ck_assert_str_eq(cfg.online_set, "chat:online");
	ck_assert_str_eq(cfg.socket_prefix, "chat:u:");
	ck_assert_str_eq(cfg.socket_suffix, "");
	ck_assert_double_eq(cfg.interval, 10);
	ck_assert_int_eq(cfg.batch_size, 1000);
	ck_assert_double_eq(cfg.max_stale_ratio, 0.5);
	ck_assert_int_eq(cfg.guard_min_users, 0);
	ck_assert_str_eq(cfg.leader_key, "chat:reaper:lock");
	ck_assert_double_eq(cfg.lease, 20);
	ck_assert_double_eq(cfg.renew, 4.5);
	ck_assert_str_eq(cfg.identity, "reaper-a");
	ck_assert_str_eq(cfg.log_level, "debug");
	ck_assert_str_eq(cfg.log_format, "json");
}
END_TEST

START_TEST(relative_include_resolves_against_the_files_folder)
{
	ck_assert_int_eq(chdir("/"), 0);
	ck_assert_msg(load_fixture("include.conf") == 0, "errors:\n%s", err);
	ck_assert_str_eq(cfg.online_set, "included:online");	/* from sub/part.conf */
	ck_assert_double_eq(cfg.lease, 30);
	ck_assert_double_eq(cfg.renew, 10);
	ck_assert_int_eq(cfg.batch_size, 250);			/* from include.conf */
}
END_TEST

START_TEST(error_in_included_file_names_that_file)
{
	/* Matches the include as written or resolved; never the main file. */
	make_dir("sub");
	write_file("sub/part.conf", "reaper = {\n  batch_size = 0;\n};\n", 0600);
	ck_assert_int_eq(chdir("/"), 0);
	ck_assert_int_eq(load("@include \"sub/part.conf\"\n"), -1);
	ck_assert_err("sub/part.conf", 2, "reaper.batch_size: 0 is out of range (1..100000)");
}
END_TEST

START_TEST(syntax_error_names_file_and_line)
{
	ck_assert_int_eq(load("reaper = {\n  interval = 10;\n  batch_size = ;\n};\n"), -1);
	ck_assert_err(conf_path, 3, "syntax error");
	ck_assert_int_eq(cfg.batch_size, 500);
}
END_TEST

START_TEST(unknown_setting_in_known_group)
{
	load_fails_with("reaper = {\n  interval = 10;\n  bogus = 1;\n};\n",
	    3, "reaper.bogus: unknown setting");
}
END_TEST

START_TEST(unknown_group)
{
	load_fails_with("reaper = { interval = 10; };\nbogus = {\n  x = 1;\n};\n",
	    2, "bogus: unknown setting");
}
END_TEST

START_TEST(string_for_an_integer_is_a_type_error)
{
	load_fails_with("reaper = {\n  batch_size = \"500\";\n};\n",
	    2, "reaper.batch_size: wrong type (expected an integer)");
}
END_TEST

START_TEST(integer_for_a_string_is_a_type_error)
{
	load_fails_with("keys = {\n\n  online_set = 5;\n};\n",
	    3, "keys.online_set: wrong type (expected a string)");
}
END_TEST

START_TEST(float_for_batch_size_is_a_type_error)
{
	load_fails_with("reaper = {\n  batch_size = 2.5;\n};\n",
	    2, "reaper.batch_size: wrong type (expected an integer)");
}
END_TEST

START_TEST(group_given_as_a_scalar)
{
	load_fails_with("log = { level = \"warn\"; };\nreaper = 5;\n",
	    2, "reaper: wrong type (expected a group)");
}
END_TEST

START_TEST(batch_size_below_range)
{
	load_fails_with("reaper = {\n  batch_size = 0;\n};\n",
	    2, "reaper.batch_size: 0 is out of range (1..100000)");
}
END_TEST

START_TEST(batch_size_above_range)
{
	load_fails_with("reaper = {\n  batch_size = 100001;\n};\n",
	    2, "reaper.batch_size: 100001 is out of range (1..100000)");
}
END_TEST

START_TEST(batch_size_range_is_inclusive)
{
	ck_assert_msg(load("reaper = { batch_size = 1; };\n") == 0, "%s", err);
	ck_assert_int_eq(cfg.batch_size, 1);
	ck_assert_msg(load("reaper = { batch_size = 100000; };\n") == 0, "%s", err);
	ck_assert_int_eq(cfg.batch_size, 100000);
}
END_TEST

START_TEST(max_stale_ratio_above_one)
{
	load_fails_with("reaper = {\n  max_stale_ratio = 1.5;\n};\n",
	    2, "reaper.max_stale_ratio: 1.5 is out of range (0..1)");
}
END_TEST

START_TEST(max_stale_ratio_accepts_zero_and_one)
{
	ck_assert_msg(load("reaper = { max_stale_ratio = 1; };\n") == 0, "%s", err);
	ck_assert_double_eq(cfg.max_stale_ratio, 1);
	ck_assert_msg(load("reaper = { max_stale_ratio = 0.0; };\n") == 0, "%s", err);
	ck_assert_double_eq(cfg.max_stale_ratio, 0);
}
END_TEST

START_TEST(zero_and_negative_durations_are_rejected)
{
	ck_assert_int_eq(load(
	    "redis = {\n"
	    "  connect_timeout = -0.5;\n"	/* 2 */
	    "  command_timeout = 0;\n"		/* 3 */
	    "};\n"
	    "reaper = {\n"
	    "  interval = 0;\n"			/* 6 */
	    "};\n"
	    "leader = {\n"
	    "  lease = -1;\n"			/* 9 */
	    "  renew = 0.0;\n"			/* 10 */
	    "};\n"), -1);
	ck_assert_err(conf_path, 2, "redis.connect_timeout: ");
	ck_assert_err(conf_path, 3, "redis.command_timeout: ");
	ck_assert_err(conf_path, 6, "reaper.interval: ");
	ck_assert_err(conf_path, 9, "leader.lease: ");
	ck_assert_err(conf_path, 10, "leader.renew: ");
	ck_assert_int_eq(err_lines(), 5);
}
END_TEST

START_TEST(invalid_log_level)
{
	load_fails_with("log = {\n  level = \"verbose\";\n};\n",
	    2, "log.level: invalid value \"verbose\"");
}
END_TEST

START_TEST(invalid_log_format)
{
	load_fails_with("log = {\n  format = \"xml\";\n};\n",
	    2, "log.format: invalid value \"xml\"");
}
END_TEST

START_TEST(empty_online_set)
{
	load_fails_with("keys = {\n  online_set = \"\";\n};\n",
	    2, "keys.online_set: must not be empty");
}
END_TEST

START_TEST(password_and_password_file_both_set)
{
	ck_assert_int_eq(load("redis = {\n  password = \"pw\";\n  password_file = \"/x\";\n};\n"),
	    -1);
	/* The contract's form is FILE:LINE: SETTING; either line will do. */
	ck_assert_msg(err_has(conf_path, 2, "redis.password") ||
	    err_has(conf_path, 3, "redis.password"),
	    "expected \"%s:2 (or 3): redis.password...\" in:\n%s", conf_path, err);
	ck_assert_ptr_nonnull(strstr(err, "redis.password_file"));
	ck_assert_ptr_null(strstr(err, "\"pw\""));
}
END_TEST

START_TEST(several_errors_are_all_reported)
{
	ck_assert_int_eq(load(
	    "reaper = {\n"
	    "  batch_size = 0;\n"		/* 2 */
	    "  bogus = true;\n"			/* 3 */
	    "  interval = \"soon\";\n"		/* 4 */
	    "};\n"
	    "log = {\n"
	    "  level = \"loud\";\n"		/* 7 */
	    "};\n"
	    "extra = 1;\n"),			/* 9 */
	    -1);
	ck_assert_err(conf_path, 2, "reaper.batch_size: 0 is out of range");
	ck_assert_err(conf_path, 3, "reaper.bogus: unknown setting");
	ck_assert_err(conf_path, 4, "reaper.interval: wrong type (expected a number)");
	ck_assert_err(conf_path, 7, "log.level: invalid value \"loud\"");
	ck_assert_err(conf_path, 9, "extra: unknown setting");
	ck_assert_int_eq(err_lines(), 5);
}
END_TEST

START_TEST(password_conflict_is_reported_with_other_errors)
{
	ck_assert_int_eq(load(
	    "redis = {\n"
	    "  password = \"pw\";\n"
	    "  password_file = \"/x\";\n"
	    "};\n"
	    "reaper = {\n"
	    "  batch_size = 0;\n"
	    "};\n"), -1);
	ck_assert_err(conf_path, 6, "reaper.batch_size: 0 is out of range");
	ck_assert_msg(strstr(err, "redis.password_file") != NULL,
	    "the password conflict is missing from:\n%s", err);
	ck_assert_int_eq(err_lines(), 2);
}
END_TEST

START_TEST(missing_optional_file_keeps_defaults)
{
	ck_assert_int_eq(cfg_load(&cfg, tmp_path("absent.conf"), 1, err, sizeof(err)), 0);
	ck_assert_str_eq(err, "");
	ck_assert_ptr_null(cfg.path);
	ck_assert_int_eq(cfg.batch_size, 500);
	ck_assert_str_eq(cfg.redis_url, "redis://127.0.0.1:6379/0");
}
END_TEST

START_TEST(missing_required_file_is_an_error)
{
	const char *path = tmp_path("absent.conf");
	char want[PATH_MAX + 32];

	ck_assert_int_eq(cfg_load(&cfg, path, 0, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "cannot open %s", path);
	ck_assert_msg(strstr(err, want) != NULL, "expected \"%s\" in:\n%s", want, err);
}
END_TEST

START_TEST(durations_accept_integers_and_floats)
{
	ck_assert_msg(load("reaper = { interval = 0.5; };\n") == 0, "%s", err);
	ck_assert_double_eq(cfg.interval, 0.5);
	ck_assert_msg(load("reaper = { interval = 2; };\n") == 0, "%s", err);
	ck_assert_double_eq(cfg.interval, 2);
	ck_assert_msg(load("leader = { lease = 7; renew = 2.5; };\n"
	    "redis = { connect_timeout = 0.25; command_timeout = 4; };\n") == 0, "%s", err);
	ck_assert_double_eq(cfg.lease, 7);
	ck_assert_double_eq(cfg.renew, 2.5);
	ck_assert_double_eq(cfg.connect_timeout, 0.25);
	ck_assert_double_eq(cfg.command_timeout, 4);
}
END_TEST

START_TEST(renew_not_below_lease_fails_in_finalize)
{
	ck_assert_msg(load("leader = {\n  lease = 10;\n  renew = 10;\n};\n") == 0, "%s", err);
	ck_assert_int_eq(cfg_finalize(&cfg, err, sizeof(err)), -1);
	ck_assert_err(conf_path, 3, "leader.renew: must be less than leader.lease (10)");
	ck_assert_int_eq(err_lines(), 1);
}
END_TEST

START_TEST(renew_error_names_the_included_file)
{
	/* Line 3 is in sub/leader.conf; the main file has no line 3. */
	make_dir("sub");
	write_file("sub/leader.conf", "leader = {\n  lease = 10;\n  renew = 12;\n};\n", 0600);
	ck_assert_msg(load("# main\n@include \"sub/leader.conf\"\n") == 0, "%s", err);
	ck_assert_int_eq(cfg_finalize(&cfg, err, sizeof(err)), -1);
	ck_assert_err("sub/leader.conf", 3, "leader.renew: must be less than leader.lease (10)");
}
END_TEST

START_TEST(bad_url_fails_in_finalize)
{
	ck_assert_msg(load("redis = {\n  db = 1;\n  url = \"http://cache:6379\";\n};\n") == 0,
	    "%s", err);
	ck_assert_int_eq(cfg_finalize(&cfg, err, sizeof(err)), -1);
	ck_assert_err(conf_path, 3, "redis.url: URL must start with redis://, rediss://, unix://, "
	    "redis+sentinel://, rediss+sentinel://, redis+cluster:// or rediss+cluster://");
}
END_TEST

START_TEST(tls_follows_the_url_scheme_or_the_setting)
{
	ck_assert_msg(load("redis = { url = \"rediss://cache:6380\"; };\n") == 0, "%s", err);
	ck_assert_msg(cfg_finalize(&cfg, err, sizeof(err)) == 0, "%s", err);
	ck_assert_int_eq(cfg.url.tls, 1);
	ck_assert_int_eq(cfg.tls_enabled, 1);
	cfg_free(&cfg);
	cfg_defaults(&cfg);
	ck_assert_msg(load("redis = { url = \"redis://cache\"; };\ntls = { enabled = true; };\n")
	    == 0, "%s", err);
	ck_assert_msg(cfg_finalize(&cfg, err, sizeof(err)) == 0, "%s", err);
	ck_assert_int_eq(cfg.url.tls, 1);
	ck_assert_int_eq(cfg.tls_verify, 1);
	cfg_free(&cfg);
	cfg_defaults(&cfg);
	ck_assert_msg(load("redis = { url = \"redis://cache\"; };\n") == 0, "%s", err);
	ck_assert_msg(cfg_finalize(&cfg, err, sizeof(err)) == 0, "%s", err);
	ck_assert_int_eq(cfg.url.tls, 0);
}
END_TEST

START_TEST(tls_errors_fail_in_finalize)
{
	ck_assert_msg(load("redis = { url = \"unix:///tmp/r.sock\"; };\n"
	    "tls = {\n  enabled = true;\n  cert_file = \"/c.pem\";\n};\n") == 0, "%s", err);
	ck_assert_int_eq(cfg_finalize(&cfg, err, sizeof(err)), -1);
	ck_assert_err(conf_path, 3, "tls.enabled: TLS over a Unix socket is not supported");
	ck_assert_err(conf_path, 4, "tls.cert_file: mutual TLS needs both tls.cert_file and "
	    "tls.key_file");
	ck_assert_int_eq(err_lines(), 2);
}
END_TEST

/* Resolve the current cfg and return the effective password ("" = none). */
static const char *
finalized_password(void)
{
	ck_assert_msg(cfg_finalize(&cfg, err, sizeof(err)) == 0, "%s", err);
	return cfg.url.has_password ? cfg.url.password : "";
}

START_TEST(env_password_beats_every_other_source)
{
	const char *pwfile = write_file("pw", "from-file\n", 0600);

	cfg_set_string(&cfg.redis_url, "redis://:from-url@cache:6379");
	cfg_set_string(&cfg.redis_password_file, pwfile);
	setenv("PRESENCE_REAPER_REDIS_PASSWORD", "from-env", 1);
	cfg_apply_env(&cfg);
	ck_assert_str_eq(finalized_password(), "from-env");
}
END_TEST

START_TEST(url_password_beats_file_and_setting)
{
	const char *pwfile = write_file("pw", "from-file\n", 0600);

	cfg_set_string(&cfg.redis_url, "redis://:from-url@cache:6379");
	cfg_set_string(&cfg.redis_password_file, pwfile);
	cfg_set_string(&cfg.redis_password, "from-setting");
	cfg_apply_env(&cfg);
	ck_assert_str_eq(finalized_password(), "from-url");
}
END_TEST

START_TEST(password_file_beats_password_setting)
{
	/* Both set can only happen by assignment; the loader forbids it. */
	const char *pwfile = write_file("pw", "from-file\n", 0600);

	cfg_set_string(&cfg.redis_password_file, pwfile);
	cfg_set_string(&cfg.redis_password, "from-setting");
	ck_assert_str_eq(finalized_password(), "from-file");
}
END_TEST

START_TEST(password_setting_is_the_last_resort)
{
	ck_assert_str_eq(finalized_password(), "");
	ck_assert_int_eq(cfg.url.has_password, 0);
	cfg_free(&cfg);
	cfg_defaults(&cfg);
	cfg_set_string(&cfg.redis_password, "from-setting");
	ck_assert_str_eq(finalized_password(), "from-setting");
}
END_TEST

START_TEST(password_file_first_line_without_newline)
{
	const char *pwfile = write_file("pw", "s3cret\nsecond line\n", 0600);
	char text[PATH_MAX + 64];

	snprintf(text, sizeof(text), "redis = {\n  password_file = \"%s\";\n};\n", pwfile);
	ck_assert_msg(load(text) == 0, "%s", err);
	ck_assert_str_eq(finalized_password(), "s3cret");
}
END_TEST

START_TEST(password_file_without_trailing_newline)
{
	cfg_set_string(&cfg.redis_password_file, write_file("pw", "no-newline", 0600));
	ck_assert_str_eq(finalized_password(), "no-newline");
}
END_TEST

START_TEST(unreadable_password_file_is_an_error)
{
	const char *pwfile = tmp_path("absent-pw");
	char text[PATH_MAX + 64];

	snprintf(text, sizeof(text), "redis = {\n\n  password_file = \"%s\";\n};\n", pwfile);
	ck_assert_msg(load(text) == 0, "%s", err);
	ck_assert_int_eq(cfg_finalize(&cfg, err, sizeof(err)), -1);
	ck_assert_err(conf_path, 3, "redis.password_file: ");
	ck_assert_ptr_nonnull(strstr(err, pwfile));
}
END_TEST

START_TEST(password_file_that_is_a_directory_is_an_error)
{
	/* Tests may run as root, where permissions do not make a file unreadable. */
	cfg_set_string(&cfg.redis_password_file, tmpdir);
	ck_assert_int_eq(cfg_finalize(&cfg, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "redis.password_file: "));
}
END_TEST

START_TEST(url_user_beats_username_setting)
{
	cfg_set_string(&cfg.redis_username, "from-setting");
	ck_assert_int_eq(cfg_finalize(&cfg, err, sizeof(err)), 0);
	ck_assert_str_eq(cfg.url.user, "from-setting");

	cfg_set_string(&cfg.redis_url, "redis://from-url:pw@cache");
	ck_assert_int_eq(cfg_finalize(&cfg, err, sizeof(err)), 0);
	ck_assert_str_eq(cfg.url.user, "from-url");
}
END_TEST

START_TEST(db_from_url_then_setting_then_zero)
{
	cfg_set_string(&cfg.redis_url, "redis://cache");
	ck_assert_int_eq(cfg_finalize(&cfg, err, sizeof(err)), 0);
	ck_assert_int_eq(cfg.url.db, 0);

	cfg.redis_db = 4;
	ck_assert_int_eq(cfg_finalize(&cfg, err, sizeof(err)), 0);
	ck_assert_int_eq(cfg.url.db, 4);

	cfg_set_string(&cfg.redis_url, "redis://cache/7");
	ck_assert_int_eq(cfg_finalize(&cfg, err, sizeof(err)), 0);
	ck_assert_int_eq(cfg.url.db, 7);

	cfg_set_string(&cfg.redis_url, "redis://cache/0");	/* an explicit 0 wins too */
	ck_assert_int_eq(cfg_finalize(&cfg, err, sizeof(err)), 0);
	ck_assert_int_eq(cfg.url.db, 0);
}
END_TEST

START_TEST(identity_from_pod_name_when_empty)
{
	setenv("POD_NAME", "reaper-7f9c-x2", 1);
	ck_assert_int_eq(cfg_finalize(&cfg, err, sizeof(err)), 0);
	ck_assert_str_eq(cfg.identity, "reaper-7f9c-x2");
}
END_TEST

START_TEST(configured_identity_beats_pod_name)
{
	setenv("POD_NAME", "reaper-7f9c-x2", 1);
	cfg_set_string(&cfg.identity, "reaper-a");
	ck_assert_int_eq(cfg_finalize(&cfg, err, sizeof(err)), 0);
	ck_assert_str_eq(cfg.identity, "reaper-a");
}
END_TEST

START_TEST(identity_falls_back_to_hostname)
{
	char host[256];

	ck_assert_int_eq(gethostname(host, sizeof(host)), 0);
	host[sizeof(host) - 1] = '\0';
	ck_assert_int_eq(cfg_finalize(&cfg, err, sizeof(err)), 0);
	ck_assert_str_eq(cfg.identity, host);
}
END_TEST

START_TEST(redis_url_env_used_when_own_variable_unset)
{
	setenv("REDIS_URL", "redis://generic:6380/2", 1);
	cfg_apply_env(&cfg);
	ck_assert_str_eq(cfg.redis_url, "redis://generic:6380/2");
	ck_assert_ptr_null(cfg.env_password);
}
END_TEST

START_TEST(own_url_variable_beats_redis_url)
{
	setenv("REDIS_URL", "redis://generic:6380/2", 1);
	setenv("PRESENCE_REAPER_REDIS_URL", "unix:///run/redis.sock?db=1", 1);
	cfg_apply_env(&cfg);
	ck_assert_str_eq(cfg.redis_url, "unix:///run/redis.sock?db=1");
}
END_TEST

START_TEST(env_url_beats_the_file)
{
	ck_assert_int_eq(load("redis = { url = \"redis://from-file\"; };\n"), 0);
	setenv("REDIS_URL", "redis://from-env", 1);
	cfg_apply_env(&cfg);
	ck_assert_str_eq(cfg.redis_url, "redis://from-env");
}
END_TEST

/* cfg_dump sink: every line, newline-separated, into dumped. */
static char dumped[16384];

static void
collect(void *ctx, const char *line)
{
	size_t n = strlen(dumped);

	ck_assert_ptr_eq(ctx, dumped);
	ck_assert_uint_lt(n + strlen(line) + 1, sizeof(dumped));
	snprintf(dumped + n, sizeof(dumped) - n, "%s\n", line);
}

START_TEST(dump_never_shows_the_password)
{
	ck_assert_int_eq(load("redis = {\n  password = \"hunter2-setting\";\n};\n"
	    "reaper = { batch_size = 42; };\n"), 0);
	ck_assert_int_eq(cfg_finalize(&cfg, err, sizeof(err)), 0);
	dumped[0] = '\0';
	cfg_dump(&cfg, collect, dumped);
	ck_assert_ptr_null(strstr(dumped, "hunter2"));
	ck_assert_msg(strstr(dumped, "  password = \"(redacted)\";\n") != NULL, "%s", dumped);
	ck_assert_msg(strstr(dumped, "  batch_size = 42;\n") != NULL, "%s", dumped);
}
END_TEST

START_TEST(dump_never_shows_url_or_env_password)
{
	cfg_set_string(&cfg.redis_url, "redis://app:hunter2-url@cache:6380/1");
	setenv("PRESENCE_REAPER_REDIS_PASSWORD", "hunter2-env", 1);
	cfg_apply_env(&cfg);
	ck_assert_int_eq(cfg_finalize(&cfg, err, sizeof(err)), 0);
	dumped[0] = '\0';
	cfg_dump(&cfg, collect, dumped);
	ck_assert_ptr_null(strstr(dumped, "hunter2"));
	ck_assert_msg(strstr(dumped, "(redacted)") != NULL, "%s", dumped);
	ck_assert_msg(strstr(dumped, "cache:6380") != NULL, "%s", dumped);
}
END_TEST

START_TEST(world_readable_password_draws_a_warning)
{
	char want[PATH_MAX + 64];

	ck_assert_int_eq(load_capturing_stderr("redis = { password = \"pw\"; };\n", 0644), 0);
	snprintf(want, sizeof(want), "password in %s is readable by other users", conf_path);
	ck_assert_msg(strstr(captured, want) != NULL, "stderr was:\n%s", captured);
}
END_TEST

START_TEST(private_password_file_draws_no_warning)
{
	ck_assert_int_eq(load_capturing_stderr("redis = { password = \"pw\"; };\n", 0600), 0);
	ck_assert_str_eq(captured, "");
	ck_assert_int_eq(load_capturing_stderr("redis = { username = \"u\"; };\n", 0644), 0);
	ck_assert_str_eq(captured, "");
}
END_TEST

START_TEST(too_long_password_in_the_environment_is_named)
{
	setenv("PRESENCE_REAPER_REDIS_PASSWORD", repeat('x', RURL_CRED_MAX), 1);
	cfg_apply_env(&cfg);
	ck_assert_int_eq(cfg_finalize(&cfg, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "PRESENCE_REAPER_REDIS_PASSWORD: password is longer than "
	    "511 bytes") != NULL, "%s", err);
	ck_assert_ptr_null(strstr(err, "xxxx"));
}
END_TEST

START_TEST(too_long_password_or_user_setting_is_named_with_its_line)
{
	char text[4096];

	snprintf(text, sizeof(text), "redis = {\n  password = \"%s\";\n  username = \"%s\";\n};\n",
	    repeat('x', RURL_CRED_MAX), repeat('u', RURL_CRED_MAX));
	ck_assert_msg(load(text) == 0, "%s", err);
	ck_assert_int_eq(cfg_finalize(&cfg, err, sizeof(err)), -1);
	ck_assert_err(conf_path, 2, "redis.password: password is longer than 511 bytes");
	ck_assert_err(conf_path, 3, "redis.username: user name is longer than 511 bytes");
	ck_assert_ptr_null(strstr(err, "xxxx"));
}
END_TEST

START_TEST(too_long_password_in_the_password_file_is_named)
{
	char text[PATH_MAX + 64], line[RURL_CRED_MAX + 8];
	const char *pwfile;

	snprintf(line, sizeof(line), "%s\r\n", repeat('x', RURL_CRED_MAX));
	pwfile = write_file("pw", line, 0600);
	snprintf(text, sizeof(text), "redis = {\n  password_file = \"%s\";\n};\n", pwfile);
	ck_assert_msg(load(text) == 0, "%s", err);
	ck_assert_int_eq(cfg_finalize(&cfg, err, sizeof(err)), -1);
	snprintf(line, sizeof(line), "redis.password_file: password in %s is longer", pwfile);
	ck_assert_err(conf_path, 2, line);
	ck_assert_ptr_null(strstr(err, "xxxx"));
}
END_TEST

START_TEST(too_long_password_in_the_url_names_where_the_url_came_from)
{
	char url[2048];

	snprintf(url, sizeof(url), "redis://:%s@cache", repeat('x', RURL_CRED_MAX));
	cfg_set_url_option(&cfg, url);
	ck_assert_int_eq(cfg_finalize(&cfg, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "--redis-url: redis.url: password in URL is longer than "
	    "511 bytes") != NULL, "%s", err);

	cfg_free(&cfg);
	cfg_defaults(&cfg);
	setenv("REDIS_URL", url, 1);
	cfg_apply_env(&cfg);
	ck_assert_int_eq(cfg_finalize(&cfg, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "REDIS_URL: redis.url: password in URL is longer") != NULL,
	    "%s", err);
	ck_assert_ptr_null(strstr(err, "xxxx"));
}
END_TEST

START_TEST(longest_password_from_every_source_is_kept_whole)
{
	const char *longest = repeat('x', RURL_CRED_MAX - 1);
	char line[RURL_CRED_MAX + 8], url[2048];

	snprintf(line, sizeof(line), "%s\r\n", longest);
	cfg_set_string(&cfg.redis_password_file, write_file("pw", line, 0600));
	ck_assert_str_eq(finalized_password(), longest);

	cfg_set_string(&cfg.redis_password_file, "");
	cfg_set_string(&cfg.redis_password, longest);
	ck_assert_str_eq(finalized_password(), longest);

	snprintf(url, sizeof(url), "redis://%s:%s@cache", longest, longest);
	cfg_set_string(&cfg.redis_url, url);
	ck_assert_str_eq(finalized_password(), longest);
	ck_assert_str_eq(cfg.url.user, longest);

	setenv("PRESENCE_REAPER_REDIS_PASSWORD", longest, 1);
	cfg_apply_env(&cfg);
	ck_assert_str_eq(finalized_password(), longest);
}
END_TEST

START_TEST(password_in_url_option_draws_a_warning)
{
	cfg_set_url_option(&cfg, "redis://app:hunter2@cache");
	ck_assert_int_eq(finalize_capturing_stderr(), 0);
	ck_assert_msg(strstr(captured, "--redis-url: the password in the URL is visible to "
	    "other users in the process list; pass it in PRESENCE_REAPER_REDIS_PASSWORD or "
	    "redis.password_file instead") != NULL, "stderr was:\n%s", captured);
	ck_assert_ptr_null(strstr(captured, "hunter2"));
}
END_TEST

START_TEST(url_option_without_password_or_env_url_draws_no_warning)
{
	cfg_set_url_option(&cfg, "redis://app@cache");
	ck_assert_int_eq(finalize_capturing_stderr(), 0);
	ck_assert_str_eq(captured, "");

	cfg_free(&cfg);
	cfg_defaults(&cfg);
	setenv("PRESENCE_REAPER_REDIS_URL", "redis://app:hunter2@cache", 1);
	cfg_apply_env(&cfg);
	ck_assert_int_eq(finalize_capturing_stderr(), 0);
	ck_assert_str_eq(captured, "");
}
END_TEST

START_TEST(bad_url_from_environment_or_option_names_it)
{
	/* Not the file's line: the file's value was overridden. */
	ck_assert_int_eq(load("redis = { url = \"redis://from-file\"; };\n"), 0);
	setenv("PRESENCE_REAPER_REDIS_URL", "http://cache", 1);
	cfg_apply_env(&cfg);
	ck_assert_int_eq(cfg_finalize(&cfg, err, sizeof(err)), -1);
	ck_assert_msg(strncmp(err, "PRESENCE_REAPER_REDIS_URL: redis.url: URL must start",
	    52) == 0, "%s", err);
	cfg_set_url_option(&cfg, "redis://cache:0");
	ck_assert_int_eq(cfg_finalize(&cfg, err, sizeof(err)), -1);
	ck_assert_str_eq(err, "--redis-url: redis.url: bad port in URL\n");
}
END_TEST

/* Load a config naming pwfile as password_file and finalize, capturing stderr. */
static void
finalize_with_password_file(const char *pwfile)
{
	cfg_set_string(&cfg.redis_password_file, pwfile);
	ck_assert_msg(finalize_capturing_stderr() == 0, "%s", err);
}

START_TEST(password_file_readable_by_others_draws_a_warning)
{
	const char *pwfile = write_file("pw", "s3cret\n", 0644);
	char want[PATH_MAX + 64];

	finalize_with_password_file(pwfile);
	snprintf(want, sizeof(want), "password in %s is readable by other users", pwfile);
	ck_assert_msg(strstr(captured, want) != NULL, "stderr was:\n%s", captured);
	ck_assert_ptr_null(strstr(captured, "s3cret"));

	/* Owner only, or our own group (a Kubernetes fsGroup): no warning. */
	ck_assert_int_eq(chmod(pwfile, 0600), 0);
	finalize_with_password_file(pwfile);
	ck_assert_str_eq(captured, "");
	ck_assert_int_eq(chown(pwfile, (uid_t)-1, getegid()), 0);
	ck_assert_int_eq(chmod(pwfile, 0640), 0);
	finalize_with_password_file(pwfile);
	ck_assert_str_eq(captured, "");
}
END_TEST

START_TEST(password_readable_by_a_foreign_group_draws_a_warning)
{
	const char *pwfile = write_file("pw", "s3cret\n", 0640);
	gid_t foreign = 424242;
	char want[PATH_MAX + 64];

	/* Only root can give a file to a group it is not in. */
	if (geteuid() != 0)
		return;
	ck_assert_int_eq(chown(pwfile, (uid_t)-1, foreign), 0);
	finalize_with_password_file(pwfile);
	snprintf(want, sizeof(want), "password in %s is readable by other users", pwfile);
	ck_assert_msg(strstr(captured, want) != NULL, "stderr was:\n%s", captured);

	/* The same rule for a password written in the configuration file. */
	cfg_free(&cfg);
	cfg_defaults(&cfg);
	conf_path = write_file("test.conf", "redis = { password = \"pw\"; };\n", 0640);
	ck_assert_int_eq(chown(conf_path, (uid_t)-1, foreign), 0);
	capture_start();
	ck_assert_int_eq(cfg_load(&cfg, conf_path, 0, err, sizeof(err)), 0);
	capture_end();
	snprintf(want, sizeof(want), "password in %s is readable by other users", conf_path);
	ck_assert_msg(strstr(captured, want) != NULL, "stderr was:\n%s", captured);
}
END_TEST

/*
 * SIGHUP: the running configuration (cfg, from the test's file) against
 * the one a new file would give.
 */
static struct cfg next;
static struct cfg_changes ch;

static void
load_both(const char *old_text, const char *new_text)
{
	ck_assert_int_eq(load(old_text), 0);
	ck_assert_int_eq(cfg_finalize(&cfg, err, sizeof(err)), 0);
	cfg_defaults(&next);
	ck_assert_int_eq(cfg_load(&next, write_file("new.conf", new_text, 0600), 0, err,
	    sizeof(err)), 0);
	ck_assert_int_eq(cfg_finalize(&next, err, sizeof(err)), 0);
}

/* cfg_changes(cfg, next) returns rc and sorts the changed names so. */
static void
changes_are(int rc, const char *live, const char *reconnect, const char *restart)
{
	ck_assert_int_eq(cfg_changes(&cfg, &next, &ch), rc);
	ck_assert_str_eq(ch.live, live);
	ck_assert_str_eq(ch.reconnect, reconnect);
	ck_assert_str_eq(ch.restart, restart);
}

START_TEST(reload_of_the_same_settings_changes_nothing)
{
	const char *text = "redis = { url = \"redis://cache:6379/1\"; };\n"
	    "reaper = { interval = 5; };\n";

	load_both(text, text);
	changes_are(0, "", "", "");
	cfg_free(&next);
}
END_TEST

START_TEST(reload_interval_and_batch_size_apply_live)
{
	load_both("reaper = { interval = 5; batch_size = 10; };\n",
	    "reaper = { interval = 0.5; batch_size = 20; };\n"
	    "log = { level = \"debug\"; };\nmetrics = { listen = \"127.0.0.1:0\"; };\n");
	changes_are(0, "reaper.interval, reaper.batch_size, metrics.listen, log.level", "",
	    "");
	cfg_free(&next);
}
END_TEST

START_TEST(reload_redis_url_needs_a_reconnect)
{
	load_both("redis = { url = \"unix:///run/redis.sock\"; };\n",
	    "redis = { url = \"redis://127.0.0.1:6380/0\"; command_timeout = 3; };\n"
	    "reaper = { interval = 7; };\n");
	changes_are(1, "reaper.interval", "redis.url, redis.command_timeout", "");
	cfg_free(&next);
}
END_TEST

START_TEST(reload_lease_and_leader_key_need_a_reconnect)
{
	load_both("leader = { lease = 15; renew = 5; };\n",
	    "leader = { key = \"other:lock\"; lease = 30; renew = 10; };\n");
	changes_are(1, "leader.renew", "leader.key, leader.lease", "");
	cfg_free(&next);
}
END_TEST

START_TEST(reload_identity_waits_for_a_restart)
{
	load_both("leader = { identity = \"pod-a\"; };\n",
	    "leader = { identity = \"pod-b\"; };\n");
	changes_are(0, "", "", "leader.identity");
	cfg_keep_restart_settings(&next, &cfg);
	ck_assert_str_eq(next.identity, "pod-a");
	cfg_free(&next);
}
END_TEST

START_TEST(reload_rotated_password_file_needs_a_reconnect)
{
	const char *pw = write_file("pw", "old-secret\n", 0600);
	char text[PATH_MAX + 64];

	snprintf(text, sizeof(text), "redis = { password_file = \"%s\"; };\n", pw);
	ck_assert_int_eq(load(text), 0);
	ck_assert_int_eq(cfg_finalize(&cfg, err, sizeof(err)), 0);
	write_file("pw", "new-secret\n", 0600);	/* a rotated Secret, same path */
	cfg_defaults(&next);
	ck_assert_int_eq(cfg_load(&next, conf_path, 0, err, sizeof(err)), 0);
	ck_assert_int_eq(cfg_finalize(&next, err, sizeof(err)), 0);
	changes_are(1, "", "redis.password_file (contents)", "");
	cfg_free(&next);
}
END_TEST

static TCase *
tcase(Suite *s, const char *name)
{
	TCase *tc = tcase_create(name);

	tcase_add_checked_fixture(tc, setup, teardown);
	suite_add_tcase(s, tc);
	return tc;
}

int
main(void)
{
	Suite *s = suite_create("config");
	TCase *tc;

	tc = tcase(s, "load");
	tcase_add_test(tc, defaults_match_the_contract);
	tcase_add_test(tc, full_valid_file_sets_every_setting);
	tcase_add_test(tc, relative_include_resolves_against_the_files_folder);
	tcase_add_test(tc, missing_optional_file_keeps_defaults);
	tcase_add_test(tc, durations_accept_integers_and_floats);
	tcase_add_test(tc, batch_size_range_is_inclusive);
	tcase_add_test(tc, max_stale_ratio_accepts_zero_and_one);
	tcase_add_test(tc, world_readable_password_draws_a_warning);
	tcase_add_test(tc, private_password_file_draws_no_warning);

	tc = tcase(s, "load_errors");
	tcase_add_test(tc, syntax_error_names_file_and_line);
	tcase_add_test(tc, error_in_included_file_names_that_file);
	tcase_add_test(tc, unknown_setting_in_known_group);
	tcase_add_test(tc, unknown_group);
	tcase_add_test(tc, string_for_an_integer_is_a_type_error);
	tcase_add_test(tc, integer_for_a_string_is_a_type_error);
	tcase_add_test(tc, float_for_batch_size_is_a_type_error);
	tcase_add_test(tc, group_given_as_a_scalar);
	tcase_add_test(tc, batch_size_below_range);
	tcase_add_test(tc, batch_size_above_range);
	tcase_add_test(tc, max_stale_ratio_above_one);
	tcase_add_test(tc, zero_and_negative_durations_are_rejected);
	tcase_add_test(tc, invalid_log_level);
	tcase_add_test(tc, invalid_log_format);
	tcase_add_test(tc, empty_online_set);
	tcase_add_test(tc, password_and_password_file_both_set);
	tcase_add_test(tc, several_errors_are_all_reported);
	tcase_add_test(tc, password_conflict_is_reported_with_other_errors);
	tcase_add_test(tc, missing_required_file_is_an_error);

	tc = tcase(s, "finalize");
	tcase_add_test(tc, renew_not_below_lease_fails_in_finalize);
	tcase_add_test(tc, renew_error_names_the_included_file);
	tcase_add_test(tc, bad_url_fails_in_finalize);
	tcase_add_test(tc, tls_follows_the_url_scheme_or_the_setting);
	tcase_add_test(tc, tls_errors_fail_in_finalize);
	tcase_add_test(tc, env_password_beats_every_other_source);
	tcase_add_test(tc, url_password_beats_file_and_setting);
	tcase_add_test(tc, password_file_beats_password_setting);
	tcase_add_test(tc, password_setting_is_the_last_resort);
	tcase_add_test(tc, password_file_first_line_without_newline);
	tcase_add_test(tc, password_file_without_trailing_newline);
	tcase_add_test(tc, unreadable_password_file_is_an_error);
	tcase_add_test(tc, password_file_that_is_a_directory_is_an_error);
	tcase_add_test(tc, url_user_beats_username_setting);
	tcase_add_test(tc, db_from_url_then_setting_then_zero);
	tcase_add_test(tc, identity_from_pod_name_when_empty);
	tcase_add_test(tc, configured_identity_beats_pod_name);
	tcase_add_test(tc, identity_falls_back_to_hostname);
	tcase_add_test(tc, too_long_password_in_the_environment_is_named);
	tcase_add_test(tc, too_long_password_or_user_setting_is_named_with_its_line);
	tcase_add_test(tc, too_long_password_in_the_password_file_is_named);
	tcase_add_test(tc, too_long_password_in_the_url_names_where_the_url_came_from);
	tcase_add_test(tc, longest_password_from_every_source_is_kept_whole);
	tcase_add_test(tc, bad_url_from_environment_or_option_names_it);

	tc = tcase(s, "environment_and_dump");
	tcase_add_test(tc, redis_url_env_used_when_own_variable_unset);
	tcase_add_test(tc, own_url_variable_beats_redis_url);
	tcase_add_test(tc, env_url_beats_the_file);
	tcase_add_test(tc, dump_never_shows_the_password);
	tcase_add_test(tc, dump_never_shows_url_or_env_password);

	tc = tcase(s, "secrets");
	tcase_add_test(tc, password_in_url_option_draws_a_warning);
	tcase_add_test(tc, url_option_without_password_or_env_url_draws_no_warning);
	tcase_add_test(tc, password_file_readable_by_others_draws_a_warning);
	tcase_add_test(tc, password_readable_by_a_foreign_group_draws_a_warning);

	tc = tcase(s, "reload");
	tcase_add_test(tc, reload_of_the_same_settings_changes_nothing);
	tcase_add_test(tc, reload_interval_and_batch_size_apply_live);
	tcase_add_test(tc, reload_redis_url_needs_a_reconnect);
	tcase_add_test(tc, reload_lease_and_leader_key_need_a_reconnect);
	tcase_add_test(tc, reload_identity_waits_for_a_restart);
	tcase_add_test(tc, reload_rotated_password_file_needs_a_reconnect);

	return unit_run(s);
}
