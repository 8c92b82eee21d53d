/*
 * rsock: the socket under a Redis connection. Dials a Unix socket or the
 * addresses a host name resolves to, non-blocking and within a deadline,
 * and waits on a socket with one; what travels over it is rconn's. Knows
 * nothing of the protocol, so TLS can wrap the socket it returns.
 */
#ifndef PR_RSOCK_H
#define PR_RSOCK_H

#include <poll.h>
#include <stddef.h>
#include <stdint.h>

#include "rurl.h"

/*
 * Wait for events on fd until deadline (CLOCK_MONOTONIC ms). 1 ready, 0
 * timed out, -1 error (errno). on_interrupt, when not NULL, is called
 * (in normal context) each time a signal interrupts the wait.
 */
int rsock_wait(int fd, short events, int64_t deadline, void (*on_interrupt)(void));

/*
 * Connect to u's Unix socket, or to the addresses its host resolves to,
 * in the resolver's order, before deadline. Each address may use the time
 * left divided by the addresses not yet tried. TCP sockets get
 * TCP_NODELAY and keepalive. Returns a non-blocking, close-on-exec fd, or
 * -1 with the reason in err (each address's, when there are several).
 */
int rsock_dial(const struct rurl *u, int64_t deadline, void (*on_interrupt)(void), char *err,
    size_t errlen);

#endif
