/*
 * The loop's suite. Built twice: tests/test_loop on the default backend and
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
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "eddy.h"

static eddy_loop_t *new_loop(void)
{
  eddy_loop_t *loop = eddy_loop_new();
  ck_assert_ptr_nonnull(loop);
  return loop;
}

static void stop_cb(void *arg)
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

struct order {
  eddy_loop_t *loop;
  int seen[64];
  int n;
};

static struct order g_order;

static void record_cb(void *arg)
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

static int g_later_ran;

static void later_cb(void *arg)
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

/* ---- timers ------------------------------------------------------------- */

START_TEST(test_timer_order)
{
  eddy_loop_t *loop = new_loop();
  eddy_timer_t *t[6], *stop;
  double now = eddy_loop_time(loop);
  int i;

  memset(&g_order, 0, sizeof g_order);
  for (i = 0; i < 6; i++)
    t[i] = eddy_timer_new(loop, record_cb, (void *)(intptr_t)i);
  /* Expected order: 2, 0 and 4 tie (FIFO), 1, 3 and 5 tie (FIFO). */
  eddy_timer_start_at(t[2], now + 0.010);
  eddy_timer_start_at(t[0], now + 0.020);
  eddy_timer_start_at(t[4], now + 0.020);
  eddy_timer_start_at(t[1], now + 0.030);
  eddy_timer_start_at(t[3], now + 0.030);
  eddy_timer_start_at(t[5], now + 0.030);
  stop = eddy_timer_new(loop, stop_cb, loop);
  eddy_timer_start(stop, 0.05, 0);
  ck_assert_int_eq(eddy_timer_active(t[3]), 1);
  ck_assert_int_eq(eddy_loop_run(loop), 0);
  ck_assert_int_eq(g_order.n, 6);
  ck_assert_int_eq(g_order.seen[0], 2);
  ck_assert_int_eq(g_order.seen[1], 0);
  ck_assert_int_eq(g_order.seen[2], 4);
  ck_assert_int_eq(g_order.seen[3], 1);
  ck_assert_int_eq(g_order.seen[4], 3);
  ck_assert_int_eq(g_order.seen[5], 5);
  ck_assert_int_eq(eddy_timer_active(t[3]), 0);
  ck_assert(eddy_loop_time(loop) >= now + 0.05);
  for (i = 0; i < 6; i++)
    eddy_timer_free(t[i]);
  eddy_timer_free(stop);
  eddy_loop_free(loop);
}
END_TEST

#define MANY 100000

struct many {
  eddy_loop_t *loop;
  int next, bad;
};

static struct many g_many;

static void many_cb(void *arg)
{
  int k = (int)(intptr_t)arg;
  if (k != g_many.next)
    g_many.bad++;
  g_many.next++;
  if (g_many.next == MANY)
    eddy_loop_stop(g_many.loop);
}

START_TEST(test_timer_many)
{
  eddy_loop_t *loop = new_loop();
  eddy_timer_t **t = calloc(MANY, sizeof *t);
  int *perm = malloc(MANY * sizeof *perm);
  double now = eddy_loop_time(loop);
  int i;

  ck_assert_ptr_nonnull(t);
  ck_assert_ptr_nonnull(perm);
  srand(12345);
  for (i = 0; i < MANY; i++)
    perm[i] = i;
  for (i = MANY - 1; i > 0; i--) {
    int j = rand() % (i + 1), x = perm[i];
    perm[i] = perm[j];
    perm[j] = x;
  }
  memset(&g_many, 0, sizeof g_many);
  g_many.loop = loop;
  for (i = 0; i < MANY; i++) {
    int k = perm[i];
    /* Pairs of timers share a deadline, so FIFO ties matter too: start the
     * even one of each pair first. */
    t[k] = eddy_timer_new(loop, many_cb, (void *)(intptr_t)k);
    ck_assert_ptr_nonnull(t[k]);
  }
  for (i = 0; i < MANY; i++) {
    int k = perm[i] & ~1;
    if (eddy_timer_active(t[k]))
      continue;
    eddy_timer_start_at(t[k], now + 0.001 + (k / 2) * 1e-7);
    eddy_timer_start_at(t[k + 1], now + 0.001 + (k / 2) * 1e-7);
  }
  ck_assert_int_eq(eddy_loop_run(loop), 0);
  ck_assert_int_eq(g_many.next, MANY);
  ck_assert_int_eq(g_many.bad, 0);
  /* Free half; the loop frees the rest. */
  for (i = 0; i < MANY; i += 2)
    eddy_timer_free(t[i]);
  free(t);
  free(perm);
  eddy_loop_free(loop);
}
END_TEST

struct selfish {
  eddy_loop_t *loop;
  eddy_timer_t *me, *other;
  int runs, other_runs;
  int mode;
};

