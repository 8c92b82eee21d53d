/*
 * statusout: --status's output, text or JSON, for the views status.c made.
 * Everything that came from Redis is escaped already (escape_id); JSON
 * strings are escaped again for JSON.
 */
#ifndef PR_STATUSOUT_H
#define PR_STATUSOUT_H

#include <stddef.h>
#include <stdio.h>

#include "status.h"

/* The first line says the state and why; then the set's details, or one line a shard. */
void statusout_text(FILE *f, const struct status_view *v, size_t n, enum status_code code);

/* One JSON object: state, code, summary and a "sets" array. */
void statusout_json(FILE *f, const struct status_view *v, size_t n, enum status_code code);

#endif
