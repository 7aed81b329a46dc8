/* SPDX-License-Identifier: MIT */
/*
 * Timers: a min-heap of deadlines (heap.h) on the loop's nanosecond clock.
 *
 * Expired timers are moved to loop->due before any of them runs (libuv PR
 * #4250): a timer that re-arms itself with delay 0 lands back in the heap,
 * not in the batch being run, so it runs once per iteration and the loop
 * gets to poll I/O in between.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>

#include "loop/loop_impl.h"

/* About 73 years: far enough to mean "never", small enough to add to now. */
#define NS_FOREVER (INT64_MAX / 4)

int64_t eddy__seconds_to_ns(double s)
{
  double ns = s * 1e9;

  if (ns >= (double)NS_FOREVER)
    return NS_FOREVER;
  if (ns <= -(double)NS_FOREVER)
    return -NS_FOREVER;
  return (int64_t)ns;
}

int eddy__timer_init(eddy_timer_t *t, eddy_loop_t *loop, eddy_callback_fn cb,
                     void *arg)
{
  /* Reserving here is what lets eddy_timer_start() never fail. */
  if (eddy__heap_reserve(&loop->heap, loop->ntimers + 1) < 0)
    return -ENOMEM;
  loop->ntimers++;
  t->hn.idx = EDDY__HEAP_NONE;
  t->hn.key = 0;
  t->hn.seq = 0;
  eddy_list_init(&t->link);
  eddy_list_init(&t->due);
  t->loop = loop;
  t->cb = cb;
  t->arg = arg;
  t->repeat = 0;
  t->state = EDDY__TIMER_IDLE;
  t->oneshot = 0;
  t->listed = 0;
  t->owns_future = 0;
  return 0;
}

void eddy__timer_owns_future(eddy_timer_t *t)
{
  t->owns_future = 1;
}

void eddy__timer_deinit(eddy_timer_t *t)
{
  eddy_timer_stop(t);
  t->loop->ntimers--;
}

eddy_timer_t *eddy_timer_new(eddy_loop_t *loop, eddy_callback_fn cb, void *arg)
{
  eddy_timer_t *t;

  if (loop == NULL || cb == NULL) {
    errno = EINVAL;
    return NULL;
  }
  t = malloc(sizeof *t);
  if (t == NULL || eddy__timer_init(t, loop, cb, arg) < 0) {
    free(t);
    errno = ENOMEM;
    return NULL;
  }
  t->listed = 1;
  eddy_list_insert_tail(&loop->timers, &t->link);
  return t;
}

static int64_t deadline_after(const eddy_loop_t *loop, double delay)
{
  return loop->now + (delay > 0 ? eddy__seconds_to_ns(delay) : 0);
}

static void timer_arm(eddy_timer_t *t, int64_t deadline)
{
  eddy_loop_t *loop = t->loop;

  eddy_timer_stop(t);
  t->hn.key = deadline;
  t->hn.seq = loop->timer_seq++;
  eddy__heap_insert(&loop->heap, &t->hn);
  t->state = EDDY__TIMER_HEAP;
}

int eddy_timer_start(eddy_timer_t *t, double delay, double repeat)
{
  if (t == NULL || isnan(delay) || isnan(repeat) || repeat < 0)
    return EDDY_EUSAGE;
  t->repeat = repeat > 0 ? eddy__seconds_to_ns(repeat) : 0;
  if (repeat > 0 && t->repeat < 1)
    t->repeat = 1; /* a period too small to represent is still periodic */
  timer_arm(t, deadline_after(t->loop, delay));
  return 0;
}

int eddy_timer_start_at(eddy_timer_t *t, double when)
{
  if (t == NULL || isnan(when))
    return EDDY_EUSAGE;
  t->repeat = 0;
  timer_arm(t, eddy__seconds_to_ns(when));
  return 0;
}

void eddy_timer_stop(eddy_timer_t *t)
{
  if (t == NULL)
    return;
  if (t->state == EDDY__TIMER_HEAP)
    eddy__heap_remove(&t->loop->heap, &t->hn);
  else if (t->state == EDDY__TIMER_DUE)
    eddy_list_remove(&t->due);
  t->state = EDDY__TIMER_IDLE;
}

int eddy_timer_active(const eddy_timer_t *t)
{
  return t != NULL && t->state != EDDY__TIMER_IDLE;
}

