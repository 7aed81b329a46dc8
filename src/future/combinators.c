/* SPDX-License-Identifier: MIT */
/*
 * Combinators: all, all_settled, any, race; with_timeout; sleep.
 *
 * all/all_settled/any/race share one machine, a `combi`: one allocation
 * holding a waiter task per input, plus the inputs array (which becomes the
 * value of all/all_settled) and the result future. The combi holds the
 * input references and one on the result (the producer's), and frees
 * itself when the last of its tasks has run. Losers are cancelled, so every
 * input settles and every task runs: racing two connects leaks nothing.
 */
#include <stdint.h>
#include <stdlib.h>

#include "future/future_internal.h"

enum combi_kind { COMBI_ALL, COMBI_ALL_SETTLED, COMBI_ANY, COMBI_RACE };

struct combi;

struct combi_elem {
  struct eddy__task task; /* waits on inputs[elem - elems] */
  struct combi *c;
};

struct combi {
  eddy_future_t *result;  /* the producer's reference */
  eddy_future_t **inputs; /* n + 1 slots, NULL-terminated; NULL once given */
  size_t n;
  size_t unrun;           /* tasks still to run: the combi lives until 0 */
  size_t unsettled;       /* inputs not seen settling yet */
  enum combi_kind kind;
  struct combi_elem elems[];
};

/* value_free of an all/all_settled result: value_free gets no size, which
 * is why the array carries a NULL terminator. */
static void free_future_array(void *value)
{
  eddy_future_t **p;

  for (p = value; *p != NULL; p++)
    eddy_future_unref(*p);
  free(value);
}

static void cancel_rest(struct combi *c)
{
  size_t i;

  for (i = 0; i < c->n; i++)
    eddy_future_cancel(c->inputs[i]); /* ESETTLED for the settled ones */
}

static void combi_cancelled(eddy_future_t *result, void *arg)
{
  cancel_rest(arg);
}

static void resolve_with_inputs(struct combi *c)
{
  eddy_future_resolve_bytes(c->result, c->inputs, c->n, free_future_array);
  c->inputs = NULL; /* the result owns them now */
}

/* Input @in settled and the result is still pending: decide. */
static void combi_decide(struct combi *c, eddy_future_t *in)
{
  eddy_future_t *r = c->result;

  switch (c->kind) {
  case COMBI_ALL:
    if (eddy__failed(in)) {
      eddy_future_settle_as(r, in); /* fail fast */
      cancel_rest(c);
    } else if (--c->unsettled == 0) {
      resolve_with_inputs(c);
    }
    break;
  case COMBI_ALL_SETTLED:
    if (--c->unsettled == 0)
      resolve_with_inputs(c);
    break;
  case COMBI_ANY:
    if (in->state == EDDY_FUTURE_RESOLVED) {
      eddy_future_settle_as(r, in);
      cancel_rest(c);
    } else if (--c->unsettled == 0) {
      eddy_future_settle_as(r, in); /* every one failed: the last error */
    }
    break;
  case COMBI_RACE:
    eddy_future_settle_as(r, in);
    cancel_rest(c);
    break;
  }
}

static void elem_run(struct eddy__task *task)
{
  struct combi_elem *e = eddy_container_of(task, struct combi_elem, task);
  struct combi *c = e->c;

  if (c->result->state == EDDY_FUTURE_PENDING)
    combi_decide(c, c->inputs[e - c->elems]);
  if (--c->unrun == 0) {
    if (c->inputs != NULL)
      free_future_array(c->inputs);
    eddy_future_unref(c->result);
    free(c);
  }
}

static void unref_all(eddy_future_t **futures, size_t n)
{
  size_t i;

  for (i = 0; futures != NULL && i < n; i++)
    eddy_future_unref(futures[i]);
}

