/* SPDX-License-Identifier: MIT */
/*
 * Futures: the object, its references, settling, reading the outcome and
 * cancelling. Chaining is in chain.c, combinators in combinators.c, repeat
 * in repeat.c.
 *
 * Settling never runs a callback: it moves the waiter list onto the loop's
 * FIFO (eddy__loop_defer, which cannot fail), so settling cannot fail
 * either, and no call into this file ever re-enters user code except the
 * producer's cancel hook, which the header documents.
 */
#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "future/future_internal.h"

/* Only its address matters; the text helps whoever finds it in a debugger. */
const char eddy_stop_marker[] = "EDDY_STOP";

/* The same for EDDY_NO_VALUE, which is cast to eddy_future_t *: aligned
 * for one, so the conversion is well defined (it is never dereferenced). */
_Alignas(max_align_t) const char eddy_no_value_marker[] = "EDDY_NO_VALUE";

/* ------------------------------------------------------------------------ */
/* Life cycle                                                                */
/* ------------------------------------------------------------------------ */

/* Freed futures a loop keeps (spares.h): 16 KiB at most, and a pass of
 * pipelined echoes settles a few hundred. */
#define SPARE_FUTURES 256u

eddy_future_t *eddy__future_alloc(eddy_loop_t *loop, enum eddy__future_kind kind)
{
  eddy_future_t *f;

  if (loop == NULL)
    return NULL;
  /* A kept block, else malloc; then one assignment, which beats calloc:
   * the compound literal lets the compiler zero only what it must. */
  f = eddy__spares_take(&eddy__head(loop)->spare_futures);
  if (f == NULL && (f = malloc(sizeof *f)) == NULL)
    return NULL;
  *f = (eddy_future_t){ .refs = 1, .kind = kind, .loop_id = eddy__head(loop)->id };
  eddy__head(loop)->nfutures++;
  if (eddy__head(loop)->debug)
    eddy__debug_future_new(f);
  return f;
}

/* A step's cancel hook, or NULL. */
static eddy_cancel_fn hook_of(const eddy_future_t *f, void **arg)
{
  if (!eddy__has_step(f->kind)) {
    *arg = f->cancel_arg;
    return f->on_cancel;
  }
  *arg = f->hook != NULL ? f->hook->arg : NULL;
  return f->hook != NULL ? f->hook->fn : NULL;
}

/* Ends the pending part of @f, which the outcome is about to overwrite:
 * returns its waiter list (to queue once the outcome is in place) and
 * frees a step's hook record. */
static eddy__link_t unpend(eddy_future_t *f)
{
  eddy__link_t waiters = f->waiters;

  /* Tested first: settling is the hot path of every hop, and a step
   * almost never has a hook (free(NULL) is still a call). */
  if (eddy__has_step(f->kind) && f->hook != NULL)
    free(f->hook);
  return waiters;
}

static void future_free(eddy_future_t *f)
{
  eddy_loop_t *loop = eddy__future_loop(f);

  /* A waiter list holds a reference on each waiter and `upstream` is only
   * set while this future sits in such a list, so neither can remain. */
  assert(f->upstream == NULL);
  if (f->state == EDDY_FUTURE_PENDING) {
    assert(f->waiters == 0);
    unpend(f);
  }
  if (eddy__head(loop)->debug)
    eddy__debug_future_free(f); /* may warn: it reads the outcome */
  if (f->is_shared)
    eddy_future_unref(f->shared); /* one level deep: never recursive */
  else if (f->state == EDDY_FUTURE_RESOLVED && f->value != NULL && f->value_free != NULL)
    f->value_free(f->value);
  else if (eddy__failed(f))
    free(f->message);
  eddy__head(loop)->nfutures--;
  eddy__spares_give(&eddy__head(loop)->spare_futures, f, SPARE_FUTURES);
}

eddy_future_t *eddy_future_ref(eddy_future_t *f)
{
  if (f != NULL && f != EDDY_NO_VALUE)
    f->refs++;
  return f;
}