static void self_cb(void *arg)
{
  struct selfish *s = arg;
  s->runs++;
  switch (s->mode) {
  case 0: /* restart itself, then stop: stop wins */
    ck_assert_int_eq(eddy_timer_active(s->me), 0);
    eddy_timer_start(s->me, 0, 0);
    ck_assert_int_eq(eddy_timer_active(s->me), 1);
    eddy_timer_stop(s->me);
    ck_assert_int_eq(eddy_timer_active(s->me), 0);
    eddy_timer_stop(s->other); /* already due in this batch: must not run */
    eddy_loop_call_later(s->loop, 0.02, stop_cb, s->loop);
    break;
  case 1: /* free itself */
    eddy_timer_free(s->me);
    s->me = NULL;
    eddy_timer_free(s->other);
    s->other = NULL;
    eddy_loop_call_later(s->loop, 0.02, stop_cb, s->loop);
    break;
  case 2: /* restart itself a few times */
    if (s->runs < 3)
      eddy_timer_start(s->me, 0.001, 0);
    else
      eddy_loop_stop(s->loop);
    break;
  }
}

static void other_cb(void *arg)
{
  struct selfish *s = arg;
  s->other_runs++;
}

START_TEST(test_timer_inside_callback)
{
  int mode;

  for (mode = 0; mode < 3; mode++) {
    eddy_loop_t *loop = new_loop();
    struct selfish s = { .loop = loop, .mode = mode };
    double now = eddy_loop_time(loop);

    s.me = eddy_timer_new(loop, self_cb, &s);
    s.other = eddy_timer_new(loop, other_cb, &s);
    eddy_timer_start_at(s.me, now + 0.001);
    eddy_timer_start_at(s.other, now + 0.001); /* same deadline, after me */
    ck_assert_int_eq(eddy_loop_run(loop), 0);
    if (mode == 2) {
      ck_assert_int_eq(s.runs, 3);
      ck_assert_int_eq(s.other_runs, 1);
    } else {
      ck_assert_int_eq(s.runs, 1);
      ck_assert_int_eq(s.other_runs, 0);
    }
    eddy_timer_free(s.me);
    eddy_timer_free(s.other);
    eddy_loop_free(loop);
  }
}
END_TEST

struct periodic {
  eddy_loop_t *loop;
  eddy_timer_t *t;
  double when[8];
  int n;
};

static void periodic_cb(void *arg)
{
  struct periodic *p = arg;
  p->when[p->n++] = eddy_loop_time(p->loop);
  if (p->n == 1)
    usleep(75 * 1000); /* overshoot: miss three ticks */
  if (p->n == 4)
    eddy_loop_stop(p->loop);
}

START_TEST(test_timer_repeat)
{
  eddy_loop_t *loop = new_loop();
  struct periodic p = { .loop = loop };
  double start = eddy_loop_time(loop);

  p.t = eddy_timer_new(loop, periodic_cb, &p);
  ck_assert_int_eq(eddy_timer_start(p.t, 0.02, 0.02), 0);
  ck_assert_int_eq(eddy_loop_run(loop), 0);
  ck_assert_int_eq(p.n, 4);
  ck_assert(p.when[0] >= start + 0.02);
  /* The missed ticks are skipped: the next run is on the grid after the
   * overshoot (start + 0.10 at the earliest), not three runs in a row. */
  ck_assert(p.when[1] >= start + 0.02 + 0.075);
  ck_assert(p.when[2] > p.when[1]);
  ck_assert(p.when[3] > p.when[2]);
  ck_assert(p.when[3] >= start + 0.02 * 5);
  ck_assert_int_eq(eddy_timer_active(p.t), 1); /* periodic: still armed */
  eddy_timer_stop(p.t);
  ck_assert_int_eq(eddy_timer_active(p.t), 0);
  eddy_timer_free(p.t);
  eddy_loop_free(loop);
}
END_TEST

struct spinner {
  eddy_loop_t *loop;
  eddy_timer_t *t;
  long spins;
  int soon_ran;
};

static void spin_cb(void *arg)
{
  struct spinner *s = arg;
  s->spins++;
  eddy_timer_start(s->t, 0, 0);
}

static void spin_soon_cb(void *arg)
{
  struct spinner *s = arg;
  s->soon_ran = 1;
}

static void spin_io(eddy_loop_t *loop, int fd, unsigned ev, void *arg)
{
  struct spinner *s = arg;
  (void)fd;
  (void)ev;
  ck_assert_int_eq(s->soon_ran, 1);
  eddy_loop_stop(loop);
}

START_TEST(test_timer_zero_no_starvation)
{
  eddy_loop_t *loop = new_loop();
  struct spinner s = { .loop = loop };
  int fds[2];

  ck_assert_int_eq(pipe(fds), 0);
  s.t = eddy_timer_new(loop, spin_cb, &s);
  eddy_timer_start(s.t, 0, 0);
  eddy_loop_call_soon(loop, spin_soon_cb, &s);
  eddy_loop_add_handler(loop, fds[0], EDDY_READ, spin_io, &s);
  ck_assert_int_eq(write(fds[1], "x", 1), 1);
  ck_assert_int_eq(eddy_loop_run(loop), 0);
  ck_assert(s.spins >= 1 && s.spins < 10);
  eddy_loop_remove_handler(loop, fds[0]);
  close(fds[0]);
  close(fds[1]);
  eddy_timer_free(s.t);
  eddy_loop_free(loop);
}
END_TEST

