/*
 * conf: the configuration as the program builds it, at start and again on
 * SIGHUP (defaults < file < environment < command line), and the logging
 * it asks for.
 */
#ifndef PR_CONF_H
#define PR_CONF_H

#include <stddef.h>

#include "cli.h"
#include "settings.h"

/*
 * Build a configuration into c. Returns 0, or -1 with the errors in err (one
 * a line). With a Cluster URL the keys must share one hash slot (keyslot.h),
 * which lands in c->cluster_slot.
 */
int conf_load(const struct cli *cli, struct cfg *c, char *err, size_t errlen);

/* Set the log level and format: the file's, overridden by the command line. */
void conf_apply_logging(const struct cli *cli, const struct cfg *c);

/* Log each line of errs as an error. */
void conf_print_errors(const char *errs);

/* A cfg_dump/cfg_help callback: line and a newline to the FILE * ctx. */
void conf_print_line(void *ctx, const char *line);

#endif
