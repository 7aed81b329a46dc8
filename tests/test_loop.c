/* SPDX-License-Identifier: MIT */
/*
 * The loop's suite: life cycle, call_soon, run_until, logging, and main().
 * Timers, fd handlers and threads have a file each (test_loop_*.c).
 *
 * Built twice: tests/test_loop on the default backend and
 * tests/test_loop_poll with EDDY_TEST_BACKEND="poll", which sets
 * EDDY_BACKEND before any loop is created.
 *
 * Every test frees its loop at the end, so valgrind and ASan see a clean
 * shutdown. Time assertions use lower bounds only (timers never fire early)
 * or bounds of seconds.
 */
#include <check.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test_loop.h"
#include "test_backend.h"

eddy_loop_t *new_loop(void)
{
  eddy_loop_t *loop = eddy_loop_new();
  ck_assert_ptr_nonnull(loop);
  return loop;
}

void stop_cb(void *arg)
{
  eddy_loop_stop(arg);
}

/* ---- life cycle and call_soon ------------------------------------------- */

START_TEST(test_new_free)
{
  eddy_loop_t *loop = new_loop();
#ifdef EDDY_TEST_BACKEND
  ck_assert_str_eq(eddy_loop_backend_name(loop), EDDY_TEST_BACKEND);
#endif
  eddy_loop_free(loop);
  eddy_loop_free(NULL);

  loop = eddy_loop_new_with_backend(EDDY_BACKEND_POLL);
  ck_assert_ptr_nonnull(loop);
  ck_assert_str_eq(eddy_loop_backend_name(loop), "poll");
  eddy_loop_free(loop);

  errno = 0;
  ck_assert_ptr_null(eddy_loop_new_with_backend((eddy_backend_t)42));
  ck_assert_int_eq(errno, EINVAL);
#ifdef EDDY_HAVE_EPOLL
  loop = eddy_loop_new_with_backend(EDDY_BACKEND_EPOLL);
  ck_assert_ptr_nonnull(loop);
  ck_assert_str_eq(eddy_loop_backend_name(loop), "epoll");
  eddy_loop_free(loop);
#endif
}
END_TEST

struct order g_order;

void record_cb(void *arg)
{
  g_order.seen[g_order.n++] = (int)(intptr_t)arg;
}

START_TEST(test_call_soon_fifo)
{
  eddy_loop_t *loop = new_loop();
  int i;

  memset(&g_order, 0, sizeof g_order);
  for (i = 0; i < 10; i++)
    ck_assert_int_eq(eddy_loop_call_soon(loop, record_cb, (void *)(intptr_t)i), 0);
  ck_assert_int_eq(eddy_loop_call_soon(loop, stop_cb, loop), 0);
  ck_assert_int_eq(g_order.n, 0); /* never inline */
  ck_assert_int_eq(eddy_loop_run(loop), 0);
  ck_assert_int_eq(g_order.n, 10);
  for (i = 0; i < 10; i++)
    ck_assert_int_eq(g_order.seen[i], i);
  eddy_loop_free(loop);
}
END_TEST

int g_later_ran;

void later_cb(void *arg)
{
  (void)arg;
  g_later_ran++;
}

static void adds_later_cb(void *arg)
{
  eddy_loop_t *loop = arg;
  eddy_loop_call_soon(loop, later_cb, NULL);
  eddy_loop_stop(loop);
}

START_TEST(test_call_soon_next_iteration)
{
  eddy_loop_t *loop = new_loop();

  g_later_ran = 0;
  eddy_loop_call_soon(loop, adds_later_cb, loop);
  ck_assert_int_eq(eddy_loop_run(loop), 0);
  ck_assert_int_eq(g_later_ran, 0);
  eddy_loop_call_soon(loop, stop_cb, loop);
  ck_assert_int_eq(eddy_loop_run(loop), 0);
  ck_assert_int_eq(g_later_ran, 1);
  eddy_loop_free(loop);
}
END_TEST

