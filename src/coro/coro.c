/* SPDX-License-Identifier: MIT */
/*
 * Coroutines (eddy/coro.h): spawn, await, and the server handler adapter.
 *
 * A coroutine is one mapping: a guard page, its stack, and at the top of
 * the stack its record (struct coro), so starting one allocates nothing
 * but the stack (usually a cached one) and its future. Waiting costs no
 * allocation either: the record's embedded task sits in the awaited
 * future's waiter list, as a then-step's does, and the loop runs it when
 * the future settles; running it switches to the coroutine. The switch
 * back happens when the coroutine awaits a pending future or ends, so the
 * task returns to the loop as a then-callback would.
 *
 * The coroutine's future is a plain future whose cancel hook cancels what
 * the coroutine awaits. What the body returns is awaited by the record's
 * own code on the coroutine's stack before the future settles as it: a
 * returned pending future is adopted without another mechanism, and
 * cancelling meanwhile reaches it the same way.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "eddy/coro.h"
#include "common/list.h"
#include "common/options.h"
#include "coro/context.h"
#include "coro/sanitizers.h"
#include "coro/stack.h"
#include "loop/loop_internal.h"
#include "future/future_internal.h"

struct coro {
  struct eddy__task task;   /* starts, then resumes, the coroutine */
  eddy_loop_t *loop;
  eddy_future_t *result;    /* the producer's reference */
  eddy_future_t *awaiting;  /* borrowed from the suspended eddy_await() */
  eddy_coro_fn fn;          /* the body: fn(arg), or */
  eddy_coro_stream_fn stream_fn; /* stream_fn(stream, arg) */
  void *arg;
  eddy_stream_t *stream;    /* a reference, for stream_fn */
  struct eddy__stack stack;
  struct eddy__ctx ctx;     /* the coroutine, while it is switched out */
  struct eddy__ctx caller;  /* who resumed it, while it runs */
  /* ASan: the caller's stack, learnt at each resume, to switch back to. */
  const void *caller_bottom;
  size_t caller_size;
  void *fake_stack;         /* ASan's fake frames of the suspended coroutine */
  unsigned started : 1, cancelled : 1, finished : 1;
};

struct eddy_coro_handler {
  eddy_coro_stream_fn fn;
  void *arg;
  eddy_coro_options_t options;
};

/* The coroutine running on this thread (NULL: the thread's own stack). */
static _Thread_local struct coro *current;

void eddy_coro_options_init(eddy_coro_options_t *options)
{
  memset(options, 0, sizeof *options);
}

int eddy_in_coro(void)
{
  return current != NULL;
}

/* The usable stack bytes @o asks for, or 0 if it is not acceptable. */
static size_t stack_size_of(const eddy_coro_options_t *o)
{
  size_t page = (size_t)sysconf(_SC_PAGESIZE), size;

  if (o != NULL && (o->stack_size > EDDY_CORO_MAX_STACK_SIZE ||
                    !eddy__all_zero(o->reserved_, sizeof o->reserved_)))
    return 0;
  size = o == NULL || o->stack_size == 0 ? EDDY_CORO_DEFAULT_STACK_SIZE
                                         : o->stack_size;
  if (size < EDDY_CORO_MIN_STACK_SIZE)
    size = EDDY_CORO_MIN_STACK_SIZE;
  return (size + page - 1) / page * page;
}

/* Leaves the coroutine for whoever resumed it. @final: it will never be
 * resumed, so ASan may drop its fake frames. */
static void yield(struct coro *c, int final)
{
  eddy__asan_start_switch(final ? NULL : &c->fake_stack, c->caller_bottom,
                          c->caller_size);
  eddy__ctx_switch(&c->ctx, &c->caller);
  eddy__asan_finish_switch(c->fake_stack, &c->caller_bottom, &c->caller_size);
}

static void settle_result(struct coro *c, eddy_future_t *ret)
{
  if (ret == NULL)
    eddy_future_reject(c->result, -ENOMEM, NULL); /* allocates nothing */
  else if (ret == EDDY_NO_VALUE)
    eddy_future_resolve(c->result, NULL, NULL);
  else
    eddy_future_settle_as(c->result, ret);
  eddy_future_unref(ret);
}

/* The first frame on the coroutine's stack. */
static void coro_main(void *arg)
{
  struct coro *c = arg;
  eddy_future_t *ret;

  eddy__asan_finish_switch(NULL, &c->caller_bottom, &c->caller_size);
  ret = c->stream_fn != NULL ? c->stream_fn(c->stream, c->arg) : c->fn(c->arg);
  /* A pending future is adopted by waiting for it here, so cancelling the
   * coroutine meanwhile cancels it as it would any other await. */
  ret = eddy_await(ret);
  settle_result(c, ret); /* ESETTLED if cancelled: the outcome is dropped */
  c->finished = 1;
  yield(c, 1);
  abort(); /* a finished coroutine is never resumed */
}

/* Frees what a coroutine holds; its stack (and with it c) goes last. */
static void coro_release(struct coro *c)
{
  struct eddy__stack st = c->stack;

  eddy_future_unref(c->result);
  if (c->stream != NULL)
    eddy_stream_unref(c->stream);
  eddy__stack_put(&st);
}

