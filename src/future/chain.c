/* SPDX-License-Identifier: MIT */
/*
 * Chaining: then, then_ok, catch, finally, add_done, and adoption.
 *
 * A then-step is one allocation: the chained future d itself carries the
 * callback and the node that queues it. d waits on its source f (d->upstream
 * holds the reference the caller gave up, f's waiter list holds one on d).
 * When f settles the loop runs eddy__step_run(d), which reads f, maybe calls the
 * callback, and releases f.
 *
 * Adoption (folly's Proxy, the JS thenable rule): when the callback returns
 * a pending future g, d does not add a callback on g that settles d one hop
 * later; d itself waits on g as kind ADOPT, with the same node, and
 * settles as g when g does. d then shares g's outcome (settle_as).
 */
#include <errno.h>

#include "future/future_internal.h"

/* The common part of then, then_ok, catch and finally. Consumes @f. */
static eddy_future_t *chain(eddy_future_t *f, enum eddy__future_kind kind,
                            union eddy__future_fn fn, void *arg)
{
  eddy_future_t *d;

  if (f == NULL)
    return NULL;
  d = eddy__future_alloc(eddy__future_loop(f), kind);
  if (d == NULL) {
    eddy_future_unref(f); /* rule 2: consumed even on failure */
    return NULL;
  }
  d->fn = fn;
  d->arg = arg;
  eddy__future_wait_on(d, f, EDDY__RUN_STEP);
  return d;
}

eddy_future_t *eddy_then(eddy_future_t *f, eddy_then_fn fn, void *arg)
{
  return chain(f, EDDY__THEN, (union eddy__future_fn){ .then = fn }, arg);
}

eddy_future_t *eddy_then_ok(eddy_future_t *f, eddy_then_fn fn, void *arg)
{
  return chain(f, EDDY__THEN_OK, (union eddy__future_fn){ .then = fn }, arg);
}

eddy_future_t *eddy_catch(eddy_future_t *f, eddy_then_fn fn, void *arg)
{
  return chain(f, EDDY__CATCH, (union eddy__future_fn){ .then = fn }, arg);
}

eddy_future_t *eddy_finally(eddy_future_t *f, eddy_callback_fn fn, void *arg)
{
  return chain(f, EDDY__FINALLY, (union eddy__future_fn){ .fin = fn }, arg);
}

/* Whether step @d calls its callback now that @src has settled. A NULL
 * callback passes the outcome through, so a NULL never crashes. */
static int wants_callback(const eddy_future_t *d, const eddy_future_t *src)
{
  switch (d->kind) {
  case EDDY__THEN:
    return d->fn.then != NULL;
  case EDDY__THEN_OK:
    return d->fn.then != NULL && src->state == EDDY_FUTURE_RESOLVED;
  case EDDY__CATCH:
    return d->fn.then != NULL && eddy__failed(src);
  default:
    return 0;
  }
}

/*
 * Makes d settle as g, the reference a then-callback returned. Returns 1
 * if d now waits on g, in which case the reference d's running node held
 * has moved to g's waiter list.
 */
static int adopt(eddy_future_t *d, eddy_future_t *g)
{
  if (g == EDDY_NO_VALUE) {
    eddy_future_resolve(d, NULL, NULL);
    return 0;
  }
  if (g == NULL) {
    /* What every constructor returns when malloc fails: taking it for "no
     * value" would turn a lost write into success. No message, so the
     * rejection itself allocates nothing. */
    eddy_future_reject(d, -ENOMEM, NULL);
    return 0;
  }
  if (d->state != EDDY_FUTURE_PENDING || g->state != EDDY_FUTURE_PENDING) {
    /* Settled g: take its outcome now, no extra hop. Settled d (the
     * callback settled or cancelled it): g's outcome has nowhere to go. */
    eddy_future_settle_as(d, g);
    eddy_future_unref(g);
    return 0;
  }
  if (g == d) {
    /* Waiting on itself would never settle (JS raises TypeError here). */
    eddy_future_unref(g);
    eddy_future_reject(d, EDDY_EUSAGE, "a then-callback returned its own future");
    return 0;
  }
  d->kind = EDDY__ADOPT;
  d->upstream = g; /* the callback's new reference, now ours */
  eddy__future_wait_link(g, eddy__future_link(d, EDDY__RUN_STEP));
  return 1;
}

void eddy__step_run(eddy_future_t *d)
{
  eddy_future_t *src = d->upstream;

  d->upstream = NULL;
  /* d may have settled while it waited (cancelled, or settled by hand):
   * then the callback does not run and only the references go. */
  if (d->state == EDDY_FUTURE_PENDING) {
    if (d->kind == EDDY__FINALLY && d->fn.fin != NULL)
      d->fn.fin(d->arg);
    if (wants_callback(d, src)) {
      if (adopt(d, d->fn.then(src, d->arg))) {
        eddy_future_unref(src);
        return;
      }
    } else {
      eddy_future_settle_as(d, src); /* pass-through, ESETTLED harmless */
    }
  }
  eddy_future_unref(src);
  eddy_future_unref(d); /* the reference the waiter list gave the node */
}

/* ------------------------------------------------------------------------ */
/* add_done: a hidden node, so the caller has nothing to release             */
/* ------------------------------------------------------------------------ */

void eddy__done_run(eddy_future_t *node)
{
  eddy_future_t *f = node->upstream;

  node->upstream = NULL;
  node->fn.done(f, node->arg);
  eddy_future_unref(f);
  eddy_future_unref(node);
}

int eddy_future_add_done(eddy_future_t *f, eddy_done_fn fn, void *arg)
{
  eddy_future_t *node;

  if (f == NULL || fn == NULL)
    return EDDY_EUSAGE;
  node = eddy__future_alloc(eddy__future_loop(f), EDDY__DONE);
  if (node == NULL)
    return -ENOMEM;
  node->fn.done = fn;
  node->arg = arg;
  node->upstream = eddy_future_ref(f); /* add_done borrows f */
  eddy__future_wait_link(f, eddy__future_link(node, EDDY__RUN_DONE)); /* its only reference */
  return 0;
}
