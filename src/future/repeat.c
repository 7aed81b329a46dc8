/* SPDX-License-Identifier: MIT */
/*
 * eddy_repeat: a loop of asynchronous steps in constant memory and stack
 * (seastar's repeat).
 *
 * Why not recursion through then: a then-callback that returns
 * eddy_then(next_step(), itself) makes each level's future adopt the next
 * one, so every level stays alive until the last step ends: memory grows
 * with the number of iterations (see the comment in tests/test_future.c
 * and the "naive recursion" line of bench/future_bench.c).
 *
 * Here the result r itself waits on the running step, through its own
 * node. When the step settles, eddy__repeat_run drops it and only then starts
 * the next one, so at most one step future is alive at a time. Each
 * iteration is one hop through the loop's FIFO, even for steps that return
 * already-resolved futures, so the stack never grows and the loop's task
 * quota keeps a busy repeat from starving I/O.
 */
#include <errno.h>

#include "future/future_internal.h"

void eddy__repeat_run(eddy_future_t *r)
{
  eddy_future_t *step = r->upstream;

  r->upstream = NULL;
  if (r->state != EDDY_FUTURE_PENDING) {
    /* Cancelled (which cancelled the step too) or settled by hand. */
    eddy_future_unref(step);
    eddy_future_unref(r);
    return;
  }
  if (step->state != EDDY_FUTURE_RESOLVED) {
    eddy_future_settle_as(r, step); /* the step's error, shared */
    eddy_future_unref(step);
    eddy_future_unref(r);
    return;
  }
  if (eddy_future_value(step) == EDDY_STOP) {
    eddy_future_unref(step);
    eddy_future_resolve(r, NULL, NULL);
    eddy_future_unref(r);
    return;
  }
  eddy_future_unref(step); /* released before the next step starts */

  step = r->fn.step(r->arg);
  if (step == NULL || step == EDDY_NO_VALUE) {
    if (step == NULL)
      eddy_future_reject(r, -ENOMEM, NULL); /* no message: nothing to allocate */
    else
      eddy_future_reject(r, EDDY_EUSAGE, "repeat: a step returned EDDY_NO_VALUE, not a future");
    eddy_future_unref(r);
    return;
  }
  if (r->state != EDDY_FUTURE_PENDING) {
    /* The step itself cancelled or settled the repeat. */
    eddy_future_unref(step);
    eddy_future_unref(r);
    return;
  }
  r->upstream = step;
  eddy__future_wait_link(step, eddy__future_link(r, EDDY__RUN_REPEAT)); /* r's reference moves */
}

eddy_future_t *eddy_repeat(eddy_step_fn step, void *arg)
{
  eddy_future_t *first, *r;

  if (step == NULL)
    return NULL;
  first = step(arg); /* at once: its future tells us the loop */
  if (first == NULL || first == EDDY_NO_VALUE)
    return NULL;
  r = eddy__future_alloc(eddy__future_loop(first), EDDY__REPEAT);
  if (r == NULL) {
    eddy_future_unref(first);
    return NULL;
  }
  r->fn.step = step;
  r->arg = arg;
  eddy__future_wait_on(r, first, EDDY__RUN_REPEAT);
  return r;
}
