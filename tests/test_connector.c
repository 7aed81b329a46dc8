/* SPDX-License-Identifier: MIT */
/*
 * The Happy Eyeballs connector against fake attempts: Tornado's
 * TestConnectorSplit and ConnectorTest (tornado.md §2.4, tests 72-89),
 * ported case by case. The attempts are plain futures that the test
 * settles; both timers are set an hour away and fired by hand.
 *
 * connector.c is compiled into this program: its eddy__ symbols are
 * hidden in libeddy.so.
 */
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>

#include "eddy.h"
#include "tcp/connector.h"

#define AF1 AF_INET
#define AF2 AF_INET6

enum { A, B, C, D, NFAKES };

/* One fake attempt ("stream"): started by the connector, settled by us. */
struct fake {
  eddy_future_t *f; /* our reference while we may still settle it */
  int started;
  int failed;
  int closed; /* cancelled while pending, or its value freed */
  int expect_closed;
};

static eddy_loop_t *loop;
static struct fake fakes[NFAKES];
static eddy__connector_t *conn;

static eddy_address_t addr(int family, int which)
{
  eddy_address_t a;

  memset(&a, 0, sizeof(a));
  a.family = family;
  if (family == AF_INET) {
    struct sockaddr_in *sin = (struct sockaddr_in *)&a.addr;
    sin->sin_family = AF_INET;
    sin->sin_port = htons((uint16_t)(which + 1));
    a.len = sizeof(*sin);
  } else {
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&a.addr;
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons((uint16_t)(which + 1));
    a.len = sizeof(*sin6);
  }
  return a;
}

static int which(const eddy_address_t *a)
{
  const struct sockaddr_in *sin = (const struct sockaddr_in *)&a->addr;
  return ntohs(sin->sin_port) - 1; /* same offset for sockaddr_in6 */
}

static void fake_cancelled(eddy_future_t *f, void *arg)
{
  (void)f;
  ((struct fake *)arg)->closed = 1;
}

static void fake_value_freed(void *value)
{
  ((struct fake *)value)->closed = 1;
}

static eddy_future_t *fake_attempt(void *arg, const eddy_address_t *a)
{
  struct fake *fk = &fakes[which(a)];

  (void)arg;
  ck_assert(!fk->started);
  fk->started = 1;
  fk->f = eddy_future_new(loop);
  ck_assert_ptr_nonnull(fk->f);
  eddy_future_on_cancel(fk->f, fake_cancelled, fk);
  return eddy_future_ref(fk->f);
}

/* Lets queued callbacks run: a few loop iterations. */
static void spin(void)
{
  for (int i = 0; i < 3; i++) {
    eddy_future_t *f = eddy_sleep(loop, 0);
    ck_assert_int_eq(eddy_loop_run_until(loop, f, 5.0), 0);
    eddy_future_unref(f);
  }
}

/* Tornado's start_connect: fallback and deadline an hour away; no attempt
 * delay (Tornado's rule) unless the test asks for one, an hour away too. */
static eddy_future_t *start_connect_staggered(const int *families, const int *names,
                                              size_t n, int staggered)
{
  eddy_address_t list[NFAKES];
  eddy__connector_config_t cfg;

  for (size_t i = 0; i < n; i++)
    list[i] = addr(families[i], names[i]);
  cfg.attempt = fake_attempt;
  cfg.arg = NULL;
  cfg.fallback_delay = 3600;
  cfg.deadline = eddy_loop_time(loop) + 3600;
  cfg.attempt_delay = staggered ? 3600 : 0;
  conn = eddy__connector_new(loop, list, n, &cfg);
  ck_assert_ptr_nonnull(conn);
  eddy__connector_start(conn);
  spin();
  return eddy__connector_result(conn);
}

static eddy_future_t *start_connect(const int *families, const int *names,
                                    size_t n)
{
  return start_connect_staggered(families, names, n, 0);
}

static eddy_future_t *start_abcd(void)
{
  static const int fam[] = {AF1, AF1, AF2, AF2}, name[] = {A, B, C, D};
  return start_connect(fam, name, 4);
}

