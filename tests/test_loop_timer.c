/* SPDX-License-Identifier: MIT */
/*
 * The loop suite: timers (see test_loop.c).
 */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test_loop.h"

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

void loop_add_timer_tests(TCase *tc)
{
  tcase_add_test(tc, test_timer_order);
  tcase_add_test(tc, test_timer_many);
  tcase_add_test(tc, test_timer_inside_callback);
  tcase_add_test(tc, test_timer_repeat);
  tcase_add_test(tc, test_timer_zero_no_starvation);
  tcase_add_test(tc, test_call_later_at);
}
