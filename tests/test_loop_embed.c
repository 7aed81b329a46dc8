/* SPDX-License-Identifier: MIT */
/*
 * The loop suite, embedding: eddy_loop_backend_fd(), eddy_loop_run_once()
 * and eddy_loop_next_timeout(), used the way a host main loop uses them
 * (poll the backend fd with the next timeout, then run once without
 * waiting). Other backends than epoll refuse the fd; the rest still works.
 */
#include <check.h>
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

#include "test_loop.h"

/* Only epoll hands out a backend fd (eddy_loop_backend_fd()). */
static int has_backend_fd(eddy_loop_t *loop)
{
  return strcmp(eddy_loop_backend_name(loop), "epoll") == 0;
}

/* What a host loop does each turn: wait on the backend fd for at most the
 * next timeout (capped at @cap_ms), then run one iteration without waiting.
 * @return whether the fd was readable. */
static int host_turn(eddy_loop_t *loop, int cap_ms)
{
  struct pollfd p = { .fd = eddy_loop_backend_fd(loop), .events = POLLIN };
  double t = eddy_loop_next_timeout(loop);
  int ms = t < 0 ? cap_ms : (int)(t * 1000.0) + 1, n;

  if (t == 0)
    ms = 0;
  if (ms > cap_ms)
    ms = cap_ms;
  n = poll(&p, 1, ms);
  ck_assert_int_ge(n, 0);
  ck_assert_int_eq(eddy_loop_run_once(loop, 0), 0);
  return n > 0;
}

START_TEST(test_backend_fd)
{
  eddy_loop_t *loop = new_loop();
  int fd = eddy_loop_backend_fd(loop);

  ck_assert_int_eq(eddy_loop_backend_fd(NULL), -EINVAL);
  if (!has_backend_fd(loop)) {
    ck_assert_int_eq(fd, -ENOTSUP);
  } else {
    struct pollfd p = { .fd = fd, .events = POLLIN };
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(eddy_loop_run_once(loop, 0), 0);
    ck_assert_int_eq(poll(&p, 1, 0), 0); /* nothing to do: not readable */
  }
  eddy_loop_free(loop);
}
END_TEST

START_TEST(test_next_timeout)
{
  eddy_loop_t *loop = new_loop();
  eddy_timer_t *t = eddy_timer_new(loop, later_cb, NULL);
  double d;

  ck_assert(eddy_loop_next_timeout(NULL) == -1);
  ck_assert_int_eq(eddy_loop_run_once(loop, 0), 0); /* the wakeup fd is in */
  ck_assert(eddy_loop_next_timeout(loop) == -1);
  eddy_timer_start(t, 10.0, 0);
  d = eddy_loop_next_timeout(loop);
  ck_assert(d > 9.0 && d <= 10.0);
  ck_assert_int_eq(eddy_loop_call_soon(loop, later_cb, NULL), 0);
  ck_assert(eddy_loop_next_timeout(loop) == 0);
  g_later_ran = 0;
  ck_assert_int_eq(eddy_loop_run_once(loop, 0), 0);
  ck_assert_int_eq(g_later_ran, 1);
  ck_assert(eddy_loop_next_timeout(loop) > 9.0);
  eddy_timer_start(t, 0, 0);
  ck_assert(eddy_loop_next_timeout(loop) == 0); /* due already */
  ck_assert_int_eq(eddy_loop_run_once(loop, 0), 0);
  ck_assert_int_eq(g_later_ran, 2);
  ck_assert(eddy_loop_next_timeout(loop) == -1);
  eddy_timer_free(t);
  eddy_loop_free(loop);
}
END_TEST