static eddy_future_t *start_ab(void)
{
  static const int fam[] = {AF1, AF1}, name[] = {A, B};
  return start_connect(fam, name, 2);
}

/* Tornado's resolve_connect. An attempt the connector already closed
 * (cancelled) cannot be settled any more; that is fine. */
static void resolve_connect(int i, int success)
{
  struct fake *fk = &fakes[i];

  ck_assert_ptr_nonnull(fk->f);
  if (success) {
    eddy_future_resolve(fk->f, fk, fake_value_freed);
  } else {
    fk->failed = 1;
    eddy_future_reject_cause(fk->f, EDDY_ECLOSED, -ECONNREFUSED, NULL);
  }
  eddy_future_unref(fk->f);
  fk->f = NULL;
  spin();
}

/* The set of attempts started and not settled, as a bit mask. */
static unsigned pending(void)
{
  unsigned mask = 0;

  for (int i = 0; i < NFAKES; i++)
    if (fakes[i].f != NULL && !eddy_future_done(fakes[i].f))
      mask |= 1u << i;
  return mask;
}
#define BIT(i) (1u << (i))

/* The connector closed attempt i; we stop tracking it. */
static void assert_closed(int i)
{
  ck_assert_msg(fakes[i].closed, "attempt %c should be closed", 'a' + i);
  fakes[i].expect_closed = 1;
  eddy_future_unref(fakes[i].f);
  fakes[i].f = NULL;
}

static void assert_won(eddy_future_t *result, int i)
{
  ck_assert_int_eq(eddy_future_state(result), EDDY_FUTURE_RESOLVED);
  ck_assert_ptr_eq(eddy_future_value(result), &fakes[i]);
  ck_assert_ptr_nonnull(eddy__connector_winner(conn));
  ck_assert_int_eq(which(eddy__connector_winner(conn)), i);
}

static void assert_io_error(eddy_future_t *result)
{
  ck_assert_int_eq(eddy_future_state(result), EDDY_FUTURE_REJECTED);
  ck_assert_int_eq(eddy_future_error(result), EDDY_ECLOSED);
  ck_assert_int_eq(eddy_future_cause(result), -ECONNREFUSED);
}

static void assert_timeout(eddy_future_t *result)
{
  ck_assert_int_eq(eddy_future_state(result), EDDY_FUTURE_REJECTED);
  ck_assert_int_eq(eddy_future_error(result), EDDY_ETIMEOUT);
}

static void setup(void)
{
  memset(fakes, 0, sizeof(fakes));
  conn = NULL;
  loop = eddy_loop_new();
  ck_assert_ptr_nonnull(loop);
}

/* Tornado's tearDown: nothing was closed unless the test said so. Then
 * everything is released, so valgrind sees every allocation freed. */
static void teardown(void)
{
  for (int i = 0; i < NFAKES; i++)
    if (!fakes[i].failed && !fakes[i].expect_closed)
      ck_assert_msg(!fakes[i].closed, "attempt %c closed unexpectedly",
                    'a' + i);
  for (int i = 0; i < NFAKES; i++) {
    if (fakes[i].f != NULL) {
      eddy_future_cancel(fakes[i].f);
      eddy_future_unref(fakes[i].f);
      fakes[i].f = NULL;
    }
  }
  eddy__connector_unref(conn);
  spin();
  eddy_loop_free(loop);
}

/* ------------------------------------------------------------------------ */
/* TestConnectorSplit (72-73)                                                */
/* ------------------------------------------------------------------------ */

static void assert_queue(int secondary, const int *names, size_t n)
{
  const eddy_address_t *e[NFAKES];

  ck_assert_uint_eq(eddy__connector_queue(conn, secondary, e, NFAKES), n);
  for (size_t i = 0; i < n; i++)
    ck_assert_int_eq(which(e[i]), names[i]);
}

START_TEST(test_split_one_family)
{
  static const int name[] = {A, B};
  eddy_address_t list[2] = {addr(AF1, A), addr(AF1, B)};
  eddy__connector_config_t cfg = {fake_attempt, NULL, 3600, 0, 0};

  conn = eddy__connector_new(loop, list, 2, &cfg);
  ck_assert_ptr_nonnull(conn);
  assert_queue(0, name, 2);
  assert_queue(1, NULL, 0);
}
END_TEST

