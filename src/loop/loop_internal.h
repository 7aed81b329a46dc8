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

/*
 * Marks @t (from eddy_timer_new(), its arg a future) as keeping that future
 * alive: eddy_loop_free() then passes the future to
 * eddy__future_abandon_timer() instead of just freeing the timer, which
 * would leak the future and whatever chain waits on it.
 */
void eddy__timer_owns_future(eddy_timer_t *t);

/*
 * Defined with sleep and with_timeout (src/future/combinators.c): settles
 * or unblocks @f, the future a marked timer keeps alive, so that the
 * timer is freed and the future released once the deferred tasks this
 * queues have run.
 */
void eddy__future_abandon_timer(eddy_future_t *f);

/* Logs through the loop's logger (same as eddy_loop_log()). */
void eddy__log(eddy_loop_t *loop, eddy_log_level_t level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
