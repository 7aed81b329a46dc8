/* SPDX-License-Identifier: MIT */
/*
 * The accept loop behind a server (not installed): a set of listening
 * sockets that hands each accepted connection to its owner, and survives
 * running out of file descriptors.
 *
 * - Each readiness event accepts at most EDDY__ACCEPT_BURST connections,
 *   checking before each accept that the acceptor is still listening on
 *   that socket and not paused (the owner may pause or close it from its
 *   callback).
 * - ECONNABORTED, EPROTO, EPERM and EINTR are retried silently.
 * - EMFILE/ENFILE: a spare fd is closed, the pending connections are
 *   accepted and closed at once (so their clients hear about it instead of
 *   hanging), and the spare is reopened (libuv's trick). If that cannot be
 *   done, or on ENOBUFS/ENOMEM or another error, accepting pauses on a
 *   backoff timer, 100 ms doubling to 1 s (folly's). Warnings are
 *   rate-limited to one a second.
 */
#ifndef EDDY_TCP_ACCEPTOR_H
#define EDDY_TCP_ACCEPTOR_H

#include <stddef.h>
#include <sys/socket.h>

#include "eddy/loop.h"

#define EDDY__ACCEPT_BURST 128

/** What the acceptor calls on its owner. */
struct eddy__acceptor_ops {
  /** One accepted fd (non-blocking, close-on-exec), now the owner's. */
  void (*accepted)(void *owner, int fd, const struct sockaddr *peer,
                   socklen_t peer_len);
  /** Keep the owner (and so the acceptor in it) alive across a burst of
   *  accepted() calls, which may free the owner otherwise. */
  void (*hold)(void *owner);
  void (*release)(void *owner);
};

struct eddy__acceptor {
  eddy_loop_t *loop;
  const struct eddy__acceptor_ops *ops;
  void *owner;
  int *fds; /* listening sockets, owned */
  size_t n, cap;
  int armed;            /* the fds have handlers (none while paused) */
  int paused;           /* by the owner (queue full, max_connections) */
  int closed;           /* eddy__acceptor_close() ran */
  int spare_fd;         /* the reserve for EMFILE, or -1 */
  eddy_timer_t *backoff;
  double backoff_delay; /* the next pause's length */
  double warned_at;     /* loop time of the last warning, < 0: none yet */
  unsigned long suppressed; /* warnings not logged since then */
  unsigned long errors;     /* resource errors seen (EMFILE...) */
  unsigned long shed;       /* connections closed unserved for lack of fds */
};

/** Sets up @p a; nothing is allocated until eddy__acceptor_add(). */
void eddy__acceptor_init(struct eddy__acceptor *a, eddy_loop_t *loop,
                         const struct eddy__acceptor_ops *ops, void *owner);

/**
 * Starts accepting on @p fds, made non-blocking and close-on-exec, taking
 * ownership (they are closed on failure too).
 * @return 0, -EBADF for an fd that is not open, -EINVAL for a socket that
 *         is not listening, -ENOMEM, EDDY_EUSAGE once closed.
 */
int eddy__acceptor_add(struct eddy__acceptor *a, const int *fds, size_t n);

/** Pauses (non-zero) or resumes accepting on behalf of the owner. */
void eddy__acceptor_pause(struct eddy__acceptor *a, int paused);

/** Stops for good: removes the handlers, closes every fd, frees what it
 *  holds. Idempotent, and safe from inside accepted(). */
void eddy__acceptor_close(struct eddy__acceptor *a);

#endif