START_TEST(test_call_later_at)
{
  eddy_loop_t *loop = new_loop();
  double now = eddy_loop_time(loop);

  memset(&g_order, 0, sizeof g_order);
  ck_assert_int_eq(eddy_loop_call_later(loop, 0.02, record_cb, (void *)2), 0);
  ck_assert_int_eq(eddy_loop_call_at(loop, now + 0.01, record_cb, (void *)1), 0);
  ck_assert_int_eq(eddy_loop_call_later(loop, -1, record_cb, (void *)0), 0);
  ck_assert_int_eq(eddy_loop_call_at(loop, now + 0.03, stop_cb, loop), 0);
  ck_assert_int_eq(eddy_loop_run(loop), 0);
  ck_assert_int_eq(g_order.n, 3);
  ck_assert_int_eq(g_order.seen[0], 0);
  ck_assert_int_eq(g_order.seen[1], 1);
  ck_assert_int_eq(g_order.seen[2], 2);
  ck_assert(eddy_loop_time(loop) >= now + 0.03);
  eddy_loop_free(loop);
}
END_TEST

/* ---- fd handlers -------------------------------------------------------- */

struct io {
  eddy_loop_t *loop;
  int fds[2];
  unsigned events[16];
  int fd[16];
  int n;
  int remove_in_handler;
};

static void io_record(eddy_loop_t *loop, int fd, unsigned ev, void *arg)
{
  struct io *io = arg;
  if (io->n < 16) {
    io->events[io->n] = ev;
    io->fd[io->n] = fd;
  }
  io->n++;
  if (io->remove_in_handler)
    ck_assert_int_eq(eddy_loop_remove_handler(loop, fd), 0);
  eddy_loop_stop(loop);
}

START_TEST(test_io_read_write_update)
{
  eddy_loop_t *loop = new_loop();
  struct io io = { .loop = loop };
  char c;

  ck_assert_int_eq(pipe(io.fds), 0);
  ck_assert_int_eq(eddy_loop_add_handler(loop, io.fds[0], EDDY_READ, io_record, &io), 0);
  ck_assert_int_eq(eddy_loop_add_handler(loop, io.fds[0], EDDY_READ, io_record, &io), -EEXIST);
  ck_assert_int_eq(eddy_loop_add_handler(loop, io.fds[1], EDDY_WRITE, io_record, &io), 0);
  /* Write readiness first (the pipe is empty, so the read end is quiet). */
  ck_assert_int_eq(eddy_loop_run(loop), 0);
  ck_assert_int_eq(io.n, 1);
  ck_assert_int_eq(io.fd[0], io.fds[1]);
  ck_assert_uint_eq(io.events[0], EDDY_WRITE);
  /* Stop watching for write: interest 0 watches errors only. */
  ck_assert_int_eq(eddy_loop_update_handler(loop, io.fds[1], 0), 0);
  ck_assert_int_eq(write(io.fds[1], "a", 1), 1);
  ck_assert_int_eq(eddy_loop_run(loop), 0);
  ck_assert_int_eq(io.n, 2);
  ck_assert_int_eq(io.fd[1], io.fds[0]);
  ck_assert_uint_eq(io.events[1], EDDY_READ);
  ck_assert_int_eq(read(io.fds[0], &c, 1), 1);
  /* Flip interest back and forth within one iteration: WRITE wins. */
  ck_assert_int_eq(eddy_loop_update_handler(loop, io.fds[0], 0), 0);
  ck_assert_int_eq(eddy_loop_update_handler(loop, io.fds[1], EDDY_READ), 0);
  ck_assert_int_eq(eddy_loop_update_handler(loop, io.fds[1], EDDY_WRITE), 0);
  ck_assert_int_eq(eddy_loop_run(loop), 0);
  ck_assert_int_eq(io.n, 3);
  ck_assert_int_eq(io.fd[2], io.fds[1]);
  ck_assert_uint_eq(io.events[2], EDDY_WRITE);
  ck_assert_int_eq(eddy_loop_remove_handler(loop, io.fds[0]), 0);
  ck_assert_int_eq(eddy_loop_remove_handler(loop, io.fds[0]), -ENOENT);
  ck_assert_int_eq(eddy_loop_update_handler(loop, io.fds[0], EDDY_READ), -ENOENT);
  ck_assert_int_eq(eddy_loop_remove_handler(loop, io.fds[1]), 0);
  close(io.fds[0]);
  close(io.fds[1]);
  eddy_loop_free(loop);
}
END_TEST

START_TEST(test_io_remove_in_handler)
{
  eddy_loop_t *loop = new_loop();
  struct io io = { .loop = loop, .remove_in_handler = 1 };

  ck_assert_int_eq(pipe(io.fds), 0);
  ck_assert_int_eq(write(io.fds[1], "a", 1), 1);
  ck_assert_int_eq(eddy_loop_add_handler(loop, io.fds[0], EDDY_READ, io_record, &io), 0);
  ck_assert_int_eq(eddy_loop_run(loop), 0);
  ck_assert_int_eq(io.n, 1);
  /* Still readable, but no longer watched. */
  eddy_loop_call_later(loop, 0.02, stop_cb, loop);
  ck_assert_int_eq(eddy_loop_run(loop), 0);
  ck_assert_int_eq(io.n, 1);
  close(io.fds[0]);
  close(io.fds[1]);
  eddy_loop_free(loop);
}
END_TEST