/* The task: starts or resumes the coroutine, and returns when it yields. */
static void coro_run(struct eddy__task *task)
{
  struct coro *c = eddy_container_of(task, struct coro, task);
  struct coro *outer = current;
  void *fake_stack;

  if (!c->started && c->cancelled) { /* cancelled before it ran: fn never runs */
    coro_release(c);
    return;
  }
  c->started = 1;
  current = c;
  eddy__asan_start_switch(&fake_stack, c->stack.lo, c->stack.size);
  eddy__ctx_switch(&c->caller, &c->ctx);
  eddy__asan_finish_switch(fake_stack, NULL, NULL);
  current = outer;
  if (c->finished)
    coro_release(c);
}

/* The coroutine's future was cancelled: reach what it waits on. Its own
 * settling is done by eddy_future_cancel(); settle_result() then fails. */
static void coro_cancel(eddy_future_t *f, void *arg)
{
  struct coro *c = arg;

  (void)f;
  c->cancelled = 1;
  if (c->awaiting != NULL)
    eddy_future_cancel(c->awaiting);
}

static eddy_future_t *spawn(eddy_loop_t *loop, eddy_coro_fn fn,
                            eddy_coro_stream_fn stream_fn, eddy_stream_t *s,
                            void *arg, const eddy_coro_options_t *options)
{
  struct eddy__stack st;
  eddy_future_t *f;
  struct coro *c;
  size_t size;
  int err;

  if (loop == NULL || (fn == NULL && stream_fn == NULL)) {
    errno = EINVAL;
    return NULL;
  }
  size = stack_size_of(options);
  if (size == 0)
    return eddy_future_rejected(loop, EDDY_EUSAGE,
                                "coroutine options: bad stack_size or reserved_");
  err = eddy__stack_get(&st, size);
  if (err < 0)
    return eddy_future_rejected(loop, err, "cannot map a coroutine stack");
  f = eddy_future_new(loop);
  if (f == NULL) {
    eddy__stack_put(&st);
    errno = ENOMEM;
    return NULL;
  }
  /* The record sits at the top of its stack, the stack runs below it. */
  c = (struct coro *)(((uintptr_t)st.lo + st.size - sizeof *c) &
                      ~(uintptr_t)63);
  memset(c, 0, sizeof *c);
  c->loop = loop;
  c->fn = fn;
  c->stream_fn = stream_fn;
  c->arg = arg;
  c->stack = st;
  c->result = eddy_future_ref(f);
  c->stream = s != NULL ? eddy_stream_ref(s) : NULL;
  err = eddy__ctx_make(&c->ctx, st.lo, (size_t)((char *)c - (char *)st.lo),
                       coro_main, c);
  if (err < 0) {
    eddy_future_reject(f, err, "cannot make a coroutine context");
    coro_release(c);
    return f;
  }
  eddy_future_on_cancel(f, coro_cancel, c);
  c->task.run = coro_run;
  eddy__loop_defer(loop, &c->task);
  return f;
}

eddy_future_t *eddy_coro_spawn(eddy_loop_t *loop, eddy_coro_fn fn, void *arg,
                                const eddy_coro_options_t *options)
{
  return spawn(loop, fn, NULL, NULL, arg, options);
}

eddy_future_t *eddy_await(eddy_future_t *f)
{
  struct coro *c = current;

  if (f == NULL || f == EDDY_NO_VALUE)
    return f;
  /* Strict even for a settled future, so that a call from the wrong place
   * fails in every run, not only when the future happens to be pending. */
  if (c == NULL || eddy_future_loop(f) != c->loop) {
    eddy_loop_t *loop = eddy_future_loop(f);
    eddy_future_unref(f);
    return eddy_future_rejected(loop, EDDY_EUSAGE,
                                c == NULL ? "eddy_await() outside a coroutine"
                                          : "eddy_await() on another loop's future");
  }
  if (eddy_future_done(f))
    return f;
  c->awaiting = f;
  eddy__future_wait(f, &c->task);
  yield(c, 0);
  c->awaiting = NULL;
  return f;
}

/* ------------------------------------------------------------------------ */

eddy_coro_handler_t *eddy_coro_handler_new(eddy_coro_stream_fn fn, void *arg,
                                           const eddy_coro_options_t *options)
{
  eddy_coro_handler_t *h;

  if (fn == NULL || (options != NULL && stack_size_of(options) == 0)) {
    errno = EINVAL;
    return NULL;
  }
  h = calloc(1, sizeof *h);
  if (h == NULL)
    return NULL;
  h->fn = fn;
  h->arg = arg;
  if (options != NULL)
    h->options = *options;
  return h;
}

void eddy_coro_handler_free(eddy_coro_handler_t *handler)
{
  free(handler);
}

eddy_future_t *eddy_coro_stream_handler(eddy_stream_t *s,
                                        const struct sockaddr *peer,
                                        void *handler)
{
  eddy_coro_handler_t *h = handler;

  (void)peer; /* borrowed for this call only: the coroutine starts later */
  return spawn(eddy_stream_loop(s), NULL, h->fn, s, h->arg, &h->options);
}