START_TEST(test_stop_before_run)
{
  eddy_loop_t *loop = new_loop();
  double t0 = eddy_loop_time(loop);

  eddy_loop_stop(loop);
  ck_assert_int_eq(eddy_loop_run(loop), 0);
  eddy_loop_update_time(loop);
  ck_assert(eddy_loop_time(loop) - t0 < 5.0);
  ck_assert(eddy_loop_time(loop) >= t0);
  /* The flag is consumed: a second stop-and-run works the same way. */
  eddy_loop_stop(loop);
  ck_assert_int_eq(eddy_loop_run(loop), 0);
  eddy_loop_free(loop);
}
END_TEST

static void nested_run_cb(void *arg)
{
  eddy_loop_t *loop = arg;
  ck_assert_int_eq(eddy_loop_run(loop), EDDY_EUSAGE);
  eddy_loop_stop(loop);
}

START_TEST(test_run_reentrant)
{
  eddy_loop_t *loop = new_loop();
  eddy_loop_call_soon(loop, nested_run_cb, loop);
  ck_assert_int_eq(eddy_loop_run(loop), 0);
  eddy_loop_free(loop);
}
END_TEST

static void bad_io(eddy_loop_t *loop, int fd, unsigned ev, void *arg)
{
  (void)loop;
  (void)fd;
  (void)ev;
  (void)arg;
}

START_TEST(test_free_with_pending_work)
{
  eddy_loop_t *loop = new_loop();
  int fds[2], i;

  ck_assert_int_eq(pipe(fds), 0);
  for (i = 0; i < 100; i++)
    eddy_loop_call_soon(loop, record_cb, NULL);
  for (i = 0; i < 100; i++) {
    eddy_timer_t *t = eddy_timer_new(loop, record_cb, NULL);
    ck_assert_ptr_nonnull(t);
    if (i % 2)
      eddy_timer_start(t, 10, 1);
  }
  eddy_loop_call_later(loop, 10, record_cb, NULL);
  eddy_loop_call_soon_threadsafe(loop, record_cb, NULL);
  ck_assert_int_eq(eddy_loop_add_handler(loop, fds[0], EDDY_READ,
                                         bad_io, NULL), 0);
  g_order.n = 0;
  eddy_loop_free(loop);
  ck_assert_int_eq(g_order.n, 0); /* dropped, not run */
  close(fds[0]);
  close(fds[1]);
}
END_TEST