START_TEST(test_io_hangup)
{
  eddy_loop_t *loop = new_loop();
  struct io io = { .loop = loop, .remove_in_handler = 1 };

  ck_assert_int_eq(pipe(io.fds), 0);
  ck_assert_int_eq(eddy_loop_add_handler(loop, io.fds[0], EDDY_READ, io_record, &io), 0);
  close(io.fds[1]);
  ck_assert_int_eq(eddy_loop_run(loop), 0);
  ck_assert_int_eq(io.n, 1);
  ck_assert_uint_eq(io.events[0] & EDDY_ERROR, EDDY_ERROR);
  ck_assert_uint_eq(io.events[0] & EDDY_READ, EDDY_READ); /* asked for */
  ck_assert_uint_eq(io.events[0] & EDDY_WRITE, 0);        /* not asked for */
  close(io.fds[0]);
  eddy_loop_free(loop);
}
END_TEST

/* A handler that closes another watched fd, reopens the number and watches
 * it again: the old fd's event collected in this batch must not reach the
 * new handler. Whichever of the two fires first does the damage. */
struct stale {
  eddy_loop_t *loop;
  int a[2], b[2];
  int calls, new_calls;
};

static void stale_new(eddy_loop_t *loop, int fd, unsigned ev, void *arg)
{
  struct stale *s = arg;
  (void)loop;
  (void)fd;
  (void)ev;
  s->new_calls++;
}

static void stale_first(eddy_loop_t *loop, int fd, unsigned ev, void *arg)
{
  struct stale *s = arg;
  int *victim = fd == s->a[0] ? s->b : s->a;
  int n;

  (void)ev;
  s->calls++;
  ck_assert_int_eq(eddy_loop_remove_handler(loop, victim[0]), 0);
  close(victim[0]);
  n = dup(victim[1]); /* reuses the lowest free number: victim[0] */
  ck_assert_int_eq(n, victim[0]);
  ck_assert_int_eq(eddy_loop_add_handler(loop, n, EDDY_READ | EDDY_WRITE, stale_new, s), 0);
  ck_assert_int_eq(eddy_loop_remove_handler(loop, fd), 0);
  eddy_loop_stop(loop);
}

START_TEST(test_io_stale_events)
{
  eddy_loop_t *loop = new_loop();
  struct stale s = { .loop = loop };

  ck_assert_int_eq(pipe(s.a), 0);
  ck_assert_int_eq(pipe(s.b), 0);
  ck_assert_int_eq(write(s.a[1], "a", 1), 1);
  ck_assert_int_eq(write(s.b[1], "b", 1), 1);
  eddy_loop_add_handler(loop, s.a[0], EDDY_READ, stale_first, &s);
  eddy_loop_add_handler(loop, s.b[0], EDDY_READ, stale_first, &s);
  ck_assert_int_eq(eddy_loop_run(loop), 0);
  ck_assert_int_eq(s.calls, 1);
  ck_assert_int_eq(s.new_calls, 0);
  /* The new registration works from the next iteration on (a pipe's write
   * end is writable). */
  eddy_loop_call_later(loop, 0.02, stop_cb, loop);
  ck_assert_int_eq(eddy_loop_run(loop), 0);
  ck_assert_int_ge(s.new_calls, 1);
  eddy_loop_free(loop);
  close(s.a[0]);
  close(s.a[1]);
  close(s.b[0]);
  close(s.b[1]);
}
END_TEST

/* An fd closed without removing its handler: the backend reports an error
 * (epoll cannot re-add it, poll says POLLNVAL) instead of crashing. */
START_TEST(test_io_closed_fd)
{
  eddy_loop_t *loop = new_loop();
  struct io io = { .loop = loop, .remove_in_handler = 1 };
  int sv[2];

  ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  ck_assert_int_eq(eddy_loop_add_handler(loop, sv[0], EDDY_READ, io_record, &io), 0);
  close(sv[0]); /* before the first iteration registers it */
  ck_assert_int_eq(eddy_loop_run(loop), 0);
  ck_assert_int_eq(io.n, 1);
  ck_assert_uint_eq(io.events[0] & EDDY_ERROR, EDDY_ERROR);
  close(sv[1]);
  eddy_loop_free(loop);
}
END_TEST

/* An fd closed and reopened under the same number between iterations,
 * without removing its handler: the kernel forgot the old registration, so
 * the next interest change must add it back rather than fail. */
START_TEST(test_io_reopened_between_iterations)
{
  eddy_loop_t *loop = new_loop();
  struct io io = { .loop = loop, .remove_in_handler = 1 };
  int old[2];

  ck_assert_int_eq(pipe(old), 0);
  ck_assert_int_eq(eddy_loop_add_handler(loop, old[0], EDDY_WRITE, io_record, &io), 0);
  eddy_loop_call_soon(loop, stop_cb, loop);
  ck_assert_int_eq(eddy_loop_run(loop), 0); /* registered now; pipe read end never writable */
  ck_assert_int_eq(io.n, 0);
  close(old[0]);
  close(old[1]);
  ck_assert_int_eq(pipe(io.fds), 0);
  ck_assert_int_eq(io.fds[0], old[0]);
  ck_assert_int_eq(write(io.fds[1], "a", 1), 1);
  ck_assert_int_eq(eddy_loop_update_handler(loop, io.fds[0], EDDY_READ), 0);
  ck_assert_int_eq(eddy_loop_run(loop), 0);
  ck_assert_int_eq(io.n, 1);
  ck_assert_uint_eq(io.events[0], EDDY_READ);
  close(io.fds[0]);
  close(io.fds[1]);
  eddy_loop_free(loop);
}
END_TEST