static eddy_future_t *combine(eddy_loop_t *loop, eddy_future_t **futures,
                              size_t n, enum combi_kind kind)
{
  eddy_future_t **inputs = NULL, *r = NULL;
  struct combi *c = NULL;
  size_t i;

  if (loop == NULL || (futures == NULL && n > 0) ||
      n > (SIZE_MAX - sizeof *c) / sizeof c->elems[0] - 1)
    goto fail;
  for (i = 0; i < n; i++)
    if (futures[i] == NULL)
      goto fail;
  inputs = malloc((n + 1) * sizeof *inputs);
  r = eddy__future_alloc(loop, EDDY__PLAIN);
  if (n > 0)
    c = malloc(sizeof *c + n * sizeof c->elems[0]);
  if (inputs == NULL || r == NULL || (n > 0 && c == NULL))
    goto fail;
  for (i = 0; i < n; i++)
    inputs[i] = futures[i];
  inputs[n] = NULL;

  if (n == 0) {
    if (kind == COMBI_ALL || kind == COMBI_ALL_SETTLED) {
      eddy_future_resolve_bytes(r, inputs, 0, free_future_array);
    } else {
      free(inputs);
      eddy_future_reject(r, EDDY_EUSAGE, "%s of no futures",
                         kind == COMBI_ANY ? "any" : "race");
    }
    return r;
  }

  *c = (struct combi){ .result = eddy_future_ref(r), .inputs = inputs, .n = n,
                       .unrun = n, .unsettled = n, .kind = kind };
  eddy_future_on_cancel(r, combi_cancelled, c);
  for (i = 0; i < n; i++) {
    c->elems[i].c = c;
    c->elems[i].task.run = elem_run;
    eddy__future_wait(inputs[i], &c->elems[i].task);
  }
  return r;

fail:
  unref_all(futures, n); /* rule 2: consumed even on failure */
  free(inputs);
  eddy_future_unref(r);
  free(c);
  return NULL;
}

eddy_future_t *eddy_all(eddy_loop_t *loop, eddy_future_t **futures, size_t n)
{
  return combine(loop, futures, n, COMBI_ALL);
}

eddy_future_t *eddy_all_settled(eddy_loop_t *loop, eddy_future_t **futures,
                                size_t n)
{
  return combine(loop, futures, n, COMBI_ALL_SETTLED);
}

eddy_future_t *eddy_any(eddy_loop_t *loop, eddy_future_t **futures, size_t n)
{
  return combine(loop, futures, n, COMBI_ANY);
}

eddy_future_t *eddy_race(eddy_loop_t *loop, eddy_future_t **futures, size_t n)
{
  return combine(loop, futures, n, COMBI_RACE);
}

/* ------------------------------------------------------------------------ */
/* with_timeout                                                              */
/* ------------------------------------------------------------------------ */

/*
 * The result r waits on the input f with its own task, and keeps the timer
 * in r->arg. Whichever comes first frees the timer and clears r->arg: f
 * settling (eddy__timeout_run), the timer firing (from its own callback, which
 * the loop allows), or r being cancelled (the hook; cancel() then goes on
 * to cancel r's upstream, f). The timer needs no reference on r: r lives
 * until its task has run, and the task frees the timer if nothing did.
 */
static eddy_timer_t *timeout_take_timer(eddy_future_t *r)
{
  eddy_timer_t *timer = r->arg;

  r->arg = NULL;
  return timer;
}

void eddy__timeout_run(eddy_future_t *r)
{
  eddy_future_t *f = r->upstream;

  r->upstream = NULL;
  eddy_timer_free(timeout_take_timer(r));
  eddy_future_settle_as(r, f); /* ESETTLED if the timeout won */
  eddy_future_unref(f);
  eddy_future_unref(r);
}

static void timeout_cancelled(eddy_future_t *r, void *unused)
{
  eddy_timer_free(timeout_take_timer(r));
}