START_TEST(test_null_and_bad_input)
{
  eddy_loop_t *loop = new_loop();
  eddy_timer_t *t;

  ck_assert_int_eq(eddy_loop_run(NULL), EDDY_EUSAGE);
  eddy_loop_stop(NULL);
  eddy_loop_update_time(NULL);
  ck_assert(eddy_loop_time(NULL) == 0.0);
  ck_assert_int_lt(eddy_loop_call_soon(NULL, record_cb, NULL), 0);
  ck_assert_int_lt(eddy_loop_call_soon(loop, NULL, NULL), 0);
  ck_assert_int_lt(eddy_loop_call_soon_threadsafe(NULL, record_cb, NULL), 0);
  ck_assert_int_lt(eddy_loop_call_later(NULL, 1, record_cb, NULL), 0);
  ck_assert_int_lt(eddy_loop_call_later(loop, NAN, record_cb, NULL), 0);
  ck_assert_int_lt(eddy_loop_call_at(loop, 1, NULL, NULL), 0);
  ck_assert_int_lt(eddy_loop_add_handler(NULL, 0, EDDY_READ, bad_io, NULL), 0);
  ck_assert_int_eq(eddy_loop_add_handler(loop, -1, EDDY_READ, bad_io, NULL), -EBADF);
  ck_assert_int_eq(eddy_loop_add_handler(loop, 0, EDDY_READ, NULL, NULL), -EINVAL);
  ck_assert_int_eq(eddy_loop_update_handler(NULL, 0, 0), -ENOENT);
  ck_assert_int_eq(eddy_loop_update_handler(loop, -5, 0), -ENOENT);
  ck_assert_int_eq(eddy_loop_remove_handler(loop, 1 << 20), -ENOENT);
  ck_assert_int_lt(eddy_loop_after_fork(NULL), 0);
  ck_assert_ptr_null(eddy_timer_new(NULL, record_cb, NULL));
  ck_assert_ptr_null(eddy_timer_new(loop, NULL, NULL));
  ck_assert_int_eq(eddy_timer_start(NULL, 1, 0), EDDY_EUSAGE);
  ck_assert_int_eq(eddy_timer_start_at(NULL, 1), EDDY_EUSAGE);
  eddy_timer_stop(NULL);
  eddy_timer_free(NULL);
  ck_assert_int_eq(eddy_timer_active(NULL), 0);
  t = eddy_timer_new(loop, record_cb, NULL);
  ck_assert_int_eq(eddy_timer_start(t, NAN, 0), EDDY_EUSAGE);
  ck_assert_int_eq(eddy_timer_start(t, 1, -1), EDDY_EUSAGE);
  ck_assert_int_eq(eddy_timer_start(t, 1, NAN), EDDY_EUSAGE);
  ck_assert_int_eq(eddy_timer_start_at(t, NAN), EDDY_EUSAGE);
  ck_assert_int_eq(eddy_timer_active(t), 0);
  /* Huge and infinite delays mean "never", not overflow. */
  ck_assert_int_eq(eddy_timer_start(t, INFINITY, 0), 0);
  ck_assert_int_eq(eddy_timer_start(t, 1e300, 1e300), 0);
  ck_assert_int_eq(eddy_timer_start_at(t, -INFINITY), 0);
  eddy_timer_free(t);
  eddy_loop_set_logger(NULL, NULL, NULL);
  eddy_loop_log(NULL, EDDY_LOG_DEBUG, "dropped %d", 1);
  ck_assert_str_eq(eddy_loop_backend_name(NULL), "none");
  eddy_loop_free(loop);
}
END_TEST

/* ---- run_until ---------------------------------------------------------- */

static void resolve_cb(void *arg)
{
  eddy_future_resolve(arg, NULL, NULL);
}

static void until_nested_cb(void *arg)
{
  eddy_future_t *f = arg;
  eddy_loop_t *loop = eddy_future_loop(f);
  ck_assert_int_eq(eddy_loop_run_until(loop, f, 0), EDDY_EUSAGE);
  ck_assert_int_eq(eddy_loop_run_until(loop, f, 1), EDDY_EUSAGE);
  eddy_future_resolve(f, NULL, NULL);
}

START_TEST(test_run_until)
{
  eddy_loop_t *loop = new_loop();
  eddy_future_t *f;
  double t0;

  ck_assert_int_eq(eddy_loop_run_until(loop, NULL, 1), EDDY_EUSAGE);
  ck_assert_int_eq(eddy_loop_run_until(NULL, NULL, 1), EDDY_EUSAGE);

  /* Settled from a timer, with no callbacks registered on it. */
  f = eddy_future_new(loop);
  eddy_loop_call_later(loop, 0.01, resolve_cb, f);
  ck_assert_int_eq(eddy_loop_run_until(loop, f, 10), 0);
  ck_assert_int_eq(eddy_future_state(f), EDDY_FUTURE_RESOLVED);
  /* Already settled: returns at once. */
  ck_assert_int_eq(eddy_loop_run_until(loop, f, 0), 0);
  eddy_future_unref(f);

  /* Settled from call_soon: must not block in poll afterwards. */
  f = eddy_future_new(loop);
  eddy_loop_call_soon(loop, resolve_cb, f);
  ck_assert_int_eq(eddy_loop_run_until(loop, f, 0), 0);
  eddy_future_unref(f);

  /* Timeout: the future is cancelled. */
  f = eddy_future_new(loop);
  t0 = eddy_loop_time(loop);
  ck_assert_int_eq(eddy_loop_run_until(loop, f, 0.05), EDDY_ETIMEOUT);
  ck_assert(eddy_loop_time(loop) >= t0 + 0.05);
  ck_assert_int_eq(eddy_future_state(f), EDDY_FUTURE_CANCELLED);
  eddy_future_unref(f);

  /* Stopped first. */
  f = eddy_future_new(loop);
  eddy_loop_call_later(loop, 0.01, stop_cb, loop);
  ck_assert_int_eq(eddy_loop_run_until(loop, f, 10), EDDY_ESTOPPED);
  ck_assert_int_eq(eddy_future_state(f), EDDY_FUTURE_PENDING);
  /* Re-entrant. */
  eddy_loop_call_soon(loop, until_nested_cb, f);
  ck_assert_int_eq(eddy_loop_run_until(loop, f, 10), 0);
  eddy_future_unref(f);
  eddy_loop_free(loop);
}
END_TEST