/* ---- call_soon_threadsafe ----------------------------------------------- */

#define TS_THREADS 4
#define TS_CALLS 10000

struct ts {
  eddy_loop_t *loop;
  pthread_t loop_thread;
  long count;
  int wrong_thread;
};

static void ts_cb(void *arg)
{
  struct ts *ts = arg;
  if (!pthread_equal(pthread_self(), ts->loop_thread))
    ts->wrong_thread++;
  if (++ts->count == TS_THREADS * TS_CALLS)
    eddy_loop_stop(ts->loop);
}

static void *ts_thread(void *arg)
{
  struct ts *ts = arg;
  int i;
  for (i = 0; i < TS_CALLS; i++)
    ck_assert_int_eq(eddy_loop_call_soon_threadsafe(ts->loop, ts_cb, ts), 0);
  return NULL;
}

START_TEST(test_threadsafe_threads)
{
  eddy_loop_t *loop = new_loop();
  struct ts ts = { .loop = loop, .loop_thread = pthread_self() };
  pthread_t th[TS_THREADS];
  int i;

  for (i = 0; i < TS_THREADS; i++)
    ck_assert_int_eq(pthread_create(&th[i], NULL, ts_thread, &ts), 0);
  ck_assert_int_eq(eddy_loop_run(loop), 0);
  for (i = 0; i < TS_THREADS; i++)
    pthread_join(th[i], NULL);
  ck_assert_int_eq(ts.count, TS_THREADS * TS_CALLS);
  ck_assert_int_eq(ts.wrong_thread, 0);
  eddy_loop_free(loop);
}
END_TEST

