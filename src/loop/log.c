/* SPDX-License-Identifier: MIT */
/*
 * Logging. Every message of a loop (and of the streams and servers on it)
 * goes through one per-loop function, so an application can route eddy's
 * messages into its own log. Messages are formatted here, once.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "loop/loop_impl.h"

static void log_default(eddy_log_level_t level, const char *message, void *arg)
{
  (void)arg;
  if (level >= EDDY_LOG_WARNING)
    fprintf(stderr, "eddy: %s\n", message);
}

void eddy_loop_set_logger(eddy_loop_t *loop, eddy_log_fn fn, void *arg)
{
  if (loop == NULL)
    return;
  loop->logfn = fn;
  loop->logarg = fn != NULL ? arg : NULL;
}

static void log_v(eddy_loop_t *loop, eddy_log_level_t level, const char *fmt,
                  va_list ap) __attribute__((format(printf, 3, 0)));

static void log_v(eddy_loop_t *loop, eddy_log_level_t level, const char *fmt,
                  va_list ap)
{
  eddy_log_fn fn = log_default;
  void *arg = NULL;
  char buf[512], *msg = buf;
  va_list ap2;
  int n;

  if (loop != NULL && loop->logfn != NULL) {
    fn = loop->logfn;
    arg = loop->logarg;
  } else if (level < EDDY_LOG_WARNING) {
    return; /* the default would drop it: skip the formatting too */
  }
  if (fmt == NULL)
    return;
  va_copy(ap2, ap);
  n = vsnprintf(buf, sizeof buf, fmt, ap);
  if (n >= (int)sizeof buf) {
    msg = malloc((size_t)n + 1);
    if (msg != NULL)
      vsnprintf(msg, (size_t)n + 1, fmt, ap2);
    else
      msg = buf; /* out of memory: the truncated text is better than none */
  }
  va_end(ap2);
  if (n >= 0)
    fn(level, msg, arg);
  if (msg != buf)
    free(msg);
}

void eddy_loop_log(eddy_loop_t *loop, eddy_log_level_t level, const char *fmt, ...)
{
  va_list ap;

  va_start(ap, fmt);
  log_v(loop, level, fmt, ap);
  va_end(ap);
}

void eddy__log(eddy_loop_t *loop, eddy_log_level_t level, const char *fmt, ...)
{
  va_list ap;

  va_start(ap, fmt);
  log_v(loop, level, fmt, ap);
  va_end(ap);
}
