/*
 * The configuration loader on any text: libconfig's parser, the settings
 * table's validation, the URL and the checks across settings (conf_load, as
 * the program calls it at start and on SIGHUP). The text goes to a file in
 * a folder of its own, since the loader reads a path; a relative @include
 * stays in that folder. On success the configuration is dumped (what
 * --check-config prints), copied, and compared with its copy: no change.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "fuzz.h"
#include "log.h"
#include "settings.h"

static char dir[256];
static char path[300];

static void
cleanup(void)
{
	unlink(path);
	rmdir(dir);
}

/* What the dump writes; counted, not kept. */
static void
sink(void *ctx, const char *line)
{
	size_t *n = ctx;

	*n += strlen(line) + 1;
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static const char *const env[] = { "PRESENCE_REAPER_REDIS_URL", "REDIS_URL",
		"PRESENCE_REAPER_REDIS_PASSWORD", "PRESENCE_REAPER_SENTINEL_PASSWORD" };
	const char *tmp = getenv("TMPDIR");

	(void)argc;
	(void)argv;
	/* The same input, the same result: nothing from the environment. */
	for (size_t i = 0; i < sizeof(env) / sizeof(env[0]); i++)
		unsetenv(env[i]);
	/* A password_file of /dev/stdin must not wait for a terminal. */
	FUZZ_CHECK(freopen("/dev/null", "r", stdin) != NULL);
	/* Warnings (a password in a readable file) on every run would drown the log. */
	log_init(LOG_LVL_ERROR, LOG_FMT_TEXT);
	snprintf(dir, sizeof(dir), "%s/fuzz_conf.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	FUZZ_CHECK(mkdtemp(dir) != NULL);
	snprintf(path, sizeof(path), "%s/presence-reaper.conf", dir);
	atexit(cleanup);
	return 0;
}

static void
check_loaded(struct cfg *c)
{
	struct cfg copy;
	struct cfg_changes ch;
	size_t dumped = 0;

	cfg_dump(c, sink, &dumped);
	FUZZ_CHECK(dumped > 0);
	cfg_copy(&copy, c);
	FUZZ_CHECK(cfg_changes(c, &copy, &ch) == 0);
	FUZZ_CHECK(ch.live[0] == '\0' && ch.reconnect[0] == '\0' && ch.restart[0] == '\0');
	cfg_free(&copy);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char err[CFG_ERR_MAX];
	struct cli cli = { .config_path = path, .config_given = 1 };
	struct cfg c;
	FILE *f = fopen(path, "w");

	FUZZ_CHECK(f != NULL);
	FUZZ_CHECK(fwrite(data, 1, size, f) == size && fclose(f) == 0);
	memset(err, 0x55, sizeof(err));
	if (conf_load(&cli, &c, err, sizeof(err)) == 0)
		check_loaded(&c);
	else
		FUZZ_CHECK(memchr(err, '\0', sizeof(err)) != NULL && err[0] != '\0');
	cfg_free(&c);
	return 0;
}