/* run_once waits no longer than asked, and not at all for 0. */
START_TEST(test_run_once_timeout)
{
  eddy_loop_t *loop = new_loop();
  double t0;

  ck_assert_int_eq(eddy_loop_run_once(NULL, 0), EDDY_EUSAGE);
  ck_assert_int_eq(eddy_loop_run_once(loop, 0.0 / 0.0), EDDY_EUSAGE);
  eddy_loop_update_time(loop);
  t0 = eddy_loop_time(loop);
  ck_assert_int_eq(eddy_loop_run_once(loop, 0), 0);
  ck_assert(eddy_loop_time(loop) - t0 < 0.5);
  ck_assert_int_eq(eddy_loop_run_once(loop, 0.05), 0);
  ck_assert(eddy_loop_time(loop) - t0 >= 0.05);
  ck_assert(eddy_loop_time(loop) - t0 < 5.0);
  eddy_loop_free(loop);
}
END_TEST

struct inside {
  eddy_loop_t *loop;
  int rc;
};

static void run_once_inside(void *arg)
{
  struct inside *in = arg;
  in->rc = eddy_loop_run_once(in->loop, 0);
}

START_TEST(test_run_once_reentrant)
{
  struct inside in = { new_loop(), 1 };

  eddy_loop_call_soon(in.loop, run_once_inside, &in);
  ck_assert_int_eq(eddy_loop_run_once(in.loop, 0), 0);
  ck_assert_int_eq(in.rc, EDDY_EUSAGE);
  eddy_loop_free(in.loop);
}
END_TEST

static void on_pipe(eddy_loop_t *loop, int fd, unsigned events, void *arg)
{
  char c;
  int *got = arg;

  if (read(fd, &c, 1) == 1)
    *got = c;
}

/* A host loop driving eddy: a sleep future, an fd handler added from the
 * host side (outside every eddy callback), and a thread's call_soon all
 * reach it through the backend fd and the next timeout. */
START_TEST(test_host_loop)
{
  eddy_loop_t *loop = new_loop();
  eddy_future_t *nap;
  int fds[2], got = 0, turns;
  double t0;

  if (!has_backend_fd(loop)) {
    eddy_loop_free(loop);
    return;
  }
  ck_assert_int_eq(pipe(fds), 0);
  eddy_loop_update_time(loop);
  t0 = eddy_loop_time(loop);
  nap = eddy_sleep(loop, 0.05);
  for (turns = 0; !eddy_future_done(nap) && turns < 1000; turns++)
    host_turn(loop, 1000);
  ck_assert_int_eq(eddy_future_state(nap), EDDY_FUTURE_RESOLVED);
  ck_assert(eddy_loop_time(loop) - t0 >= 0.05);
  ck_assert_int_lt(turns, 100); /* slept in poll, did not spin */
  eddy_future_unref(nap);

  ck_assert_int_eq(eddy_loop_add_handler(loop, fds[0], EDDY_READ, on_pipe, &got), 0);
  ck_assert(eddy_loop_next_timeout(loop) == 0); /* the kernel lacks it yet */
  host_turn(loop, 0);
  ck_assert(eddy_loop_next_timeout(loop) == -1);
  ck_assert_int_eq(write(fds[1], "x", 1), 1);
  ck_assert(host_turn(loop, 5000)); /* woken by the fd, not the cap */
  ck_assert_int_eq(got, 'x');

  g_later_ran = 0;
  ck_assert_int_eq(eddy_loop_call_soon_threadsafe(loop, later_cb, NULL), 0);
  ck_assert(host_turn(loop, 5000)); /* the wakeup fd is in the set */
  for (turns = 0; g_later_ran == 0 && turns < 10; turns++)
    host_turn(loop, 100);
  ck_assert_int_eq(g_later_ran, 1);

  eddy_loop_remove_handler(loop, fds[0]);
  close(fds[0]);
  close(fds[1]);
  eddy_loop_free(loop);
}
END_TEST

void loop_add_embed_tests(TCase *tc)
{
  tcase_add_test(tc, test_backend_fd);
  tcase_add_test(tc, test_next_timeout);
  tcase_add_test(tc, test_run_once_timeout);
  tcase_add_test(tc, test_run_once_reentrant);
  tcase_add_test(tc, test_host_loop);
}