START_TEST(test_threadsafe_before_run)
{
  eddy_loop_t *loop = new_loop();

  memset(&g_order, 0, sizeof g_order);
  ck_assert_int_eq(eddy_loop_call_soon_threadsafe(loop, record_cb, (void *)7), 0);
  ck_assert_int_eq(eddy_loop_call_soon_threadsafe(loop, stop_cb, loop), 0);
  ck_assert_int_eq(g_order.n, 0);
  ck_assert_int_eq(eddy_loop_run(loop), 0);
  ck_assert_int_eq(g_order.n, 1);
  ck_assert_int_eq(g_order.seen[0], 7);
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

static eddy_future_t *never_then(eddy_future_t *settled, void *arg)
{
  (void)settled;
  (void)arg;
  return NULL;
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

/* ---- signals ------------------------------------------------------------ */

struct sig {
  eddy_loop_t *loop;
  int got[4];
  int n;
};

static void sig_cb(eddy_loop_t *loop, int signo, void *arg)
{
  struct sig *s = arg;
  s->got[s->n++ & 3] = signo;
  eddy_loop_stop(loop);
}

static void sig_cb2(eddy_loop_t *loop, int signo, void *arg)
{
  struct sig *s = arg;
  s->got[s->n++ & 3] = -signo;
  eddy_loop_stop(loop);
}

static void raise_cb(void *arg)
{
  raise((int)(intptr_t)arg);
}

static void kill_cb(void *arg)
{
  kill(getpid(), (int)(intptr_t)arg);
}

static int sig_blocked(int signo)
{
  sigset_t cur;
  pthread_sigmask(SIG_BLOCK, NULL, &cur);
  return sigismember(&cur, signo);
}

START_TEST(test_signal_callback)
{
  eddy_loop_t *loop = new_loop();
  struct sig s = { .loop = loop };
  sigset_t hup;

  ck_assert_int_eq(eddy_loop_add_signal(loop, SIGKILL, sig_cb, &s), -EINVAL);
  ck_assert_int_eq(eddy_loop_add_signal(loop, SIGSTOP, sig_cb, &s), -EINVAL);
  ck_assert_int_eq(eddy_loop_add_signal(loop, 0, sig_cb, &s), -EINVAL);
  ck_assert_int_eq(eddy_loop_add_signal(loop, 100000, sig_cb, &s), -EINVAL);
  ck_assert_int_eq(eddy_loop_add_signal(NULL, SIGUSR1, sig_cb, &s), -EINVAL);
  ck_assert_int_eq(eddy_loop_remove_signal(loop, SIGUSR1), -ENOENT);

  ck_assert_int_eq(eddy_loop_add_signal(loop, SIGUSR1, sig_cb, &s), 0);
  ck_assert_int_eq(eddy_loop_add_signal(loop, SIGUSR2, sig_cb, &s), 0);
  eddy_loop_call_soon(loop, raise_cb, (void *)(intptr_t)SIGUSR1);
  ck_assert_int_eq(eddy_loop_run(loop), 0);
  ck_assert_int_eq(s.n, 1);
  ck_assert_int_eq(s.got[0], SIGUSR1);

  eddy_loop_call_soon(loop, kill_cb, (void *)(intptr_t)SIGUSR2);
  ck_assert_int_eq(eddy_loop_run(loop), 0);
  ck_assert_int_eq(s.n, 2);
  ck_assert_int_eq(s.got[1], SIGUSR2);

  /* A second add replaces the handler. */
  ck_assert_int_eq(eddy_loop_add_signal(loop, SIGUSR1, sig_cb2, &s), 0);
  eddy_loop_call_soon(loop, raise_cb, (void *)(intptr_t)SIGUSR1);
  ck_assert_int_eq(eddy_loop_run(loop), 0);
  ck_assert_int_eq(s.got[2], -SIGUSR1);

  /* Removing restores the mask: unblocked before, unblocked after; a
   * signal the caller had blocked stays blocked. */
  ck_assert_int_eq(eddy_loop_remove_signal(loop, SIGUSR1), 0);
  ck_assert_int_eq(eddy_loop_remove_signal(loop, SIGUSR1), -ENOENT);
  ck_assert_int_eq(sig_blocked(SIGUSR1), 0);
  sigemptyset(&hup);
  sigaddset(&hup, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &hup, NULL);
  ck_assert_int_eq(eddy_loop_add_signal(loop, SIGHUP, sig_cb, &s), 0);
  ck_assert_int_eq(eddy_loop_remove_signal(loop, SIGHUP), 0);
  ck_assert_int_eq(sig_blocked(SIGHUP), 1);
  pthread_sigmask(SIG_UNBLOCK, &hup, NULL);
  /* SIGUSR2 is still watched when the loop goes: free restores it too. */
  eddy_loop_free(loop);
  ck_assert_int_eq(sig_blocked(SIGUSR2), 0);
}
END_TEST

START_TEST(test_wait_signal)
{
  eddy_loop_t *loop = new_loop();
  eddy_future_t *f, *g, *bad;

  ck_assert_ptr_null(eddy_loop_wait_signal(NULL, SIGUSR1));
  bad = eddy_loop_wait_signal(loop, SIGKILL);
  ck_assert_ptr_nonnull(bad);
  ck_assert_int_eq(eddy_future_error(bad), -EINVAL);
  eddy_future_unref(bad);

  f = eddy_loop_wait_signal(loop, SIGUSR1);
  g = eddy_loop_wait_signal(loop, SIGTERM);
  ck_assert_ptr_nonnull(f);
  ck_assert_ptr_nonnull(g);
  ck_assert_int_eq(sig_blocked(SIGUSR1), 1);
  eddy_loop_call_soon(loop, kill_cb, (void *)(intptr_t)SIGUSR1);
  ck_assert_int_eq(eddy_loop_run_until(loop, f, 10), 0);
  ck_assert_int_eq(eddy_future_state(f), EDDY_FUTURE_RESOLVED);
  ck_assert_uint_eq(eddy_future_size(f), SIGUSR1);
  ck_assert_int_eq(sig_blocked(SIGUSR1), 0); /* nobody waits: restored */
  eddy_future_unref(f);

  /* Cancelling stops waiting and restores the mask. */
  ck_assert_int_eq(eddy_future_cancel(g), 0);
  ck_assert_int_eq(sig_blocked(SIGTERM), 0);
  eddy_future_unref(g);

  /* A waiter left pending when the loop goes is released by the free,
   * chain included. */
  f = eddy_then(eddy_loop_wait_signal(loop, SIGUSR2), never_then, NULL);
  eddy_future_unref(f);
  eddy_loop_free(loop);
  ck_assert_int_eq(sig_blocked(SIGUSR2), 0);
}
END_TEST

/* ---- run_in_thread ------------------------------------------------------ */

static pthread_t g_main_thread;

static int work_square(void *arg, void **value, size_t *size)
{
  long *v;
  if (pthread_equal(pthread_self(), g_main_thread))
    return -EDEADLK; /* ran on the loop thread: the test fails below */
  if ((intptr_t)arg < 0)
    return (int)(intptr_t)arg;
  v = malloc(sizeof *v);
  if (v == NULL)
    return -ENOMEM;
  *v = (long)(intptr_t)arg * (long)(intptr_t)arg;
  *value = v;
  *size = sizeof *v;
  return 0;
}

START_TEST(test_run_in_thread)
{
  eddy_loop_t *loop = new_loop();
  enum { JOBS = 200 };
  eddy_future_t *f[JOBS];
  int i;

  g_main_thread = pthread_self();
  for (i = 0; i < JOBS; i++) {
    intptr_t arg = i % 10 == 9 ? -EIO : i;
    f[i] = eddy_loop_run_in_thread(loop, work_square, (void *)arg, free);
    ck_assert_ptr_nonnull(f[i]);
  }
  for (i = 0; i < JOBS; i++) {
    ck_assert_int_eq(eddy_loop_run_until(loop, f[i], 30), 0);
    if (i % 10 == 9) {
      ck_assert_int_eq(eddy_future_state(f[i]), EDDY_FUTURE_REJECTED);
      ck_assert_int_eq(eddy_future_error(f[i]), -EIO);
    } else {
      ck_assert_int_eq(eddy_future_state(f[i]), EDDY_FUTURE_RESOLVED);
      ck_assert_uint_eq(eddy_future_size(f[i]), sizeof(long));
      ck_assert_int_eq(*(long *)eddy_future_value(f[i]), (long)i * i);
    }
    eddy_future_unref(f[i]);
  }
  f[0] = eddy_loop_run_in_thread(loop, NULL, NULL, NULL);
  ck_assert_int_eq(eddy_future_error(f[0]), EDDY_EUSAGE);
  eddy_future_unref(f[0]);
  ck_assert_ptr_null(eddy_loop_run_in_thread(NULL, work_square, NULL, NULL));
  eddy_loop_free(loop);
}
END_TEST

struct gate {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int started, open, skipped_ran;
};

static struct gate g_gate = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0 };
static int g_freed;

static void count_free(void *p)
{
  g_freed++;
  free(p);
}

static int work_gated(void *arg, void **value, size_t *size)
{
  (void)arg;
  pthread_mutex_lock(&g_gate.mu);
  g_gate.started = 1;
  pthread_cond_broadcast(&g_gate.cv);
  while (!g_gate.open)
    pthread_cond_wait(&g_gate.cv, &g_gate.mu);
  pthread_mutex_unlock(&g_gate.mu);
  *value = malloc(8);
  *size = 8;
  return 0;
}

static int work_skipped(void *arg, void **value, size_t *size)
{
  (void)arg;
  (void)value;
  (void)size;
  g_gate.skipped_ran = 1;
  return 0;
}

START_TEST(test_run_in_thread_cancel)
{
  eddy_loop_t *loop;
  eddy_future_t *running, *queued, *last;

  setenv("EDDY_THREADS", "1", 1); /* this test runs in its own process */
  loop = new_loop();
  running = eddy_loop_run_in_thread(loop, work_gated, NULL, count_free);
  queued = eddy_loop_run_in_thread(loop, work_skipped, NULL, count_free);
  pthread_mutex_lock(&g_gate.mu);
  while (!g_gate.started)
    pthread_cond_wait(&g_gate.cv, &g_gate.mu);
  pthread_mutex_unlock(&g_gate.mu);
  /* One thread, busy: the second job is still queued and is skipped. */
  ck_assert_int_eq(eddy_future_cancel(queued), 0);
  ck_assert_int_eq(eddy_future_cancel(running), 0);
  pthread_mutex_lock(&g_gate.mu);
  g_gate.open = 1;
  pthread_cond_broadcast(&g_gate.cv);
  pthread_mutex_unlock(&g_gate.mu);
  /* A job queued after them runs once the first is done. */
  last = eddy_loop_run_in_thread(loop, work_square, (void *)(intptr_t)3, free);
  g_main_thread = pthread_self();
  ck_assert_int_eq(eddy_loop_run_until(loop, last, 30), 0);
  ck_assert_int_eq(*(long *)eddy_future_value(last), 9);
  ck_assert_int_eq(g_gate.skipped_ran, 0);
  ck_assert_int_eq(g_freed, 1); /* the cancelled job's value was freed */
  ck_assert_int_eq(eddy_future_state(running), EDDY_FUTURE_CANCELLED);
  eddy_future_unref(running);
  eddy_future_unref(queued);
  eddy_future_unref(last);
  eddy_loop_free(loop);
}
END_TEST

START_TEST(test_free_with_jobs_in_flight)
{
  eddy_loop_t *loop = new_loop();
  int i;

  g_main_thread = pthread_self();
  /* Chained and released: only the loop's queues still reference them. */
  for (i = 0; i < 50; i++)
    eddy_future_unref(eddy_then(eddy_loop_run_in_thread(loop, work_square,
                                                        (void *)(intptr_t)i, free),
                                never_then, NULL));
  eddy_loop_free(loop); /* joins; results and queued jobs are dropped */
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

/* ---- fork --------------------------------------------------------------- */

struct forky {
  eddy_loop_t *loop;
  int fds[2];
  int io, timer;
};

static void fork_io(eddy_loop_t *loop, int fd, unsigned ev, void *arg)
{
  struct forky *f = arg;
  char c;
  (void)ev;
  if (read(fd, &c, 1) == 1)
    f->io++;
  if (f->io && f->timer)
    eddy_loop_stop(loop);
}

static void fork_timer(void *arg)
{
  struct forky *f = arg;
  f->timer++;
  if (f->io && f->timer)
    eddy_loop_stop(f->loop);
}

static int fork_round(struct forky *f, char c)
{
  eddy_timer_t *watchdog = eddy_timer_new(f->loop, stop_cb, f->loop);
  int ok;

  f->io = f->timer = 0;
  eddy_timer_start(watchdog, 10, 0);
  if (write(f->fds[1], &c, 1) != 1)
    return 0;
  eddy_loop_call_soon_threadsafe(f->loop, later_cb, NULL);
  if (eddy_loop_run(f->loop) != 0)
    return 0;
  ok = f->io == 1 && f->timer == 1 && eddy_timer_active(watchdog);
  eddy_timer_free(watchdog);
  return ok;
}

/* The pool and signals survive fork: a job runs (the child's pool restarts)
 * and a signal is delivered (the child's own signalfd). */
static int fork_extras(eddy_loop_t *loop)
{
  struct sig s = { .loop = loop };
  eddy_future_t *job;
  int ok;

  g_main_thread = pthread_self();
  job = eddy_loop_run_in_thread(loop, work_square, (void *)(intptr_t)5, free);
  ok = eddy_loop_run_until(loop, job, 10) == 0 &&
       eddy_future_state(job) == EDDY_FUTURE_RESOLVED &&
       *(long *)eddy_future_value(job) == 25;
  eddy_future_unref(job);
  ok = ok && eddy_loop_add_signal(loop, SIGUSR2, sig_cb, &s) == 0;
  eddy_loop_call_soon(loop, kill_cb, (void *)(intptr_t)SIGUSR2);
  ok = ok && eddy_loop_run(loop) == 0 && s.n == 1 && s.got[0] == SIGUSR2;
  /* Leave it watched: the child inherits a loop that has a signalfd. */
  return ok;
}

START_TEST(test_fork)
{
  eddy_loop_t *loop = new_loop();
  struct forky f = { .loop = loop };
  eddy_timer_t *t;
  pid_t pid;
  int status;

  ck_assert_int_eq(pipe(f.fds), 0);
  ck_assert_int_eq(eddy_loop_add_handler(loop, f.fds[0], EDDY_READ, fork_io, &f), 0);
  t = eddy_timer_new(loop, fork_timer, &f);
  eddy_timer_start(t, 0.02, 0);
  /* One round before forking, so the kernel has the registrations, the
   * pool has threads and a signal is watched. */
  ck_assert(fork_round(&f, 'a'));
  ck_assert(fork_extras(loop));
  eddy_timer_start(t, 0.02, 0);
  pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    int ok = fork_round(&f, 'c');
    eddy_timer_start(t, 0.02, 0);
    ok = ok && fork_round(&f, 'd');
    ok = ok && fork_extras(loop);
    eddy_timer_free(t);
    eddy_loop_remove_handler(loop, f.fds[0]);
    eddy_loop_free(loop);
    _exit(ok ? 0 : 1);
  }
  ck_assert_int_eq(waitpid(pid, &status, 0), pid);
  ck_assert(WIFEXITED(status));
  ck_assert_int_eq(WEXITSTATUS(status), 0);
  /* The parent's registrations are untouched by the child. */
  ck_assert(fork_round(&f, 'p'));
  /* A child that only removes a handler and frees its copy of the loop
   * (as after fork_processes) must not touch the parent's kernel state. */
  pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    eddy_loop_remove_handler(loop, f.fds[0]);
    eddy_loop_free(loop);
    _exit(0);
  }
  ck_assert_int_eq(waitpid(pid, &status, 0), pid);
  ck_assert(WIFEXITED(status));
  ck_assert_int_eq(WEXITSTATUS(status), 0);
  eddy_timer_start(t, 0.02, 0);
  ck_assert(fork_round(&f, 'q'));
  ck_assert(fork_extras(loop));
  eddy_timer_free(t);
  eddy_loop_remove_handler(loop, f.fds[0]);
  close(f.fds[0]);
  close(f.fds[1]);
  eddy_loop_free(loop);
}
END_TEST