/* ---- deferred tasks, through futures ------------------------------------ */

#define CHAIN_STEPS 300000

struct chain {
  eddy_loop_t *loop;
  long steps, steps_at_io;
  int fds[2];
};

static eddy_future_t *chain_step(void *arg)
{
  struct chain *c = arg;
  if (++c->steps == CHAIN_STEPS)
    return eddy_future_stop(c->loop);
  return eddy_future_resolved(c->loop, NULL, NULL);
}

static void chain_io(eddy_loop_t *loop, int fd, unsigned ev, void *arg)
{
  struct chain *c = arg;
  (void)ev;
  c->steps_at_io = c->steps;
  eddy_loop_remove_handler(loop, fd);
}

START_TEST(test_long_chain_no_starvation)
{
  eddy_loop_t *loop = new_loop();
  struct chain c = { .loop = loop, .steps_at_io = -1 };
  eddy_future_t *f;

  ck_assert_int_eq(pipe(c.fds), 0);
  ck_assert_int_eq(write(c.fds[1], "x", 1), 1);
  eddy_loop_add_handler(loop, c.fds[0], EDDY_READ, chain_io, &c);
  f = eddy_repeat(chain_step, &c);
  ck_assert_ptr_nonnull(f);
  ck_assert_int_eq(eddy_loop_run_until(loop, f, 60), 0);
  ck_assert_int_eq(eddy_future_state(f), EDDY_FUTURE_RESOLVED);
  ck_assert_int_eq(c.steps, CHAIN_STEPS);
  /* The pipe was served while the chain was still running. */
  ck_assert(c.steps_at_io >= 0 && c.steps_at_io < CHAIN_STEPS);
  eddy_future_unref(f);
  close(c.fds[0]);
  close(c.fds[1]);
  eddy_loop_free(loop);
}
END_TEST

eddy_future_t *never_then(eddy_future_t *settled, void *arg)
{
  (void)settled;
  (void)arg;
  return EDDY_NO_VALUE;
}

START_TEST(test_free_with_queued_future_callbacks)
{
  eddy_loop_t *loop = new_loop();
  eddy_future_t *f = eddy_future_resolved(loop, malloc(16), free);

  /* The callback is queued but never run before the free: the queued
   * chain's references must not leak. */
  f = eddy_then(f, never_then, NULL);
  eddy_future_unref(f);
  eddy_loop_free(loop);
}
END_TEST

/* ---- logging and errors ------------------------------------------------- */

struct logbuf {
  int n;
  eddy_log_level_t level;
  char last[2048];
};

static void log_capture(eddy_log_level_t level, const char *msg, void *arg)
{
  struct logbuf *b = arg;
  b->n++;
  b->level = level;
  snprintf(b->last, sizeof b->last, "%s", msg);
}