void eddy_future_unref(eddy_future_t *f)
{
  if (f != NULL && f != EDDY_NO_VALUE && --f->refs == 0)
    future_free(f);
}

eddy_future_t *eddy_future_new(eddy_loop_t *loop)
{
  return eddy__future_alloc(loop, EDDY__PLAIN);
}

eddy_future_t *eddy_future_resolved(eddy_loop_t *loop, void *value,
                                    eddy_free_fn value_free)
{
  eddy_future_t *f = eddy__future_alloc(loop, EDDY__PLAIN);

  if (f == NULL) {
    /* The header promises the value is taken even on failure. */
    if (value != NULL && value_free != NULL)
      value_free(value);
    return NULL;
  }
  eddy_future_resolve(f, value, value_free);
  return f;
}

eddy_future_t *eddy_future_stop(eddy_loop_t *loop)
{
  return eddy_future_resolved(loop, EDDY_STOP, NULL);
}

/* ------------------------------------------------------------------------ */
/* Waiting and settling                                                      */
/* ------------------------------------------------------------------------ */

void eddy__future_wait_link(eddy_future_t *f, eddy__link_t link)
{
  eddy_loop_t *loop = eddy__future_loop(f);

  if (eddy__head(loop)->debug)
    eddy__debug_future_observed(f); /* whoever waits will see a rejection */
  if (f->state != EDDY_FUTURE_PENDING) {
    /* Already settled: still through the loop, never inline. */
    eddy__loop_defer_link(loop, link);
    return;
  }
  if (f->waiters == 0) {
    *eddy__link_next(link) = link;
  } else {
    *eddy__link_next(link) = *eddy__link_next(f->waiters);
    *eddy__link_next(f->waiters) = link;
  }
  f->waiters = link;
}

void eddy__future_wait(eddy_future_t *f, struct eddy__task *task)
{
  eddy__future_wait_link(f, (eddy__link_t)task);
}

void eddy__future_wait_on(eddy_future_t *d, eddy_future_t *f, enum eddy__runner runner)
{
  d->upstream = f;
  d->refs++;
  eddy__future_wait_link(f, eddy__future_link(d, runner));
}

void (*const eddy__future_runners[8])(eddy_future_t *f) = {
  [EDDY__RUN_STEP] = eddy__step_run,
  [EDDY__RUN_DONE] = eddy__done_run,
  [EDDY__RUN_REPEAT] = eddy__repeat_run,
  [EDDY__RUN_TIMEOUT] = eddy__timeout_run,
};

/* Queues every waiter of the list @last (from unpend) in registration
 * order; their references move with them to the loop's queue. */
static void queue_waiters(eddy_future_t *f, eddy__link_t last)
{
  eddy__link_t l, next;

  if (last == 0)
    return;
  eddy_loop_t *loop = eddy__future_loop(f);
  for (l = *eddy__link_next(last);; l = next) {
    next = *eddy__link_next(l); /* eddy__loop_defer_link reuses the link */
    eddy__loop_defer_link(loop, l);
    if (l == last)
      break;
  }
}

/* The outcome is in place (it overwrote the pending part, whose waiters
 * the caller took with unpend). A settled future has no hook to run. */
static void settle(eddy_future_t *f, eddy_future_state_t state,
                   eddy__link_t waiters)
{
  f->state = (unsigned char)state;
  queue_waiters(f, waiters);
}

int eddy_future_resolve(eddy_future_t *f, void *value, eddy_free_fn value_free)
{
  return eddy_future_resolve_bytes(f, value, 0, value_free);
}

int eddy_future_resolve_bytes(eddy_future_t *f, void *data, size_t size,
                              eddy_free_fn data_free)
{
  if (f == NULL)
    return EDDY_EUSAGE;
  if (f->state != EDDY_FUTURE_PENDING)
    return EDDY_ESETTLED;
  eddy__link_t waiters = unpend(f);
  f->value = data;
  f->size = size;
  f->value_free = data_free;
  settle(f, EDDY_FUTURE_RESOLVED, waiters);
  return 0;
}