/* ------------------------------------------------------------------------ */

static Suite *loop_suite(void)
{
  Suite *s = suite_create("loop");
  TCase *tc = tcase_create("core");

  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, test_new_free);
  tcase_add_test(tc, test_call_soon_fifo);
  tcase_add_test(tc, test_call_soon_next_iteration);
  tcase_add_test(tc, test_stop_before_run);
  tcase_add_test(tc, test_run_reentrant);
  tcase_add_test(tc, test_free_with_pending_work);
  tcase_add_test(tc, test_null_and_bad_input);
  tcase_add_test(tc, test_timer_order);
  tcase_add_test(tc, test_timer_many);
  tcase_add_test(tc, test_timer_inside_callback);
  tcase_add_test(tc, test_timer_repeat);
  tcase_add_test(tc, test_timer_zero_no_starvation);
  tcase_add_test(tc, test_call_later_at);
  tcase_add_test(tc, test_io_read_write_update);
  tcase_add_test(tc, test_io_remove_in_handler);
  tcase_add_test(tc, test_io_hangup);
  tcase_add_test(tc, test_io_stale_events);
  tcase_add_test(tc, test_io_closed_fd);
  tcase_add_test(tc, test_io_reopened_between_iterations);
  tcase_add_test(tc, test_threadsafe_threads);
  tcase_add_test(tc, test_threadsafe_before_run);
  tcase_add_test(tc, test_run_until);
  tcase_add_test(tc, test_long_chain_no_starvation);
  tcase_add_test(tc, test_free_with_queued_future_callbacks);
  tcase_add_test(tc, test_signal_callback);
  tcase_add_test(tc, test_wait_signal);
  tcase_add_test(tc, test_run_in_thread);
  tcase_add_test(tc, test_run_in_thread_cancel);
  tcase_add_test(tc, test_free_with_jobs_in_flight);
  tcase_add_test(tc, test_logging);
  tcase_add_test(tc, test_strerror);
  tcase_add_test(tc, test_fork);
  suite_add_tcase(s, tc);
  return s;
}

int main(void)
{
  SRunner *sr;
  int failed;

#ifdef EDDY_TEST_BACKEND
  setenv("EDDY_BACKEND", EDDY_TEST_BACKEND, 1);
#endif
  sr = srunner_create(loop_suite());
  srunner_run_all(sr, CK_NORMAL);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
