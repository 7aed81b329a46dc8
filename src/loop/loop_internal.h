/* SPDX-License-Identifier: MIT */
/*
 * The loop's interface to the rest of eddy (not installed).
 *
 * Futures and streams settle things by queueing tasks. A task is a node
 * embedded in the object that owns it, so queueing never allocates and
 * cannot fail: this is why settling a future cannot fail either.
 */
#ifndef EDDY_LOOP_INTERNAL_H
#define EDDY_LOOP_INTERNAL_H

#include "eddy/loop.h"

struct eddy__task {
  struct eddy__task *next;
  void (*run)(struct eddy__task *task);
};

/*
 * Queues @task to run from the loop, after everything queued before it.
 * The loop keeps running deferred tasks (including ones they queue) until
 * the queue is empty or a per-iteration quota is used up, then polls I/O
 * without blocking before it continues, so a long chain cannot starve I/O.
 * A task must not be queued twice before it has run.
 */
void eddy__loop_defer(eddy_loop_t *loop, struct eddy__task *task);

/* Logs through the loop's logger (same as eddy_loop_log()). */
void eddy__log(eddy_loop_t *loop, eddy_log_level_t level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Takes over the socket @fd to send its last @len bytes @data (copied) when
 * it is writable, then closes it; after at most @seconds, or at
 * eddy_loop_free(), it is closed with whatever is still unsent. For a
 * closing stream whose last words (a TLS alert or close_notify) the kernel
 * did not take at once. @return 0, or -ENOMEM (the caller still owns @fd).
 */
int eddy__loop_linger(eddy_loop_t *loop, int fd, const void *data, size_t len,
                      double seconds);

#endif
