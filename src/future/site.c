/* SPDX-License-Identifier: MIT */
/*
 * The *_at entry points of eddy/future.h: the plain function, then, in
 * debug mode only, the caller's place stored in the loop's record of the
 * future (src/loop/debug.c). Normal mode pays a call and one test.
 */
#include <stdarg.h>

#include "future/future_internal.h"

static eddy_future_t *at(eddy_future_t *f, const char *file, int line,
                         const char *func)
{
  if (f != NULL && f != EDDY_NO_VALUE && eddy__head(eddy__future_loop(f))->debug)
    eddy__debug_future_site(f, file, line, func);
  return f;
}

eddy_future_t *eddy_future_new_at(const char *file, int line, const char *func,
                                  eddy_loop_t *loop)
{
  return at(eddy_future_new(loop), file, line, func);
}

eddy_future_t *eddy_future_resolved_at(const char *file, int line,
                                       const char *func, eddy_loop_t *loop,
                                       void *value, eddy_free_fn value_free)
{
  return at(eddy_future_resolved(loop, value, value_free), file, line, func);
}

eddy_future_t *eddy_future_rejected_at(const char *file, int line,
                                       const char *func, eddy_loop_t *loop,
                                       int code, const char *fmt, ...)
{
  eddy_future_t *f;
  va_list ap;

  if (fmt == NULL)
    return at(eddy_future_rejected(loop, code, NULL), file, line, func);
  f = eddy_future_new(loop);
  if (f == NULL)
    return NULL;
  va_start(ap, fmt);
  eddy__future_reject_va(f, code < 0 ? code : EDDY_EUSAGE, 0, fmt, ap);
  va_end(ap);
  return at(f, file, line, func);
}

eddy_future_t *eddy_then_at(const char *file, int line, const char *func,
                            eddy_future_t *f, eddy_then_fn fn, void *arg)
{
  return at(eddy_then(f, fn, arg), file, line, func);
}

eddy_future_t *eddy_then_ok_at(const char *file, int line, const char *func,
                               eddy_future_t *f, eddy_then_fn fn, void *arg)
{
  return at(eddy_then_ok(f, fn, arg), file, line, func);
}

eddy_future_t *eddy_catch_at(const char *file, int line, const char *func,
                             eddy_future_t *f, eddy_then_fn fn, void *arg)
{
  return at(eddy_catch(f, fn, arg), file, line, func);
}

eddy_future_t *eddy_finally_at(const char *file, int line, const char *func,
                               eddy_future_t *f, eddy_callback_fn fn, void *arg)
{
  return at(eddy_finally(f, fn, arg), file, line, func);
}

eddy_future_t *eddy_all_at(const char *file, int line, const char *func,
                           eddy_loop_t *loop, eddy_future_t **futures, size_t n)
{
  return at(eddy_all(loop, futures, n), file, line, func);
}

eddy_future_t *eddy_all_settled_at(const char *file, int line, const char *func,
                                   eddy_loop_t *loop, eddy_future_t **futures,
                                   size_t n)
{
  return at(eddy_all_settled(loop, futures, n), file, line, func);
}

eddy_future_t *eddy_any_at(const char *file, int line, const char *func,
                           eddy_loop_t *loop, eddy_future_t **futures, size_t n)
{
  return at(eddy_any(loop, futures, n), file, line, func);
}

eddy_future_t *eddy_race_at(const char *file, int line, const char *func,
                            eddy_loop_t *loop, eddy_future_t **futures, size_t n)
{
  return at(eddy_race(loop, futures, n), file, line, func);
}

eddy_future_t *eddy_with_timeout_at(const char *file, int line, const char *func,
                                    eddy_future_t *f, double seconds)
{
  return at(eddy_with_timeout(f, seconds), file, line, func);
}

eddy_future_t *eddy_sleep_at(const char *file, int line, const char *func,
                             eddy_loop_t *loop, double seconds)
{
  return at(eddy_sleep(loop, seconds), file, line, func);
}

eddy_future_t *eddy_repeat_at(const char *file, int line, const char *func,
                              eddy_step_fn step, void *arg)
{
  return at(eddy_repeat(step, arg), file, line, func);
}