__attribute__((format(printf, 4, 0)))
static int reject_va(eddy_future_t *f, int code, int cause, const char *fmt,
                     va_list ap)
{
  char *msg = NULL;

  if (f == NULL || code >= 0)
    return EDDY_EUSAGE;
  if (f->state != EDDY_FUTURE_PENDING)
    return EDDY_ESETTLED;
  /* Out of memory here only costs the text: eddy_future_message() falls
   * back to the code's text, and the rejection itself still happens. */
  if (fmt != NULL) {
    if (vasprintf(&msg, fmt, ap) < 0)
      msg = NULL;
  } else if (cause != 0) {
    /* Built now rather than on first read so the accessor stays const and
     * the cost lands on the (rare) error path. */
    if (asprintf(&msg, "%s: %s", eddy_strerror(code), eddy_strerror(cause)) < 0)
      msg = NULL;
  }
  eddy__link_t waiters = unpend(f);
  f->error = code;
  f->cause = cause;
  f->message = msg;
  settle(f, EDDY_FUTURE_REJECTED, waiters);
  return 0;
}

int eddy__future_reject_va(eddy_future_t *f, int code, int cause,
                           const char *fmt, va_list ap)
{
  return reject_va(f, code, cause, fmt, ap);
}

int eddy_future_reject(eddy_future_t *f, int code, const char *fmt, ...)
{
  va_list ap;
  int rc;

  va_start(ap, fmt);
  rc = reject_va(f, code, 0, fmt, ap);
  va_end(ap);
  return rc;
}

int eddy_future_reject_cause(eddy_future_t *f, int code, int cause,
                             const char *fmt, ...)
{
  va_list ap;
  int rc;

  va_start(ap, fmt);
  rc = reject_va(f, code, cause, fmt, ap);
  va_end(ap);
  return rc;
}

eddy_future_t *eddy_future_rejected(eddy_loop_t *loop, int code,
                                    const char *fmt, ...)
{
  eddy_future_t *f = eddy__future_alloc(loop, EDDY__PLAIN);
  va_list ap;

  if (f == NULL)
    return NULL;
  /* A non-negative code is a caller bug; report it rather than hand back
   * a future that looks rejected with "success". */
  va_start(ap, fmt);
  reject_va(f, code < 0 ? code : EDDY_EUSAGE, 0, fmt, ap);
  va_end(ap);
  return f;
}

int eddy_future_settle_as(eddy_future_t *to, eddy_future_t *from)
{
  if (to == NULL || from == NULL)
    return EDDY_EUSAGE;
  if (to->state != EDDY_FUTURE_PENDING)
    return EDDY_ESETTLED;
  if (from->state == EDDY_FUTURE_PENDING)
    return EDDY_EPENDING;
  if (eddy__head(eddy__future_loop(from))->debug)
    eddy__debug_future_observed(from); /* its outcome lives on in `to` */
  /* Share with the owner of the outcome, not with `from`, so that a long
   * chain of pass-throughs never builds a chain of shared references. */
  eddy__link_t waiters = unpend(to);
  to->shared = eddy_future_ref((eddy_future_t *)eddy__outcome(from));
  to->is_shared = 1;
  settle(to, (eddy_future_state_t)from->state, waiters);
  return 0;
}

void eddy_future_on_cancel(eddy_future_t *f, eddy_cancel_fn fn, void *arg)
{
  if (f == NULL || f->state != EDDY_FUTURE_PENDING)
    return;
  if (!eddy__has_step(f->kind)) {
    f->on_cancel = fn;
    f->cancel_arg = fn != NULL ? arg : NULL;
    return;
  }
  /* A hook on a then-step or a repeat (seldom: their producer is eddy)
   * lives outside the object, whose slot holds the step's callback. */
  if (fn == NULL) {
    free(f->hook);
    f->hook = NULL;
    return;
  }
  if (f->hook == NULL && (f->hook = malloc(sizeof *f->hook)) == NULL) {
    /* A hook that cannot be installed would let a cancel miss the work
     * it was meant to stop: fail the future instead, as any allocation
     * failure in a chain does. */
    eddy_future_reject(f, -ENOMEM, NULL);
    return;
  }
  f->hook->fn = fn;
  f->hook->arg = arg;
}