void eddy_timer_free(eddy_timer_t *t)
{
  if (t == NULL)
    return;
  if (t->listed)
    eddy_list_remove(&t->link);
  eddy__timer_deinit(t);
  free(t);
}

static int call_timer(eddy_loop_t *loop, int64_t when, eddy_callback_fn cb,
                      void *arg)
{
  eddy_timer_t *t;

  if (loop == NULL || cb == NULL)
    return -EINVAL;
  t = eddy_timer_new(loop, cb, arg);
  if (t == NULL)
    return -ENOMEM;
  t->oneshot = 1;
  timer_arm(t, when);
  return 0;
}

int eddy_loop_call_later(eddy_loop_t *loop, double delay, eddy_callback_fn cb,
                         void *arg)
{
  if (loop == NULL || isnan(delay))
    return loop == NULL ? -EINVAL : EDDY_EUSAGE;
  return call_timer(loop, deadline_after(loop, delay), cb, arg);
}

int eddy_loop_call_at(eddy_loop_t *loop, double when, eddy_callback_fn cb,
                      void *arg)
{
  if (isnan(when))
    return EDDY_EUSAGE;
  return call_timer(loop, eddy__seconds_to_ns(when), cb, arg);
}

/* Tornado's PeriodicCallback: the next run is a whole number of periods
 * after the previous scheduled one, skipping the ticks already missed. */
static int64_t next_tick(int64_t prev, int64_t period, int64_t now)
{
  int64_t next = prev + period;

  if (next <= now)
    next += ((now - next) / period + 1) * period;
  return next;
}

void eddy__timers_run(eddy_loop_t *loop)
{
  struct eddy__hnode *hn;

  while ((hn = eddy__heap_min(&loop->heap)) != NULL && hn->key <= loop->now) {
    eddy_timer_t *t = eddy_container_of(hn, eddy_timer_t, hn);
    eddy__heap_remove(&loop->heap, hn);
    t->state = EDDY__TIMER_DUE;
    eddy_list_insert_tail(&loop->due, &t->due);
  }
  /* Always take the head afresh: a callback may stop or free any timer. */
  while (!eddy_list_empty(&loop->due)) {
    eddy_timer_t *t = eddy_container_of(loop->due.next, eddy_timer_t, due);
    eddy_callback_fn cb = t->cb;
    void *arg = t->arg;

    eddy_list_remove(&t->due);
    t->state = EDDY__TIMER_IDLE;
    if (t->repeat > 0)
      timer_arm(t, next_tick(t->hn.key, t->repeat, loop->now));
    else if (t->oneshot)
      eddy_timer_free(t);
    if (loop->head.debug) {
      int64_t t0 = eddy__debug_clock();
      cb(arg);
      eddy__debug_slow(loop, t0, "a timer callback", NULL);
    } else {
      cb(arg);
    }
  }
}

int64_t eddy__timers_next(const eddy_loop_t *loop)
{
  struct eddy__hnode *hn = eddy__heap_min(&loop->heap);
  return hn == NULL ? -1 : hn->key;
}

size_t eddy__timers_abandon(eddy_loop_t *loop)
{
  struct eddy_list seen;
  size_t n = 0;

  /* Abandoning frees timers, maybe others than the one at hand (a
   * with_timeout cancels its input, maybe a sleep): so take the head each
   * time, and move it out of the way first in case it survives (a future
   * settled by hand whose clean-up is a queued task). */
  eddy_list_init(&seen);
  while (!eddy_list_empty(&loop->timers)) {
    eddy_timer_t *t = eddy_container_of(loop->timers.next, eddy_timer_t, link);

    eddy_list_remove(&t->link);
    eddy_list_insert_tail(&seen, &t->link);
    if (t->owns_future) {
      t->owns_future = 0;
      n++;
      eddy__future_abandon_timer(t->arg);
    }
  }
  while (!eddy_list_empty(&seen)) {
    struct eddy_list *l = seen.next;
    eddy_list_remove(l);
    eddy_list_insert_tail(&loop->timers, l);
  }
  return n;
}

void eddy__timers_fini(eddy_loop_t *loop)
{
  while (!eddy_list_empty(&loop->timers))
    eddy_timer_free(eddy_container_of(loop->timers.next, eddy_timer_t, link));
  free(loop->heap.a);
  loop->heap.a = NULL;
  loop->heap.n = loop->heap.cap = 0;
}
