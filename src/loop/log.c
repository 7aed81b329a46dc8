/* SPDX-License-Identifier: MIT */
/*
 * Logging. Every message of a loop (and of the streams and servers on it)
 * goes through one per-loop function, so an application can route eddy's
 * messages into its own log. Messages are formatted here, once.
 */
#include <stdarg.h>
#include <stdio.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "loop/loop_impl.h"

/* The threshold was checked before formatting (log_v). */
static void log_default(eddy_log_level_t level, const char *message, void *arg)
{
  (void)level;
  (void)arg;
  fprintf(stderr, "eddy: %s\n", message);
}

static const struct {
  const char *name;
  eddy_log_level_t level;
} level_names[] = {
  { "debug", EDDY_LOG_DEBUG },     { "info", EDDY_LOG_INFO },
  { "warning", EDDY_LOG_WARNING }, { "error", EDDY_LOG_ERROR },
  { "none", EDDY_LOG_NONE },
};

int eddy__log_level_from_env(void)
{
  const char *env = getenv("EDDY_LOG");
  size_t i;

  if (env == NULL || *env == '\0')
    return EDDY_LOG_WARNING;
  for (i = 0; i < sizeof level_names / sizeof level_names[0]; i++)
    if (strcasecmp(env, level_names[i].name) == 0)
      return level_names[i].level;
  /* Said once per loop: quiet enough, and a typo should not go unnoticed. */
  fprintf(stderr, "eddy: EDDY_LOG=%s is none of debug, info, warning, error, "
                  "none: using warning\n", env);
  return EDDY_LOG_WARNING;
}

int eddy_loop_set_log_level(eddy_loop_t *loop, eddy_log_level_t level)
{
  size_t i;

  if (loop == NULL)
    return -EINVAL;
  for (i = 0; i < sizeof level_names / sizeof level_names[0]; i++) {
    if (level_names[i].level == level) {
      loop->log_level = level;
      return 0;
    }
  }
  return -EINVAL;
}

eddy_log_level_t eddy_loop_log_level(const eddy_loop_t *loop)
{
  return loop != NULL ? (eddy_log_level_t)loop->log_level : EDDY_LOG_WARNING;
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
  } else {
    int threshold = loop != NULL ? loop->log_level : EDDY_LOG_WARNING;
    /* Below the default's threshold: skip the formatting too. */
    if ((int)level < threshold || threshold >= EDDY_LOG_NONE)
      return;
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
