/* SPDX-License-Identifier: MIT */
/*
 * tests/future_fixtures.h - the loop fixture of the future-level suites
 * (test_future, test_coro): one loop per test in L, made by setup() and
 * freed by teardown() (Check's checked fixture, which new_case() adds),
 * and ways to run it.
 *
 * Included by one test program each, so everything is static.
 */
#ifndef EDDY_TESTS_FUTURE_FIXTURES_H
#define EDDY_TESTS_FUTURE_FIXTURES_H

#include <check.h>
#include <stdlib.h>

#include <eddy.h>

static eddy_loop_t *L;

static void setup(void)
{
  L = eddy_loop_new();
  ck_assert_ptr_nonnull(L);
}

static void teardown(void)
{
  eddy_loop_free(L);
  L = NULL;
}

/* A test case of @s with the fixture above and @timeout seconds. */
static inline TCase *new_case(Suite *s, const char *name, double timeout)
{
  TCase *tc = tcase_create(name);

  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, timeout);
  suite_add_tcase(s, tc);
  return tc;
}

/* run()'s bound: a safety net under Check's own timeout, scaled as that
 * one is (check-valgrind sets CK_TIMEOUT_MULTIPLIER), so a slow, shared
 * machine never fails a test that would pass. */
static inline double run_bound(void)
{
  const char *m = getenv("CK_TIMEOUT_MULTIPLIER");
  int k = m != NULL ? atoi(m) : 1;

  return 30.0 * (k > 1 ? k : 1);
}

/* Runs the loop until f settles; the test keeps its reference. */
static inline void run(eddy_future_t *f)
{
  ck_assert_ptr_nonnull(f);
  ck_assert_int_eq(eddy_loop_run_until(L, f, run_bound()), 0);
  ck_assert(eddy_future_done(f));
}

/* Runs the loop for @seconds. */
static inline void run_for(double seconds)
{
  eddy_future_t *f = eddy_sleep(L, seconds);

  run(f);
  eddy_future_unref(f);
}

/* Runs every task queued so far: a step on a settled future queues behind
 * them, and the loop runs its queue in order. */
static inline void drain(void)
{
  eddy_future_t *f = eddy_then(eddy_future_resolved(L, NULL, NULL), NULL, NULL);

  run(f);
  eddy_future_unref(f);
}

#endif