/* ------------------------------------------------------------------------ */
/* Cancelling                                                                */
/* ------------------------------------------------------------------------ */

int eddy_future_cancel(eddy_future_t *f)
{
  if (f == NULL)
    return EDDY_EUSAGE;
  if (f->state != EDDY_FUTURE_PENDING)
    return EDDY_ESETTLED;
  /* Walk up the chain (each future waits on at most one upstream) in a
   * loop rather than by recursion: cancelling the tail of a million-step
   * chain must not need a million frames. Each future stays alive while we
   * look at it: the caller borrows the first, and each next one is held by
   * the `upstream` reference of the one before. */
  do {
    void *hook_arg;
    eddy_cancel_fn hook = hook_of(f, &hook_arg);
    eddy_future_t *up = f->upstream;
    eddy__link_t waiters = unpend(f);

    f->state = EDDY_FUTURE_CANCELLED;
    f->error = EDDY_ECANCELLED;
    f->cause = 0;
    f->message = NULL;
    if (hook != NULL)
      hook(f, hook_arg); /* stops the operation, before callbacks queue */
    queue_waiters(f, waiters);
    f = up != NULL && up->state == EDDY_FUTURE_PENDING ? up : NULL;
  } while (f != NULL);
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Reading the outcome                                                       */
/* ------------------------------------------------------------------------ */

eddy_future_state_t eddy_future_state(const eddy_future_t *f)
{
  return f != NULL ? (eddy_future_state_t)f->state : EDDY_FUTURE_PENDING;
}

int eddy_future_done(const eddy_future_t *f)
{
  return f != NULL && f->state != EDDY_FUTURE_PENDING;
}

eddy_loop_t *eddy_future_loop(const eddy_future_t *f)
{
  return f != NULL ? eddy__future_loop(f) : NULL;
}

void *eddy_future_value(const eddy_future_t *f)
{
  if (f == NULL || f->state != EDDY_FUTURE_RESOLVED)
    return NULL;
  return eddy__outcome(f)->value;
}

size_t eddy_future_size(const eddy_future_t *f)
{
  if (f == NULL || f->state != EDDY_FUTURE_RESOLVED)
    return 0;
  return eddy__outcome(f)->size;
}

void *eddy_future_take(eddy_future_t *f, size_t *size)
{
  eddy_future_t *o;
  void *value;

  if (size != NULL)
    *size = eddy_future_size(f);
  if (f == NULL || f->state != EDDY_FUTURE_RESOLVED)
    return NULL;
  /* Taking through a sharer empties the owner: the value exists once. */
  o = (eddy_future_t *)eddy__outcome(f);
  value = o->value;
  o->value = NULL;
  return value;
}

/* Debug mode: reading a failure's details counts as having seen it. */
static void observed(const eddy_future_t *f)
{
  if (eddy__head(eddy__future_loop(f))->debug)
    eddy__debug_future_observed(f);
}

int eddy_future_error(const eddy_future_t *f)
{
  if (f == NULL || !eddy__failed(f))
    return 0;
  observed(f);
  return eddy__outcome(f)->error;
}

int eddy_future_cause(const eddy_future_t *f)
{
  if (f == NULL || !eddy__failed(f))
    return 0;
  observed(f);
  return eddy__outcome(f)->cause;
}

const char *eddy_future_message(const eddy_future_t *f)
{
  const eddy_future_t *o;

  if (f == NULL || !eddy__failed(f))
    return NULL;
  observed(f);
  o = eddy__outcome(f);
  return o->message != NULL ? o->message : eddy_strerror(o->error);
}