static void timeout_fired(void *arg)
{
  eddy_future_t *r = arg;
  eddy_future_t *f = r->upstream;

  eddy_timer_free(timeout_take_timer(r));
  if (r->state != EDDY_FUTURE_PENDING)
    return; /* settled by hand: nothing to time out */
  if (f->state != EDDY_FUTURE_PENDING) {
    /* f settled in this iteration but r's task has not run yet: its
     * outcome (maybe data already read) wins over the timeout. */
    eddy_future_settle_as(r, f);
    return;
  }
  eddy_future_reject(r, EDDY_ETIMEOUT, NULL);
  eddy_future_cancel(f); /* the interrupt reaches the operation */
}

eddy_future_t *eddy_with_timeout(eddy_future_t *f, double seconds)
{
  eddy_future_t *r;
  eddy_timer_t *timer;
  int rc;

  if (f == NULL)
    return NULL;
  r = eddy__future_alloc(eddy__future_loop(f), EDDY__TIMEOUT);
  timer = r != NULL ? eddy_timer_new(eddy__future_loop(f), timeout_fired, r) : NULL;
  if (timer == NULL) {
    eddy_future_unref(r);
    eddy_future_unref(f);
    return NULL;
  }
  eddy__future_wait_on(r, f, EDDY__RUN_TIMEOUT);
  rc = eddy_timer_start(timer, seconds, 0);
  if (rc < 0) { /* a NaN duration */
    eddy_timer_free(timer);
    eddy_future_reject(r, rc, "with_timeout: invalid duration");
    eddy_future_cancel(f);
    return r;
  }
  r->arg = timer;
  eddy__timer_owns_future(timer);
  eddy_future_on_cancel(r, timeout_cancelled, NULL);
  return r;
}

/* ------------------------------------------------------------------------ */
/* sleep                                                                     */
/* ------------------------------------------------------------------------ */

/* The timer, kept in r->arg, holds a reference on r until it fires or r
 * is cancelled, whichever frees the timer first. */
static void sleep_fired(void *arg)
{
  eddy_future_t *r = arg;

  eddy_timer_free(r->arg);
  r->arg = NULL;
  eddy_future_resolve(r, NULL, NULL); /* ESETTLED if settled by hand */
  eddy_future_unref(r);
}

static void sleep_cancelled(eddy_future_t *r, void *unused)
{
  eddy_timer_free(r->arg);
  r->arg = NULL;
  eddy_future_unref(r); /* the timer's; the canceller still borrows one */
}

eddy_future_t *eddy_sleep(eddy_loop_t *loop, double seconds)
{
  eddy_future_t *r = eddy__future_alloc(loop, EDDY__PLAIN);
  eddy_timer_t *timer;
  int rc;

  if (r == NULL)
    return NULL;
  timer = eddy_timer_new(loop, sleep_fired, r);
  if (timer == NULL) {
    eddy_future_unref(r);
    return NULL;
  }
  rc = eddy_timer_start(timer, seconds, 0);
  if (rc < 0) {
    eddy_timer_free(timer);
    eddy_future_reject(r, rc, "sleep: invalid duration");
    return r;
  }
  r->arg = timer;
  eddy__timer_owns_future(timer);
  eddy_future_ref(r);
  eddy_future_on_cancel(r, sleep_cancelled, NULL);
  return r;
}

/* ------------------------------------------------------------------------ */
/* The loop going away                                                       */
/* ------------------------------------------------------------------------ */

void eddy__future_abandon_timer(eddy_future_t *r)
{
  /* Cancelling borrows: the timer's reference may be the last one, and the
   * sleep's hook drops it before cancel() is done with r. */
  eddy_future_ref(r);
  if (r->kind == EDDY__TIMEOUT) {
    /* Pending: the hook frees the timer and the cancel reaches the input.
     * Settled by hand: r's task, which frees the timer, still waits on the
     * input; cancelling that queues it (or it is queued already). */
    if (eddy_future_cancel(r) == EDDY_ESETTLED && r->upstream != NULL)
      eddy_future_cancel(r->upstream);
  } else if (eddy_future_cancel(r) == EDDY_ESETTLED) {
    sleep_fired(r); /* a sleep settled by hand: its timer's reference */
  }
  eddy_future_unref(r);
}