START_TEST(test_logging)
{
  eddy_loop_t *loop = new_loop();
  struct logbuf b = { 0 };
  char big[1500];

  memset(big, 'x', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  eddy_loop_set_logger(loop, log_capture, &b);
  eddy_loop_log(loop, EDDY_LOG_DEBUG, "hello %d", 42);
  ck_assert_int_eq(b.n, 1);
  ck_assert_int_eq(b.level, EDDY_LOG_DEBUG);
  ck_assert_str_eq(b.last, "hello 42");
  eddy_loop_log(loop, EDDY_LOG_ERROR, "%s!", big);
  ck_assert_int_eq(b.n, 2);
  ck_assert_uint_eq(strlen(b.last), sizeof big);
  eddy_loop_set_logger(loop, NULL, NULL);
  eddy_loop_log(loop, EDDY_LOG_DEBUG, "not shown %d", 1);
  eddy_loop_log(loop, EDDY_LOG_WARNING, "test warning, expected on stderr");
  ck_assert_int_eq(b.n, 2);
  eddy_loop_free(loop);
}
END_TEST

/* Runs with stderr sent to a file, and returns what was written to it. */
static const char *stderr_of(void (*fn)(void))
{
  static char text[4096];
  FILE *f = tmpfile();
  int saved = dup(2);
  size_t n;

  ck_assert_ptr_nonnull(f);
  ck_assert_int_ge(saved, 0);
  fflush(stderr);
  ck_assert_int_ge(dup2(fileno(f), 2), 0);
  fn();
  fflush(stderr);
  ck_assert_int_ge(dup2(saved, 2), 0);
  close(saved);
  rewind(f);
  n = fread(text, 1, sizeof text - 1, f);
  text[n] = '\0';
  fclose(f);
  return text;
}

static void log_at_levels(void)
{
  eddy_loop_t *loop = new_loop();

  ck_assert_int_eq(eddy_loop_log_level(loop), EDDY_LOG_WARNING);
  eddy_loop_log(loop, EDDY_LOG_INFO, "1 not shown");
  eddy_loop_log(loop, EDDY_LOG_WARNING, "2 shown");
  ck_assert_int_eq(eddy_loop_set_log_level(loop, EDDY_LOG_DEBUG), 0);
  eddy_loop_log(loop, EDDY_LOG_DEBUG, "3 shown");
  ck_assert_int_eq(eddy_loop_set_log_level(loop, EDDY_LOG_ERROR), 0);
  ck_assert_int_eq(eddy_loop_log_level(loop), EDDY_LOG_ERROR);
  eddy_loop_log(loop, EDDY_LOG_WARNING, "4 not shown");
  eddy_loop_log(loop, EDDY_LOG_ERROR, "5 shown");
  ck_assert_int_eq(eddy_loop_set_log_level(loop, EDDY_LOG_NONE), 0);
  eddy_loop_log(loop, EDDY_LOG_ERROR, "6 not shown");
  eddy_loop_log(loop, EDDY_LOG_NONE, "7 not shown");
  eddy_loop_free(loop);
}

static void log_from_env(void)
{
  eddy_loop_t *loop;

  setenv("EDDY_LOG", "Info", 1);
  loop = new_loop();
  ck_assert_int_eq(eddy_loop_log_level(loop), EDDY_LOG_INFO);
  eddy_loop_log(loop, EDDY_LOG_INFO, "info shown");
  eddy_loop_log(loop, EDDY_LOG_DEBUG, "debug not shown");
  eddy_loop_free(loop);
  setenv("EDDY_LOG", "none", 1);
  loop = new_loop();
  eddy_loop_log(loop, EDDY_LOG_ERROR, "error not shown");
  eddy_loop_free(loop);
  setenv("EDDY_LOG", "loud", 1);
  loop = new_loop();
  ck_assert_int_eq(eddy_loop_log_level(loop), EDDY_LOG_WARNING);
  eddy_loop_free(loop);
  unsetenv("EDDY_LOG");
}

/* The default logger's threshold: set per loop or by EDDY_LOG, and no
 * business of a custom logger's. */
START_TEST(test_log_level)
{
  eddy_loop_t *loop;
  struct logbuf b = { 0 };

  unsetenv("EDDY_LOG");
  ck_assert_str_eq(stderr_of(log_at_levels), "eddy: 2 shown\neddy: 3 shown\neddy: 5 shown\n");
  ck_assert_str_eq(stderr_of(log_from_env),
                   "eddy: info shown\n"
                   "eddy: EDDY_LOG=loud is none of debug, info, warning, error, none: "
                   "using warning\n");

  loop = new_loop();
  ck_assert_int_eq(eddy_loop_set_log_level(NULL, EDDY_LOG_DEBUG), -EINVAL);
  ck_assert_int_eq(eddy_loop_set_log_level(loop, (eddy_log_level_t)15), -EINVAL);
  ck_assert_int_eq(eddy_loop_log_level(NULL), EDDY_LOG_WARNING);
  eddy_loop_set_logger(loop, log_capture, &b);
  ck_assert_int_eq(eddy_loop_set_log_level(loop, EDDY_LOG_NONE), 0);
  eddy_loop_log(loop, EDDY_LOG_DEBUG, "still seen");
  ck_assert_int_eq(b.n, 1);
  ck_assert_str_eq(b.last, "still seen");
  eddy_loop_free(loop);
}
END_TEST

START_TEST(test_strerror)
{
  ck_assert_str_eq(eddy_strerror(0), "success");
  ck_assert_str_eq(eddy_strerror(EDDY_ETIMEOUT), "timed out");
  ck_assert_str_eq(eddy_strerror(-ENOENT), strerror(ENOENT));
  ck_assert_str_eq(eddy_strerror(12345678), "unknown error");
  ck_assert_str_eq(eddy_err_name(EDDY_ESTOPPED), "EDDY_ESTOPPED");
  ck_assert_str_eq(eddy_err_name(EDDY_EUSAGE), "EDDY_EUSAGE");
  ck_assert_str_eq(eddy_err_name(0), "OK");
  ck_assert_str_eq(eddy_err_name(-99999), "UNKNOWN");
#ifdef HAVE_STRERRORNAME_NP
  ck_assert_str_eq(eddy_err_name(-EEXIST), "EEXIST");
#endif
}
END_TEST

/* ------------------------------------------------------------------------ */

static TCase *new_tcase(const char *name)
{
  TCase *tc = tcase_create(name);
  tcase_set_timeout(tc, 30);
  return tc;
}

static Suite *loop_suite(void)
{
  Suite *s = suite_create("loop");
  TCase *tc = new_tcase("core");

  tcase_add_test(tc, test_new_free);
  tcase_add_test(tc, test_call_soon_fifo);
  tcase_add_test(tc, test_call_soon_next_iteration);
  tcase_add_test(tc, test_stop_before_run);
  tcase_add_test(tc, test_run_reentrant);
  tcase_add_test(tc, test_free_with_pending_work);
  tcase_add_test(tc, test_null_and_bad_input);
  tcase_add_test(tc, test_run_until);
  tcase_add_test(tc, test_long_chain_no_starvation);
  tcase_add_test(tc, test_free_with_queued_future_callbacks);
  tcase_add_test(tc, test_logging);
  tcase_add_test(tc, test_log_level);
  tcase_add_test(tc, test_strerror);
  suite_add_tcase(s, tc);
  tc = new_tcase("timers");
  loop_add_timer_tests(tc);
  suite_add_tcase(s, tc);
  tc = new_tcase("io");
  loop_add_io_tests(tc);
  suite_add_tcase(s, tc);
  tc = new_tcase("embed");
  loop_add_embed_tests(tc);
  suite_add_tcase(s, tc);
  tc = new_tcase("threads");
  loop_add_thread_tests(tc);
  suite_add_tcase(s, tc);
  return s;
}

int main(void)
{
  return test_run_suite(loop_suite());
}