START_TEST(test_split_mixed)
{
  static const int primary[] = {A, C}, secondary[] = {B, D};
  eddy_address_t list[4] = {addr(AF1, A), addr(AF2, B), addr(AF1, C),
                            addr(AF2, D)};
  eddy__connector_config_t cfg = {fake_attempt, NULL, 3600, 0, 0};

  conn = eddy__connector_new(loop, list, 4, &cfg);
  ck_assert_ptr_nonnull(conn);
  assert_queue(0, primary, 2);
  assert_queue(1, secondary, 2);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* ConnectorTest (74-89)                                                     */
/* ------------------------------------------------------------------------ */

START_TEST(test_immediate_success) /* 74 */
{
  eddy_future_t *r = start_abcd();

  ck_assert_uint_eq(pending(), BIT(A));
  resolve_connect(A, 1);
  assert_won(r, A);
}
END_TEST

START_TEST(test_immediate_failure) /* 75 */
{
  static const int fam[] = {AF1}, name[] = {A};
  eddy_future_t *r = start_connect(fam, name, 1);

  ck_assert_uint_eq(pending(), BIT(A));
  resolve_connect(A, 0);
  assert_io_error(r);
}
END_TEST

START_TEST(test_one_family_second_try) /* 76 */
{
  eddy_future_t *r = start_ab();

  ck_assert_uint_eq(pending(), BIT(A));
  resolve_connect(A, 0);
  ck_assert_uint_eq(pending(), BIT(B));
  resolve_connect(B, 1);
  assert_won(r, B);
}
END_TEST

START_TEST(test_one_family_second_try_failure) /* 77 */
{
  eddy_future_t *r = start_ab();

  ck_assert_uint_eq(pending(), BIT(A));
  resolve_connect(A, 0);
  ck_assert_uint_eq(pending(), BIT(B));
  resolve_connect(B, 0);
  assert_io_error(r);
}
END_TEST

START_TEST(test_one_family_second_try_timeout) /* 78 */
{
  eddy_future_t *r = start_ab();

  ck_assert_uint_eq(pending(), BIT(A));
  eddy__connector_fire_fallback(conn); /* no secondary: nothing happens */
  spin();
  ck_assert_uint_eq(pending(), BIT(A));
  resolve_connect(A, 0);
  ck_assert_uint_eq(pending(), BIT(B));
  resolve_connect(B, 1);
  assert_won(r, B);
}
END_TEST

START_TEST(test_two_families_immediate_failure) /* 79 */
{
  eddy_future_t *r = start_abcd();

  ck_assert_uint_eq(pending(), BIT(A));
  resolve_connect(A, 0);
  ck_assert_uint_eq(pending(), BIT(B) | BIT(C));
  resolve_connect(B, 0);
  resolve_connect(C, 1);
  assert_won(r, C);
}
END_TEST

START_TEST(test_two_families_timeout) /* 80 */
{
  eddy_future_t *r = start_abcd();

  ck_assert_uint_eq(pending(), BIT(A));
  eddy__connector_fire_fallback(conn);
  spin();
  ck_assert_uint_eq(pending(), BIT(A) | BIT(C));
  resolve_connect(C, 1);
  assert_won(r, C);
  /* a was closed by the win; its failure now starts nothing (not b). */
  resolve_connect(A, 0);
  ck_assert_uint_eq(pending(), 0);
  ck_assert(!fakes[B].started);
}
END_TEST

START_TEST(test_success_after_timeout) /* 81 */
{
  eddy_future_t *r = start_abcd();

  ck_assert_uint_eq(pending(), BIT(A));
  eddy__connector_fire_fallback(conn);
  spin();
  ck_assert_uint_eq(pending(), BIT(A) | BIT(C));
  resolve_connect(A, 1);
  assert_won(r, A);
  /* c's late success is closed (here it was already closed by the win,
   * so it cannot succeed any more). */
  resolve_connect(C, 1);
  ck_assert(fakes[C].closed);
  fakes[C].expect_closed = 1;
}
END_TEST

START_TEST(test_late_success_is_closed) /* 81, a success that does land */
{
  eddy_future_t *r = start_abcd();

  eddy__connector_fire_fallback(conn);
  spin();
  /* Both succeed in the same iteration: c's callback runs after a won. */
  eddy_future_resolve(fakes[A].f, &fakes[A], fake_value_freed);
  eddy_future_resolve(fakes[C].f, &fakes[C], fake_value_freed);
  eddy_future_unref(fakes[A].f);
  eddy_future_unref(fakes[C].f);
  fakes[A].f = fakes[C].f = NULL;
  spin();
  assert_won(r, A);
  ck_assert(fakes[C].closed); /* its value was released */
  fakes[C].expect_closed = 1;
  ck_assert(!fakes[A].closed);
}
END_TEST

START_TEST(test_all_fail) /* 82 */
{
  eddy_future_t *r = start_abcd();

  ck_assert_uint_eq(pending(), BIT(A));
  eddy__connector_fire_fallback(conn);
  spin();
  ck_assert_uint_eq(pending(), BIT(A) | BIT(C));
  resolve_connect(C, 0);
  ck_assert_uint_eq(pending(), BIT(A) | BIT(D));
  resolve_connect(D, 0);
  ck_assert_uint_eq(pending(), BIT(A)); /* one queue is now empty */
  resolve_connect(A, 0);
  ck_assert_uint_eq(pending(), BIT(B));
  ck_assert(!eddy_future_done(r));
  resolve_connect(B, 0);
  assert_io_error(r);
}
END_TEST

START_TEST(test_one_family_timeout_after_connect_timeout) /* 83 */
{
  eddy_future_t *r = start_ab();

  ck_assert_uint_eq(pending(), BIT(A));
  eddy__connector_fire_deadline(conn);
  spin();
  assert_closed(A);
  eddy__connector_fire_fallback(conn);
  spin();
  ck_assert_uint_eq(pending(), 0); /* no next address after the deadline */
  ck_assert_uint_eq(eddy__connector_started(conn), 1);
  ck_assert_uint_eq(eddy__connector_in_flight(conn), 0);
  assert_timeout(r);
}
END_TEST

START_TEST(test_one_family_success_before_connect_timeout) /* 84 */
{
  eddy_future_t *r = start_ab();

  ck_assert_uint_eq(pending(), BIT(A));
  resolve_connect(A, 1);
  eddy__connector_fire_deadline(conn);
  spin();
  ck_assert_uint_eq(pending(), 0);
  ck_assert(!fakes[A].closed);
  ck_assert_uint_eq(eddy__connector_started(conn), 1); /* the winner */
  ck_assert_uint_eq(eddy__connector_in_flight(conn), 0);
  assert_won(r, A);
}
END_TEST

START_TEST(test_one_family_second_try_after_connect_timeout) /* 85 */
{
  eddy_future_t *r = start_ab();

  ck_assert_uint_eq(pending(), BIT(A));
  resolve_connect(A, 0);
  ck_assert_uint_eq(pending(), BIT(B));
  eddy__connector_fire_deadline(conn);
  spin();
  assert_closed(B);
  ck_assert_uint_eq(pending(), 0);
  ck_assert_uint_eq(eddy__connector_started(conn), 2);
  ck_assert_uint_eq(eddy__connector_in_flight(conn), 0);
  assert_timeout(r);
}
END_TEST

START_TEST(test_one_family_second_try_failure_before_connect_timeout) /* 86 */
{
  eddy_future_t *r = start_ab();

  ck_assert_uint_eq(pending(), BIT(A));
  resolve_connect(A, 0);
  ck_assert_uint_eq(pending(), BIT(B));
  resolve_connect(B, 0);
  eddy__connector_fire_deadline(conn);
  spin();
  ck_assert_uint_eq(pending(), 0);
  ck_assert_uint_eq(eddy__connector_started(conn), 2);
  ck_assert_uint_eq(eddy__connector_in_flight(conn), 0);
  assert_io_error(r); /* not a timeout */
}
END_TEST

START_TEST(test_two_family_timeout_before_connect_timeout) /* 87 */
{
  eddy_future_t *r = start_abcd();

  ck_assert_uint_eq(pending(), BIT(A));
  eddy__connector_fire_fallback(conn);
  spin();
  ck_assert_uint_eq(pending(), BIT(A) | BIT(C));
  eddy__connector_fire_deadline(conn);
  spin();
  assert_closed(A);
  assert_closed(C);
  ck_assert_uint_eq(pending(), 0);
  ck_assert_uint_eq(eddy__connector_started(conn), 2);
  ck_assert_uint_eq(eddy__connector_in_flight(conn), 0);
  assert_timeout(r);
}
END_TEST

START_TEST(test_two_family_success_after_timeout) /* 88 */
{
  eddy_future_t *r = start_abcd();

  ck_assert_uint_eq(pending(), BIT(A));
  eddy__connector_fire_fallback(conn);
  spin();
  ck_assert_uint_eq(pending(), BIT(A) | BIT(C));
  resolve_connect(A, 1);
  assert_closed(C); /* the losers are closed at once */
  ck_assert_uint_eq(pending(), 0);
  ck_assert_uint_eq(eddy__connector_started(conn), 2);
  ck_assert_uint_eq(eddy__connector_in_flight(conn), 0);
  assert_won(r, A);
}
END_TEST

START_TEST(test_two_family_timeout_after_connect_timeout) /* 89 */
{
  eddy_future_t *r = start_abcd();

  ck_assert_uint_eq(pending(), BIT(A));
  eddy__connector_fire_deadline(conn);
  spin();
  assert_closed(A);
  ck_assert_uint_eq(pending(), 0);
  eddy__connector_fire_fallback(conn);
  spin();
  ck_assert_uint_eq(pending(), 0); /* no secondary after the deadline */
  ck_assert(!fakes[C].started);
  ck_assert_uint_eq(eddy__connector_started(conn), 1);
  assert_timeout(r);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Beyond Tornado's cases                                                    */
/* ------------------------------------------------------------------------ */

START_TEST(test_no_addresses)
{
  eddy_future_t *r = start_connect(NULL, NULL, 0);

  ck_assert_int_eq(eddy_future_error(r), EDDY_ENONAME);
}
END_TEST

START_TEST(test_cancel_closes_every_attempt)
{
  eddy_future_t *r = start_abcd();

  eddy__connector_fire_fallback(conn);
  spin();
  ck_assert_uint_eq(pending(), BIT(A) | BIT(C));
  ck_assert_int_eq(eddy_future_cancel(r), 0);
  spin();
  assert_closed(A);
  assert_closed(C);
  ck_assert_uint_eq(eddy__connector_in_flight(conn), 0);
  ck_assert_int_eq(eddy_future_state(r), EDDY_FUTURE_CANCELLED);
  eddy__connector_fire_fallback(conn);
  eddy__connector_fire_deadline(conn);
  spin();
  ck_assert(!fakes[B].started && !fakes[D].started);
}
END_TEST

/* RFC 8305's attempt delay: the next address of a family starts while the
 * first still hangs; the first to connect wins and the others close. */
START_TEST(test_attempt_delay_starts_next_in_family)
{
  static const int fam[] = {AF1, AF1, AF1, AF2}, name[] = {A, B, C, D};
  eddy_future_t *r = start_connect_staggered(fam, name, 4, 1);

  ck_assert_uint_eq(pending(), BIT(A));
  eddy__connector_fire_stagger(conn, 1); /* the secondary has not started */
  spin();
  ck_assert_uint_eq(pending(), BIT(A));
  eddy__connector_fire_stagger(conn, 0);
  spin();
  ck_assert_uint_eq(pending(), BIT(A) | BIT(B));
  ck_assert_uint_eq(eddy__connector_in_flight(conn), 2);
  resolve_connect(B, 1);
  assert_won(r, B);
  assert_closed(A);
  ck_assert(!fakes[C].started && !fakes[D].started);
  eddy__connector_fire_stagger(conn, 0); /* decided: nothing more starts */
  spin();
  ck_assert(!fakes[C].started);
}
END_TEST

/* With an attempt delay a failure still starts the next address at once
 * (and the other family, as always); the delay then moves on the rest. */
START_TEST(test_attempt_delay_failure_moves_on_at_once)
{
  static const int fam[] = {AF1, AF1, AF1, AF2}, name[] = {A, B, C, D};
  eddy_future_t *r = start_connect_staggered(fam, name, 4, 1);

  resolve_connect(A, 0);
  ck_assert_uint_eq(pending(), BIT(B) | BIT(D));
  eddy__connector_fire_stagger(conn, 1); /* D was the secondary's last */
  spin();
  ck_assert_uint_eq(pending(), BIT(B) | BIT(D));
  eddy__connector_fire_stagger(conn, 0);
  spin();
  ck_assert_uint_eq(pending(), BIT(B) | BIT(C) | BIT(D));
  eddy__connector_fire_stagger(conn, 0); /* the primary has no more */
  spin();
  resolve_connect(C, 0);
  resolve_connect(D, 0);
  ck_assert(!eddy_future_done(r)); /* B still hangs */
  resolve_connect(B, 0);
  assert_io_error(r);
}
END_TEST

/* The real timers, with short delays: the fallback starts the secondary,
 * then the deadline closes both and times out. */
START_TEST(test_real_timers)
{
  eddy_address_t list[2] = {addr(AF1, A), addr(AF2, C)};
  eddy__connector_config_t cfg = {fake_attempt, NULL, 0.02, 0, 0};
  eddy_future_t *r;

  cfg.deadline = eddy_loop_time(loop) + 0.1;
  conn = eddy__connector_new(loop, list, 2, &cfg);
  ck_assert_ptr_nonnull(conn);
  eddy__connector_start(conn);
  r = eddy__connector_result(conn);
  ck_assert_int_eq(eddy_loop_run_until(loop, r, 5.0), 0);
  ck_assert(fakes[C].started);
  assert_timeout(r);
  spin();
  assert_closed(A);
  assert_closed(C);
}
END_TEST

static Suite *connector_suite(void)
{
  Suite *s = suite_create("connector");
  TCase *tc = tcase_create("connector");

  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_split_one_family);
  tcase_add_test(tc, test_split_mixed);
  tcase_add_test(tc, test_immediate_success);
  tcase_add_test(tc, test_immediate_failure);
  tcase_add_test(tc, test_one_family_second_try);
  tcase_add_test(tc, test_one_family_second_try_failure);
  tcase_add_test(tc, test_one_family_second_try_timeout);
  tcase_add_test(tc, test_two_families_immediate_failure);
  tcase_add_test(tc, test_two_families_timeout);
  tcase_add_test(tc, test_success_after_timeout);
  tcase_add_test(tc, test_late_success_is_closed);
  tcase_add_test(tc, test_all_fail);
  tcase_add_test(tc, test_one_family_timeout_after_connect_timeout);
  tcase_add_test(tc, test_one_family_success_before_connect_timeout);
  tcase_add_test(tc, test_one_family_second_try_after_connect_timeout);
  tcase_add_test(tc, test_one_family_second_try_failure_before_connect_timeout);
  tcase_add_test(tc, test_two_family_timeout_before_connect_timeout);
  tcase_add_test(tc, test_two_family_success_after_timeout);
  tcase_add_test(tc, test_two_family_timeout_after_connect_timeout);
  tcase_add_test(tc, test_no_addresses);
  tcase_add_test(tc, test_cancel_closes_every_attempt);
  tcase_add_test(tc, test_attempt_delay_starts_next_in_family);
  tcase_add_test(tc, test_attempt_delay_failure_moves_on_at_once);
  tcase_add_test(tc, test_real_timers);
  suite_add_tcase(s, tc);
  return s;
}

int main(void)
{
  SRunner *sr = srunner_create(connector_suite());
  int failed;

  srunner_run_all(sr, CK_ENV);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? 0 : 1;
}
