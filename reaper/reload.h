/*
 * reload: SIGHUP. Read the configuration again; when it is valid, apply
 * what the settings table says applies live, reconnect for what needs a
 * new connection, and keep (with a warning) what only a restart changes.
 * A bad configuration keeps the old one.
 */
#ifndef PR_RELOAD_H
#define PR_RELOAD_H

#include "daemon.h"

void daemon_reload(struct daemon *d);

#endif
